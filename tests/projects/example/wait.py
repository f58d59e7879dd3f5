"""Example project: sleeps (with a child process) so tests can time it out or cancel it. The
child carries a marker in its command line, by which a test finds it on the host."""

import os
import subprocess
import sys
import time

marker = f"ledgerflow-example-{os.environ.get('MLFLOW_RUN_ID', '')}"
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])
print(f"pids {os.getpid()} {child.pid}", flush=True)
print(f"marker {marker}", flush=True)
time.sleep(int(sys.argv[1]))
