"""tracking.selectors.run_get: the run, its experiment and organization, from one hand-written
join (config/rows.py), loaded exactly as the ORM loads them; other organizations' runs 404."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.actors import Actor
from config.exceptions import ApplicationError
from tracking.models import Experiment, Run
from tracking.selectors import experiment_get, run_get
from tracking.services.experiments import experiment_create
from tracking.services.runs import run_create, run_update

ACTOR = Actor.command("test-selectors")


def test_run_get_loads_what_the_orm_loads_in_one_query(personas):
    experiment = experiment_create(org=personas.org_a, name="sel", actor=ACTOR)
    run = run_create(experiment=experiment, actor=ACTOR, run_name="r", start_time=1_700_000_000_000)
    run_update(run=run, actor=ACTOR, status="FINISHED", end_time=1_700_000_000_500)
    with CaptureQueriesContext(connection) as queries:
        loaded = run_get(org=personas.org_a, run_id=run.run_uuid)
        assert (loaded.experiment.name, loaded.org.slug) == ("sel", "org-a")
    assert len(queries) == 1
    for instance, model in ((loaded, Run), (loaded.experiment, Experiment)):
        expected = model.objects.get(pk=instance.pk)
        for field in model._meta.concrete_fields:
            assert getattr(instance, field.attname) == getattr(expected, field.attname), field.name
            assert type(getattr(instance, field.attname)) is type(getattr(expected, field.attname))
    assert not loaded._state.adding and loaded._state.db == "default"


def test_run_get_answers_404_for_another_organizations_run_and_a_missing_one(personas):
    experiment = experiment_create(org=personas.org_b, name="theirs", actor=ACTOR)
    theirs = run_create(experiment=experiment, actor=ACTOR, run_name="b")
    for run_id in (theirs.run_uuid, "0" * 32):
        with pytest.raises(ApplicationError) as raised:
            run_get(org=personas.org_a, run_id=run_id)
        assert raised.value.kind == "not_found"


def test_experiment_get_loads_what_the_orm_loads_and_404s_the_rest(personas):
    experiment = experiment_create(org=personas.org_a, name="mine", actor=ACTOR,
                                   tags={"team": "risk"})
    loaded = experiment_get(org=personas.org_a, experiment_id=experiment.public_id)
    expected = Experiment.objects.get(pk=experiment.pk)
    for field in Experiment._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
        assert type(getattr(loaded, field.attname)) is type(getattr(expected, field.attname))
    default = experiment_get(org=personas.org_a, experiment_id="0")
    assert default.is_default and default.org_id == personas.org_a.pk
    for unknown in (str(default.pk), "99999999", "9" * 30, "²", "-1", "abc", ""):
        with pytest.raises(ApplicationError) as raised:  # the default only answers to "0"
            experiment_get(org=personas.org_a, experiment_id=unknown)
        assert raised.value.kind == "not_found"
    with pytest.raises(ApplicationError):
        experiment_get(org=personas.org_b, experiment_id=experiment.public_id)


@pytest.mark.postgres_only
def test_the_run_lookup_is_prepared_on_the_connection(personas):
    """config/rows.py prepares the lookup, so PostgreSQL stops planning it per request
    (Django's own cursors bind on the client and are never prepared)."""
    experiment = experiment_create(org=personas.org_a, name="prepared", actor=ACTOR)
    run = run_create(experiment=experiment, actor=ACTOR, run_name="p")
    for _ in range(3):
        run_get(org=personas.org_a, run_id=run.run_uuid)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements "
                       "WHERE statement LIKE %s", ["%FROM tracking_run r%run_uuid%"])
        assert cursor.fetchone()[0] == 1
