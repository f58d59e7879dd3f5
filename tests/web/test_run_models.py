"""Runs and the models they logged, through Django's test client: a run's page lists its MLflow 3
logged models (params, metrics linked to them, flavors, files) and the registered versions made
from them; a version's page links back to its run and logged model; the runs table has a
"Models" column read in one query for the page; another organization's models never show, and
its run and model files answer 404. The last test logs and registers a model with the real
mlflow client (MLflow 3's log_model)."""

import io
import re
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from models_registry import services as registry
from models_registry.models import RegisteredModel
from tests.conftest import SETUP
from tests.tracking.conftest import _connections_closed_after_test, mlflow_as  # noqa: F401
from tests.tracking.test_web import artifact_root  # noqa: F401  (fixture: a tmp artifact store)
from tracking.artifacts import artifact_path_of_uri, artifact_upload
from tracking.models import Experiment, LoggedModel, Run
from tracking.services.experiments import experiment_create
from tracking.services.inputs import run_log_outputs
from tracking.services.logged_models import logged_model_create, logged_model_finalize
from tracking.services.runs import run_create, run_log_batch, run_update

T0 = 1_760_000_000_000
MLMODEL = b"""artifact_path: mlflow-artifacts:/1/models/m-x/artifacts
flavors:
  python_function:
    env:
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    python_version: 3.11.2
  sklearn:
    code: null
    pickled_model: model.skops
    serialization_format: skops
    sklearn_version: 1.7.2
mlflow_version: 3.1.0
model_id: m-x
"""


def browser(persona) -> Client:
    client = Client()
    client.force_login(persona.user)  # one organization each: the session acts in it
    return client


@dataclass
class Logged:
    run: Run
    model: LoggedModel


def log_run_with_model(experiment: Experiment, name: str, c: float, *,
                       register: str = "") -> Logged:
    """What `mlflow.sklearn.log_model` leaves in MLflow 3: a logged model of the run with its
    files in the model's own location (none among the run's artifacts), a metric linked to it,
    and (`register`) a version registered from `models:/<model id>`."""
    run = run_create(experiment=experiment, actor=SETUP, run_name=name, start_time=T0)
    run_log_batch(run=run, actor=SETUP, params=[{"key": "C", "value": str(c)}], tags=[],
                  payload={}, metrics=[{"key": "val_auc", "value": 0.7, "timestamp": T0,
                                        "step": 1}])
    model = logged_model_create(experiment=experiment, actor=SETUP, name=f"{name}-model",
                                source_run=run, params={"C": str(c), "solver": "lbfgs"},
                                tags={"team": "risk", "mlflow.user": "alice"})
    run_log_outputs(run=run, actor=SETUP, models=[{"model_id": model.model_id, "step": 0}])
    root = artifact_path_of_uri(model.artifact_uri)
    for path, body in [("MLmodel", MLMODEL), ("model.skops", b"\x00skops"),
                       ("requirements.txt", b"scikit-learn\n")]:
        artifact_upload(org=experiment.org, path=f"{root}/{path}", stream=io.BytesIO(body),
                        length=len(body), actor=SETUP)
    model = logged_model_finalize(model=model, status="LOGGED_MODEL_READY", actor=SETUP)
    run_log_batch(run=run, actor=SETUP, params=[], tags=[], payload={}, metrics=[
        {"key": "auc", "value": 0.5 + c / 10, "timestamp": T0 + 1, "step": 0,
         "model_id": model.model_id}])
    run_update(run=run, actor=SETUP, status="FINISHED", end_time=T0 + 60_000)
    if register:
        registered = RegisteredModel.objects.filter(org=experiment.org, name=register).first() \
            or registry.registered_model_create(org=experiment.org, name=register, actor=SETUP)
        registry.model_version_create(model=registered, source=f"models:/{model.model_id}",
                                      run_id=run.run_uuid, model_id=model.model_id,
                                      actor=SETUP)
    return Logged(run, model)


