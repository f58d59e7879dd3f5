"""Runs and their models in a real browser: from the runs table's "Models" column to the run,
its logged model's files, the registered version made from it, and back to the run from the
version's page. Each page is saved as /tmp/run-models-<name>.png (and in
test-artifacts/screenshots/) for looking at."""

import re

import pytest
from playwright.sync_api import expect

from models_registry import services as registry
from tests.conftest import SETUP
from tests.models_registry.conftest import package_now, saved_models, upload_dir  # noqa: F401
from tests.tracking.test_web import artifact_root  # noqa: F401  (fixture: a tmp artifact store)
from tests.ui.conftest import login, shot
from tracking.artifacts import artifact_path_of_uri
from tracking.services.experiments import experiment_create
from tracking.services.inputs import run_log_outputs
from tracking.services.logged_models import logged_model_create, logged_model_finalize
from tracking.services.runs import run_create, run_log_batch, run_update

pytestmark = pytest.mark.postgres_only
T0 = 1_760_000_000_000


def snap(page, name: str) -> None:
    page.screenshot(path=f"/tmp/run-models-{name}.png", full_page=True)
    shot(page, f"run-models-{name}")


def train(experiment, local, c: float):
    """A run that logged its model as MLflow 3 does: the model's files (a real sklearn model)
    in the logged model's own location, its AUC linked to it."""
    run = run_create(experiment=experiment, actor=SETUP, run_name=f"logreg-C{c:g}",
                     start_time=T0)
    params = {"C": str(c), "penalty": "l2", "solver": "lbfgs"}
    run_log_batch(run=run, actor=SETUP, tags=[], payload={},
                  params=[{"key": k, "value": v} for k, v in params.items()],
                  metrics=[{"key": "val_auc", "value": 0.6 + c / 10 + step / 100,
                            "timestamp": T0 + step, "step": step} for step in range(1, 6)])
    model = logged_model_create(experiment=experiment, actor=SETUP, name="model",
                                source_run=run, params=params)
    run_log_outputs(run=run, actor=SETUP, models=[{"model_id": model.model_id, "step": 0}])
    upload_dir(experiment.org, local, artifact_path_of_uri(model.artifact_uri), SETUP)
    model = logged_model_finalize(model=model, status="LOGGED_MODEL_READY", actor=SETUP)
    run_log_batch(run=run, actor=SETUP, params=[], tags=[], payload={}, metrics=[
        {"key": key, "value": value, "timestamp": T0 + 10, "step": 0,
         "model_id": model.model_id}
        for key, value in (("auc", 0.7 + c / 10), ("log_loss", 0.5 - c / 10))])
    run_update(run=run, actor=SETUP, status="FINISHED", end_time=T0 + 42_000)
    return run, model


def test_from_the_runs_table_to_the_model_its_version_and_back(page, personas, artifact_root,  # noqa: F811
                                                              saved_models):  # noqa: F811
    experiment = experiment_create(org=personas.org_a, name="credit-scoring", actor=SETUP)
    train(experiment, saved_models["logistic"], 0.01)
    best, logged = train(experiment, saved_models["logistic"], 1.0)
    model = registry.registered_model_create(org=personas.org_a, name="credit-risk",
                                             actor=SETUP)
    version = registry.model_version_create(model=model, source=f"models:/{logged.model_id}",
                                            run_id=best.run_uuid, model_id=logged.model_id,
                                            actor=SETUP)
    package_now(version)  # READY, as the worker would leave it

    login(page, personas.alice)
    page.goto(f"/experiments/{experiment.pk}/")
    table = page.locator("table.runs")
    expect(table.locator("thead")).to_contain_text("Models")
    best_row = table.locator("tbody tr", has_text="logreg-C1")
    expect(best_row.get_by_role("link", name="credit-risk v1")).to_be_visible()
    expect(table.locator("tbody tr", has_text="logreg-C0.01").get_by_role(
        "link", name="model", exact=True)).to_be_visible()
    snap(page, "table")

    best_row.get_by_role("link", name="logreg-C1", exact=True).click()
    page.wait_for_url(re.compile(rf"/runs/{best.run_uuid}/$"))
    models = page.get_by_role("region", name=re.compile(r"^Models"))
    card = models.get_by_role("article", name=re.compile(r"^model"))
    expect(card).to_contain_text(logged.model_id)
    expect(card.get_by_role("table", name="Parameters of the logged model model")) \
        .to_contain_text("lbfgs")
    expect(card.get_by_role("table", name="Metrics of the logged model model")) \
        .to_contain_text("auc")
    expect(card).to_contain_text("python_function")
    expect(page.locator("#no-run-artifacts")).to_contain_text("the files of “model”")
    snap(page, "run")

    card.get_by_role("link", name="Browse the files of the logged model model").click()
    page.wait_for_url(re.compile(rf"\?model={logged.model_id}&path=#artifacts$"))
    artifacts = page.locator("#artifacts")
    expect(artifacts.get_by_role("navigation", name="Whose files")
           .locator("[aria-current]")).to_contain_text("logged model model")
    artifacts.get_by_role("link", name="MLmodel", exact=True).click()
    expect(page.locator("pre.text-preview")).to_contain_text("python_function")
    with page.expect_download() as download:
        artifacts.get_by_role("link", name="Download MLmodel").first.click()
    assert download.value.suggested_filename == "MLmodel"
    artifacts.screenshot(path="/tmp/run-models-files-section.png")
    snap(page, "files")

    page.get_by_role("link", name="credit-risk version 1").click()
    page.wait_for_url(re.compile(r"/models/credit-risk/versions/1/$"))
    expect(page.get_by_role("heading", name="credit-risk · version 1")).to_be_visible()
    expect(page.get_by_role("link", name="Logged model model")).to_be_visible()
    snap(page, "version")

    page.get_by_role("link", name="Logged model model").click()
    page.wait_for_url(re.compile(rf"/runs/{best.run_uuid}/#model-{logged.model_id}$"))
    expect(page.locator(f"#model-{logged.model_id}")).to_be_in_viewport()
    page.go_back()
    page.get_by_role("link", name="Source run logreg-C1").click()
    page.wait_for_url(re.compile(rf"/runs/{best.run_uuid}/$"))
    expect(page.get_by_role("heading", name="logreg-C1", exact=False).first).to_be_visible()
