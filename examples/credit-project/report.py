"""The workflow's second step: reads the summary an earlier run logged (a `runs:/` path)."""

import json
import sys

with open(sys.argv[1]) as handle:
    summary = json.load(handle)
print(f"earlier run: AUC {summary['auc']:.3f}, accuracy {summary['accuracy']:.3f}", flush=True)
