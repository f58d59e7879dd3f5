"""Example project: sleeps (with a child process) so tests can time it out or cancel it."""

import os
import subprocess
import sys
import time

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(f"pids {os.getpid()} {child.pid}", flush=True)
time.sleep(int(sys.argv[1]))
