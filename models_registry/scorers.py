"""Models are loaded only in the sandbox: by a scorer process (models_registry/scorer_process.py)
in the model's own environment, with the package mounted read-only, no network, and limits on
memory, CPU time, processes and disk. The service never imports a model's code or unpickles a
byte of it.

- `verify(model_dir)`: packaging's check, a one-shot sandboxed job: load the model, score its
  input example, describe the estimator.
- `POOL.scorer(version)`: scoring. One long-lived scorer per package digest in use, per
  service process (web, or the reports worker for counterfactuals), loaded once and fed over a
  unix socket in its workspace, one request at a time. A bounded pool: the least recently used
  scorer is stopped when the pool is full, when a scorer has been idle too long, and when the
  machine's available memory is short. A scorer that crashed, hit a limit or took too long is
  stopped, the request answered with the reason, and the next request starts a new one.
"""

import atexit
import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path

from django.conf import settings

from config import sandbox
from config.exceptions import ApplicationError
from config.sandbox import jobs
from config.sandbox.environments import EnvironmentFailure
from config.sandbox.spec import ENV_MOUNT, Limits, Mount, Network, SandboxUnavailable, Spec
from models_registry import scorer_process as wire
from models_registry.environments import model_environment

logger = logging.getLogger(__name__)

SCRIPT = Path(wire.__file__)
INSIDE_SCRIPT = "/opt/ledgerflow/scorer.py"
MODEL_MOUNT = "/model"
SOCKET_NAME = "scorer.sock"
MB = 1 << 20


class ScorerFailure(Exception):
    """The model could not be loaded or could not answer; the message says why."""


def _limits(wall_seconds: int) -> Limits:
    return Limits(wall_seconds=wall_seconds, cpu_seconds=settings.LEDGERFLOW_SCORER_CPU_SECONDS,
                  memory_bytes=settings.LEDGERFLOW_SCORER_MEMORY_MB * MB,
                  processes=settings.LEDGERFLOW_SCORER_PROCESSES, file_bytes=64 * MB,
                  disk_bytes=256 * MB, tmp_bytes=256 * MB)


def _spec(job: jobs.JobDir, model_dir: Path, argv: list[str], wall_seconds: int) -> Spec:
    try:
        environment = model_environment(model_dir)
    except EnvironmentFailure as exc:
        raise ScorerFailure(f"The model's environment cannot be had: {exc}") from None
    return Spec(argv=[f"{ENV_MOUNT}/bin/python", "-I", INSIDE_SCRIPT, *argv],
                workspace=job.workspace, stdout=job.stdout, stderr=job.stderr, name=job.name,
                mounts=(*environment.mounts, Mount(model_dir, MODEL_MOUNT),
                        Mount(SCRIPT, INSIDE_SCRIPT)),
                env={"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"},
                limits=_limits(wall_seconds), network=Network.NONE)


def verify(model_dir: Path) -> dict:
    """Load the model in `model_dir` in the sandbox and score its input example: the verify
    result (scorer_process.verify), or ScorerFailure with the reason."""
    timeout = settings.LEDGERFLOW_PACKAGING_VERIFY_TIMEOUT
    with jobs.job_directory("verify") as job:
        spec = _spec(job, model_dir, ["verify", MODEL_MOUNT], timeout)
        try:
            result = jobs.run(spec, job)
        except SandboxUnavailable as exc:
            raise ScorerFailure(f"This worker cannot load models safely: {exc}") from None
        lines = [line for line in job.stdout.read_text(errors="replace").splitlines()
                 if line.startswith("{")]
        answer = {}
        with contextlib.suppress(IndexError, ValueError):
            answer = json.loads(lines[-1])
        if result.limit:
            raise ScorerFailure(jobs.describe(result, job, "Loading and scoring the model"))
        if not answer.get("loaded") or not result.ok:
            reason = answer.get("error") or jobs.describe(result, job, "Loading the model")
            raise ScorerFailure(f"The model could not be loaded as python_function and score "
                                f"its input example: {reason}")
        return answer


