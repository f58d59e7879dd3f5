"""`make bench-sandbox`: what the sandbox costs (issue 20), and a project run beside `mlflow run`.

    .venv/bin/python bench/sandbox_bench.py [--reps 30] [--runs 3] [--env-cache DIR]
                                            [--start-only] [--no-unsandboxed]

1. Start cost: `/bin/true` through `config.sandbox.jobs.run` (a fresh job directory each time)
   with backend bwrap, with backend none (the same launcher, no namespaces) and as a plain
   `subprocess.run`; bwrap with Network.TRACKING (the relay served); `python3 -c pass` in
   bwrap and plain. `--reps` rounds, the variants interleaved in each, two warm-up rounds
   left out; median and p95. Start cost = bwrap minus plain, paired by round. Beside it, to
   say what dominates: the time to the job's exit without jobs.run's poll loop, the launcher
   alone, and bubblewrap alone with and without a network namespace.
2. A project run: tests/projects/example, entry point main, `--env-manager local`, submitted
   with `ledgerflow run --wait` to a live Ledgerflow (production settings, gunicorn, one
   Celery worker on `default,projects` in the bwrap sandbox, throwaway PostgreSQL and Redis
   of scripts/with_services.py) and run with `mlflow run` (bench/.peer-venv, mlflow 3.17.2
   plus the runner environment's pinned libraries) against a side-by-side `mlflow server` on
   the same PostgreSQL; unless `--no-unsandboxed`, also on Ledgerflow with the worker
   replaced by one with LEDGERFLOW_SANDBOX=none (the difference is the sandbox's share of a
   run). `--runs` rounds after a first one (reported apart), rotating which goes first. The
   runner environment is built by the first Ledgerflow run (in bwrap) into a fresh cache,
   timed from the build's lock file to its `.complete`, unless `--env-cache` names a
   directory that holds it. Also timed: a tracking request through the relay, and the
   imports of mlflow and sklearn in bwrap with the runner environment as built (no bytecode)
   and with a compiled copy of it.

Prints one table, writes bench/results/sandbox-<timestamp>.json. Everything it starts is
stopped by PID in a `finally`. Loopback only.
"""

import argparse
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

ROOT, PEER, MLFLOW_VERSION, services = harness.ROOT, harness.PEER, harness.MLFLOW_VERSION, \
    harness.services
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "tests" / "projects" / "example"
RUNNER_SPEC = ROOT / "config" / "sandbox" / "runner-env.txt"
LF, ML, NONE = "ledgerflow", "mlflow", "ledgerflow_none"  # NONE: a LEDGERFLOW_SANDBOX=none worker
GOAL_MS = 150
SYSTEM_PYTHON = "/usr/bin/python3"
WARMUP_ROUNDS = 2
FIRST_RUN_TIMEOUT, RUN_TIMEOUT = 1800, 600  # s; the first Ledgerflow run may build the env


def setup_django(tmp: Path) -> None:
    """Django for this process (start-cost part): test settings, data and job directories in
    `tmp`. The servers of part 2 get their own environment (harness.ledgerflow_env)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["LEDGERFLOW_DATA_DIR"] = str(tmp / "bench-data")
    os.environ["LEDGERFLOW_SANDBOX_WORK_DIR"] = str(tmp / "jobs")
    os.environ.setdefault("LEDGERFLOW_ENV_CACHE_DIR", str(tmp / "envs"))
    import django

    django.setup()
    # backend none warns at every job, as it must; thirty warnings say nothing here
    logging.getLogger("config.sandbox").setLevel(logging.ERROR)


def wait_quiet(load: float, timeout: float) -> None:
    """Wait (up to `timeout` s) until the 1-minute load average is under `load`: other work
    on a 2-core machine doubles every wall-clock figure here."""
    if load <= 0:
        return
    deadline = time.monotonic() + timeout
    while os.getloadavg()[0] >= load and time.monotonic() < deadline:
        time.sleep(5)
    print(f"bench-sandbox: load average {os.getloadavg()[0]:.2f}", flush=True)


def stats(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(ordered), "median": statistics.median(ordered),
            "p95": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)],
            "min": ordered[0], "max": ordered[-1]}


# --- 1. start cost ------------------------------------------------------------------------
def _spec(job, argv: list[str], tracking: bool):
    from config.sandbox import jobs
    from config.sandbox.spec import Network, Relay, Spec

    # upstream: a closed port; /bin/true never sends a request through the relay
    return Spec(argv=argv, workspace=job.workspace, stdout=job.stdout, stderr=job.stderr,
                name=job.name, limits=jobs.limits(),
                network=Network.TRACKING if tracking else Network.NONE,
                relay=Relay(upstream="http://127.0.0.1:9", token="bench") if tracking else None)


def job_run(argv: list[str], backend: str, tracking: bool = False) -> tuple[float, float]:
    """(ms, job CPU ms) of one jobs.run in a fresh job directory, as a worker pays it: the
    directory made and removed, the relay served and stopped, jobs.run's poll loop."""
    from config.sandbox import jobs

    started = time.perf_counter()
    with jobs.job_directory("bench") as job:
        result = jobs.run(_spec(job, argv, tracking), job, backend_name=backend)
    elapsed = (time.perf_counter() - started) * 1000
    if not result.ok:
        raise RuntimeError(f"{argv} in {backend}: {result}")
    return elapsed, result.usage.cpu_seconds * 1000


