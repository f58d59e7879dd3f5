"""The tracking pages in a real browser: filter and sort the runs table, open a run with its
charts and artifacts, compare three runs and check what Plotly drew (series, names, values)."""

import re

import pytest
from playwright.sync_api import expect

from tests.tracking.test_web import RUNS, artifact_root, tracked  # noqa: F401  (fixtures)
from tests.ui.conftest import login, shot

pytestmark = pytest.mark.postgres_only

RENDERED = "[data-rendered='true']"


def row_names(page) -> list[str]:
    return page.locator("table.runs tbody th[scope=row]").all_inner_texts()


def plot_data(page, plot_id: str):
    page.wait_for_selector(f"#{plot_id}{RENDERED}")
    return page.evaluate(f"document.getElementById('{plot_id}').data")


def test_runs_table_filters_and_sorts(page, personas, tracked):  # noqa: F811
    login(page, personas.alice)
    page.goto("/experiments/")
    expect(page.get_by_role("link", name="credit")).to_be_visible()
    shot(page, "tracking-experiments")
    page.get_by_role("link", name="credit").click()
    assert sorted(row_names(page)) == ["alpha", "beta", "gamma"]

    page.get_by_label("Filter runs").fill("metrics.m0 > 0.5 and params.p1 = 'v1'")
    page.get_by_label("Filter runs").press("Enter")
    page.wait_for_url(re.compile(r"filter="))
    assert row_names(page) == ["gamma"]

    page.get_by_label("Filter runs").fill("metrics.m0 >> oops")
    page.get_by_label("Filter runs").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("The search could not run")
    shot(page, "tracking-runs-bad-filter")

    page.get_by_role("link", name="Clear filter and sort").click()
    page.locator("th a[data-column='metrics.m0']").click()
    page.wait_for_url(re.compile(r"order=metrics.m0"))
    assert row_names(page) == ["beta", "gamma", "alpha"]  # last m0: 0.9, 0.8, 0.3
    expect(page.locator("th[aria-sort='descending']")).to_contain_text("m0")
    page.locator("th a[data-column='metrics.m0']").click()
    page.wait_for_url(re.compile(r"ASC"))
    assert row_names(page) == ["alpha", "gamma", "beta"]

    page.get_by_text("Choose columns").click()
    page.get_by_label("tags.team").check()
    page.get_by_label("params.seed").uncheck()
    page.get_by_role("button", name="Show these columns").click()
    page.wait_for_url(re.compile(r"tags.team"))
    headers = page.locator("table.runs thead").inner_text()
    assert "team" in headers and "seed" not in headers
    assert row_names(page) == ["alpha", "gamma", "beta"]  # the sort is kept
    page.get_by_text("Choose columns").click()
    shot(page, "tracking-runs")


def test_run_page_charts_and_artifacts(page, personas, tracked):  # noqa: F811
    alpha = tracked.runs[0]
    login(page, personas.alice)
    page.goto(f"/runs/{alpha.run_uuid}/")
    traces = plot_data(page, "plot-metric-m0")
    assert len(traces) == 1 and traces[0]["y"] == RUNS[0][3] and traces[0]["x"] == [0, 1, 2]
    page.get_by_label("Wall time").check()
    page.wait_for_function("document.getElementById('plot-metric-m0').layout.xaxis.type"
                           " === 'date'")
    page.get_by_label("Relative time (s)").check()
    page.wait_for_function("JSON.stringify(document.getElementById('plot-metric-m0').data[0].x)"
                           " === '[0,1,2]'")
    page.get_by_role("link", name="data/").click()
    page.get_by_role("link", name="head.csv", exact=True).click()
    expect(page.get_by_role("table", name="First rows of head.csv")).to_be_visible()
    shot(page, "tracking-run-csv")
    page.get_by_role("link", name="artifacts", exact=True).click()
    page.get_by_role("link", name="notes.txt", exact=True).click()
    expect(page.locator("pre.text-preview")).to_contain_text("hello artifacts")
    page.wait_for_selector(f"#plot-metric-loss{RENDERED}")
    shot(page, "tracking-run")
    page.goto(f"/runs/{alpha.run_uuid}/?path=plots/curve.png#artifacts")
    image = page.get_by_role("img", name="Artifact image curve.png")
    expect(image).to_be_visible()
    assert page.evaluate("document.querySelector('.preview img').naturalWidth") == 96
    page.locator("#artifacts").screenshot(path=str(shot(page, "tracking-run-image")))


def test_compare_three_runs(page, personas, tracked):  # noqa: F811
    login(page, personas.alice)
    page.goto(f"/experiments/{tracked.experiment.pk}/")
    for name in ("alpha", "beta", "gamma"):
        page.get_by_label(f"Select run {name}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    page.wait_for_url(re.compile(r"/compare/"))
    expect(page.get_by_role("heading", name="Comparing 3 runs")).to_be_visible()
    values = {name: {"lr": lr, "m0": m0[-1], "loss": 1 - m0[-1]} for name, _, lr, m0 in RUNS}

    for key in ("m0", "loss"):
        traces = plot_data(page, f"plot-metric-{key}")
        assert sorted(t["name"] for t in traces) == sorted(values)
        assert all(len(t["y"]) == 3 for t in traces)

    labels = set(page.evaluate("document.getElementById('plot-parallel').layout.meta.dimensions"))
    assert {"params.lr", "params.seed", "metrics.m0", "metrics.loss"} <= labels
    assert "params.p1" not in labels  # not numeric
    lines = {t["name"]: t for t in plot_data(page, "plot-parallel")}
    assert sorted(lines) == sorted(values)  # one line per run, through every axis
    assert all(len(t["y"]) == len(labels) and 0 <= min(t["y"]) <= max(t["y"]) <= 1
               for t in lines.values())
    page.get_by_label("Color lines by").select_option("loss")
    page.wait_for_function("document.getElementById('plot-parallel').layout.meta.colorBy"
                           " === 'loss'")
    colors = {t["name"]: t["line"]["color"] for t in plot_data(page, "plot-parallel")}
    worst = max(values, key=lambda name: values[name]["loss"])
    assert colors[worst] == "rgb(196,40,28)"  # red: the highest loss

    page.locator("#scatter-x").select_option("params.lr")
    page.locator("#scatter-y").select_option("metrics.m0")
    page.wait_for_function("document.getElementById('plot-scatter').layout.yaxis.title.text"
                           " === 'metrics.m0' && document.getElementById('plot-scatter')"
                           ".layout.xaxis.title.text === 'params.lr'")
    scatter = plot_data(page, "plot-scatter")[0]
    points = {name: (x, y) for name, x, y in zip(scatter["text"], scatter["x"], scatter["y"],
                                                strict=True)}
    assert points == {name: (v["lr"], pytest.approx(v["m0"])) for name, v in values.items()}

    seed_row = page.locator("#compare-params tr", has_text="seed")
    expect(seed_row).to_be_visible()
    page.get_by_label("Show only rows whose values differ").check()
    expect(seed_row).to_be_hidden()
    expect(page.locator("#compare-params tr.differs", has_text="p1")).to_be_visible()
    page.get_by_label("Show only rows whose values differ").uncheck()
    shot(page, "tracking-compare")
    # like the runs table, the comparison uses a wide window's whole width
    page.set_viewport_size({"width": 1920, "height": 1000})
    assert page.evaluate("document.querySelector('main').getBoundingClientRect().width") > 1800
