"""Helpers the tracking pages share: 404 for other organizations' ids, times, query strings."""

import re
from datetime import UTC, datetime

from django.http import QueryDict

from tenancy.web import found
from tracking import selectors

MAX_COMPARED = 100  # runs on one compare page or in one chart request


def experiment_or_404(request, experiment_id: str):
    return found(selectors.experiment_get, org=request.access.org, experiment_id=experiment_id)


def run_or_404(request, run_id: str):
    return found(selectors.run_get, org=request.access.org, run_id=run_id)


def run_ids_param(request) -> list[str]:
    """`?runs=a,b` or `?runs=a&runs=b` (what a form of checkboxes sends), in order, once each."""
    ids = []
    for value in request.GET.getlist("runs"):
        ids += [part.strip() for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(ids))


def when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(start_ms: int | None, end_ms: int | None) -> str:
    if start_ms is None or end_ms is None or end_ms < start_ms:
        return ""
    seconds = (end_ms - start_ms) / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def number(value: float, is_nan: bool = False) -> str:
    """A metric as people read it: up to 6 significant digits, NaN spelled out."""
    if is_nan:
        return "NaN"
    return f"{value:.6g}"


def query(params: QueryDict, **changes) -> str:
    """The current query string with some parameters replaced (None drops one)."""
    updated = params.copy()
    for name, value in changes.items():
        if value is None:
            updated.pop(name, None)
        else:
            updated[name] = value
    encoded = updated.urlencode()
    return f"?{encoded}" if encoded else "?"


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quoted_key(key: str) -> str:
    """A key as MLflow's filter and order-by grammar spells it: backticks unless a plain name."""
    return key if _IDENTIFIER.match(key) else f"`{key}`"