def job_exit(argv: list[str], backend: str) -> tuple[float, float]:
    """(ms to the job's exit, ms to the end of the cleanup after it): the same start as
    jobs.run, then a blocking waitid(WNOWAIT) instead of the poll loop."""
    from config import sandbox
    from config.sandbox import jobs, relay

    with jobs.job_directory("bench") as job:
        spec = _spec(job, argv, False)
        started = time.perf_counter()
        with relay.serving(job.sockets):
            process = sandbox.backend(backend).start(spec, sockets=job.sockets)
            os.waitid(os.P_PID, process.popen.pid, os.WEXITED | os.WNOWAIT)
            exited = time.perf_counter()
            result = process.wait()
        done = time.perf_counter()
    if not result.ok:
        raise RuntimeError(f"{argv} in {backend}: {result}")
    return (exited - started) * 1000, (done - started) * 1000


def relay_alone() -> float:
    """ms to serve the relay's socket and stop it again, with no job at all."""
    from config.sandbox import jobs, relay
    from config.sandbox.spec import Relay

    with jobs.job_directory("bench") as job:
        started = time.perf_counter()
        with relay.serving(job.sockets, relay=Relay(upstream="http://127.0.0.1:9", token="b")):
            pass
        return (time.perf_counter() - started) * 1000


