"""What every backend that runs the launcher shares: where things are inside, the launcher's
configuration for a spec, and the environment a job sees."""

import contextlib
import json
import os
import signal
import time
from pathlib import Path

from config.sandbox.spec import (
    ENV_MOUNT,
    PROXY_PORT,
    RELAY_PORT,
    WORKSPACE,
    Limits,
    Network,
    Process,
    Result,
    Spec,
    Usage,
)

LAUNCHER_SOURCE = Path(__file__).with_name("launcher.py")
LAUNCHER = "/opt/ledgerflow/launcher.py"     # inside
SOCKET_DIR = "/run/ledgerflow"               # inside: the worker's sockets
TRACKING_SOCKET = "tracking.sock"
EGRESS_SOCKET = "egress.sock"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def rlimits(limits: Limits) -> dict[str, int]:
    """The launcher's rlimits for the job's command (a process may not raise them)."""
    return {"as": limits.memory_bytes, "cpu": limits.cpu_seconds, "fsize": limits.file_bytes,
            "nofile": limits.open_files, "core": 0}


def forwards(spec: Spec) -> list[list]:
    if spec.network == Network.TRACKING:
        return [[RELAY_PORT, f"{SOCKET_DIR}/{TRACKING_SOCKET}"]]
    if spec.network == Network.EGRESS:
        return [[PROXY_PORT, f"{SOCKET_DIR}/{EGRESS_SOCKET}"]]
    return []


def launcher_argv(spec: Spec, python: str = "/usr/bin/python3", extra_rlimits=None,
                  uid: int | None = None, launcher: str = LAUNCHER) -> list[str]:
    config = {"argv": list(spec.argv), "cwd": spec.cwd,
              "rlimits": {**rlimits(spec.limits), **(extra_rlimits or {})},
              "forwards": forwards(spec), **({"uid": uid} if uid is not None else {})}
    return [python, "-I", "-S", launcher, json.dumps(config)]


def job_env(spec: Spec) -> dict[str, str]:
    """Exactly what the job's processes see: the spec's variables over a minimal base, and
    the loopback addresses of the relay or proxy. No variable of the worker's own."""
    path = f"{ENV_MOUNT}/bin:{SYSTEM_PATH}" if any(
        m.target == ENV_MOUNT for m in (*spec.mounts, *spec.writable_mounts)) else SYSTEM_PATH
    env = {"PATH": path, "HOME": f"{WORKSPACE}/home", "TMPDIR": "/tmp",  # noqa: S108 (private)
           "LANG": "C.UTF-8",
           "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if spec.network == Network.TRACKING:
        env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{RELAY_PORT}"
    if spec.network == Network.EGRESS:
        proxy = f"http://127.0.0.1:{PROXY_PORT}"
        env.update({"HTTPS_PROXY": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy,
                    "http_proxy": proxy, "ALL_PROXY": proxy, "NO_PROXY": ""})
    env.update(spec.env)
    return env


LIMIT_SIGNALS = {signal.SIGXCPU: "cpu", signal.SIGXFSZ: "file size"}


def result_of_status(code: int, usage: Usage, limit: str = "", killed: bool = False) -> Result:
    """The launcher's exit status (128 + signal for a signalled command) as a Result."""
    signum = code - 128 if code > 128 else None
    if not limit and signum in LIMIT_SIGNALS:
        limit = LIMIT_SIGNALS[signum]
    return Result(exit_code=None if signum else code, signal=signum, limit=limit, usage=usage,
                  killed=killed)


class ChildProcess(Process):
    """A job that is this worker's child process (bwrap, none): waited for with wait4, so its
    whole tree's CPU time and peak memory come back with its status. Subclasses end what is
    left of the job (`_end_tree`), add what they know (`_measured`) and further limits
    (`_over_limit`)."""

    def __init__(self, popen, spec: Spec):
        self.popen, self.spec = popen, spec
        self.started = time.monotonic()
        self.result: Result | None = None

    def _over_limit(self) -> str:
        return ""

    def _end_tree(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()

    def _measured(self, code: int, usage: Usage, limit: str) -> tuple[Usage, str]:
        return usage, limit

    def _finish(self, status: int, rusage, limit: str = "", killed: bool = False) -> Result:
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        code = self.popen.returncode if self.popen.returncode >= 0 \
            else 128 - self.popen.returncode
        usage = Usage(cpu_seconds=rusage.ru_utime + rusage.ru_stime,
                      max_rss_bytes=rusage.ru_maxrss * 1024,
                      wall_seconds=time.monotonic() - self.started)
        usage, limit = self._measured(code, usage, limit)
        self.result = result_of_status(code, usage, limit=limit, killed=killed)
        return self.result

    def poll(self) -> Result | None:
        if self.result is not None:
            return self.result
        pid, status, rusage = os.wait4(self.popen.pid, os.WNOHANG)
        if pid:
            return self._finish(status, rusage)
        if time.monotonic() - self.started > self.spec.limits.wall_seconds:
            return self.kill("time")
        if limit := self._over_limit():
            return self.kill(limit)
        return None

    def wait(self, timeout: float | None = None) -> Result | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (result := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return result

    def kill(self, limit: str = "") -> Result:
        if self.result is not None:
            return self.result
        self._end_tree()
        _, status, rusage = os.wait4(self.popen.pid, 0)
        return self._finish(status, rusage, limit=limit, killed=True)
