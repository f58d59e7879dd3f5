"""Audit trail measurements (issue: immutable audit trail). Run with `make bench-audit`.

1. Overhead: a typical tracking write (runs/log-batch of 100 metric points, 5 params, 2 tags,
   through the service layer, one transaction each) with the audit trail on, versus the same
   write with event recording switched off *in this benchmark only* (audit_record replaced by
   a no-op and the tenant-table guards disabled for the session). Reports writes/s and the
   overhead in percent.
2. Verification speed: an organization of N events (default 1,000,000), loaded with COPY,
   verified by audit_verify_org (database) and by the offline verifier on its export; events/s.

Needs the throwaway PostgreSQL of scripts/with_services.py (DATABASE_URL); it creates and
drops its own database there.
"""

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def setup_django(db_name: str) -> None:
    import django
    import psycopg

    # As the tables' owner, which may create the database and lift the policies for the bulk
    # loads; the policies are forced on it, so the measured queries pay for them as the
    # service's role does.
    url = os.environ.pop("DATABASE_OWNER_URL", "") or os.environ["DATABASE_URL"]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name}")
        conn.execute(f"CREATE DATABASE {db_name}")
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + f"/{db_name}"
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _batch(i: int) -> dict:
    metrics = [{"key": f"m{k}", "value": (i * 7 + k) % 101 / 100.0, "timestamp": 1_700_000_000_000 + i,
                "step": i} for k in range(100)]
    return {"metrics": metrics,
            "params": [{"key": f"p{i}_{k}", "value": str(k)} for k in range(5)],
            "tags": [{"key": "phase", "value": "bench"}, {"key": "i", "value": str(i)}]}


def _writes_per_second(run, actor, count: int) -> float:
    from tracking.services.runs import run_log_batch

    started = time.perf_counter()
    for i in range(count):
        body = _batch(i)
        run_log_batch(run=run, actor=actor, payload=body, **body)
    return count / (time.perf_counter() - started)


def _guards(connection, verb: str) -> None:
    """Switch only the audit guards; session_replication_role would also skip the foreign-key
    checks and so flatter the run without the audit trail."""
    from audit.guards import TRIGGER, guarded_models

    with connection.cursor() as cursor:
        for model in guarded_models():
            cursor.execute(f"ALTER TABLE {model._meta.db_table} {verb} TRIGGER {TRIGGER}")


def overhead(rounds: int, writes: int) -> dict:
    from django.db import connection

    from audit.actors import Actor
    from tenancy.services import organization_create
    from tracking.services import runs as run_services
    from tracking.services.experiments import experiment_create

    actor = Actor.command("bench")
    org = organization_create(slug="bench", name="Bench", actor=actor)
    experiment = experiment_create(org=org, name="overhead", actor=actor)
    real_record = run_services.audit_record
    on, off = [], []
    for round_no in range(rounds):  # alternate, so drift affects both alike
        run = run_services.run_create(experiment=experiment, actor=actor, run_name=f"on{round_no}")
        on.append(_writes_per_second(run, actor, writes))
        run = run_services.run_create(experiment=experiment, actor=actor, run_name=f"off{round_no}")
        run_services.audit_record = lambda **kwargs: None
        _guards(connection, "DISABLE")  # they would refuse the unaudited commits
        try:
            off.append(_writes_per_second(run, actor, writes))
        finally:
            run_services.audit_record = real_record
            _guards(connection, "ENABLE")
    with_audit, without = statistics.median(on), statistics.median(off)
    return {"writes_per_s_with_audit": round(with_audit, 1),
            "writes_per_s_without_audit": round(without, 1),
            "overhead_percent": round((without / with_audit - 1) * 100, 1)}


def _load_events(org, count: int) -> None:
    """Extend the org's chain to `count` events in Python and COPY them in (triggers off:
    a throwaway database)."""
    from django.db import connection, transaction

    from audit.chain import event_hash
    from audit.models import AuditChainHead
    from tenancy.rls import policies_lifted

    columns = ("org_id", "seq", "created_at", "actor_kind", "actor_label", "action",
               "target_type", "target_id", "target_label", "before", "after", "request_id",
               "client_ip", "prev_hash", "hash")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        head = AuditChainHead.objects.get(org=org)
        prev = head.hash
        with policies_lifted(cursor, ["audit_auditevent"]), \
                cursor.cursor.copy(f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN") as copy:
            for seq in range(head.seq + 1, count + 1):
                record = {"org": org.slug, "seq": seq,
                          "created_at": f"2026-01-01T00:00:{seq % 60:02d}.{seq % 1000000:06d}Z",
                          "actor_kind": "command", "actor_label": "bench", "action": "run.batch_logged",
                          "target_type": "run", "target_id": str(seq % 977),
                          "target_label": f"run {seq % 977}", "before": None,
                          "after": {"metrics": 100, "sha256": f"{seq:064x}"}, "request_id": "",
                          "client_ip": None}
                digest = event_hash(prev, record)
                copy.write_row((org.pk, seq, record["created_at"].replace("Z", "+00:00"),
                                "command", "bench", record["action"], "run", record["target_id"],
                                record["target_label"], None, json.dumps(record["after"]), "",
                                None, prev, digest))
                prev = digest
        AuditChainHead.objects.filter(org=org).update(seq=count, hash=prev)


def verification(events: int) -> dict:
    import subprocess

    from django.core.management import call_command

    from audit.actors import Actor
    from audit.keys import public_key_pem
    from audit.services import audit_verify_org, checkpoint_create
    from tenancy.services import organization_create

    org_bulk = organization_create(slug="verify", name="Verify", actor=Actor.command("bench"))
    started = time.perf_counter()
    _load_events(org_bulk, events)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    checkpoint_create(org=org_bulk)
    checkpoint_s = time.perf_counter() - started
    started = time.perf_counter()
    verdict = audit_verify_org(org_bulk)
    verify_s = time.perf_counter() - started
    assert verdict.ok and verdict.events == events, verdict.as_dict()
    with tempfile.TemporaryDirectory() as tmp:
        export, key = Path(tmp) / "export.jsonl", Path(tmp) / "key.pem"
        key.write_text(public_key_pem())
        call_command("audit_export", "--org", org_bulk.slug, "--out", str(export),
                     "--no-checkpoint", stdout=io.StringIO())
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "audit.offline", str(export),
                                 "--public-key", str(key)], cwd=ROOT, capture_output=True,
                                text=True, check=False)
        offline_s = time.perf_counter() - started
        assert result.returncode == 0, result.stderr
    return {"events": events, "load_s": round(load_s, 1),
            "checkpoint_s": round(checkpoint_s, 1),
            "verify_db_events_per_s": round(events / verify_s),
            "verify_offline_events_per_s": round(events / offline_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "audit.json")
    args = parser.parse_args()
    setup_django("ledgerflow_bench_audit")
    results = {"overhead": overhead(args.rounds, args.writes),
               "verification": verification(args.events)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