def plain(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def start_cost(reps: int) -> dict:
    from config import sandbox
    from config.sandbox import cgroups
    from config.sandbox.common import LAUNCHER_SOURCE

    bwrap = sandbox.backend("bwrap")
    bwrap.check()
    launcher = [SYSTEM_PYTHON, "-I", "-S", str(LAUNCHER_SOURCE),
                json.dumps({"argv": ["/bin/true"], "cwd": "/", "rlimits": {}, "forwards": []})]
    raw = [bwrap.binary, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    true, pypass = ["/bin/true"], [SYSTEM_PYTHON, "-c", "pass"]
    variants = {  # name: () -> ms (or (ms, cpu ms))
        "true_plain": lambda: plain(true),
        "true_none": lambda: job_run(true, "none"),
        "true_bwrap": lambda: job_run(true, "bwrap"),
        "true_bwrap_tracking": lambda: job_run(true, "bwrap", tracking=True),
        "true_bwrap_exit": lambda: job_exit(true, "bwrap"),
        "true_none_exit": lambda: job_exit(true, "none"),
        "python_plain": lambda: plain(pypass),
        "python_bwrap": lambda: job_run(pypass, "bwrap"),
        "python_bwrap_exit": lambda: job_exit(pypass, "bwrap"),
        "relay_alone": relay_alone,
        "launcher_alone": lambda: plain(launcher),
        "bwrap_raw": lambda: plain([*raw, "/bin/true"]),
        "bwrap_raw_netns": lambda: plain([*raw, "--unshare-net", "/bin/true"]),
    }
    samples: dict[str, list] = {name: [] for name in variants}
    load_before = os.getloadavg()
    for rnd in range(WARMUP_ROUNDS + reps):
        for name, measure in variants.items():
            value = measure()
            if rnd >= WARMUP_ROUNDS:
                samples[name].append(value)
        if rnd % 10 == 9:
            print(f"bench-sandbox: start cost, round {rnd + 1 - WARMUP_ROUNDS}/{reps}", flush=True)
    out: dict = {"reps": reps, "warmup_rounds": WARMUP_ROUNDS, "bwrap": bwrap.binary,
                 "bwrap_version": subprocess.run([bwrap.binary, "--version"], text=True,
                                                 capture_output=True).stdout.strip(),
                 "cgroups": cgroups.available() or "none", "worker_uid": os.geteuid(),
                 "load_before": load_before, "load_after": os.getloadavg(), "ms": {}}
    for name, values in samples.items():
        if isinstance(values[0], tuple):
            first, second = [v[0] for v in values], [v[1] for v in values]
            out["ms"][name] = stats(first)
            key = "cpu" if name.endswith(("_none", "_bwrap", "_tracking")) else "done"
            out["ms"][f"{name}_{key}"] = stats(second)
            samples[name] = first
        else:
            out["ms"][name] = stats(values)
    paired = {  # start cost: each round's sandboxed time minus the same round's plain one
        "start_cost_bwrap": ("true_bwrap", "true_plain"),
        "start_cost_bwrap_exit": ("true_bwrap_exit", "true_plain"),
        "start_cost_bwrap_tracking": ("true_bwrap_tracking", "true_plain"),
        "start_cost_none": ("true_none", "true_plain"),
        "python_in_bwrap_extra": ("python_bwrap", "python_plain"),
    }
    for name, (a, b) in paired.items():
        out["ms"][name] = stats([x - y for x, y in zip(samples[a], samples[b], strict=True)])
    return out


# --- 2. a project run -----------------------------------------------------------------------
def runner_pins() -> list[str]:
    """The runner environment's pinned libraries (mlflow itself: the peer's full mlflow)."""
    pins = [line.strip() for line in RUNNER_SPEC.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    return [pin for pin in pins if not pin.startswith("mlflow")]


def ensure_peer_libraries() -> str:
    pins = runner_pins()
    uv = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(PEER / "bin" / "python"),
                    *pins], check=True, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    return ", ".join(pins)


def runner_key() -> str:
    """The runner environment's cache key, as config.sandbox.environments.runner makes it."""
    import hashlib

    from config.sandbox.environments import BUILD_FORMAT

    text = f"{BUILD_FORMAT}\n{RUNNER_SPEC.read_text()}"
    return "runner-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def peer_env(ml_url: str) -> dict:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "PATH": f"{PEER / 'bin'}:{os.environ.get('PATH', '')}",  # `python` of the project
           "MLFLOW_TRACKING_URI": ml_url}
    for name in ("VIRTUAL_ENV", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH",
                 "MLFLOW_TRACKING_TOKEN"):
        env.pop(name, None)
    return env


def start_worker(env: dict, tmp: Path, label: str) -> tuple:
    log = tmp / f"worker-{label}.log"
    cmd = [str(Path(sys.executable).parent / "celery"), "-A", "config", "worker",
           "--queues", "default,projects", "--concurrency", "1", "--loglevel", "INFO",
           "--hostname", f"bench-sandbox-{label}-{os.getpid()}@%h", "--without-gossip",
           "--without-mingle"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)  # noqa: SIM115
    ping = subprocess.run([sys.executable, str(ROOT / "manage.py"), "worker_ping", "--timeout",
                           "90"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if ping.returncode != 0 or proc.poll() is not None:
        harness.stop_tree(proc)
        raise RuntimeError(f"celery worker ({label}) not answering: {ping.stderr.strip()[-500:]}\n"
                 f"log:\n{log.read_text()[-3000:]}")
    return proc, log, cmd


def _run_cli(cmd: list[str], env: dict, cwd: Path, timeout: float, log: Path) -> tuple:
    """(seconds, exit status, stderr) of one CLI run, its output appended to `log`."""
    with open(log, "a") as out:
        out.write(f"\n=== {' '.join(cmd)}\n")
        out.flush()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            harness.stop_tree(proc, signal.SIGKILL)
            _, err = proc.communicate()
            err += f"\n(timed out after {timeout:.0f} s)"
        seconds = time.perf_counter() - started
        out.write(err)
    return seconds, proc.returncode, err


def _iso(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


class Project:
    """Runs the example on both sides, records each run."""

    def __init__(self, tmp: Path, lf_url: str, lf_token: str, ml_url: str, env_cache: Path):
        self.tmp, self.lf_url, self.ml_url, self.env_cache = tmp, lf_url, ml_url, env_cache
        self.source = tmp / "example"  # one copy for both: nothing lands in the checkout
        shutil.copytree(EXAMPLE, self.source, ignore=shutil.ignore_patterns("__pycache__"))
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {lf_token}"
        self.lf_env = {**os.environ, "MLFLOW_TRACKING_URI": lf_url,
                       "MLFLOW_TRACKING_TOKEN": lf_token}
        self.ml_env = peer_env(ml_url)

    def ledgerflow(self, timeout: float) -> dict:
        cmd = [str(ROOT / ".venv" / "bin" / "ledgerflow"), "run", str(self.source), "-e", "main",
               "--env-manager", "local", "--wait"]
        seconds, code, err = _run_cli(cmd, self.lf_env, self.tmp, timeout, self.tmp / "lf-cli.log")
        found = re.search(r"Submitted project run (\S+) \(tracking run (\w+)\)", err)
        row = {"cli_s": seconds, "exit": code}
        if found:
            body = self.session.get(f"{self.lf_url}/api/v1/projects/runs/{found[1]}/",
                                    timeout=30).json()
            created, started, ended = (_iso(body.get(k)) for k in
                                       ("created_at", "started_at", "ended_at"))
            row.update(status=body.get("status"), message=body.get("status_message", ""))
            if created and started and ended:
                row.update(server_s=ended - created, queued_s=started - created,
                           worker_s=ended - started)
            run = self.session.get(f"{self.lf_url}/api/2.0/mlflow/runs/get",
                                   params={"run_id": found[2]}, timeout=30).json()
            end_time = int(run.get("run", {}).get("info", {}).get("end_time") or 0) / 1000
            if end_time and started and ended:  # the project's own end_run, in the sandbox
                row.update(to_end_run_s=end_time - started, after_end_run_s=ended - end_time)
        if code != 0 or row.get("status") != "FINISHED":
            row["error"] = err.strip()[-1500:]
        return row

    def mlflow(self, timeout: float) -> dict:
        cmd = [str(PEER / "bin" / "mlflow"), "run", str(self.source), "-e", "main",
               "--env-manager", "local"]
        seconds, code, err = _run_cli(cmd, self.ml_env, self.tmp, timeout, self.tmp / "ml-cli.log")
        row = {"cli_s": seconds, "exit": code}
        found = re.search(r"Run \(ID '(\w+)'\) succeeded", err)
        if found:
            info = requests.get(f"{self.ml_url}/api/2.0/mlflow/runs/get",
                                params={"run_id": found[1]}, timeout=30).json()["run"]["info"]
            row["status"] = info["status"]
            row["server_s"] = (int(info["end_time"]) - int(info["start_time"])) / 1000
        if code != 0 or not found:
            row["error"] = err.strip()[-1500:]
        return row

    def build_seconds(self) -> float | None:
        """The runner environment's build: its lock file made, its `.complete` touched."""
        key = runner_key()
        lock, done = self.env_cache / f"{key}.lock", self.env_cache / key / ".complete"
        if lock.exists() and done.exists():
            return done.stat().st_mtime - lock.stat().st_mtime
        return None


RELAY_SCRIPT = """
import http.client, json, os, sys, time
from urllib.parse import urlsplit
url = urlsplit(os.environ["MLFLOW_TRACKING_URI"])
headers = {}
if os.environ.get("MLFLOW_TRACKING_TOKEN"):
    headers["Authorization"] = "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]
conn, times = None, []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    if conn is None:  # a new connection when the last answer said `Connection: close`
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", headers=headers)
    answer = conn.getresponse()
    body = answer.read()
    if answer.status != 200:
        sys.exit(f"{answer.status} {body[:300]!r}")
    if (answer.getheader("Connection") or "").lower() == "close":
        conn.close()
        conn = None
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps(times))
"""


def relay_latency(lf_url: str, token: str, count: int) -> dict:
    """ms per tracking request (experiments/get, a client that keeps connections alive when
    the server lets it) from inside bwrap, through the launcher's forward and the relay, and
    from the none backend, straight to the server."""
    from config.sandbox import jobs
    from config.sandbox.spec import Network, Relay, Spec

    out = {}
    for backend in ("bwrap", "none", "bwrap", "none"):  # the second pass is the one kept
        with jobs.job_directory("bench") as job:
            spec = Spec(argv=[SYSTEM_PYTHON, "-c", RELAY_SCRIPT, str(count)],
                        workspace=job.workspace, stdout=job.stdout, stderr=job.stderr,
                        name=job.name, limits=jobs.limits(), network=Network.TRACKING,
                        relay=Relay(upstream=lf_url, token=token))
            result = jobs.run(spec, job, backend_name=backend)
            if not result.ok:
                raise RuntimeError(f"relay latency in {backend}: {jobs.describe(result, job)}")
            out[backend] = stats(json.loads(job.stdout.read_text()))
    return out


def bytecode_check(env: Path, tmp: Path, reps: int) -> dict:
    """s to import mlflow, mlflow.sklearn and sklearn in bwrap with the runner environment
    as built (no bytecode: built by uv without --compile-bytecode, mounted read-only, and
    PYTHONDONTWRITEBYTECODE=1 in every job) and with a copy of it compiled by compileall."""
    from config.sandbox import jobs
    from config.sandbox.spec import ENV_MOUNT, Mount, Spec

    compiled = tmp / "runner-compiled"
    shutil.copytree(env, compiled, symlinks=True)
    started = time.perf_counter()
    subprocess.run([str(compiled / "bin" / "python"), "-m", "compileall", "-q", "-j", "0",
                    str(compiled / "lib")], check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    compile_s = time.perf_counter() - started
    code = "import mlflow, mlflow.sklearn, sklearn.linear_model"
    seconds: dict[str, list[float]] = {"as_built": [], "compiled": []}
    for _ in range(reps):
        for name, path in (("as_built", env), ("compiled", compiled)):
            with jobs.job_directory("bench") as job:
                spec = Spec(argv=[f"{ENV_MOUNT}/bin/python", "-c", code],
                            workspace=job.workspace, stdout=job.stdout, stderr=job.stderr,
                            name=job.name, limits=jobs.limits(), mounts=(Mount(path, ENV_MOUNT),))
                started = time.perf_counter()
                result = jobs.run(spec, job, backend_name="bwrap")
                seconds[name].append(time.perf_counter() - started)
                if not result.ok:
                    raise RuntimeError(f"import in bwrap: {jobs.describe(result, job)}")
    shutil.rmtree(compiled, ignore_errors=True)
    return {"compileall_s": compile_s, **{k: stats(v) for k, v in seconds.items()}}


def project_runs(args, tmp: Path, out: dict) -> None:
    """Part 2; fills out["project"] as it goes (a failure keeps what was measured)."""
    result = out.setdefault("project", {"rounds": [], "errors": []})
    started_procs: list[tuple[subprocess.Popen, int]] = []
    try:
        print("bench-sandbox: peer venv", flush=True)
        result["peer"] = f"mlflow=={MLFLOW_VERSION} ({harness.ensure_peer()}); " \
                         f"{ensure_peer_libraries()}"
        (tmp / "pg").mkdir()
        pg, pg_port = services.start_postgres(tmp / "pg")
        started_procs.append((pg, signal.SIGINT))
        (tmp / "redis").mkdir()
        redis, redis_port = services.start_redis(tmp / "redis")
        started_procs.append((redis, signal.SIGTERM))
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE mlflow")  # ledgerflow's: services.start_postgres
            result["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        env_cache = Path(args.env_cache) if args.env_cache else tmp / "envs"
        if not args.env_cache:  # the job's uid reads it (a given cache is left as it is)
            env_cache.mkdir()
            env_cache.chmod(0o755)
        result["env_cache"] = str(env_cache)
        result["env_prebuilt"] = (env_cache / runner_key() / ".complete").exists()
        redis_url = f"redis://127.0.0.1:{redis_port}"
        env = harness.ledgerflow_env(
            pg_port, tmp / "ledgerflow", REDIS_URL=redis_url, CELERY_BROKER_URL=f"{redis_url}/0",
            CELERY_RESULT_BACKEND=f"{redis_url}/1", LEDGERFLOW_ENV_CACHE_DIR=str(env_cache),
            LEDGERFLOW_SANDBOX_WORK_DIR=str(tmp / "jobs"),
            LEDGERFLOW_SANDBOX_TRUST_INDEX_DNS="true")  # the index mirror is on a LAN address
        ml_proc, ml_port, ml_log, ml_cmd = harness.start_mlflow(pg_port, tmp, args.workers)
        started_procs.append((ml_proc, signal.SIGTERM))
        lf_proc, lf_port, token, lf_log, lf_cmd = harness.start_ledgerflow(
            pg_port, tmp, args.workers, 4, env=env)
        started_procs.append((lf_proc, signal.SIGTERM))
        lf_url, ml_url = f"http://127.0.0.1:{lf_port}", f"http://127.0.0.1:{ml_port}"
        harness.wait_health(lf_url, lf_proc, lf_log)
        harness.wait_health(ml_url, ml_proc, ml_log)
        worker_env = {**env, "LEDGERFLOW_PUBLIC_URL": lf_url, "LOG_LEVEL": "INFO"}
        workers = {"bwrap": worker_env, "none": {**worker_env, "LEDGERFLOW_SANDBOX": "none"}}
        current = {"kind": "bwrap"}
        worker, worker_log, worker_cmd = start_worker(worker_env, tmp, "bwrap")
        entry = [worker, signal.SIGTERM]
        started_procs.append(entry)

        def use_worker(kind: str) -> None:
            """One worker consumes `projects` at a time: switch it (not timed)."""
            if current["kind"] != kind:
                harness.stop_tree(entry[0])
                entry[0] = start_worker(workers[kind], tmp, kind)[0]
                current["kind"] = kind

        result["commands"] = {LF: lf_cmd, ML: ml_cmd, "worker": worker_cmd}
        print(f"bench-sandbox: Ledgerflow on {lf_port} (worker in bwrap), MLflow {MLFLOW_VERSION} "
              f"on {ml_port}, PostgreSQL on {pg_port}, Redis on {redis_port}", flush=True)
        print("bench-sandbox: relay latency", flush=True)
        result["relay_ms"] = relay_latency(lf_url, token, args.relay_requests)
        project = Project(tmp, lf_url, token, ml_url, env_cache)
        sides = [LF, ML] if args.no_unsandboxed else [LF, ML, NONE]
        for rnd in range(1 + args.runs):
            # rotate who goes first; round 0 starts with Ledgerflow in bwrap, which builds
            # the runner environment when the cache lacks it
            order = sides[rnd % len(sides):] + sides[:rnd % len(sides)]
            row = {"round": rnd, "first": rnd == 0, "order": order, "load": os.getloadavg()}
            for name in order:
                timeout = FIRST_RUN_TIMEOUT if rnd == 0 else RUN_TIMEOUT
                print(f"bench-sandbox: round {rnd} ({'first' if rnd == 0 else 'warm'}) {name}",
                      flush=True)
                if name == ML:
                    row[name] = project.mlflow(timeout)
                else:
                    use_worker("none" if name == NONE else "bwrap")
                    row[name] = project.ledgerflow(timeout)
                if rnd == 0 and name == LF and not result["env_prebuilt"]:
                    result["env_build_s"] = project.build_seconds()
                print(f"bench-sandbox:   {json.dumps(row[name], default=str)[:300]}", flush=True)
                if "error" in row[name]:
                    result["errors"].append({"round": rnd, name: row[name]})
            result["rounds"].append(row)
        result["worker_log_tail"] = worker_log.read_text()[-2000:]
        if args.bytecode_reps and (env_cache / runner_key() / ".complete").exists():
            print("bench-sandbox: imports in the runner environment, with and without bytecode",
                  flush=True)
            result["imports_s"] = bytecode_check(env_cache / runner_key(), tmp, args.bytecode_reps)
    finally:
        for proc, sig in reversed(started_procs):
            harness.stop_tree(proc, sig)


def summarize_project(project: dict) -> dict:
    def warm(rows, key):
        return [r[key] for r in rows if not r.get("first") and r.get(key) is not None
                and r.get("status") == "FINISHED"]

    rounds = project.get("rounds", [])
    lf = [r[LF] | {"first": r["first"]} for r in rounds if LF in r]
    ml = [r[ML] | {"first": r["first"]} for r in rounds if ML in r]
    none = [r[NONE] | {"first": r["first"]} for r in rounds if NONE in r]
    summary = {}
    for name, rows in ((LF, lf), (ML, ml), ("none", none)):
        for key in ("cli_s", "server_s", "queued_s", "worker_s", "to_end_run_s",
                    "after_end_run_s"):
            values = warm(rows, key)
            if values:
                summary[f"{name}_{key}"] = statistics.median(values)
        first = next((r for r in rows if r.get("first")), None)
        if first:
            summary[f"{name}_first_cli_s"] = first.get("cli_s")
    if summary.get("none_worker_s") and summary.get(f"{LF}_worker_s"):
        delta = summary[f"{LF}_worker_s"] - summary["none_worker_s"]
        summary["sandbox_s"] = delta
        summary["sandbox_share"] = delta / summary[f"{LF}_cli_s"]
    return summary


# --- the table ------------------------------------------------------------------------------
def table(start: dict, project: dict | None, summary: dict) -> str:
    ms = start["ms"]
    lines = [f"{'start cost (ms)':58} {'median':>8} {'p95':>8} {'min':>8}", "-" * 84]

    def row(label, key):
        if key in ms:
            lines.append(f"{label:58} {ms[key]['median']:8.1f} {ms[key]['p95']:8.1f} "
                         f"{ms[key]['min']:8.1f}")

    row("/bin/true, plain subprocess.run", "true_plain")
    row("/bin/true, jobs.run backend none (launcher, no namespaces)", "true_none")
    row("/bin/true, jobs.run backend bwrap", "true_bwrap")
    row("/bin/true, jobs.run bwrap + Network.TRACKING (relay)", "true_bwrap_tracking")
    row("START COST bwrap - plain (paired by round)", "start_cost_bwrap")
    row("  bwrap + relay - plain", "start_cost_bwrap_tracking")
    row("  none - plain", "start_cost_none")
    row("python3 -c pass, plain", "python_plain")
    row("python3 -c pass, jobs.run bwrap", "python_bwrap")
    row("  bwrap - plain (paired)", "python_in_bwrap_extra")
    lines.append("what it is made of:")
    row("  bwrap backend: start to the job's exit (no poll loop)", "true_bwrap_exit")
    row("  bwrap backend: ... and its cleanup done", "true_bwrap_exit_done")
    row("  none backend: start to the job's exit (no poll loop)", "true_none_exit")
    row("  python3 -c pass, bwrap backend, to the job's exit", "python_bwrap_exit")
    row("  relay served and stopped, no job (jobs.run with TRACKING)", "relay_alone")
    row("  launcher alone (/usr/bin/python3 -I -S launcher.py)", "launcher_alone")
    row("  bwrap binary alone (pid, ipc, uts ns; --ro-bind / /)", "bwrap_raw")
    row("  bwrap binary alone + network namespace", "bwrap_raw_netns")
    row("  job CPU, /bin/true in bwrap (launcher + bwrap)", "true_bwrap_cpu")
    row("  job CPU, /bin/true in none (launcher)", "true_none_cpu")
    lines.append("-" * 84)
    for key, what in (("start_cost_bwrap", "bwrap"),
                      ("start_cost_bwrap_tracking", "bwrap + relay (a project run)")):
        cost = ms[key]["median"]
        lines.append(f"goal, start cost under {GOAL_MS} ms, {what}: "
                     f"{'met' if cost < GOAL_MS else 'NOT met'} ({cost:.0f} ms median, "
                     f"{ms[key]['p95']:.0f} ms p95)")
    lines.append(f"({start['reps']} rounds; cgroups {start['cgroups']}; worker uid "
                 f"{start['worker_uid']}; load average {start['load_before'][0]:.1f} before, "
                 f"{start['load_after'][0]:.1f} after)")
    if not project or not summary:
        return "\n".join(lines)
    lines += ["", f"{'project run, tests/projects/example main, local env (s)':52} "
                  f"{'Ledgerflow':>10} {'mlflow run':>10} {'ratio':>7}", "-" * 82]

    def pair(label, lf, ml):
        a, b = summary.get(lf), summary.get(ml) if ml else None
        ratio = f"{b / a:.2f}x" if a and b else ""
        cells = [f"{v:.2f}" if v is not None else "n/a" for v in (a, b)]
        lines.append(f"{label:52} {cells[0]:>10} {cells[1] if ml else '':>10} {ratio:>7}")

    n = len([r for r in project.get("rounds", []) if not r["first"]])
    pair(f"wall, CLI start to exit (warm median of {n})", f"{LF}_cli_s", f"{ML}_cli_s")
    pair("  server: submit/create to ended", f"{LF}_server_s", f"{ML}_server_s")
    pair("  Ledgerflow: queued (submit to claim)", f"{LF}_queued_s", None)
    pair("  Ledgerflow: worker (claim to ended)", f"{LF}_worker_s", None)
    pair("    claim to the project's own end_run", f"{LF}_to_end_run_s", None)
    pair("    end_run to ended (exit, teardown, logs)", f"{LF}_after_end_run_s", None)
    pair("first run, CLI start to exit", f"{LF}_first_cli_s", f"{ML}_first_cli_s")
    build = project.get("env_build_s")
    built = f"{build:.2f}" if build else "prebuilt" if project.get("env_prebuilt") else "failed"
    lines.append(f"{'runner environment build, cold, in bwrap (first run)':52} {built:>10}")
    if summary.get("none_worker_s"):
        pair("unsandboxed worker (none): wall, CLI", "none_cli_s", None)
        pair("unsandboxed worker (none): claim to ended", "none_worker_s", None)
    if "sandbox_s" in summary:
        lines.append(f"{'sandbox share of the warm wall time':52} "
                     f"{summary['sandbox_s']:>10.2f} {summary['sandbox_share'] * 100:>9.1f}%")
    for name, label in ((LF, "Ledgerflow"), (ML, "mlflow run"), (NONE, "Ledgerflow, none")):
        walls = [f"{r[name]['cli_s']:.1f}" for r in project.get("rounds", [])
                 if name in r and not r["first"]]
        if walls:
            lines.append(f"{'  warm runs, CLI s, ' + label:52} {', '.join(walls):>10}")
    relay_ms = project.get("relay_ms") or {}
    if relay_ms:
        lines.append(f"{'tracking request, ms p50 (p95): via relay in bwrap':52} "
                     f"{relay_ms['bwrap']['median']:>10.1f} ({relay_ms['bwrap']['p95']:.1f})")
        lines.append(f"{'  direct, backend none (keep-alive)':52} "
                     f"{relay_ms['none']['median']:>10.1f} ({relay_ms['none']['p95']:.1f})")
    imports = project.get("imports_s") or {}
    if imports:
        lines.append(f"{'import mlflow+sklearn in bwrap, s: env as built':52} "
                     f"{imports['as_built']['median']:>10.2f}")
        lines.append(f"{'  same env with bytecode (compileall)':52} "
                     f"{imports['compiled']['median']:>10.2f}")
    lines.append("-" * 82)
    lines.append("ratio > 1 means Ledgerflow is faster (mlflow run / Ledgerflow).")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="start-cost rounds")
    parser.add_argument("--runs", type=int, default=3, help="warm project runs per side")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes, each")
    parser.add_argument("--env-cache", help="LEDGERFLOW_ENV_CACHE_DIR for the worker (default: "
                        "a fresh one, so the first run builds the runner environment)")
    parser.add_argument("--start-only", action="store_true", help="start cost only")
    parser.add_argument("--no-unsandboxed", action="store_true",
                        help="skip the runs on a LEDGERFLOW_SANDBOX=none worker")
    parser.add_argument("--relay-requests", type=int, default=100,
                        help="tracking requests timed through the relay")
    parser.add_argument("--bytecode-reps", type=int, default=3,
                        help="imports timed per runner-environment variant (0: skip)")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="LOAD",
                        help="before each part, wait until the 1-minute load average is under "
                        "LOAD (other work on the machine)")
    parser.add_argument("--wait-quiet-timeout", type=float, default=900)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory "
                        "(servers' and CLIs' logs)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    begun = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="ledgerflow-bench-sandbox-"))
    tmp.chmod(0o755)
    out: dict = {}
    errors = 0
    try:
        setup_django(tmp)
        wait_quiet(args.wait_quiet, args.wait_quiet_timeout)
        print(f"bench-sandbox: start cost, {args.reps} rounds", flush=True)
        out["start"] = start_cost(args.reps)
        if not args.start_only:
            try:
                wait_quiet(args.wait_quiet, args.wait_quiet_timeout)
                project_runs(args, tmp, out)
            except (Exception, SystemExit) as exc:  # the start-cost figures still count
                print(f"bench-sandbox: project runs FAILED: {exc!r}", flush=True)
                out.setdefault("project", {}).setdefault("errors", []).append(repr(exc))
        project = out.get("project")
        summary = summarize_project(project) if project else {}
        if project is not None:
            project["summary"] = summary
            errors = len(project.get("errors", []))
        text = table(out["start"], project, summary)
        print(f"\nLedgerflow sandbox (issue 20) vs mlflow run {MLFLOW_VERSION} "
              f"({os.cpu_count()} CPUs)\n{text}")
        for error in (project or {}).get("errors", []):
            print(f"ERROR {json.dumps(error, default=str)[:2000]}")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = args.out or ROOT / "bench" / "results" / f"sandbox-{stamp}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "date": stamp, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                       "python": platform.python_version()},
            "args": vars(args), **out, "seconds": round(time.monotonic() - begun, 1)},
            indent=2, default=str))
        print(f"bench-sandbox: {time.monotonic() - begun:.0f} s; results in {path}")
        return 1 if errors else 0
    finally:
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, signal.SIG_IGN)
        if args.keep:
            print(f"bench-sandbox: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
