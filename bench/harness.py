"""`make bench`: Ledgerflow side by side with `mlflow server`, same machine, same run, same PostgreSQL.

    .venv/bin/python bench/harness.py [--quick] [--workers 4] [--with-100k]

Starts a throwaway PostgreSQL (scripts/with_services.py) with one database per server,
installs mlflow==3.17.2 into bench/.peer-venv, starts Ledgerflow (production settings, gunicorn
gthread) and `mlflow server` (uvicorn) with the same number of worker processes, runs
workloads W1-W5 of issue 9 against both (alternating which goes first; W2, a second or two
for a fast server, three times and the median), samples each server's
process-tree RSS every 0.25 s, measures PostgreSQL's raw COPY rate of the same metric rows,
prints one table and writes bench/results/<timestamp>.json. Everything it starts is stopped
by PID in a `finally`. Loopback only.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as wl  # noqa: E402

_spec = importlib.util.spec_from_file_location("with_services", ROOT / "scripts" / "with_services.py")
services = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(services)

MLFLOW_VERSION = "3.17.2"
PEER = ROOT / "bench" / ".peer-venv"
LF, ML = "ledgerflow", "mlflow"
SIZES = {  # sizes, then per-server time limits (s) of each workload, then the whole run's budget
    "quick": dict(N=200, K=40, w2_reps=3, R=2_000, P=20_000, MB=10, searches=50, unfiltered=3,
                  history=5, reps=3, populate_threads=8,
                  limits=dict(w1=60, w2=45, w3pop=90, w3=45, w4=60, w5=45), budget=240),
    "full": dict(N=1_000, K=200, w2_reps=3, R=10_000, P=100_000, MB=50, searches=50,
                 unfiltered=5, history=5, reps=3, populate_threads=8,
                 limits=dict(w1=420, w2=150, w3pop=600, w3=120, w4=240, w5=120), budget=1_680),
}
BIG_R, BIG_MLFLOW_BUDGET = 100_000, 600  # --with-100k; MLflow only if its populate fits


# --- processes ---------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, start time) of a live pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, start time) of root and all its descendants."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))):
            children.setdefault(st[0], []).append((int(entry), st[1]))
    own = _stat(root)
    found, todo = ([(root, own[1])] if own else []), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def tree_rss_mb(root: int) -> float:
    total = 0
    for pid, _ in descendants(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def stop_tree(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the root, wait, then SIGKILL any of its descendants still alive (same PID and
    start time as noted before, so a reused PID is never hit)."""
    tree = descendants(proc.pid)
    services.stop(proc, sig)
    deadline = time.monotonic() + 10
    for pid, started in tree[1:]:
        while time.monotonic() < deadline and (_stat(pid) or (0, None))[1] == started:
            time.sleep(0.1)
        if (_stat(pid) or (0, None))[1] == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class MemorySampler(threading.Thread):
    """Peak RSS (MB) of each server's process tree, sampled every 0.25 s."""

    def __init__(self, roots: dict[str, int]):
        super().__init__(daemon=True)
        self.roots, self.peak, self.halt = roots, dict.fromkeys(roots, 0.0), threading.Event()

    def run(self):
        while not self.halt.wait(0.25):
            for name, pid in self.roots.items():
                self.peak[name] = max(self.peak[name], tree_rss_mb(pid))


def wait_health(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url}: server exited ({proc.returncode}); log:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    sys.exit(f"{url}/health not ready within {timeout:.0f}s; log:\n{log.read_text()[-3000:]}")


# --- the two servers ---------------------------------------------------------------------
def ensure_peer() -> str:
    python = PEER / "bin" / "python"
    probe = "import importlib.metadata as m, psycopg2; print(m.version('mlflow'))"
    if python.exists():
        out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip() == MLFLOW_VERSION:
            return "already installed"
    uv = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    print(f"bench: installing mlflow=={MLFLOW_VERSION} into {PEER.relative_to(ROOT)}", flush=True)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([uv, "venv", "--quiet", "--allow-existing", "--python", "python3.11", str(PEER)],
                   check=True, env=env)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python),
                    f"mlflow=={MLFLOW_VERSION}", "psycopg2-binary"], check=True, env=env)
    return "installed"


