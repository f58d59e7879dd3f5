"""The client side of `make bench`: workloads W1-W5 over the MLflow REST protocol, and the raw
COPY rate. Speaks only to loopback servers; every loop is bounded in count and in time.

Each workload takes a `Client` (one server) and returns a dict of figures. A request that does
not answer 200 raises BenchError carrying the exact request and response, so the harness can
report it and go on with the next workload.
"""

import io
import random
import statistics
import threading
import time
from pathlib import Path

import orjson
import requests

TIMEOUT = 300  # seconds, any single request
T0 = 1_700_000_000_000  # metric timestamps (ms)
FILTER = "metrics.m0 > 0.5 and params.p1 = 'v1'"  # W3


class BenchError(Exception):
    def __init__(self, method: str, url: str, body, status: int | None, response: str):
        self.request = {"method": method, "url": url, "body": _excerpt(body)}
        self.response = {"status": status, "body": response[:2000]}
        super().__init__(f"{method} {url} -> {status}: {response[:300]}")

    def as_dict(self) -> dict:
        return {"request": self.request, "response": self.response}


def _excerpt(body) -> str | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if not isinstance(body, str):
        return f"<{type(body).__name__}>"
    return body if len(body) <= 1500 else body[:1500] + f"... ({len(body)} chars)"


