"""A hostile job: tries the escapes it is told to and prints what it reached, as JSON.

Standard library only (it runs under the system's Python in the sandbox). Every probe
answers "escaped" with what it got, or "blocked" with the error: the tests compare both
backends, so a probe that cannot work anywhere is caught as well.
"""

import glob
import json
import os
import socket
import subprocess
import sys


def _read(path):
    with open(path, "rb") as handle:
        return handle.read(200).decode("utf-8", "replace")


def _environ_with(canary):
    """Any process environment this job can read that holds the canary variable."""
    for name in [f"/proc/{os.getppid()}/environ", *glob.glob("/proc/[0-9]*/environ")]:
        try:
            with open(name, "rb") as handle:
                if canary.encode() in handle.read():
                    return name
        except OSError:
            continue
    raise PermissionError("no readable environment holds the canary")


def _connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=3):
        return f"connected to {port}"


def _write(path):
    with open(path, "w") as handle:
        handle.write("planted by a hostile job\n")
    return path


def _leave(marker):
    """A daemon outside the job's process group: double fork, new session."""
    subprocess.Popen([marker, "300"], executable="/bin/sleep", start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return marker


def _command(argv):
    """A command that succeeds only where the kernel lets it (unshare, mount, ...)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise PermissionError(done.stderr.strip()[-200:])
    return " ".join(argv)


def run(probe):
    kind, target = probe["kind"], probe["target"]
    action = {"read": _read, "environ": _environ_with, "connect": _connect, "write": _write,
              "leave": _leave, "env": lambda name: os.environ[name], "command": _command}[kind]
    try:
        return {"probe": probe, "result": "escaped", "detail": str(action(target))[:200]}
    except (OSError, KeyError, ValueError, subprocess.SubprocessError) as exc:
        return {"probe": probe, "result": "blocked", "detail": f"{type(exc).__name__}: {exc}"}


def main():
    with open(sys.argv[1]) as handle:
        probes = json.load(handle)
    print(json.dumps([run(p) for p in probes]), flush=True)


if __name__ == "__main__":
    main()
