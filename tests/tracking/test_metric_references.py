"""Metric points keep their run without per-row foreign keys (tracking migration 0005).

The constraints became one check per statement on PostgreSQL (triggers on SQLite); these
prove that what the foreign keys refused is still refused, on both databases, and that the
normal paths (logging, deleting a run through Django) still work.
"""

import pytest
from django.db import IntegrityError, connection, transaction

from audit.actors import Actor
from audit.services import audit_record
from tracking.models import Metric, Run
from tracking.services.experiments import experiment_create
from tracking.services.runs import run_create, run_log_batch

ACTOR = Actor.command("test-metric-references")
INSERT = ("INSERT INTO tracking_metric (org_id, run_id, key, value, is_nan, timestamp, step) "
          "VALUES (%s, %s, 'loss', 0.5, false, 1, %s)")


@pytest.fixture
def runs(personas):
    """A run with two points in org A, and a run in org B."""
    experiment_a = experiment_create(org=personas.org_a, name="refs-a", actor=ACTOR)
    experiment_b = experiment_create(org=personas.org_b, name="refs-b", actor=ACTOR)
    run_a = run_create(experiment=experiment_a, actor=ACTOR, run_name="a")
    run_b = run_create(experiment=experiment_b, actor=ACTOR, run_name="b")
    run_log_batch(run=run_a, actor=ACTOR, params=[], tags=[], payload={}, metrics=[
        {"key": "loss", "value": 1.0, "timestamp": 1, "step": 0},
        {"key": "loss", "value": 0.5, "timestamp": 2, "step": 1}])
    return run_a, run_b


def test_a_point_of_a_run_that_does_not_exist_is_refused(runs, personas):
    run_a, _ = runs
    missing = Run.objects.order_by("-pk").first().pk + 1000
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT, [personas.org_a.pk, missing, 7])
    assert not Metric.objects.filter(run_id=missing).exists()
    assert Metric.objects.filter(run=run_a).count() == 2


def test_a_point_of_another_organizations_run_is_refused(runs, personas):
    _, run_b = runs
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT, [personas.org_a.pk, run_b.pk, 7])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE tracking_metric SET run_id = %s WHERE run_id = %s",
                       [run_b.pk, runs[0].pk])
    assert not Metric.objects.filter(run=run_b).exists()


def test_a_run_with_points_cannot_move_and_its_points_go_with_it_when_deleted(runs, personas):
    run_a, run_b = runs
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE tracking_run SET org_id = %s WHERE id = %s",
                       [personas.org_b.pk, run_a.pk])
    run_a.refresh_from_db()
    assert run_a.org_id == personas.org_a.pk
    assert Metric.objects.filter(run=run_a).count() == 2
    # Behind Django's back (as a flush empties tables, in any order): no point is left behind.
    with connection.cursor() as cursor:
        for table in ("tracking_runtag", "tracking_param", "tracking_latestmetric"):
            cursor.execute(f"DELETE FROM {table} WHERE run_id = %s", [run_a.pk])
        cursor.execute("DELETE FROM tracking_run WHERE id = %s", [run_a.pk])
    assert not Metric.objects.filter(run_id=run_a.pk).exists()
    assert Run.objects.filter(pk=run_b.pk).exists()


def test_deleting_a_run_through_django_takes_its_points_with_it(runs):
    run_a, run_b = runs
    with transaction.atomic():
        audit_record(org=run_a.org, actor=ACTOR, action="run.purged", target=run_a,
                     target_label=run_a.name)
        run_a.delete()
    assert not Metric.objects.filter(run_id=run_a.pk).exists()
    assert Run.objects.filter(pk=run_b.pk).exists()
