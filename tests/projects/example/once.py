"""Example project: the first attempt leaves a marker (a tag on its run) and hangs, so a test
can kill its worker; an attempt that finds the marker finishes at once. Safe to retry, as
MLproject says. The marker is kept in tracking: each attempt has a fresh sandbox."""

import os
import subprocess
import sys
import time

from mlflow import MlflowClient

client, run_id, value = MlflowClient(), os.environ["MLFLOW_RUN_ID"], sys.argv[1]
if client.get_run(run_id).data.tags.get("example.once") == value:
    print("found the marker: finishing", flush=True)
    sys.exit(0)
client.set_tag(run_id, "example.once", value)
marker = f"ledgerflow-example-{run_id}"
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])
print(f"pids {os.getpid()} {child.pid}", flush=True)
print(f"marker {marker}", flush=True)
time.sleep(300)