@pytest.fixture
def logged(personas, artifact_root):  # noqa: F811
    """Org A: a run whose logged model is registered as credit-risk v1. Org B: a run with a
    logged model of its own, registered as their-model v1."""
    ours = experiment_create(org=personas.org_a, name="credit", actor=SETUP)
    theirs = experiment_create(org=personas.org_b, name="secret", actor=SETUP)
    return {"ours": log_run_with_model(ours, "best", 0.1, register="credit-risk"),
            "theirs": log_run_with_model(theirs, "zebra", 1.0, register="their-model")}


def models_section(page: str) -> str:
    start = page.index('<section class="card" aria-labelledby="models-h" id="models">')
    return page[start:page.index("</section>", start)]


def text(response) -> str:
    """The page's text, tags dropped and white space collapsed, for phrases across tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# -- the run page ---------------------------------------------------------------------------

def test_run_page_lists_its_logged_model_with_params_metrics_files_and_version(personas,
                                                                               logged):
    ours = logged["ours"]
    response = browser(personas.alice).get(f"/runs/{ours.run.run_uuid}/")
    assert response.status_code == 200
    page, shown = response.content.decode(), text(response)
    section = models_section(page)
    assert f'id="model-{ours.model.model_id}"' in section
    assert "best-model" in section and ours.model.model_id in section
    assert "<code>python_function</code> <code>sklearn</code>" in section  # from its MLmodel
    assert re.search(r'<th scope="row" class="mono">solver</th><td class="mono wrap">lbfgs', section)
    assert re.search(r'<th scope="row" class="mono">auc</th><td class="num">0\.51</td>', section)
    assert "val_auc" not in section  # a run metric, not linked to the model
    assert "team" in section and "mlflow.user" not in section
    assert '<a href="/models/credit-risk/versions/1/">credit-risk version 1</a>' in section
    assert f'href="?model={ours.model.model_id}&amp;path=#artifacts"' in section
    assert "Registered versions credit-risk v1" in shown  # the summary at the top
    # The run's own artifacts are empty: the page says where the model's files are.
    assert "No artifacts here" not in page
    assert "This run's own artifact folder is empty" in shown
    assert "the files of “best-model”" in shown


def test_the_logged_models_files_browse_preview_and_download(personas, logged):
    ours, client = logged["ours"], browser(personas.alice)
    base, model_id = f"/runs/{ours.run.run_uuid}/", ours.model.model_id
    listing = client.get(f"{base}?model={model_id}&path=")
    assert listing.status_code == 200
    artifacts = listing.content.decode().split('id="artifacts"', 1)[1]
    for name in ("MLmodel", "model.skops", "requirements.txt"):
        assert f'href="?model={model_id}&amp;path={name}#artifacts"' in artifacts
    assert ours.model.artifact_uri in artifacts
    assert 'aria-current="true">logged model <strong>best-model</strong>' in artifacts
    preview = client.get(f"{base}?model={model_id}&path=MLmodel").content.decode()
    assert "loader_module: mlflow.sklearn" in preview
    download = client.get(f"{base}artifact/?model={model_id}&path=requirements.txt")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"scikit-learn\n"
    # The run's own root still answers, with the model's files one link away.
    assert "This run's own artifact folder is empty" in text(client.get(base))
    # A model id that is not this run's: said in the artifacts section, and a 404 download.
    theirs = logged["theirs"].model.model_id
    refused = client.get(f"{base}?model={theirs}")
    assert refused.status_code == 200
    assert f"logged no model with ID &#x27;{theirs}&#x27;" in refused.content.decode()
    assert theirs not in refused.content.decode().split('role="alert"')[0]
    assert client.get(f"{base}artifact/?model={theirs}&path=MLmodel").status_code == 404
    assert client.get(f"{base}artifact/?model={model_id}&path=../MLmodel").status_code == 404


def test_a_version_registered_from_the_runs_artifacts_is_listed_too(personas, logged):
    """`runs:/<run id>/model` (MLflow 2's way): no logged model, the version still shows."""
    experiment = Experiment.objects.get(org=personas.org_a, name="credit")
    run = run_create(experiment=experiment, actor=SETUP, run_name="mlflow2", start_time=T0)
    root = artifact_path_of_uri(run.artifact_uri)
    artifact_upload(org=personas.org_a, path=f"{root}/model/MLmodel", stream=io.BytesIO(MLMODEL),
                    length=len(MLMODEL), actor=SETUP)
    model = RegisteredModel.objects.get(org=personas.org_a, name="credit-risk")
    registry.model_version_create(model=model, source=f"runs:/{run.run_uuid}/model",
                                  actor=SETUP)
    page = browser(personas.alice).get(f"/runs/{run.run_uuid}/").content.decode()
    section = models_section(page)
    assert '<a href="/models/credit-risk/versions/2/">credit-risk version 2</a>' in section
    assert f"<code>runs:/{run.run_uuid}/model</code>" in section
    assert 'href="?path=model#artifacts"' in section
    assert "This run's own artifact folder is empty" not in page


def test_a_run_without_models_says_so(personas, logged):
    experiment = Experiment.objects.get(org=personas.org_a, name="credit")
    run = run_create(experiment=experiment, actor=SETUP, run_name="bare")
    page = text(browser(personas.alice).get(f"/runs/{run.run_uuid}/"))
    assert "This run logged no model" in page and "No artifacts here." in page


def test_another_organizations_model_never_shows_and_its_run_is_404(personas, logged):
    ours, theirs = logged["ours"], logged["theirs"]
    client = browser(personas.alice)
    for url in [f"/runs/{ours.run.run_uuid}/", f"/experiments/{ours.run.experiment.pk}/",
                f"/experiments/{ours.run.experiment.pk}/?cols=models",
                "/models/credit-risk/versions/1/"]:
        page = client.get(url).content.decode()
        assert theirs.model.model_id not in page and "their-model" not in page, url
        assert "zebra" not in page, url
    for url in [f"/runs/{theirs.run.run_uuid}/",
                f"/runs/{theirs.run.run_uuid}/?model={theirs.model.model_id}",
                f"/runs/{theirs.run.run_uuid}/artifact/?model={theirs.model.model_id}"
                "&path=MLmodel",
                f"/experiments/{theirs.run.experiment.pk}/",
                "/models/their-model/versions/1/"]:
        assert client.get(url).status_code == 404, url
    # and the other way round
    page = browser(personas.charlie).get(f"/runs/{theirs.run.run_uuid}/").content.decode()
    assert "their-model version 1" in page and "credit-risk" not in page


# -- the version page -------------------------------------------------------------------------

def test_version_page_links_to_its_run_and_logged_model(personas, logged):
    ours = logged["ours"]
    page = browser(personas.alice).get("/models/credit-risk/versions/1/").content.decode()
    run_url = f"/runs/{ours.run.run_uuid}/"
    assert f'<a href="{run_url}" aria-label="Source run best">' in page
    assert f'<a href="{run_url}#model-{ours.model.model_id}"' in page
    assert f'href="{run_url}?model={ours.model.model_id}&amp;path=#artifacts">its files</a>' \
        in page
    assert f"<code>models:/{ours.model.model_id}</code>" in page


# -- the runs table ---------------------------------------------------------------------------

def test_runs_table_has_a_models_column_in_its_chooser(personas, logged):
    ours, client = logged["ours"], browser(personas.alice)
    experiment = ours.run.experiment
    other = log_run_with_model(experiment, "second", 0.01)  # logged, not registered
    url = f"/experiments/{experiment.pk}/"
    page = client.get(url).content.decode()  # shown by default: the page's runs have models
    assert '<span data-column="models">Models</span>' in page
    assert '<a href="/models/credit-risk/versions/1/" title="Registered model version">' \
        'credit-risk v1</a>' in page
    assert "best-model</a>" not in page  # registered: named by its version
    assert f'<a href="/runs/{other.run.run_uuid}/#model-{other.model.model_id}" ' \
        f'class="logged" title="Logged model {other.model.model_id}">second-model</a>' in page
    chooser = page[page.index('class="chooser"'):page.index('id="compare-form"')]
    assert '<input type="checkbox" name="col" value="models" checked>' in chooser
    assert "Models (registered versions, logged models)" in chooser
    # Chosen away, it is gone (and not read); chosen back by the checkbox, it is there.
    without = client.get(url, {"cols": "metrics.auc"}).content.decode()
    assert 'data-column="models"' not in without and "credit-risk v1" not in without
    chosen = client.get(url, {"cols": "", "col": ["models", "params.C"]}).content.decode()
    assert "credit-risk v1" in chosen and 'data-column="params.C"' in chosen
    assert 'name="cols" value="models,params.C"' in chosen


def test_runs_table_reads_the_models_of_a_page_in_one_query(personas, logged,
                                                            django_assert_max_num_queries):
    experiment = logged["ours"].run.experiment
    client, url = browser(personas.alice), f"/experiments/{experiment.pk}/?cols=models,params.C"
    client.get(url)  # sessions, caches
    with CaptureQueriesContext(connection) as few:
        assert "credit-risk v1" in client.get(url).content.decode()
    for index in range(12):
        log_run_with_model(experiment, f"more-{index}", index / 10,
                           register="credit-risk" if index % 3 == 0 else "")
    with django_assert_max_num_queries(len(few)) as many:
        page = client.get(url).content.decode()
    assert "credit-risk v5" in page and "more-11-model" in page
    models_queries = [q["sql"] for q in many.captured_queries
                      if "tracking_loggedmodel" in q["sql"]]
    assert len(models_queries) == 1 and "UNION" in models_queries[0].upper()


def test_run_page_queries_do_not_grow_with_the_models_versions(personas, logged):
    ours, client = logged["ours"], browser(personas.alice)
    url = f"/runs/{ours.run.run_uuid}/"
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for index in range(3):  # three more models of the run, each registered
        model = logged_model_create(experiment=ours.run.experiment, actor=SETUP,
                                    name=f"extra-{index}", source_run=ours.run)
        root = artifact_path_of_uri(model.artifact_uri)
        artifact_upload(org=personas.org_a, path=f"{root}/MLmodel", stream=io.BytesIO(MLMODEL),
                        length=len(MLMODEL), actor=SETUP)
        registry.model_version_create(model=RegisteredModel.objects.get(name="credit-risk"),
                                      source=f"models:/{model.model_id}", actor=SETUP)
    with CaptureQueriesContext(connection) as four:
        page = client.get(url).content.decode()
    assert all(f"credit-risk version {n}" in page for n in (1, 2, 3, 4))
    assert len(four) == len(one)


# -- the real client ----------------------------------------------------------------------------

@pytest.mark.postgres_only
def test_a_model_logged_and_registered_by_the_mlflow_client_shows_on_both_pages(
        personas, artifact_root, mlflow_as):  # noqa: F811
    import mlflow

    from tests.models_registry.conftest import log_model

    mlflow_as(personas.alice)
    info = log_model("logistic", name="scorer")  # mlflow.sklearn.log_model in a new run
    mlflow.log_metric("auc", 0.83, run_id=info.run_id, model_id=info.model_id)
    version = mlflow.register_model(info.model_uri, "client-model", await_registration_for=0)
    client = browser(personas.alice)
    page = client.get(f"/runs/{info.run_id}/").content.decode()
    section = models_section(page)
    assert f'id="model-{info.model_id}"' in section and "scorer" in section
    assert "<code>python_function</code> <code>sklearn</code>" in section
    assert re.search(r'<th scope="row" class="mono">kind</th><td class="mono wrap">logistic',
                     section)  # the run's params, copied to the model by the client
    assert re.search(r'<th scope="row" class="mono">auc</th><td class="num">0\.83</td>', section)
    assert f'<a href="/models/client-model/versions/{version.version}/">' in section
    files = client.get(f"/runs/{info.run_id}/?model={info.model_id}&path=").content.decode()
    assert f'href="?model={info.model_id}&amp;path=MLmodel#artifacts"' in files
    version_page = client.get(f"/models/client-model/versions/{version.version}/")
    assert f'href="/runs/{info.run_id}/#model-{info.model_id}"' in version_page.content.decode()