class Client:
    """One server: base URL, optional bearer token, and a fresh keep-alive Session per thread."""

    def __init__(self, name: str, base: str, token: str | None = None):
        assert base.startswith("http://127.0.0.1:"), "loopback only"
        self.name, self.base, self.token = name, base, token
        self.session = self.new_session()

    def new_session(self) -> requests.Session:
        session = requests.Session()
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def call(self, method: str, path: str, body=None, params=None, session=None) -> dict:
        """POST/GET/PATCH a JSON RPC; `body` is a dict or pre-encoded JSON bytes."""
        session = session or self.session
        url = self.base + path
        data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            resp = session.request(method, url, data=data, params=params, headers=headers,
                                   timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise BenchError(method, url, data, None, f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise BenchError(method, _with_query(url, params), data, resp.status_code, resp.text)
        return orjson.loads(resp.content) if resp.content else {}

    # The few RPCs the workloads use.
    def experiment(self, name: str) -> str:
        return self.call("POST", "/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]

    def run(self, experiment_id: str, name: str, tags=(), session=None) -> str:
        body = {"experiment_id": experiment_id, "run_name": name, "start_time": T0,
                "tags": list(tags)}
        out = self.call("POST", "/api/2.0/mlflow/runs/create", body, session=session)
        return out["run"]["info"]["run_id"]

    def log_batch(self, body, session=None) -> None:
        self.call("POST", "/api/2.0/mlflow/runs/log-batch", body, session=session)


def _with_query(url: str, params) -> str:
    if not params:
        return url
    return url + "?" + "&".join(f"{k}={v}" for k, v in params.items())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_threads(threads: int, count: int, work, deadline: float, client: Client) -> tuple[int, float]:
    """Call work(session, i) for i in range(count) on `threads` threads (each its own Session)
    until done or `deadline` (monotonic). Returns (items done, seconds). Re-raises the first error."""
    lock, state = threading.Lock(), {"next": 0, "done": 0, "error": None}

    def worker():
        session = client.new_session()
        while True:
            with lock:
                i = state["next"]
                if i >= count or state["error"] is not None or time.monotonic() > deadline:
                    return
                state["next"] += 1
            try:
                work(session, i)
            except BaseException as exc:  # handed to the main thread
                with lock:
                    state["error"] = state["error"] or exc
                return
            with lock:
                state["done"] += 1

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=max(1.0, deadline - time.monotonic() + TIMEOUT))
    elapsed = time.perf_counter() - started
    if state["error"] is not None:
        raise state["error"]
    return state["done"], elapsed


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 (reproducible data, not secrets)


def _points(keys: int, steps: range, seed: int) -> list[dict]:
    rnd = _rng(seed)
    return [{"key": f"m{k}", "value": rnd.random(), "timestamp": T0 + step, "step": step}
            for step in steps for k in range(keys)]


# --- warm-up: every worker process serves each kind of request once before anything is timed
def warm_up(client: Client, tag: str, limit_s: float, threads: int = 8, rounds: int = 4) -> dict:
    exp = client.experiment(f"warm-{tag}")

    def one(session, i):
        run_id = client.run(exp, f"warm{i}", [{"key": "t", "value": "v"}], session=session)
        client.log_batch({"run_id": run_id, "params": [{"key": "p1", "value": "v1"}],
                          "metrics": _points(5, range(20), i)}, session=session)
        client.call("POST", "/api/2.0/mlflow/runs/search", {
            "experiment_ids": [exp], "filter": FILTER, "order_by": ["metrics.m0 DESC"],
            "max_results": 10}, session=session)
        client.call("GET", "/api/2.0/mlflow/metrics/get-history",
                    params={"run_id": run_id, "metric_key": "m0"}, session=session)

    done, elapsed = run_threads(threads, threads * rounds, one, time.monotonic() + limit_s, client)
    return {"rounds": done, "seconds": round(elapsed, 2)}


# --- W1: create-run + batch ---------------------------------------------------------------
def w1_create_runs(client: Client, tag: str, n: int, limit_s: float) -> dict:
    exp = client.experiment(f"w1-{tag}")
    tags = [{"key": f"tag{j}", "value": f"value {j}"} for j in range(5)]
    params = [{"key": f"p{j}", "value": f"v{j}"} for j in range(10)]
    deadline, done = time.monotonic() + limit_s, 0
    started = time.perf_counter()
    for i in range(n):
        if time.monotonic() > deadline:
            break
        run_id = client.run(exp, f"w1-{i}", tags)
        client.log_batch({"run_id": run_id, "params": params,
                          "metrics": _points(10, range(10), i), "tags": []})
        done += 1
    elapsed = time.perf_counter() - started
    return {"runs": done, "seconds": round(elapsed, 2), "runs_per_s": done / elapsed,
            "truncated": done < n}


# --- W2: log-batch throughput ------------------------------------------------------------
def w2_log_batch(client: Client, tag: str, k: int, threads: int, limit_s: float) -> dict:
    exp = client.experiment(f"w2-{tag}-{threads}t")
    run_id = client.run(exp, f"w2-{threads}t")
    # Encoded before timing: 10 keys x 100 steps, distinct steps in every call.
    bodies = [orjson.dumps({"run_id": run_id, "metrics": _points(10, range(i * 100, i * 100 + 100), i)})
              for i in range(k)]
    done, elapsed = run_threads(threads, k, lambda s, i: client.log_batch(bodies[i], session=s),
                                time.monotonic() + limit_s, client)
    return {"calls": done, "threads": threads, "seconds": round(elapsed, 2),
            "points_per_s": done * 1000 / elapsed, "truncated": done < k}


# --- W3: search-runs ----------------------------------------------------------------------
def w3_populate(client: Client, exp: str, start: int, stop: int, threads: int, limit_s: float) -> dict:
    """Runs start..stop-1 with params p0..p9 and metrics m0..m4 (setup, not a figure)."""
    def one(session, j):
        i = start + j
        rnd = _rng(i)
        run_id = client.run(exp, f"r{i}", session=session)
        params = [{"key": f"p{p}", "value": f"v{(i + p) % 5}"} for p in range(10)]
        params[1]["value"] = f"v{i % 3}"  # the filter's param: a third of the runs match
        metrics = [{"key": f"m{m}", "value": rnd.random(), "timestamp": T0 + i, "step": 0}
                   for m in range(5)]
        client.log_batch({"run_id": run_id, "params": params, "metrics": metrics}, session=session)

    done, elapsed = run_threads(threads, stop - start, one, time.monotonic() + limit_s, client)
    return {"runs_total": start + done, "populate_seconds": round(elapsed, 1),
            "populate_runs_per_s": done / elapsed if elapsed else 0.0,
            "truncated": done < stop - start}


def w3_search(client: Client, exp: str, searches: int, unfiltered: int, limit_s: float) -> dict:
    deadline = time.monotonic() + limit_s
    filtered = {"experiment_ids": [exp], "filter": FILTER, "order_by": ["metrics.m0 DESC"],
                "max_results": 100, "run_view_type": "ACTIVE_ONLY"}
    plain = {"experiment_ids": [exp], "max_results": 1000, "run_view_type": "ACTIVE_ONLY"}
    path = "/api/2.0/mlflow/runs/search"
    first = client.call("POST", path, filtered)  # warm-up, and a sanity check of the answer
    values = [r["data"]["metrics"] for r in first.get("runs", [])]
    m0 = [next(m["value"] for m in ms if m["key"] == "m0") for ms in values]
    ok = all(v > 0.5 for v in m0) and m0 == sorted(m0, reverse=True)
    times = []
    for _ in range(searches):
        if time.monotonic() > deadline and len(times) >= 5:
            break
        started = time.perf_counter()
        client.call("POST", path, filtered)
        times.append((time.perf_counter() - started) * 1000)
    plain_times, plain_count = [], 0
    for _ in range(unfiltered):
        if time.monotonic() > deadline and plain_times:
            break
        started = time.perf_counter()
        out = client.call("POST", path, plain)
        plain_times.append((time.perf_counter() - started) * 1000)
        plain_count = len(out.get("runs", []))
    return {"searches": len(times), "filtered_p50_ms": statistics.median(times),
            "filtered_p95_ms": percentile(times, 95), "filtered_results": len(values),
            "filtered_order_ok": ok, "unfiltered_p50_ms": statistics.median(plain_times),
            "unfiltered_calls": len(plain_times), "unfiltered_results": plain_count}


# --- W4: metric history -----------------------------------------------------------------
def w4_history(client: Client, tag: str, points: int, calls: int, limit_s: float) -> dict:
    exp = client.experiment(f"w4-{tag}")
    run_id = client.run(exp, "w4")
    batches = (points + 999) // 1000
    deadline = time.monotonic() + limit_s
    session = client.session
    for b in range(batches):  # setup: one key, 1,000 steps per call
        if time.monotonic() > deadline:
            raise TimeoutError(f"W4 setup: {b}/{batches} batches within {limit_s:.0f}s")
        steps = range(b * 1000, min(points, b * 1000 + 1000))
        rnd = _rng(b)
        client.log_batch({"run_id": run_id, "metrics": [
            {"key": "loss", "value": rnd.random(), "timestamp": T0 + s, "step": s} for s in steps]},
            session=session)
    times, got, pages = [], 0, 0
    for _ in range(calls):
        if time.monotonic() > deadline and times:
            break
        started = time.perf_counter()
        got, pages, token = 0, 0, ""
        while pages < 10_000:  # follow next_page_token until the end (bounded)
            params = {"run_id": run_id, "metric_key": "loss"}
            if token:
                params["page_token"] = token
            out = client.call("GET", "/api/2.0/mlflow/metrics/get-history", params=params)
            got, pages = got + len(out.get("metrics", [])), pages + 1
            token = out.get("next_page_token") or ""
            if not token:
                break
        times.append((time.perf_counter() - started) * 1000)
    return {"points": points, "points_returned": got, "pages": pages, "calls": len(times),
            "p50_ms": statistics.median(times)}


# --- W5: artifacts ----------------------------------------------------------------------
def make_blob(path: Path, megabytes: int) -> None:
    """megabytes x 10^6 bytes of incompressible data."""
    chunk = _rng(5).randbytes(1_000_000)
    with open(path, "wb") as handle:
        for i in range(megabytes):
            handle.write(chunk[i:] + chunk[:i])


def w5_artifacts(client: Client, tag: str, blob: Path, reps: int, limit_s: float) -> dict:
    exp = client.experiment(f"w5-{tag}")
    run_id = client.run(exp, "w5")
    url = f"{client.base}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/big.bin"
    size = blob.stat().st_size
    deadline, up, down = time.monotonic() + limit_s, [], []
    for _ in range(reps):
        if time.monotonic() > deadline and up:
            break
        with open(blob, "rb") as handle:
            started = time.perf_counter()
            resp = client.session.put(url, data=handle, timeout=TIMEOUT,
                                      headers={"Content-Type": "application/octet-stream"})
            elapsed = time.perf_counter() - started
        if resp.status_code != 200:
            raise BenchError("PUT", url, f"<{size} bytes from {blob.name}>", resp.status_code,
                             resp.text)
        up.append(size / 1e6 / elapsed)
        started = time.perf_counter()
        received = 0
        with client.session.get(url, stream=True, timeout=TIMEOUT) as resp:
            if resp.status_code != 200:
                raise BenchError("GET", url, None, resp.status_code, resp.text)
            for chunk in resp.iter_content(1 << 20):
                received += len(chunk)
        down.append(size / 1e6 / (time.perf_counter() - started))
        if received != size:
            raise BenchError("GET", url, None, 200, f"received {received} of {size} bytes")
    return {"megabytes": size / 1e6, "reps": len(up), "upload_mb_s": statistics.median(up),
            "download_mb_s": statistics.median(down)}


def endpoint_missing(error: BenchError) -> bool:
    return error.response["status"] == 404 and "ENDPOINT_NOT_FOUND" in error.response["body"]


# --- trivial endpoint over keep-alive (the delayed-ACK check of PERFORMANCE.md) -----------
def health_latency(client: Client, calls: int = 50) -> dict:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        resp = client.session.get(client.base + "/health", timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        if resp.status_code != 200:
            raise BenchError("GET", client.base + "/health", None, resp.status_code, resp.text)
    return {"p50_ms": statistics.median(times[5:])}


# --- the physical limit: COPY of the same metric rows -----------------------------------
def copy_rate(dsn: str, rows: int, rounds: int = 3) -> dict:
    """Rows/s of COPY (text) of W2-shaped metric rows, data prepared first: into a plain table
    (the machine's limit), and into one with the unique key every point needs for a resent
    batch to be stored once (MLflow's primary key, our unique constraint)."""
    import psycopg

    points = _points(10, range(rows // 10), 1)
    run_uuid = "0" * 32
    text = "".join(f"{run_uuid}\t{p['key']}\t{p['value']!r}\t{p['timestamp']}\t{p['step']}\tf\n"
                   for p in points).encode()
    result = {"rows": len(points)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, key in (("rows_per_s", ""), ("keyed_rows_per_s", ", UNIQUE (run_uuid, key, "
                                                                    "step, timestamp, value, is_nan)")):
            conn.execute("DROP TABLE IF EXISTS copy_bench")
            conn.execute("CREATE TABLE copy_bench (run_uuid varchar(32) NOT NULL, key varchar(250) "
                         "NOT NULL, value double precision NOT NULL, timestamp bigint NOT NULL, "
                         f"step bigint NOT NULL, is_nan boolean NOT NULL{key})")
            rates = []
            for _ in range(rounds):
                conn.execute("TRUNCATE copy_bench")
                started = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur, \
                        cur.copy("COPY copy_bench FROM STDIN") as copy:
                    buf = io.BytesIO(text)
                    while block := buf.read(1 << 20):
                        copy.write(block)
                rates.append(len(points) / (time.perf_counter() - started))
            result[name] = statistics.median(rates)
        conn.execute("DROP TABLE copy_bench")
    return result
