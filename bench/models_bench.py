"""`make bench-models`: model packaging and scoring, Ledgerflow beside `mlflow models serve`.

    .venv/bin/python bench/models_bench.py [--workers 4] [--single 300] [--batch 20]

Starts a throwaway PostgreSQL and Redis (scripts/with_services.py), Ledgerflow in its production
configuration (gunicorn gthread + a Celery worker consuming `default,packaging`) and, for the
registration figures only, `mlflow server` (bench/harness.py). With the mlflow client it trains
a small sklearn LogisticRegression (8 numeric features f0..f7), logs it to each server with an
input example and registers it 5 times, timing register -> READY (on Ledgerflow a Celery
worker packages each version: copy, check MLmodel, load and score the input example in a child
process; `mlflow server` marks a version READY at once). It then downloads version 1 from
Ledgerflow, serves that directory with `mlflow models serve --env-manager local` (peer venv,
same worker count) and times sequential scoring requests on one keep-alive connection each:
1 row and 1,000 rows, on Ledgerflow with and without decision recording (subjects + purpose).
Prints one table, writes bench/results/models-<timestamp>.json. Everything it starts is
stopped by PID in a `finally`. Loopback only.
"""

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

# A data scientist's model records what it imports, not this checkout's uv project (MLflow 3
# exports a uv project's whole lock as the model's requirements when it finds one).
os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")

import orjson
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
import workloads as wl

ROOT, PEER, MLFLOW_VERSION = harness.ROOT, harness.PEER, harness.MLFLOW_VERSION
services = harness.services
LF, ML = "ledgerflow", "mlflow"
MODEL_NAME = "bench-credit"
PYFUNC_NAME = "bench-pyfunc"  # the same scores from a custom PythonModel
FEATURES = [f"f{i}" for i in range(8)]
PURPOSE = "credit scoring"
REGISTER_TIMEOUT = 180  # s, one registration to READY
LOOP_LIMIT = 75  # s, any one scoring loop (it stops early and says so)


# --- processes ---------------------------------------------------------------------------
def ledgerflow_env(pg_port: int, redis_port: int, data: Path) -> dict:
    """harness's production environment with Redis as the broker, so a separate Celery worker
    process can take the packaging tasks (harness uses memory://)."""
    redis = f"redis://127.0.0.1:{redis_port}"
    # Models load in sandboxed scorers, in the runner environment (models_registry/
    # environments.py): built once per machine into the shared cache (BENCH_ENV_CACHE), so
    # registration times do not include a cold build. The index mirror is on a LAN address.
    cache = os.environ.get("BENCH_ENV_CACHE", str(Path(tempfile.gettempdir()) / "ledgerflow-envs"))
    return harness.ledgerflow_env(pg_port, data, REDIS_URL=redis, CELERY_BROKER_URL=f"{redis}/0",
                                  CELERY_RESULT_BACKEND=f"{redis}/1",
                                  LEDGERFLOW_ENV_CACHE_DIR=cache,
                                  LEDGERFLOW_SANDBOX_TRUST_INDEX_DNS="true")


