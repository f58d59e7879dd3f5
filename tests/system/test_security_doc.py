"""docs/security.md names, for each requirement, the test that proves it: every file and test
it names exists, so the page cannot point at a proof that went away."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_the_security_page_names_exists():
    page = (ROOT / "docs" / "security.md").read_text()
    named = re.findall(r"`([a-z_]+/test_[a-z_]+\.py)(?:::([a-z_0-9]+))?`", page)
    assert len(named) >= 20
    missing = []
    for path, test in named:
        source = ROOT / "tests" / path
        if not source.is_file():
            missing.append(path)
        elif test and not re.search(rf"^def {test}\(", source.read_text(), re.M):
            missing.append(f"{path}::{test}")
    assert missing == []