def ledgerflow_env(pg_port: int, data: Path, **overrides: str) -> dict:
    """Ledgerflow's production settings for a benchmark: a fresh data dir and signing key, the
    in-memory broker unless `overrides` name another."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data.mkdir()
    key = data / "signing-key.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(50), "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0", "ALLOWED_HOSTS": "127.0.0.1",
            "LEDGERFLOW_SIGNING_KEY_FILE": str(key), "LEDGERFLOW_DATA_DIR": str(data),
            # the two roles of production (tenancy/dbroles.py): no superuser, whom row-level
            # security would not bind
            "DATABASE_URL": f"postgres://{services.APP_ROLE}@127.0.0.1:{pg_port}/ledgerflow",
            "DATABASE_OWNER_URL": f"postgres://{services.OWNER_ROLE}@127.0.0.1:{pg_port}/ledgerflow",
            "CELERY_BROKER_URL": "memory://", "CELERY_RESULT_BACKEND": "cache+memory://",
            "LOG_LEVEL": "WARNING", **overrides}


def start_ledgerflow(pg_port: int, tmp: Path, workers: int, threads: int,
                     env: dict | None = None) -> tuple:
    env = env or ledgerflow_env(pg_port, tmp / "ledgerflow")
    manage = [sys.executable, str(ROOT / "manage.py")]
    for args in (["migrate", "--noinput", "-v0"], ["org_create", "bench"],
                 ["user_add", "bench", "bench@example.com", "--role", "data_scientist"]):
        subprocess.run(manage + args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([*manage, "token_create", "bench", "bench@example.com"], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    token = out.strip().splitlines()[-1]
    port, log = services.free_port(), tmp / "ledgerflow.log"
    cmd = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi",
           "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread", "--workers", str(workers),
           "--threads", str(threads), "--timeout", "300", "--graceful-timeout", "10",
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)  # noqa: SIM115
    return proc, port, token, log, cmd


def start_mlflow(pg_port: int, tmp: Path, workers: int) -> tuple:
    data = tmp / "mlflow"
    data.mkdir()
    port, log = services.free_port(), tmp / "mlflow.log"
    cmd = [str(PEER / "bin" / "mlflow"), "server",
           "--backend-store-uri", f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/mlflow",
           "--artifacts-destination", (data / "artifacts").as_uri(), "--serve-artifacts",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--allowed-hosts", f"127.0.0.1:{port},127.0.0.1"]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "PATH": f"{PEER / 'bin'}:{os.environ.get('PATH', '')}"}
    for name in ("VIRTUAL_ENV", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"):
        env.pop(name, None)
    proc = subprocess.Popen(cmd, cwd=data, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)  # noqa: SIM115
    return proc, port, log, cmd


# --- the run -----------------------------------------------------------------------------
class Bench:
    def __init__(self, clients: dict[str, "wl.Client"], size: dict, tmp: Path):
        self.clients, self.size, self.tmp = clients, size, tmp
        self.results: dict = {}
        self.errors: dict = {}
        self.notes: list[str] = []
        self.deadline = time.monotonic() + size["budget"]
        self.index, self.t0 = 0, time.monotonic()
        self.tag = datetime.now(UTC).strftime("%H%M%S")

    def limit(self, name: str) -> float:
        return max(5.0, min(self.size["limits"][name], self.deadline - time.monotonic()))

    def order(self) -> list[str]:
        """Alternate which server goes first, workload by workload."""
        self.index += 1
        return [LF, ML] if self.index % 2 else [ML, LF]

    def each(self, workload: str, fn, servers=None) -> None:
        for name in servers or self.order():
            print(f"bench: {time.monotonic() - self.t0:5.0f}s {workload} on {name}", flush=True)
            try:
                result = self.results.setdefault(workload, {})[name] = fn(self.clients[name])
                if result.get("truncated") and workload not in ("W3", "W3-100k"):
                    self.notes.append(f"{workload} on {name} stopped at its time limit")
            except wl.BenchError as exc:
                if workload == "W5" and name == LF and wl.endpoint_missing(exc):
                    self.results.setdefault(workload, {})[name] = None
                    self.notes.append("W5 n/a on Ledgerflow: artifact route answers 404 "
                                      "ENDPOINT_NOT_FOUND")
                    continue
                print(f"bench: {workload} on {name} FAILED: {exc}", flush=True)
                self.errors.setdefault(workload, {})[name] = exc.as_dict()
            except Exception as exc:  # reported; the next workload still runs
                print(f"bench: {workload} on {name} FAILED: {exc!r}", flush=True)
                self.errors.setdefault(workload, {})[name] = {"exception": repr(exc)}

    def run(self, with_100k: bool) -> None:
        s, tag = self.size, self.tag
        self.each("warm-up", lambda c: wl.warm_up(c, tag, 90))
        self.each("health", wl.health_latency)
        self.each("W1", lambda c: wl.w1_create_runs(c, tag, s["N"], self.limit("w1")))
        for threads in (1, 8):  # a fast server's W2 lasts a second or two: median of reps
            workload, runs = f"W2-{threads}t", {}
            for rep in range(s["w2_reps"]):
                self.each(workload, lambda c, t=threads, r=rep: wl.w2_log_batch(
                    c, f"{tag}r{r}", s["K"], t, self.limit("w2")))
                for name, result in self.results.get(workload, {}).items():
                    if result is not None and result not in runs.setdefault(name, []):
                        runs[name].append(result)
            for name, done in runs.items():
                rates = sorted(r["points_per_s"] for r in done)
                median = next(r for r in done if r["points_per_s"] == rates[(len(rates) - 1) // 2])
                self.results[workload][name] = {**median, "reps_points_per_s": rates}
        exps = {}

        def w3(client, runs, label):
            if client.name not in exps:
                exps[client.name] = {"id": client.experiment(f"w3-{tag}"), "runs": 0}
            exp = exps[client.name]
            pop = wl.w3_populate(client, exp["id"], exp["runs"], runs, s["populate_threads"],
                                 self.limit("w3pop"))
            exp["runs"] = pop["runs_total"]
            if pop["truncated"]:
                self.notes.append(f"{label} on {client.name}: only {pop['runs_total']} runs "
                                  f"populated within the time limit")
            return {**pop, **wl.w3_search(client, exp["id"], s["searches"], s["unfiltered"],
                                          self.limit("w3"))}

        self.each("W3", lambda c: w3(c, s["R"], "W3"))
        if with_100k:
            servers = [LF]
            ml = self.results.get("W3", {}).get(ML) or {}
            rate = ml.get("populate_runs_per_s") or 0
            projected = (BIG_R - s["R"]) / rate if rate else float("inf")
            if projected <= BIG_MLFLOW_BUDGET:
                servers.append(ML)
            else:
                self.notes.append(f"W3 at {BIG_R:,} runs: MLflow skipped (populating would take "
                                  f"~{projected / 60:.0f} min at its {rate:.0f} runs/s)")
            self.size["limits"]["w3pop"] = 3_600
            self.deadline += 3_600
            self.each("W3-100k", lambda c: w3(c, BIG_R, "W3-100k"), servers)
        self.each("W4", lambda c: wl.w4_history(c, tag, s["P"], s["history"], self.limit("w4")))
        blob = self.tmp / "big.bin"
        wl.make_blob(blob, s["MB"])
        self.each("W5", lambda c: wl.w5_artifacts(c, tag, blob, s["reps"], self.limit("w5")))
        blob.unlink()


# --- the table ---------------------------------------------------------------------------
def figure(results, workload, server, key):
    value = (results.get(workload) or {}).get(server)
    return None if value is None else value.get(key)


def table(results: dict, memory: dict, copy: dict, size: dict) -> tuple[str, list[dict]]:
    R, P, MB = size["R"], size["P"], size["MB"]
    specs = [  # label, workload, key, higher is better, format
        ("warm-up s (cold workers, 8 thr x 4 rounds)", "warm-up", "seconds", False, "{:.1f}"),
        ("health p50 ms (keep-alive)", "health", "p50_ms", False, "{:.1f}"),
        (f"W1 runs/s (create + batch, N={size['N']})", "W1", "runs_per_s", True, "{:.1f}"),
        (f"W2 points/s, 1 thread (K={size['K']}, median of {size['w2_reps']})", "W2-1t",
         "points_per_s", True, "{:,.0f}"),
        (f"W2 points/s, 8 threads (K={size['K']}, median of {size['w2_reps']})", "W2-8t",
         "points_per_s", True, "{:,.0f}"),
        (f"W3 filtered search p50 ms ({R:,} runs)", "W3", "filtered_p50_ms", False, "{:.1f}"),
        (f"W3 filtered search p95 ms ({R:,} runs)", "W3", "filtered_p95_ms", False, "{:.1f}"),
        ("W3 unfiltered 1,000 results p50 ms", "W3", "unfiltered_p50_ms", False, "{:.1f}"),
        (f"W3 filtered search p50 ms ({BIG_R:,} runs)", "W3-100k", "filtered_p50_ms", False,
         "{:.1f}"),
        (f"W3 unfiltered 1,000 p50 ms ({BIG_R:,} runs)", "W3-100k", "unfiltered_p50_ms", False,
         "{:.1f}"),
        (f"W4 get-history p50 ms ({P:,} points)", "W4", "p50_ms", False, "{:.1f}"),
        (f"W5 upload MB/s ({MB} MB)", "W5", "upload_mb_s", True, "{:.1f}"),
        (f"W5 download MB/s ({MB} MB)", "W5", "download_mb_s", True, "{:.1f}"),
    ]
    rows = []
    for label, workload, key, higher, fmt in specs:
        if workload not in results and workload == "W3-100k":
            continue
        lf, ml = figure(results, workload, LF, key), figure(results, workload, ML, key)
        rows.append({"label": label, LF: lf, ML: ml, "higher_is_better": higher, "fmt": fmt})
    rows.append({"label": "peak RSS MB, server process tree", LF: memory.get(LF),
                 ML: memory.get(ML), "higher_is_better": False, "fmt": "{:,.0f}"})
    lines = [f"{'figure':44} {'Ledgerflow':>12} {'MLflow':>12} {'ratio':>8}", "-" * 79]
    for row in rows:
        lf, ml, fmt = row[LF], row[ML], row["fmt"]
        ratio = None
        if lf and ml:
            ratio = lf / ml if row["higher_is_better"] else ml / lf
        row["ratio"] = ratio
        cells = [fmt.format(v) if v is not None else "n/a" for v in (lf, ml)]
        lines.append(f"{row['label']:44} {cells[0]:>12} {cells[1]:>12} "
                     f"{(f'{ratio:.2f}x' if ratio else 'n/a'):>8}")
    lines.append("-" * 79)
    lines.append("ratio > 1 means Ledgerflow is better: LF/MLflow for rates, MLflow/LF for "
                 "times and memory.")
    for key, what in (("rows_per_s", "raw COPY of the same metric rows into PostgreSQL"),
                      ("keyed_rows_per_s", "COPY into a table with the points' unique key")):
        rate = copy.get(key)
        if not rate:
            continue
        lines.append(f"{what}: {rate:,.0f} rows/s")
        for threads in (1, 8):
            parts = []
            for name, label in ((LF, "Ledgerflow"), (ML, "MLflow")):
                pts = figure(results, f"W2-{threads}t", name, "points_per_s")
                parts.append(f"{label} {pts / rate * 100:.1f}%" if pts else f"{label} n/a")
            lines.append(f"  W2 {threads} thread{'s' if threads > 1 else ''} as % of it: "
                         + ", ".join(parts))
    for row in rows:
        row.pop("fmt")
    return "\n".join(lines), rows


# --- main --------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 5 minutes")
    parser.add_argument("--workers", type=int, default=4, help="server worker processes, each")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads/worker")
    parser.add_argument("--with-100k", action="store_true",
                        help="also search at 100,000 runs (Ledgerflow; MLflow if it fits)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    size = dict(SIZES["quick" if args.quick else "full"])
    size["limits"] = dict(size["limits"])
    started = time.monotonic()
    peer = ensure_peer()
    tmp = Path(tempfile.mkdtemp(prefix="ledgerflow-bench-"))
    tmp.chmod(0o755)
    started_procs: list[tuple[subprocess.Popen, int]] = []
    try:
        (tmp / "pg").mkdir()
        pg, pg_port = services.start_postgres(tmp / "pg")
        started_procs.append((pg, signal.SIGINT))  # PostgreSQL's fast shutdown
        # Ledgerflow's rate counters and lockout marks in Redis, as in production (the Compose
        # file); without one they are files (the embedded default), about 1 ms a call.
        (tmp / "redis").mkdir()
        redis, redis_port = services.start_redis(tmp / "redis")
        started_procs.append((redis, signal.SIGTERM))
        os.environ["LEDGERFLOW_CACHE_URL"] = f"redis://127.0.0.1:{redis_port}/2"
        import psycopg

        admin = f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            for db in ("mlflow", "copybench"):  # ledgerflow's: services.start_postgres
                conn.execute(f"CREATE DATABASE {db}")
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        ml_proc, ml_port, ml_log, ml_cmd = start_mlflow(pg_port, tmp, args.workers)
        started_procs.append((ml_proc, signal.SIGTERM))
        lf_proc, lf_port, token, lf_log, lf_cmd = start_ledgerflow(pg_port, tmp, args.workers,
                                                                   args.threads)
        started_procs.append((lf_proc, signal.SIGTERM))
        wait_health(f"http://127.0.0.1:{lf_port}", lf_proc, lf_log)
        wait_health(f"http://127.0.0.1:{ml_port}", ml_proc, ml_log)
        print(f"bench: Ledgerflow on {lf_port}, MLflow {MLFLOW_VERSION} on {ml_port}, "
              f"PostgreSQL {pg_version} on {pg_port}", flush=True)
        clients = {LF: wl.Client(LF, f"http://127.0.0.1:{lf_port}", token),
                   ML: wl.Client(ML, f"http://127.0.0.1:{ml_port}")}
        idle = {LF: tree_rss_mb(lf_proc.pid), ML: tree_rss_mb(ml_proc.pid)}
        sampler = MemorySampler({LF: lf_proc.pid, ML: ml_proc.pid})
        sampler.start()
        bench = Bench(clients, size, tmp)
        try:
            bench.run(args.with_100k)
        finally:
            sampler.halt.set()
            sampler.join()
        print("bench: COPY rate", flush=True)
        copy = wl.copy_rate(f"postgresql://postgres@127.0.0.1:{pg_port}/copybench",
                            max(size["K"] * 1000, 200_000))
        text, rows = table(bench.results, sampler.peak, copy, size)
        mode = "quick" if args.quick else "full"
        print(f"\nLedgerflow vs mlflow server {MLFLOW_VERSION} ({mode}; {args.workers} workers "
              f"each; {os.cpu_count()} CPUs; PostgreSQL {pg_version})\n{text}")
        for note in bench.notes:
            print(f"note: {note}")
        for workload, by_server in bench.errors.items():
            for server, error in by_server.items():
                print(f"ERROR {workload} on {server}: {json.dumps(error, indent=2)}")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = args.out or ROOT / "bench" / "results" / f"{stamp}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "mode": mode, "date": stamp, "sizes": size, "workers": args.workers,
            "gunicorn_threads": args.threads, "machine": {
                "cpus": os.cpu_count(), "platform": platform.platform(),
                "python": platform.python_version(), "postgresql": pg_version},
            "commands": {LF: lf_cmd, ML: ml_cmd}, "peer": f"mlflow=={MLFLOW_VERSION} ({peer})",
            "table": rows, "workloads": bench.results, "memory": {
                "peak_rss_mb": sampler.peak, "idle_rss_mb": idle},
            "copy": copy, "notes": bench.notes, "errors": bench.errors,
            "seconds": round(time.monotonic() - started, 1)}, indent=2, default=str))
        print(f"bench: {time.monotonic() - started:.0f} s; results in {out}")
        return 1 if bench.errors else 0
    finally:
        for name in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut cleanup short
            signal.signal(name, signal.SIG_IGN)
        for proc, sig in reversed(started_procs):
            stop_tree(proc, sig)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
