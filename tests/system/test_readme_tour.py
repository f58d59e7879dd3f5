"""The README's tour without a server: which blocks `readme_tour` finds, which it runs and why
the others not; `test_make_run.py` runs them against `make run`."""

import os
import re
import sys
from pathlib import Path

import pytest

from tests.system import readme_tour
from tests.system.readme_tour import TourError, parse, problems

README = Path(__file__).resolve().parents[2] / "README.md"
# `python` for the session's python blocks: this interpreter's
PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"


def _blocks():
    return parse(README.read_text())


def test_it_finds_each_personas_blocks_under_their_headings():
    blocks = _blocks()
    runs = [block for block in blocks if block.runs]
    headings = {block.heading for block in runs}
    assert {"A short tour", "Tracking with the mlflow client",
            "The model registry, approvals and scoring", "Projects", "Disclosures (GDPR Art. 15)",
            "The audit trail", "Administration commands"} <= headings
    text = "".join(block.text for block in runs)
    for persona in ("$TOKEN_DS", "$TOKEN_CO", "$TOKEN_AUDITOR"):
        assert persona in text
    assert any(block.tag == "python" and "mlflow.start_run" in block.text for block in runs)
    assert any("ledgerflow status $PROJECT_RUN --wait" in block.text for block in runs)
    assert any("-o disclosure.pdf" in block.text for block in runs)
    assert any("audit.offline" in block.text for block in runs)
    assert any("manage.py token_create" in block.text for block in runs)


def test_every_command_block_runs_or_says_why_not():
    blocks = _blocks()
    assert problems(blocks) == []
    commands = [block for block in blocks if block.is_command]
    assert all(block.runs or block.not_run for block in commands)
    skipped = {block.heading: block.not_run for block in commands if not block.runs}
    assert set(skipped) == {"Two commands", "Projects"}, skipped
    assert "make run" in next(b.text for b in blocks if b.heading == "Two commands")
    # only the untagged banner is text, and it is shown, not run
    assert [block.heading for block in blocks if not block.is_command] == ["A short tour"]
    assert readme_tour.blocks_to_run(README.read_text()) == [b for b in blocks if b.runs]


def test_no_command_hard_codes_the_default_address():
    for block in _blocks():
        if block.is_command:
            assert "127.0.0.1:8000" not in block.text and "localhost:8000" not in block.text, \
                block.where()
    hard_coded = parse("## Here\n\n```sh\ncurl http://localhost:8000/health\n```\n"
                       "```python\nmlflow.set_tracking_uri('http://127.0.0.1:8080')\n```\n")
    assert problems(hard_coded) == [
        "README.md line 3, under 'Here': localhost:8000 hard-coded; use $LEDGERFLOW_URL",
        "README.md line 6, under 'Here': 127.0.0.1:8080 hard-coded; use $LEDGERFLOW_URL"]


def test_every_file_a_block_reads_is_in_the_repository():
    text = "".join(block.text for block in _blocks() if block.runs)
    named = set(re.findall(r"\bexamples/[\w.-]+(?:/[\w.-]+)*", text))
    assert {"examples/predict.json", "examples/profile.json", "examples/credit-project"} <= named
    assert [name for name in named if not (README.parent / name).exists()] == []
    assert (README.parent / "examples/credit-project/MLproject").is_file()


def test_markers_need_a_reason_and_a_block():
    marked = parse("# A\n\n<!-- tour: not run (starts a server) -->\n\n```sh\nmake run\n```\n")
    assert (marked[0].not_run, marked[0].runs, marked[0].line) == ("starts a server", False, 5)
    for broken in ("<!-- tour: not run -->\n```sh\nls\n```\n",  # no reason
                   "<!-- tour: skip (x) -->\n```sh\nls\n```\n",  # not the marker
                   "<!-- tour: not run (x) -->\nSome text.\n```sh\nls\n```\n",  # not the block's
                   "<!-- tour: not run (x) -->\n"):  # precedes no block
        with pytest.raises(TourError):
            parse(broken)


def test_other_tags_are_refused_and_text_is_never_run():
    blocks = parse("```\noutput\n```\n```console\n$ ls\n```\n```python\nprint(1)\n```\n")
    assert [(b.tag, b.runs) for b in blocks] == [("", False), ("console", False),
                                                  ("python", True)]
    assert problems(blocks) == ["README.md line 4, under '(before any heading)': unknown tag "
                                "'console' (tag commands sh, bash, shell, python; leave output "
                                "untagged)"]


def test_banner_exports_are_pasted_first():
    banner = ("  URL:    http://127.0.0.1:1234/\n  export LEDGERFLOW_URL=http://127.0.0.1:1234\n"
              "  export MLFLOW_TRACKING_URI=$LEDGERFLOW_URL MLFLOW_TRACKING_TOKEN=$TOKEN_DS\n")
    block = readme_tour.banner_exports(banner)
    assert block.text == ("export LEDGERFLOW_URL=http://127.0.0.1:1234\n"
                          "export MLFLOW_TRACKING_URI=$LEDGERFLOW_URL "
                          "MLFLOW_TRACKING_TOKEN=$TOKEN_DS\n")


def test_one_session_carries_variables_and_stops_at_the_first_failure(tmp_path):
    """The session itself, on blocks of our own: what a block sets, the next one has; a
    failing command fails its block, and its output is in the report."""
    session = readme_tour.Session(tmp_path, {"PATH": PATH}, tmp_path)
    try:
        first = session.run(readme_tour.Block("H", "sh", "export RUN_ID=$(echo abc)\nTAG=x\n", 1))
        second = session.run(readme_tour.Block("H", "python",
                                               "import os\nprint(os.environ['RUN_ID'])\n", 2))
        third = session.run(readme_tour.Block("H", "sh", "echo $TAG $RUN_ID\nfalse\necho no\n", 3))
        fourth = session.run(readme_tour.Block("H", "sh", "echo never\n", 4))
    finally:
        session.close()
    assert (first.ok, first.status) == (True, "exit 0")
    assert (second.ok, second.output) == (True, "abc\n")
    assert (third.ok, third.status, third.output) == (False, "exit 1", "x abc\n")
    assert "echo $TAG $RUN_ID" in third.report() and "under 'H'" in third.report()
    assert fourth.ok is False and fourth.status.startswith("not run")


def test_a_block_that_hangs_times_out(tmp_path):
    session = readme_tour.Session(tmp_path, {"PATH": PATH}, tmp_path)
    try:
        result = session.run(readme_tour.Block("H", "sh", "echo started\nsleep 60\n", 1),
                             timeout=1)
    finally:
        session.close()
    assert (result.ok, result.status, result.output) == (False, "timed out after 1s",
                                                         "started\n")
