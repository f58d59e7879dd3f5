"""Example project: the first attempt leaves a marker and hangs (so a test can kill its
worker); an attempt that finds the marker finishes at once. Safe to retry, as MLproject says."""

import os
import subprocess
import sys
import time
from pathlib import Path

marker = Path(sys.argv[1])
if marker.exists():
    print("found the marker: finishing", flush=True)
    sys.exit(0)
marker.write_text("first attempt")
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(f"pids {os.getpid()} {child.pid}", flush=True)
time.sleep(300)