class _Spawner:
    """Scorers are started from one long-lived thread of the process. A sandbox dies with the
    thread that started it (bwrap --die-with-parent is the kernel's parent-death signal,
    which follows the starting thread), and web servers end request threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._owner = None  # (pid, thread): a forked child starts its own

    def run(self, function):
        with self._lock:
            if self._owner is None or self._owner[0] != os.getpid() or \
                    not self._owner[1].is_alive():
                self._queue = queue.Queue()
                thread = threading.Thread(target=self._loop, args=(self._queue,),
                                          name="scorer-spawner", daemon=True)
                thread.start()
                self._owner = (os.getpid(), thread)
            jobs_queue = self._queue
        box: dict = {}
        done = threading.Event()
        jobs_queue.put((function, box, done))
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["value"]

    @staticmethod
    def _loop(jobs_queue: queue.Queue) -> None:
        while True:
            function, box, done = jobs_queue.get()
            try:
                box["value"] = function()
            except BaseException as exc:  # handed to the caller
                box["error"] = exc
            finally:
                done.set()


SPAWNER = _Spawner()


class Scorer:
    """One sandboxed process with one model loaded, answering on a unix socket."""

    def __init__(self, digest: str, model_dir: Path):
        self.digest, self.model_dir = digest, model_dir
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self._job = contextlib.ExitStack()
        self.job = self._job.enter_context(jobs.job_directory("scorer"))
        try:
            self._start()
        except BaseException:
            self._job.close()
            raise

    @property
    def socket_path(self) -> Path:
        return self.job.workspace / SOCKET_NAME

    def _start(self) -> None:
        spec = _spec(self.job, self.model_dir, ["serve", MODEL_MOUNT, f"/job/{SOCKET_NAME}"],
                     10 * 365 * 24 * 3600)
        backend = sandbox.backend()
        try:
            backend.check()
        except SandboxUnavailable as exc:
            raise ScorerFailure(f"This server cannot load models safely: {exc}") from None
        self.process = SPAWNER.run(lambda: backend.start(spec))
        deadline = time.monotonic() + settings.LEDGERFLOW_SCORER_START_TIMEOUT
        while not self.socket_path.exists():
            result = self.process.poll()
            if result is not None:
                raise ScorerFailure(jobs.describe(result, self.job, "Loading the model"))
            if time.monotonic() > deadline:
                self.process.kill("time")
                raise ScorerFailure(f"Loading the model took longer than "
                                    f"{settings.LEDGERFLOW_SCORER_START_TIMEOUT} s.")
            time.sleep(0.02)

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, request: dict, timeout: float | None = None) -> dict:
        """One request, one reply; ScorerFailure (and the scorer stopped) when the process
        died, hit a limit or took longer than `timeout`."""
        timeout = timeout or settings.LEDGERFLOW_SCORING_TIMEOUT
        with self.lock:
            self.last_used = time.monotonic()
            result = self.process.poll()
            if result is not None:
                raise ScorerFailure(jobs.describe(result, self.job, "The model's scorer"))
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                    conn.settimeout(timeout)
                    conn.connect(str(self.socket_path))
                    wire.send(conn, request)
                    reply = wire.receive(conn)
            except TimeoutError:
                self.process.kill("time")
                raise ScorerFailure(f"The model took longer than {timeout:g} s to answer; its "
                                    "scorer was stopped.") from None
            except (OSError, ConnectionError, ValueError) as exc:
                result = jobs.inferred(self.process.wait(2) or self.process.kill(), self.job)
                if result.limit or result.exit_code or result.signal:
                    raise ScorerFailure(jobs.describe(result, self.job, "The model's scorer")) \
                        from None
                raise ScorerFailure(f"The model's scorer did not answer: {exc}") from None
            finally:
                self.last_used = time.monotonic()
        return reply

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        self._job.close()


def _available_memory() -> int | None:
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


class ScorerPool:
    """Scorers of this process by package digest, least recently used first."""

    def __init__(self):
        self._scorers: OrderedDict[str, Scorer] = OrderedDict()
        self._lock = threading.Lock()  # guards the dict; never held while a scorer starts
        self._starting: dict[str, threading.Lock] = {}

    def scorer(self, digest: str, model_dir: Path) -> Scorer:
        with self._lock:
            self._evict_idle()
            found = self._scorers.get(digest)
            if found is not None and found.alive():
                self._scorers.move_to_end(digest)
                return found
            gate = self._starting.setdefault(digest, threading.Lock())
        with gate:  # one start per model; requests for other models go on meanwhile
            with self._lock:
                found = self._scorers.get(digest)
                if found is not None and found.alive():
                    return found
                stale = self._scorers.pop(digest, None)
            if stale is not None:
                stale.stop()
            self._make_room()
            started = Scorer(digest, model_dir)
            with self._lock:
                self._scorers[digest] = started
                self._starting.pop(digest, None)
        return started

    def _evict_idle(self) -> None:
        idle = time.monotonic() - settings.LEDGERFLOW_SCORER_IDLE_SECONDS
        for digest in [d for d, s in self._scorers.items() if s.last_used < idle]:
            self._stop_later(self._scorers.pop(digest))

    def _make_room(self) -> None:
        """Stop the least recently used scorers while the pool is full or memory is short."""
        low = settings.LEDGERFLOW_SCORER_MIN_FREE_MB * MB
        while True:
            with self._lock:
                if not self._scorers:
                    return
                available = _available_memory()
                full = len(self._scorers) >= max(1, settings.LEDGERFLOW_SCORERS_PER_PROCESS)
                if not full and (available is None or available >= low):
                    return
                _, oldest = self._scorers.popitem(last=False)
            oldest.stop()

    @staticmethod
    def _stop_later(scorer: Scorer) -> None:
        threading.Thread(target=scorer.stop, name="scorer-stop", daemon=True).start()

    def discard(self, digest: str) -> None:
        with self._lock:
            scorer = self._scorers.pop(digest, None)
        if scorer is not None:
            scorer.stop()

    def stop_all(self) -> None:
        with self._lock:
            scorers, self._scorers = list(self._scorers.values()), OrderedDict()
        for scorer in scorers:
            scorer.stop()

    def running(self) -> dict[str, int]:
        with self._lock:
            return {d: s.process.popen.pid for d, s in self._scorers.items() if s.alive()}


POOL = ScorerPool()
atexit.register(POOL.stop_all)


def call(digest: str, model_dir: Path, request: dict) -> dict:
    """A request to the model's scorer, started if need be (a scorer that died while idle is
    started again). A failure of this request is not retried: it may be the request that
    kills the scorer. ApplicationError: "invalid" for input the model refuses,
    "model_failed" when the model's code raised on it, "unavailable" when the scorer could not
    be started, crashed, hit a limit or timed out."""
    try:
        scorer = POOL.scorer(digest, model_dir)
        try:
            reply = scorer.call(request)
        except ScorerFailure:
            POOL.discard(digest)
            raise
    except ScorerFailure as exc:
        raise ApplicationError(str(exc), kind="unavailable") from None
    if not reply.get("ok"):
        message = reply.get("message") or "The model could not answer."
        if reply.get("kind") == "invalid":
            raise ApplicationError(message, kind="invalid")
        raise ApplicationError(f"The model failed on this input: {message}", kind="model_failed")
    return reply
