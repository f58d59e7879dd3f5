"""Disclosure generation (issue: disclosures). Run with `make bench-reports`.

Seconds per disclosure (median of --repeat generations) for a subject with 1 and with 20
decisions, each generation the whole path a `reports` worker takes (claim, gather, anchor in
the audit trail, sign a checkpoint, counterfactuals with the real model, WeasyPrint PDF/A-3b,
store, record), called in this process so the figure is the worker's own time without broker
latency; and disclosures per hour per worker process. Target: 1 decision under 2 s. No peer:
MLflow has nothing like it.

Needs the throwaway PostgreSQL of scripts/with_services.py (DATABASE_URL); it creates and
drops its own database there.
"""

import argparse
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


def _version(org, actor):
    """A real, packaged logistic regression (the tests' model) in `org`."""
    from models_registry import services as registry
    from tests.models_registry.conftest import package_now, save_model_dir, upload_dir
    from tracking.selectors import experiment_get
    from tracking.services import runs as run_services

    local = Path(tempfile.mkdtemp()) / "model"
    save_model_dir("logistic", local)
    run = run_services.run_create(experiment=experiment_get(org=org, experiment_id="0"),
                                  actor=actor, run_name="train")
    upload_dir(org, local, f"0/{run.run_uuid}/artifacts/model", actor)
    model = registry.registered_model_create(org=org, name="credit-risk", actor=actor)
    version = registry.model_version_create(model=model, actor=actor,
                                            source=f"runs:/{run.run_uuid}/model")
    package_now(version)
    version.refresh_from_db()
    return version


def _decide(org, version, subject: str, count: int, actor) -> None:
    from models_registry.decisions import DecisionInput, decisions_record
    from models_registry.scoring import predict, reference_of
    from tests.models_registry.conftest import training_data

    rows, _ = training_data(count, seed=len(subject))
    explanation = predict(version, {"dataframe_records": rows.to_dict(orient="records")},
                          explain=True).explanation
    items = [DecisionInput(
        subject=subject, inputs=row, purpose="credit decision", raw_score=score,
        threshold=0.5, outcome="declined" if score >= 0.5 else "approved",
        outcome_labels=["approved", "declined"], contributions=contributions,
        contribution_method=explanation.method, contribution_scale=explanation.scale,
        base_value=explanation.base_value, reference=reference_of(version))
        for row, score, contributions in zip(rows.to_dict(orient="records"),
                                             explanation.scores, explanation.contributions,
                                             strict=True)]
    decisions_record(org=org, version=version, items=items, actor=actor)


def _seconds(org, subject: str, repeat: int, actor) -> list[float]:
    import datetime

    from config.jobs.runner import run_here
    from reports import services

    request = services.disclosure_request_create(
        org=org, actor=actor, subject=subject, subject_name="Bench Subject",
        received_on=datetime.date.today(), identity_verification="bench", language="de")
    times = []
    for _ in range(repeat):
        disclosure = services.disclosure_generate(request=request, actor=actor)
        started = time.perf_counter()
        assert run_here("reports.generate", disclosure.pk) == "ready"
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reports.json"))
    args = parser.parse_args()
    from bench.audit_bench import setup_django

    setup_django("ledgerflow_bench_reports")
    from audit.actors import Actor
    from reports.services import compliance_profile_set
    from tenancy.services import organization_create
    from tests.reports.conftest import catalogue_set, profile_data

    actor = Actor.command("bench")
    org = organization_create(slug="bench", name="Bench Bank", actor=actor)
    compliance_profile_set(org=org, actor=actor, data=profile_data("Bench Bank"))
    version = _version(org, actor)
    catalogue_set(version.registered_model)  # a request needs every feature described
    results = {}
    for count in (1, 20):
        _decide(org, version, f"subject-{count}", count, actor)
        _seconds(org, f"subject-{count}", 1, actor)  # warm: model loaded, fonts cached
        times = _seconds(org, f"subject-{count}", args.repeat, actor)
        results[f"{count}_decisions"] = {"median_s": round(statistics.median(times), 3),
                                         "max_s": round(max(times), 3), "runs": len(times)}
    per_hour = 3600 / results["1_decisions"]["median_s"]
    results["disclosures_per_hour_per_worker"] = round(per_hour)
    print(f"{'subject':<16}{'median s':>10}{'max s':>10}")
    for count in (1, 20):
        row = results[f"{count}_decisions"]
        print(f"{f'{count} decision(s)':<16}{row['median_s']:>10.3f}{row['max_s']:>10.3f}")
    print(f"disclosures per hour per worker process (1 decision): {round(per_hour)}")
    print(f"target 1 decision < 2 s: {'met' if results['1_decisions']['median_s'] < 2 else 'MISSED'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
