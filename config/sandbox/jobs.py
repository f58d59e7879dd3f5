"""One job in the sandbox, from a fresh directory to its result: the host directories a job
gets (workspace, sockets, logs), the limits the operator configured, and the loop that runs
the job with its relay and proxy served, asking the caller between polls whether to stop."""

import contextlib
import dataclasses
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from config import sandbox
from config.sandbox import relay
from config.sandbox.spec import Limits, Result, Spec

POLL_SECONDS = 0.25


@dataclass(frozen=True)
class JobDir:
    root: Path          # mode 0711: the job's uid passes through, lists nothing
    workspace: Path     # WORKSPACE inside
    sockets: Path       # SOCKET_DIR inside (read-only)
    stdout: Path        # outside the workspace: the job cannot rewrite its own log
    stderr: Path

    @property
    def name(self) -> str:
        return self.root.name


def _force_remove(root: Path) -> None:
    """Remove a job's tree, including directories its job made unreadable to us."""
    def unlock(function, path, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), stat.S_IRWXU)
            os.chmod(path, stat.S_IRWXU)
            function(path)

    shutil.rmtree(root, onerror=unlock)


@contextlib.contextmanager
def job_directory(kind: str):
    """A fresh directory for one job under LEDGERFLOW_SANDBOX_WORK_DIR, removed afterwards."""
    base = Path(settings.LEDGERFLOW_SANDBOX_WORK_DIR)
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o711)
    root = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=base))
    root.chmod(0o711)
    job = JobDir(root, root / "ws", root / "sockets", root / "stdout.txt", root / "stderr.txt")
    job.workspace.mkdir()
    job.stdout.touch()
    job.stderr.touch()
    try:
        yield job
    finally:
        _force_remove(root)


def limits(*, wall_seconds: int | None = None) -> Limits:
    """The operator's limits for one job (LEDGERFLOW_SANDBOX_*)."""
    mb = 1 << 20
    return Limits(wall_seconds=wall_seconds or settings.LEDGERFLOW_PROJECT_MAX_TIMEOUT,
                  cpu_seconds=settings.LEDGERFLOW_SANDBOX_CPU_SECONDS,
                  memory_bytes=settings.LEDGERFLOW_SANDBOX_MEMORY_MB * mb,
                  processes=settings.LEDGERFLOW_SANDBOX_PROCESSES,
                  file_bytes=settings.LEDGERFLOW_SANDBOX_FILE_MB * mb,
                  disk_bytes=settings.LEDGERFLOW_SANDBOX_DISK_MB * mb,
                  tmp_bytes=settings.LEDGERFLOW_SANDBOX_TMP_MB * mb)


def run(spec: Spec, job: JobDir, *, backend_name: str = "",
        tick: Callable[[], str] | None = None) -> Result:
    """Run `spec` to its end. `tick` is called between polls; a non-empty answer (the reason:
    "cancelled", ...) kills the job and is returned as the result's limit."""
    backend = sandbox.backend(backend_name)
    backend.check()  # SandboxUnavailable, naming what is missing: never run unconfined
    with relay.serving(job.sockets, relay=spec.relay, egress=spec.egress):
        process = backend.start(spec, sockets=job.sockets)
        try:
            while (result := process.wait(POLL_SECONDS)) is None:
                reason = tick() if tick is not None else ""
                if reason:
                    return process.kill(reason)
            return inferred(result, job)
        except BaseException:
            process.kill("worker")
            raise


# What a process says when an rlimit refuses it (the kernel sends no signal for these).
LIMIT_MESSAGES = (("memory", ("MemoryError", "Cannot allocate memory", "std::bad_alloc")),
                  ("processes", ("BlockingIOError: [Errno 11]", "fork: retry",
                                 "Resource temporarily unavailable")),
                  ("file size", ("File too large",)))


def inferred(result: Result, job: JobDir) -> Result:
    """The limit a failed job hit, where only its stderr says so."""
    if result.ok or result.limit:
        return result
    log = tail(job.stderr, 4000)
    for limit, messages in LIMIT_MESSAGES:
        if any(message in log for message in messages):
            return dataclasses.replace(result, limit=limit)
    return result


def tail(path: Path, limit: int = 2000) -> str:
    """The end of a log, for the message that says why a job failed."""
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - limit))
        return handle.read().decode("utf-8", "replace").strip()
    return ""


LIMIT_WORDS = {"time": "its time limit", "memory": "its memory limit",
               "cpu": "its CPU time limit", "processes": "its limit on processes",
               "file size": "its file size limit", "disk": "its workspace disk limit"}


def describe(result: Result, job: JobDir, what: str = "The command") -> str:
    """Why a job did not succeed, naming the limit it hit, with the end of its stderr."""
    if result.limit in LIMIT_WORDS:
        head = f"{what} was stopped at {LIMIT_WORDS[result.limit]}."
    elif result.signal:
        head = f"{what} was ended by signal {result.signal}."
    else:
        head = f"{what} exited with status {result.exit_code}."
    log = tail(job.stderr)
    return f"{head}\n--- end of stderr ---\n{log}" if log else head
