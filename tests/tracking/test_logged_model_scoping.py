"""A metric names its logged model by an id its client sends, unchecked: a search of one
organization's logged models by metric must count only that organization's points."""

from audit.actors import Actor
from tracking.models import Metric
from tracking.selectors import experiment_get
from tracking.services.logged_models import logged_model_create
from tracking.services.runs import run_create, run_log_batch

SEARCH = "/api/2.0/mlflow/logged-models/search"


def test_another_organizations_points_never_make_a_model_match(api, personas):
    actor = Actor.command("test")
    a_experiment = experiment_get(org=personas.org_a, experiment_id="0")
    victim = logged_model_create(experiment=a_experiment, actor=actor, name="scorecard")
    # org B logs a point against org A's model id, as any client may
    b_run = run_create(experiment=experiment_get(org=personas.org_b, experiment_id="0"),
                       actor=actor)
    planted = [{"key": "auc", "value": 0.99, "timestamp": 1, "step": 0,
                "model_id": victim.model_id}]
    run_log_batch(run=b_run, actor=actor, metrics=planted, params=[], tags=[],
                  payload={"metrics": planted})

    # the attack, where the search is not scoped: the planted point selects A's model
    unscoped = Metric.objects.filter(key="auc", model_id__isnull=False, value__gt=0.9)
    assert victim.model_id in set(unscoped.values_list("model_id", flat=True))

    body = {"experiment_ids": ["0"], "filter": "metrics.auc > 0.9"}
    found = api(personas.alice).post(SEARCH, body, format="json")
    assert found.status_code == 200, found.content
    assert found.json().get("models", []) == []
    # A's own point does count
    a_run = run_create(experiment=a_experiment, actor=actor)
    own = [{"key": "auc", "value": 0.95, "timestamp": 2, "step": 0, "model_id": victim.model_id}]
    run_log_batch(run=a_run, actor=actor, metrics=own, params=[], tags=[], payload={"m": own})
    found = api(personas.alice).post(SEARCH, body, format="json").json()
    assert [m["info"]["model_id"] for m in found["models"]] == [victim.model_id]
