"""The tracking pages through Django's test client: who sees what, who may change what,
that every change is one audit event and a refused one none, and that bad input is shown
on the page (400), never a 500."""

import io
import struct
import zlib
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from tests.conftest import SETUP
from tracking.artifacts import artifact_upload
from tracking.models import Experiment, LifecycleStage, Run
from tracking.services.experiments import experiment_create
from tracking.services.inputs import run_log_inputs
from tracking.services.runs import run_create, run_log_batch, run_update
from tracking.views import runs as runs_view

T0 = 1_760_000_000_000


def gradient_png(width: int = 96, height: int = 64) -> bytes:
    """A valid RGB PNG (a blue-to-red gradient), so the image preview has something to show."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"".join(bytes((255 * x // width, 80, 255 - 255 * x // width))
                                        for x in range(width)) for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) \
        + chunk(b"IEND", b"")


@dataclass
class Tracked:
    experiment: Experiment
    runs: list[Run]  # alpha, beta, gamma


# m0 rises to the last value; p1 differs between runs, "seed" does not.
RUNS = [("alpha", "v1", 0.01, [0.2, 0.4, 0.3]), ("beta", "v2", 0.1, [0.5, 0.7, 0.9]),
        ("gamma", "v1", 0.05, [0.1, 0.6, 0.8])]


def log_run(experiment, name, p1, lr, m0_values, start) -> Run:
    run = run_create(experiment=experiment, actor=SETUP, run_name=name, start_time=start)
    metrics = [{"key": "m0", "value": v, "timestamp": start + 1000 * step, "step": step}
               for step, v in enumerate(m0_values)]
    metrics += [{"key": "loss", "value": 1 - v, "timestamp": start + 1000 * step, "step": step}
                for step, v in enumerate(m0_values)]
    params = [{"key": "p1", "value": p1}, {"key": "lr", "value": str(lr)},
              {"key": "seed", "value": "42"}]
    tags = [{"key": "team", "value": "risk"}, {"key": "mlflow.source.name", "value": "train.py"}]
    run_log_batch(run=run, actor=SETUP, metrics=metrics, params=params, tags=tags, payload={})
    return run_update(run=run, actor=SETUP, status="FINISHED", end_time=start + 65_000)


def make_tracked(org, name="credit") -> Tracked:
    experiment = experiment_create(org=org, name=name, actor=SETUP)
    runs = [log_run(experiment, n, p1, lr, values, T0 + 60_000 * i)
            for i, (n, p1, lr, values) in enumerate(RUNS)]
    run_log_inputs(run=runs[0], actor=SETUP, models=[], datasets=[{
        "dataset": {"name": "loans-2025", "digest": "d1g35t", "source_type": "local",
                    "source": '{"uri": "/data/loans.parquet"}'},
        "tags": [{"key": "mlflow.data.context", "value": "training"}]}])
    root = runs[0].artifact_uri.removeprefix("mlflow-artifacts:/")
    for path, body in [("notes.txt", b"hello artifacts\n"), ("data/head.csv",
                       b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(50))),
                       ("plots/curve.png", gradient_png())]:
        artifact_upload(org=org, path=f"{root}/{path}", stream=io.BytesIO(body),
                        length=len(body), actor=SETUP)
    return Tracked(experiment, runs)


@pytest.fixture(autouse=True)
def artifact_root(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "artifacts"), "allow_overwrite": True}}}


@pytest.fixture
def tracked(personas) -> Tracked:
    return make_tracked(personas.org_a)


def browser(persona, **kwargs) -> Client:
    client = Client(**kwargs)
    client.login(username=persona.email, password="pw-" + persona.email)
    return client


def page_urls(t: Tracked) -> list[str]:
    run = t.runs[0].run_uuid
    ids = ",".join(r.run_uuid for r in t.runs)
    return [f"/experiments/{t.experiment.pk}/", f"/experiments/{t.experiment.pk}/?cols=params.p1",
            f"/runs/{run}/", f"/runs/{run}/?path=data", f"/runs/{run}/?path=notes.txt",
            f"/runs/{run}/artifact/?path=notes.txt", f"/compare/?runs={ids}",
            f"/compare/metric-history/?runs={ids}&key=m0"]


def events(org) -> int:
    return AuditEvent.objects.filter(org=org).count()


# -- access ---------------------------------------------------------------------------------

def test_every_page_answers_a_member(personas, tracked):
    client = browser(personas.alice)
    for url in ["/experiments/", "/experiments/0/", *page_urls(tracked)]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:300])


def test_another_organization_gets_404_on_every_id(personas, tracked):
    client = browser(personas.charlie)
    for url in page_urls(tracked):
        assert client.get(url).status_code == 404, url
    before = events(personas.org_a)
    response = client.post("/experiments/", {"action": "rename", "name": "mine",
                                             "experiment_id": str(tracked.experiment.pk)})
    assert response.status_code == 404
    assert events(personas.org_a) == before
    assert b">credit</a>" not in client.get("/experiments/").content


def test_pages_need_a_login(client, tracked):
    response = client.get(f"/experiments/{tracked.experiment.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_viewer_sees_no_write_buttons_and_may_not_post(personas, tracked):
    client = browser(personas.bob)
    page = client.get("/experiments/").content.decode()
    assert "credit" in page
    assert "Create experiment" not in page and "Delete" not in page and "Rename" not in page
    before = events(personas.org_a)
    for data in [{"action": "create", "name": "viewer-made"},
                 {"action": "rename", "experiment_id": str(tracked.experiment.pk), "name": "x"},
                 {"action": "delete", "experiment_id": str(tracked.experiment.pk)}]:
        assert client.post("/experiments/", data).status_code == 403
    assert events(personas.org_a) == before
    assert not Experiment.objects.filter(name="viewer-made").exists()


def test_an_owner_sees_the_write_buttons(personas, tracked):
    page = browser(personas.alice).get("/experiments/").content.decode()
    assert "Create experiment" in page and "Delete experiment credit" in page


def test_a_post_without_the_csrf_token_is_forbidden(personas):
    client = browser(personas.alice, enforce_csrf_checks=True)
    before = events(personas.org_a)
    assert client.post("/experiments/", {"action": "create", "name": "forged"}).status_code == 403
    assert events(personas.org_a) == before


# -- writes -------------------------------------------------------------------------------

def test_create_rename_delete_restore_each_write_one_audit_event(personas):
    client, org = browser(personas.alice), personas.org_a
    steps = [({"action": "create", "name": "fraud"}, "experiment.created"),
             ({"action": "rename", "name": "fraud-v2"}, "experiment.renamed"),
             ({"action": "delete"}, "experiment.deleted"),
             ({"action": "restore"}, "experiment.restored")]
    for data, action in steps:
        experiment = Experiment.objects.filter(org=org, name__startswith="fraud").first()
        if experiment is not None:
            data["experiment_id"] = experiment.public_id
        before = AuditEvent.objects.filter(org=org).order_by("-seq").first().seq
        response = client.post("/experiments/?deleted=1", data)
        assert response.status_code == 302, response.content[:500]
        new = list(AuditEvent.objects.filter(org=org, seq__gt=before))
        assert [e.action for e in new] == [action]
        assert new[0].actor_label == personas.alice.email
    experiment = Experiment.objects.get(org=org, name="fraud-v2")
    assert experiment.lifecycle_stage == LifecycleStage.ACTIVE
    assert "Restored experiment" in client.get("/experiments/").content.decode()


@pytest.mark.parametrize("data, message", [
    ({"action": "create", "name": ""}, "non-empty"),
    ({"action": "create", "name": "credit"}, "already exists"),
    ({"action": "create", "name": "x" * 501}, "maximum length"),
    ({"action": "rename", "name": "  "}, "non-empty"),
    ({"action": "delete", "experiment_id": "0"}, "Default experiment"),
    ({"action": "explode"}, "Unknown action"),
])
def test_bad_form_input_is_400_with_the_reason_and_nothing_written(personas, tracked, data,
                                                                   message):
    if data["action"] == "rename":
        data["experiment_id"] = str(tracked.experiment.pk)
    before, names = events(personas.org_a), set(Experiment.objects.values_list("name", "lifecycle_stage"))
    response = browser(personas.alice).post("/experiments/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert events(personas.org_a) == before
    assert set(Experiment.objects.values_list("name", "lifecycle_stage")) == names


def test_restoring_an_active_experiment_is_refused(personas, tracked):
    before = events(personas.org_a)
    response = browser(personas.alice).post(
        "/experiments/", {"action": "restore", "experiment_id": str(tracked.experiment.pk)})
    assert response.status_code == 400 and b"already active" in response.content
    assert events(personas.org_a) == before


# -- experiments page ------------------------------------------------------------------------

def test_experiments_list_counts_searches_and_shows_deleted(personas, tracked):
    client = browser(personas.alice)
    other = experiment_create(org=personas.org_a, name="churn", actor=SETUP)
    page = client.get("/experiments/").content.decode()
    assert ">credit<" in page and ">churn<" in page and ">3<" in page  # credit's run count
    page = client.get("/experiments/?q=CRED").content.decode()
    assert ">credit<" in page and ">churn<" not in page
    page = client.get("/experiments/", {"filter": "name LIKE 'ch%'"}).content.decode()
    assert ">churn<" in page and ">credit<" not in page
    client.post("/experiments/", {"action": "delete", "experiment_id": str(other.pk)})
    assert ">churn<" not in client.get("/experiments/").content.decode()
    assert ">churn<" in client.get("/experiments/?deleted=1").content.decode()


def test_a_bad_experiment_filter_is_shown_not_raised(personas, tracked):
    response = browser(personas.alice).get("/experiments/", {"filter": "name ~ 'x'"})
    assert response.status_code == 400
    assert "could not be used" in response.content.decode()


def test_experiment_list_queries_do_not_grow_with_experiments(personas, tracked):
    client = browser(personas.alice)
    client.get("/experiments/")
    with CaptureQueriesContext(connection) as few:
        client.get("/experiments/")
    for i in range(5):
        experiment_create(org=personas.org_a, name=f"more-{i}", actor=SETUP)
    with CaptureQueriesContext(connection) as many:
        client.get("/experiments/")
    assert len(many) == len(few)


# -- runs table ------------------------------------------------------------------------------

def runs_page(client, tracked, **params) -> str:
    response = client.get(f"/experiments/{tracked.experiment.pk}/", params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def test_runs_table_filters_with_mlflows_language(personas, tracked):
    page = runs_page(browser(personas.alice), tracked, filter="metrics.m0 > 0.5 and params.p1 = 'v1'")
    assert "gamma" in page and "alpha" not in page and "beta" not in page


def test_runs_table_sorts_by_a_metric_column(personas, tracked):
    client = browser(personas.alice)
    page = runs_page(client, tracked, order="metrics.m0 DESC", cols="metrics.m0")
    assert page.index("beta") < page.index("gamma") < page.index("alpha")
    assert 'aria-sort="descending"' in page
    page = runs_page(client, tracked, order="metrics.m0 ASC", cols="metrics.m0")
    assert page.index("alpha") < page.index("gamma") < page.index("beta")


def test_runs_table_shows_the_chosen_columns(personas, tracked):
    client = browser(personas.alice)
    page = runs_page(client, tracked, cols="params.p1,tags.team", col="metrics.loss")
    assert "v2" in page and "risk" in page and "0.1" in page  # beta's last loss is 1 - 0.9
    assert "cols=params.p1%2Ctags.team%2Cmetrics.loss" in page  # remembered in the links
    page = runs_page(client, tracked, cols="params.p1")
    assert ">seed<" not in page and "0.9<" not in page
    page = runs_page(client, tracked, cols="nonsense,params.p1")
    assert "Ignored columns: nonsense" in page


def test_runs_table_default_columns_are_the_pages_metrics_and_params(personas, tracked):
    page = runs_page(browser(personas.alice), tracked)
    for key in ("m0", "loss", "p1", "lr", "seed"):
        assert f"{key}<" in page


@pytest.mark.parametrize("params", [{"filter": "metrics.m0 >> 1"}, {"filter": "nonsense = 1"},
                                    {"filter": "metrics.m0 > 'abc'"}, {"order": "metrics.m0 UP"},
                                    {"page_token": "not-a-token"}])
def test_a_bad_search_is_shown_with_status_400(personas, tracked, params):
    response = browser(personas.alice).get(f"/experiments/{tracked.experiment.pk}/", params)
    assert response.status_code == 400
    assert "The search could not run" in response.content.decode()


def test_runs_table_pages_forward_and_back(personas, tracked, monkeypatch):
    monkeypatch.setattr(runs_view, "PAGE_SIZE", 2)
    client = browser(personas.alice)
    first = runs_page(client, tracked, order="attributes.run_name ASC")
    assert "alpha" in first and "beta" in first and "gamma" not in first
    assert 'rel="prev"' not in first
    next_query = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = client.get(f"/experiments/{tracked.experiment.pk}/" + next_query.replace("&amp;", "&"))
    page = second.content.decode()
    assert "gamma" in page and "alpha" not in page and 'rel="prev"' in page
    assert 'rel="next"' not in page


def test_runs_table_reads_only_the_page(personas, tracked):
    """The number of queries does not depend on how many runs there are or are shown."""
    client = browser(personas.alice)
    url = f"/experiments/{tracked.experiment.pk}/?cols=metrics.m0,params.p1,tags.team"
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(6):
        log_run(tracked.experiment, f"more-{i}", "v3", 0.2, [0.3], T0 + 10 ** 6 + i)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)
    assert not any("COUNT(" in q["sql"].upper() for q in many.captured_queries)


def test_runs_table_of_the_default_experiment(personas):
    response = browser(personas.alice).get("/experiments/0/")
    assert response.status_code == 200 and b"Default" in response.content


# -- run page and artifacts --------------------------------------------------------------------

def test_run_page_shows_info_params_metrics_tags(personas, tracked):
    run = tracked.runs[1]
    page = browser(personas.alice).get(f"/runs/{run.run_uuid}/").content.decode()
    for text in ("beta", run.run_uuid, "finished", "train.py", "1 min 5 s", "v2", "m0", "0.9",
                 "risk", 'id="plot-metric-m0"', 'id="plot-metric-loss"', "plotly.min.js"):
        assert text in page, text


def test_run_page_shows_the_datasets(personas, tracked):
    page = browser(personas.alice).get(f"/runs/{tracked.runs[0].run_uuid}/").content.decode()
    assert "loans-2025" in page and "training" in page and "d1g35t" in page


def test_run_page_shows_its_parent(personas, tracked):
    child = run_create(experiment=tracked.experiment, actor=SETUP, run_name="child",
                       tags={"mlflow.parentRunId": tracked.runs[0].run_uuid})
    page = browser(personas.alice).get(f"/runs/{child.run_uuid}/").content.decode()
    assert "Parent run" in page and f"/runs/{tracked.runs[0].run_uuid}/" in page


def test_artifacts_browse_and_preview(personas, tracked):
    client, run = browser(personas.alice), tracked.runs[0].run_uuid
    root = client.get(f"/runs/{run}/").content.decode()
    assert "notes.txt" in root and "data/" in root and "plots/" in root
    text = client.get(f"/runs/{run}/?path=notes.txt").content.decode()
    assert "hello artifacts" in text
    csv_page = client.get(f"/runs/{run}/", {"path": "data/head.csv"}).content.decode()
    assert "<th scope=\"col\">a</th>" in csv_page and "<td>19</td>" in csv_page
    assert "<td>20</td>" not in csv_page  # only the first 20 rows
    image = client.get(f"/runs/{run}/", {"path": "plots/curve.png"}).content.decode()
    assert "inline=1" in image and 'alt="Artifact image curve.png"' in image
    inline = client.get(f"/runs/{run}/artifact/", {"path": "plots/curve.png", "inline": "1"})
    assert inline["Content-Type"] == "image/png"
    assert inline["Content-Security-Policy"] == "sandbox"
    download = client.get(f"/runs/{run}/artifact/", {"path": "notes.txt"})
    assert b"".join(download.streaming_content) == b"hello artifacts\n"
    assert "attachment" in download["Content-Disposition"]


def test_text_preview_stops_at_64_kb(personas, tracked):
    run = tracked.runs[1]
    body = b"x" * 70_000 + b"TAIL"
    artifact_upload(org=personas.org_a, path=run.artifact_uri.split(":/", 1)[1] + "/big.log",
                    stream=io.BytesIO(body), length=len(body), actor=SETUP)
    page = browser(personas.alice).get(f"/runs/{run.run_uuid}/", {"path": "big.log"})
    assert b"first 64 KB" in page.content and b"TAIL" not in page.content


@pytest.mark.parametrize("path", ["../../x", "/etc/passwd", "data/../notes.txt", "missing.txt",
                                  "%2e%2e/x"])
def test_bad_artifact_paths_are_refused(personas, tracked, path):
    client, run = browser(personas.alice), tracked.runs[0].run_uuid
    response = client.get(f"/runs/{run}/", {"path": path})
    assert response.status_code == 200 and b'role="alert"' in response.content
    assert client.get(f"/runs/{run}/artifact/", {"path": path}).status_code == 404


# -- compare -------------------------------------------------------------------------------------

def test_compare_marks_the_differing_rows(personas, tracked):
    ids = ",".join(r.run_uuid for r in tracked.runs)
    page = browser(personas.alice).get("/compare/", {"runs": ids}).content.decode()
    p1_row = page.split('<th scope="row" class="mono">p1')[0].rsplit("<tr", 1)[1]
    seed_row = page.split('<th scope="row" class="mono">seed')[0].rsplit("<tr", 1)[1]
    assert 'class="differs"' in p1_row and "differs" not in seed_row
    assert "(differs)" in page and 'id="only-differing"' in page
    for plot in ("plot-parallel", "plot-scatter", "plot-metric-m0", "plot-metric-loss"):
        assert f'id="{plot}"' in page


def test_compare_takes_the_checkboxes_of_the_runs_table(personas, tracked):
    client = browser(personas.alice)
    response = client.get("/compare/", {"runs": [r.run_uuid for r in tracked.runs[:2]]})
    assert response.status_code == 200 and b"Comparing 2 runs" in response.content


@pytest.mark.parametrize("count", [0, 1])
def test_compare_needs_two_runs(personas, tracked, count):
    ids = ",".join(r.run_uuid for r in tracked.runs[:count])
    response = browser(personas.alice).get("/compare/", {"runs": ids})
    assert response.status_code == 400 and b"Choose between 2" in response.content


def test_compare_with_one_foreign_run_is_404(personas, tracked):
    theirs = make_tracked(personas.org_b, "theirs").runs[0]
    ids = f"{tracked.runs[0].run_uuid},{theirs.run_uuid}"
    assert browser(personas.alice).get("/compare/", {"runs": ids}).status_code == 404


def test_metric_history_json(personas, tracked):
    ids = ",".join(r.run_uuid for r in tracked.runs)
    body = browser(personas.alice).get("/compare/metric-history/",
                                       {"runs": ids, "key": ["m0"]}).json()
    by_name = {s["run_name"]: s for s in body["series"]}
    assert set(by_name) == {"alpha", "beta", "gamma"}
    assert by_name["beta"]["step"] == [0, 1, 2]
    assert by_name["beta"]["value"] == [0.5, 0.7, 0.9]
    assert by_name["beta"]["timestamp"][0] == by_name["beta"]["start_time"]


def test_metric_history_json_is_strict_json_with_gaps_for_non_finite_values(personas, tracked):
    """The charts parse it with JSON.parse, which refuses NaN and Infinity: one run with an
    infinite value once broke every chart of its page."""
    import json
    import math

    run = tracked.runs[0]
    run_log_batch(run=run, actor=SETUP, params=[], tags=[], payload={}, metrics=[
        {"key": "m0", "value": value, "timestamp": T0 + step, "step": step}
        for step, value in ((10, math.inf), (11, -math.inf), (12, math.nan), (13, 0.25))])
    response = browser(personas.alice).get("/compare/metric-history/",
                                           {"runs": run.run_uuid, "key": ["m0"]})

    def refuse(constant):
        raise ValueError(constant)

    body = json.loads(response.content, parse_constant=refuse)
    (series,) = body["series"]
    assert series["step"][-4:] == [10, 11, 12, 13]
    assert series["value"][-4:] == [None, None, None, 0.25]
