"""Runs table of the web UI at 100,000 runs: server time of the first page.

    .venv/bin/python scripts/with_services.py -- .venv/bin/python bench/ui_bench.py

Creates its own database on the throwaway PostgreSQL of scripts/with_services.py, loads one
experiment of N runs (params p0..p9, latest metrics m0..m4) with COPY, then times requests
through Django's test Client (the whole server side: middleware, session, queries, template),
p50/p90 of `--requests` after two warm-ups, with the number of SQL queries of one request.
"""

import argparse
import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_bench import ROOT, setup_django  # sets DJANGO_SETTINGS_MODULE too

T0 = 1_760_000_000_000
PARAMS, METRICS = 10, 5


def _copy(cursor, table: str, columns: tuple, rows) -> None:
    with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def load(org, experiment, count: int) -> float:
    """COPY `count` runs with their params and latest metrics (audit guards off for the load:
    a throwaway database)."""
    from django.db import connection, transaction

    from tenancy.rls import policies_lifted

    rng, started = random.Random(7), time.perf_counter()  # noqa: S311  (bench data)
    prefix = experiment.artifact_location
    tables = ["tracking_run", "tracking_param", "tracking_latestmetric"]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        with policies_lifted(cursor, tables):  # COPY FROM is refused under row security
            uuids = [uuid.uuid4().hex for _ in range(count)]
            _copy(cursor, "tracking_run", (
                "org_id", "run_uuid", "experiment_id", "name", "user_id", "status", "start_time",
                "end_time", "lifecycle_stage", "artifact_uri"),
                ((org.pk, u, experiment.pk, f"run-{i}", "bench@example.com", "FINISHED",
                  T0 + 1000 * i, T0 + 1000 * i + rng.randint(1_000, 600_000), "active",
                  f"{prefix}/{u}/artifacts") for i, u in enumerate(uuids)))
            cursor.execute("SELECT id FROM tracking_run WHERE experiment_id = %s ORDER BY id",
                           [experiment.pk])
            ids = [row[0] for row in cursor.fetchall()]
            _copy(cursor, "tracking_param", ("org_id", "run_id", "key", "value"),
                  ((org.pk, run_id, f"p{k}", f"v{rng.randrange(10)}")
                   for run_id in ids for k in range(PARAMS)))
            _copy(cursor, "tracking_latestmetric",
                  ("org_id", "run_id", "key", "value", "is_nan", "timestamp", "step"),
                  ((org.pk, run_id, f"m{k}", rng.random(), False, T0, 100)
                   for run_id in ids for k in range(METRICS)))
        for table in tables:
            cursor.execute(f"ANALYZE {table}")
    return time.perf_counter() - started


def timed(client, url: str, params: dict, requests: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        response = client.get(url, params)
        assert response.status_code == 200, (url, params, response.content[:500])
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(url, params)
        samples.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url, params)
    samples.sort()
    sql = [(float(q["time"]) * 1000, q["sql"]) for q in queries.captured_queries]
    return {"p50_ms": round(statistics.median(samples), 1),
            "p90_ms": round(samples[int(len(samples) * 0.9) - 1], 1),
            "queries": len(sql), "sql_ms": round(sum(ms for ms, _ in sql), 1),
            "slowest_sql_ms": round(max(ms for ms, _ in sql), 1)}


def scenarios(experiment_id: str) -> list[tuple[str, str, dict]]:
    table = f"/experiments/{experiment_id}/"
    sort = {"order": "metrics.m0 DESC"}
    flt = {"filter": "metrics.m0 > 0.5 and params.p1 = 'v1'"}
    return [
        ("runs table, first page, default columns", table, {}),
        ("runs table, filter", table, flt),
        ("runs table, sort by metrics.m0 DESC", table, sort),
        ("runs table, filter + sort", table, {**flt, **sort}),
        ("runs table, sort by params.p3 ASC", table, {"order": "params.p3 ASC"}),
        ("runs table, 3 chosen columns", table, {"cols": "metrics.m0,params.p1,params.p2"}),
        ("runs table, page 1,001 (offset 50,000)", table,
         {"page_token": _token(50_000)}),
        ("experiments list", "/experiments/", {}),
    ]


def _token(offset: int) -> str:
    from tracking.search import encode_page_token

    return encode_page_token(offset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ui.json")
    args = parser.parse_args()
    setup_django("ledgerflow_bench_ui")
    from django.test import Client
    from django.test.utils import setup_test_environment

    from audit.actors import Actor
    from tenancy.roles import Role
    from tenancy.services import membership_add, organization_create
    from tracking.services.experiments import experiment_create

    setup_test_environment()  # the test Client's host
    actor = Actor.command("bench")
    org = organization_create(slug="bench-ui", name="Bench UI", actor=actor)
    membership_add(org=org, email="ds@bench.example", role=Role.DATA_SCIENTIST,
                   password="pw-bench", actor=actor)
    experiment = experiment_create(org=org, name="hundred-thousand", actor=actor)
    load_s = load(org, experiment, args.runs)
    client = Client()
    assert client.login(username="ds@bench.example", password="pw-bench")
    results = {"runs": args.runs, "load_s": round(load_s, 1), "pages": {}}
    for name, url, params in scenarios(experiment.public_id):
        results["pages"][name] = timed(client, url, params, args.requests)
        print(f"{name:45} {json.dumps(results['pages'][name])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