def start_worker(env: dict, tmp: Path) -> tuple:
    """The Celery worker, on both queues: packaging tasks are routed to `packaging`."""
    log = tmp / "celery.log"
    cmd = [str(Path(sys.executable).parent / "celery"), "-A", "config", "worker",
           "--queues", "default,packaging", "--concurrency", "2", "--loglevel", "WARNING",
           "--hostname", f"bench-models-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)  # noqa: SIM115
    return proc, log, cmd


def wait_worker(env: dict, proc: subprocess.Popen, log: Path) -> None:
    """A task round trip (manage.py worker_ping) proves the worker consumes."""
    ping = subprocess.run([sys.executable, str(ROOT / "manage.py"), "worker_ping", "--timeout",
                           "90"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if ping.returncode != 0 or proc.poll() is not None:
        sys.exit(f"celery worker not answering: {ping.stderr.strip()[-500:]}\n"
                 f"log:\n{log.read_text()[-3000:]}")


def peer_env() -> dict:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "PATH": f"{PEER / 'bin'}:{os.environ.get('PATH', '')}"}  # it runs `uvicorn` by name
    for name in ("VIRTUAL_ENV", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH",
                 "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"):
        env.pop(name, None)
    return env


def start_models_serve(model_dir: Path, tmp: Path, workers: int) -> tuple:
    port, log = services.free_port(), tmp / "models-serve.log"
    cmd = [str(PEER / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir),
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    proc = subprocess.Popen(cmd, cwd=tmp, env=peer_env(), stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)  # noqa: SIM115
    return proc, port, log, cmd


def wait_ping(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> float:
    """Seconds until `mlflow models serve` answers /ping (it loads the model per worker)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            sys.exit(f"{url}: exited ({proc.returncode}); log:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/ping", timeout=2).status_code == 200:
                return time.monotonic() - started
        time.sleep(0.2)
    sys.exit(f"{url}/ping not ready within {timeout:.0f}s; log:\n{log.read_text()[-3000:]}")


# --- model and registration ----------------------------------------------------------------
def train():
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(5_000, len(FEATURES))), columns=FEATURES)
    weights = rng.normal(size=len(FEATURES))
    y = ((X.to_numpy() @ weights + rng.normal(scale=0.5, size=len(X))) > 0).astype(int)
    return LogisticRegression(max_iter=500).fit(X, y), X


@contextlib.contextmanager
def tracking(url: str, token: str | None):
    """Point the in-process mlflow client at one server (token read per request)."""
    import mlflow

    saved = os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    try:
        yield mlflow
    finally:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        if saved is not None:
            os.environ["MLFLOW_TRACKING_TOKEN"] = saved


def log_sklearn(model, X):
    return lambda mlflow: mlflow.sklearn.log_model(model, name="model", input_example=X[:5])


class WeightedSum:
    """A custom pyfunc (mlflow.pyfunc.PythonModel, pickled by cloudpickle): what a data
    scientist logs when no flavor fits. Defined here, so cloudpickle ships it by value."""

    def __init__(self, weights: list[float]):
        self.weights = weights

    def predict(self, context, model_input, params=None):
        return (model_input[FEATURES].to_numpy() @ self.weights).tolist()


def log_pyfunc(model, X):
    import mlflow.pyfunc

    python_model = type("BenchPyfunc", (WeightedSum, mlflow.pyfunc.PythonModel), {})(
        model.coef_[0].tolist())
    requirements = [f"{name}=={importlib.metadata.version(name)}"
                    for name in ("mlflow-skinny", "numpy", "pandas", "cloudpickle")]
    return lambda mlflow: mlflow.pyfunc.log_model(
        name="model", python_model=python_model, input_example=X[:5],
        pip_requirements=requirements)


def log_and_register(client: wl.Client, token: str | None, log, tag: str, count: int,
                     name: str = MODEL_NAME) -> dict:
    """`log(mlflow)` once, then `count` x mlflow.register_model; each timed to READY by polling
    model-versions/get every 50 ms beside the client's own wait (which polls every 3 s)."""
    with tracking(client.base, token) as mlflow:
        mlflow.set_experiment(f"models-bench-{tag}")
        with mlflow.start_run():
            t0 = time.perf_counter()
            info = log(mlflow)
            log_s = time.perf_counter() - t0
        rows = []
        for i in range(count):
            expected = i + 1
            done: dict = {}

            def register(done=done):
                try:
                    mv = mlflow.register_model(info.model_uri, name,
                                               await_registration_for=REGISTER_TIMEOUT)
                    done["version"], done["status"] = mv.version, mv.status
                except Exception as exc:  # reported below
                    done["error"] = repr(exc)
                done["t"] = time.perf_counter()

            t0 = time.perf_counter()
            thread = threading.Thread(target=register, daemon=True)
            thread.start()
            ready_at, last = None, None
            while time.perf_counter() - t0 < REGISTER_TIMEOUT + 10:
                try:
                    last = client.call("GET", "/api/2.0/mlflow/model-versions/get",
                                       params={"name": name, "version": str(expected)})
                    mv = last["model_version"]
                    if mv["status"] == "READY":
                        ready_at = time.perf_counter()
                        break
                    if mv["status"] == "FAILED_REGISTRATION":
                        raise RuntimeError(f"version {expected} FAILED_REGISTRATION: "
                                           f"{mv.get('status_message')}")
                except wl.BenchError as exc:
                    if exc.response["status"] != 404:  # 404: the version is not there yet
                        raise
                if "error" in done:
                    raise RuntimeError(f"register_model: {done['error']}")
                time.sleep(0.05)
            thread.join(REGISTER_TIMEOUT + 10)
            if ready_at is None:
                raise RuntimeError(f"version {expected} not READY in time; last answer: {last}")
            if "error" in done:
                raise RuntimeError(f"register_model: {done['error']}")
            mv = last["model_version"]
            rows.append({"version": expected, "ready_s": ready_at - t0,
                         "register_model_s": done["t"] - t0,
                         "server_s": (int(mv["last_updated_timestamp"])
                                      - int(mv["creation_timestamp"])) / 1000})
            print(f"bench-models: {client.name} version {expected} READY after "
                  f"{rows[-1]['ready_s']:.2f} s (register_model returned after "
                  f"{rows[-1]['register_model_s']:.2f} s)", flush=True)
    return {"log_model_s": log_s, "model_uri": info.model_uri, "versions": rows,
            "ready_p50_s": statistics.median(r["ready_s"] for r in rows),
            "register_model_p50_s": statistics.median(r["register_model_s"] for r in rows),
            "server_p50_s": statistics.median(r["server_s"] for r in rows)}


def cold_request(client: wl.Client, path: str, body: bytes) -> dict:
    """The first request a version ever gets: its scorer starts (sandbox, imports, load)."""
    t0 = time.perf_counter()
    client.call("POST", path, body, session=client.new_session())
    return {"ms": (time.perf_counter() - t0) * 1000}


def download(lf: wl.Client, token: str, dst: Path) -> Path:
    with tracking(lf.base, token) as mlflow:
        return Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{MODEL_NAME}/1", dst_path=str(dst)))


# --- scoring -------------------------------------------------------------------------------
def bodies(X, rows: int, count: int, decisions: str | None, start: int) -> list[bytes]:
    """`count` distinct request bodies of `rows` rows (dataframe_split), pre-encoded.
    decisions: None, "subject" (one row) or "subjects" (one per row)."""
    out, values = [], X.to_numpy().tolist()
    for i in range(count):
        first = (start + i * rows) % (len(values) - rows)
        body = {"dataframe_split": {"columns": FEATURES, "data": values[first:first + rows]}}
        if decisions == "subject":
            body["subject"] = f"cust-{start + i}"
        elif decisions == "subjects":
            body["subjects"] = [f"cust-{start + i}-{j}" for j in range(rows)]
        if decisions:
            body["purpose"] = PURPOSE
        out.append(orjson.dumps(body))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def score(client: wl.Client, path: str, payloads: list[bytes], rows: int,
          expect_decisions: bool, fresh: bool = False) -> dict:
    """Sequential requests, latency per request in ms: on one keep-alive connection, or
    (fresh) on a new connection each, its set-up included."""
    session = client.new_session()
    latencies, checked, mismatches, truncated = [], 0, [], False
    started = time.perf_counter()
    for body in payloads:
        if fresh:
            session.close()
            session = client.new_session()
        t0 = time.perf_counter()
        out = client.call("POST", path, body, session=session)
        latencies.append((time.perf_counter() - t0) * 1000)
        if len(out.get("predictions", [])) != rows:
            mismatches.append(f"{len(out.get('predictions', []))} predictions for {rows} rows")
        if expect_decisions:
            checked += len(out.get("decisions") or [])
            if len(out.get("decisions") or []) != rows:
                mismatches.append(f"{len(out.get('decisions') or [])} decisions for {rows} rows")
        if time.perf_counter() - started > LOOP_LIMIT:
            truncated = True
            break
    elapsed = time.perf_counter() - started
    session.close()
    n = len(latencies)
    return {"n": n, "rows": rows, "p50_ms": statistics.median(latencies),
            "p99_ms": percentile(latencies, 99), "max_ms": max(latencies),
            "mean_ms": statistics.fmean(latencies), "req_per_s": n / elapsed,
            "rows_per_s": n * rows / elapsed, "decisions_returned": checked,
            "mismatches": mismatches[:5], "mismatch_count": len(mismatches),
            "truncated": truncated}


class Run:
    def __init__(self):
        self.results: dict = {}
        self.errors: dict = {}
        self.notes: list[str] = []
        self.t0 = time.monotonic()

    def step(self, key: str, server: str, fn) -> None:
        print(f"bench-models: {time.monotonic() - self.t0:5.0f}s {key} on {server}", flush=True)
        try:
            result = self.results.setdefault(key, {})[server] = fn()
        except wl.BenchError as exc:
            print(f"bench-models: {key} on {server} FAILED: {exc}", flush=True)
            self.errors.setdefault(key, {})[server] = exc.as_dict()
            return
        except Exception as exc:  # reported; the next step still runs
            print(f"bench-models: {key} on {server} FAILED: {exc!r}", flush=True)
            self.errors.setdefault(key, {})[server] = {"exception": repr(exc)}
            return
        if isinstance(result, dict) and result.get("truncated"):
            self.notes.append(f"{key} on {server}: stopped at its {LOOP_LIMIT} s limit after "
                              f"{result['n']} requests")
        if isinstance(result, dict) and result.get("mismatch_count"):
            self.notes.append(f"{key} on {server}: {result['mismatch_count']} answers did not "
                              f"match the rows sent, e.g. {result['mismatches'][0]}")


# --- the table -----------------------------------------------------------------------------
def table(run: Run, args, memory: dict) -> tuple[str, list[dict]]:
    r = run.results
    S, B = args.single, args.batch

    def get(key, server, field):
        return ((r.get(key) or {}).get(server) or {}).get(field)

    specs = [  # label, LF (key, field), peer (key, server, field), higher is better, format
        ("log_model s (peer: mlflow server)", ("register", "log_model_s"),
         ("register", ML, "log_model_s"), False, "{:.2f}"),
        ("register -> READY p50 s (5; peer: mlflow server)", ("register", "ready_p50_s"),
         ("register", ML, "ready_p50_s"), False, "{:.2f}"),
        ("  mlflow.register_model() p50 s (polls 3 s)", ("register", "register_model_p50_s"),
         ("register", ML, "register_model_p50_s"), False, "{:.2f}"),
        ("register -> READY p50 s, PythonModel (3)", ("register-pyfunc", "ready_p50_s"),
         ("register", ML, "ready_p50_s"), False, "{:.2f}"),
        ("first request after start, 1 row ms", ("cold", "ms"), ("cold", ML, "ms"), False,
         "{:.1f}"),
        ("  the same, PythonModel ms", ("cold-pyfunc", "ms"), ("cold", ML, "ms"), False,
         "{:.1f}"),
    ]
    for rows, n, tag in ((1, S, "1 row"), (1000, B, "1,000 rows")):
        for variant, suffix in (("", ""), ("-fresh", ", new conn. each"),
                                ("-decisions", " + decisions")):
            key = f"score-{rows}{variant}"
            peer_key = f"score-{rows}" + ("-fresh" if variant == "-fresh" else "")
            label = f"{tag}{suffix} (N={n})"
            rate = ("req/s", "req_per_s") if rows == 1 else ("rows/s", "rows_per_s")
            for name, field, higher, fmt in (("p50 ms", "p50_ms", False, "{:.1f}"),
                                             ("p99 ms", "p99_ms", False, "{:.1f}"),
                                             (rate[0], rate[1], True, "{:,.0f}")):
                specs.append((f"{label} {name}", (key, field), (peer_key, ML, field),
                              higher, fmt))
    specs += [  # the peer's scoring beside PostgreSQL's own time to store the records
        ("PostgreSQL alone: 1 decision row, COPY+COMMIT ms", ("floor-1", "p50_ms"),
         ("score-1", ML, "p50_ms"), False, "{:.1f}"),
        ("PostgreSQL alone: 1,000 decision rows, COPY+COMMIT ms", ("floor-1000", "p50_ms"),
         ("score-1000", ML, "p50_ms"), False, "{:.1f}"),
    ]
    rows_out = []
    for label, (lkey, lfield), (pkey, pserver, pfield), higher, fmt in specs:
        lf = get(lkey, LF, lfield)
        ml = get(pkey, pserver, pfield)
        rows_out.append({"label": label, LF: lf, ML: ml, "higher_is_better": higher, "fmt": fmt})
    rows_out.append({"label": "peak RSS MB, serving process tree", LF: memory.get(LF),
                     ML: memory.get(ML), "higher_is_better": False, "fmt": "{:,.0f}"})
    width = 50
    lines = [f"{'figure':{width}} {'Ledgerflow':>11} {'mlflow':>11} {'ratio':>7}",
             "-" * (width + 32)]
    for row in rows_out:
        lf, ml, fmt = row[LF], row[ML], row.pop("fmt")
        ratio = (lf / ml if row["higher_is_better"] else ml / lf) if lf and ml else None
        row["ratio"] = ratio
        cells = [fmt.format(v) if v is not None else "n/a" for v in (lf, ml)]
        lines.append(f"{row['label']:{width}} {cells[0]:>11} {cells[1]:>11} "
                     f"{(f'{ratio:.2f}x' if ratio else 'n/a'):>7}")
    lines.append("-" * (width + 32))
    lines.append("mlflow column: `mlflow models serve` for scoring (it records no decisions: the\n"
                 "  + decisions rows compare with its keep-alive figure), `mlflow server` for\n"
                 "  log/register (no packaging: READY at once). Requests are sequential, on one\n"
                 "  keep-alive connection unless 'new conn. each'. ratio > 1 means Ledgerflow is\n"
                 "  better. p99 of N=20 is the slowest request. 'PostgreSQL alone' rows: the\n"
                 "  same decision records stored by one COPY and COMMIT from the bench's own\n"
                 "  connection (no HTTP, no Python per row), beside the peer's whole scoring\n"
                 "  request: what storing the records costs before any of our code runs.")
    return "\n".join(lines), rows_out


# --- what PostgreSQL alone takes -------------------------------------------------------------
FLOOR_TABLE = "bench_decision_floor"


def decision_floor(pg_port: int, rows: int, reps: int) -> dict:
    """PostgreSQL alone storing `rows` of the decision records the run stored: no HTTP, no
    Python per row. A copy of models_registry_decision with its indexes, defaults and foreign
    keys (not the audit guard: a floor may only be lower), the rows fetched once as COPY text
    with fresh decision ids, then per repetition one COPY of them in one block and a COMMIT,
    as the service's transaction ends. The time a request cannot go below, whatever the code
    around it."""
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/ledgerflow") as conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        conn.execute(f"CREATE TABLE {FLOOR_TABLE} (LIKE models_registry_decision INCLUDING ALL)")
        for column, target in (("org_id", "tenancy_organization"),
                               ("model_version_id", "models_registry_modelversion")):
            conn.execute(f"ALTER TABLE {FLOOR_TABLE} ADD FOREIGN KEY ({column}) REFERENCES "
                         f"{target} (id) DEFERRABLE INITIALLY DEFERRED")
        conn.commit()
        columns = [name for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            "'models_registry_decision' AND column_name NOT IN ('id', 'decision_id') "
            "ORDER BY ordinal_position")]
        listed = ", ".join(columns)
        blocks = []
        for _ in range(reps):
            with conn.cursor().copy(
                    f"COPY (SELECT gen_random_uuid(), {listed} FROM models_registry_decision "
                    f"ORDER BY random() LIMIT {rows}) TO STDOUT") as copy:
                blocks.append(b"".join(bytes(chunk) for chunk in copy))
        conn.commit()
        if not blocks or blocks[0].count(b"\n") < rows:
            raise wl.BenchError(f"fewer than {rows} stored decisions to copy")
        latencies = []
        for block in blocks:
            t0 = time.perf_counter()
            with conn.cursor().copy(f"COPY {FLOOR_TABLE} (decision_id, {listed}) "
                                    "FROM STDIN") as copy:
                copy.write(block)
            conn.commit()
            latencies.append((time.perf_counter() - t0) * 1000)
        conn.execute(f"DROP TABLE {FLOOR_TABLE}")
        conn.commit()
    return {"n": reps, "rows": rows, "p50_ms": statistics.median(latencies),
            "rows_per_s": rows / (statistics.median(latencies) / 1000),
            "bytes": len(blocks[0])}


# --- main ----------------------------------------------------------------------------------
def count_decisions(pg_port: int) -> int | None:
    import psycopg

    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/ledgerflow") as conn:
            return conn.execute("SELECT count(*) FROM models_registry_decision").fetchone()[0]
    except psycopg.Error:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4, help="server worker processes, each")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads/worker")
    parser.add_argument("--registrations", type=int, default=5)
    parser.add_argument("--single", type=int, default=300, help="1-row requests per figure")
    parser.add_argument("--batch", type=int, default=20, help="1,000-row requests per figure")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.monotonic()
    peer = harness.ensure_peer()
    tmp = Path(tempfile.mkdtemp(prefix="ledgerflow-models-bench-"))
    tmp.chmod(0o755)
    procs: list[tuple[subprocess.Popen, int]] = []
    run, tag = Run(), datetime.now(UTC).strftime("%H%M%S")
    commands: dict = {}
    try:
        (tmp / "pg").mkdir()
        pg, pg_port = services.start_postgres(tmp / "pg")
        procs.append((pg, signal.SIGINT))
        redis, redis_port = services.start_redis(tmp)
        procs.append((redis, signal.SIGTERM))
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE mlflow")  # ledgerflow's: services.start_postgres
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        env = ledgerflow_env(pg_port, redis_port, tmp / "ledgerflow")
        ms_proc, ms_port, ms_log, commands["mlflow server"] = harness.start_mlflow(
            pg_port, tmp, args.workers)
        procs.append((ms_proc, signal.SIGTERM))
        lf_proc, lf_port, token, lf_log, commands[LF] = harness.start_ledgerflow(
            pg_port, tmp, args.workers, args.threads, env=env)
        procs.append((lf_proc, signal.SIGTERM))
        worker, worker_log, commands["celery"] = start_worker(env, tmp)
        procs.append((worker, signal.SIGTERM))
        harness.wait_health(f"http://127.0.0.1:{lf_port}", lf_proc, lf_log)
        harness.wait_health(f"http://127.0.0.1:{ms_port}", ms_proc, ms_log)
        wait_worker(env, worker, worker_log)
        print(f"bench-models: Ledgerflow on {lf_port} (+ celery worker), mlflow server on "
              f"{ms_port}, PostgreSQL {pg_version} on {pg_port}, Redis on {redis_port}",
              flush=True)
        lf = wl.Client(LF, f"http://127.0.0.1:{lf_port}", token)
        ms = wl.Client(ML, f"http://127.0.0.1:{ms_port}")
        model, X = train()
        with tracking(lf.base, token) as mlflow:  # the client's first-use imports, untimed
            mlflow.sklearn.save_model(model, str(tmp / "warm-up-model"), input_example=X[:5])
        for client, tok in ((lf, token), (ms, None)):
            run.step("register", client.name, lambda c=client, t=tok: log_and_register(
                c, t, log_sklearn(model, X), tag, args.registrations))
        run.step("register-pyfunc", LF, lambda: log_and_register(
            lf, token, log_pyfunc(model, X), f"{tag}-pyfunc", 3, PYFUNC_NAME))
        harness.stop_tree(ms_proc)  # registration only; keep the CPUs for scoring
        model_dir = tmp / "served"
        run.step("download", LF, lambda: {"path": str(download(lf, token, model_dir))})
        served = Path((run.results.get("download") or {}).get(LF, {}).get("path", model_dir))
        if not (served / "MLmodel").is_file():  # fall back to the logged model, same bytes
            run.notes.append("models:/bench-credit/1 could not be downloaded from Ledgerflow; "
                             "mlflow models serve used the model as logged to mlflow server")
            with tracking(ms.base, None) as mlflow:
                served = Path(mlflow.artifacts.download_artifacts(
                    artifact_uri=run.results["register"][ML]["model_uri"],
                    dst_path=str(tmp / "served-peer")))
        mm_proc, mm_port, mm_log, commands["mlflow models serve"] = start_models_serve(
            served, tmp, args.workers)
        procs.append((mm_proc, signal.SIGTERM))
        startup = wait_ping(f"http://127.0.0.1:{mm_port}", mm_proc, mm_log)
        mm = wl.Client(ML, f"http://127.0.0.1:{mm_port}")
        sampler = harness.MemorySampler({LF: lf_proc.pid, ML: mm_proc.pid})
        sampler.start()
        predict = f"/api/v1/models/{MODEL_NAME}/versions/1/predict"
        paths = {LF: predict, ML: "/invocations"}
        try:
            one = bodies(X, 1, 1, None, 0)
            for client in (lf, mm):
                run.step("cold", client.name,
                         lambda c=client: cold_request(c, paths[c.name], one[0]))
            run.step("cold-pyfunc", LF, lambda: cold_request(
                lf, f"/api/v1/models/{PYFUNC_NAME}/versions/1/predict", one[0]))
            for client in (lf, mm):  # warm every worker: new connections, a few each
                for body in bodies(X, 1, 4 * args.workers, None, 10):
                    with contextlib.suppress(wl.BenchError):
                        client.call("POST", paths[client.name], body,
                                    session=client.new_session())
            for rows, n, recorded in ((1, args.single, "subject"), (1000, args.batch, "subjects")):
                plain = bodies(X, rows, n, None, 1000)
                for fresh in (False, True):
                    key = f"score-{rows}" + ("-fresh" if fresh else "")
                    for client in (lf, mm):
                        run.step(key, client.name, lambda c=client, r=rows, b=plain, f=fresh:
                                 score(c, paths[c.name], b, r, False, f))
                run.step(f"score-{rows}-decisions", LF, lambda r=rows, n=n, d=recorded: score(
                    lf, predict, bodies(X, r, n, d, 1000 + r * n), r, True))
        finally:
            sampler.halt.set()
            sampler.join()
        for rows, reps in ((1, 50), (1000, 20)):
            run.step(f"floor-{rows}", LF, lambda r=rows, n=reps: decision_floor(pg_port, r, n))
        stored = count_decisions(pg_port)
        expected = sum(((run.results.get(f"score-{r}-decisions") or {}).get(LF) or {})
                       .get("decisions_returned", 0) for r in (1, 1000))
        if stored is not None:
            run.notes.append(f"decision records in the database after the run: {stored:,} "
                             f"(decisions returned in answers: {expected:,})")
        run.notes.append(f"mlflow models serve answered /ping {startup:.1f} s after start "
                         f"({args.workers} uvicorn workers)")
        text, rows = table(run, args, sampler.peak)
        print(f"\nLedgerflow vs mlflow {MLFLOW_VERSION}: packaging and scoring ({args.workers} "
              f"workers each; {os.cpu_count()} CPUs; PostgreSQL {pg_version})\n{text}")
        for note in run.notes:
            print(f"note: {note}")
        for key, by_server in run.errors.items():
            for server, error in by_server.items():
                print(f"ERROR {key} on {server}: {json.dumps(error, indent=2)}")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = args.out or ROOT / "bench" / "results" / f"models-{stamp}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "date": stamp, "workers": args.workers, "gunicorn_threads": args.threads,
            "sizes": {"registrations": args.registrations, "single": args.single,
                      "batch": args.batch, "batch_rows": 1000},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version(), "postgresql": pg_version},
            "commands": commands, "peer": f"mlflow=={MLFLOW_VERSION} ({peer})",
            "table": rows, "results": run.results, "memory": {"peak_rss_mb": sampler.peak},
            "notes": run.notes, "errors": run.errors,
            "seconds": round(time.monotonic() - started, 1)}, indent=2, default=str))
        print(f"bench-models: {time.monotonic() - started:.0f} s; results in {out}")
        return 1 if run.errors else 0
    finally:
        for name in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut cleanup short
            signal.signal(name, signal.SIG_IGN)
        for proc, sig in reversed(procs):
            harness.stop_tree(proc, sig)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
