"""Example project, second step: reads a file an earlier run logged."""

import json
import sys

with open(sys.argv[1]) as handle:
    print(f"earlier accuracy {json.load(handle)['accuracy']:.3f}", flush=True)
