"""The Art. 15 disclosure as a PDF/A-3b: HTML from a Django template, PDF from WeasyPrint.

The content dict (reports/CONTENT.md) is turned into a view of display strings here, so the
template only places them; all numbers and dates are formatted per language in this module.
The canonical JSON of the content is attached as `disclosure.json` byte for byte, because the
SHA-256 printed on the cover and recorded in the audit trail is computed over those bytes.
"""

import datetime as dt
import functools
import html
import io
import math
import re

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from weasyprint import HTML, Attachment
from weasyprint.urls import URLFetcher

from audit.canonical import dumps
from reports.texts import TEXTS

MINUS = "\u2212"  # a real minus sign: screen readers say "minus", and it is as wide as "+"
EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")
RAISED_COLOUR = "#1d4ed8"   # blue, 6.7:1 against white
LOWERED_COLOUR = "#c2410c"  # orange-red, 5.2:1 against white; blue/orange also survives colour blindness


# --- formatting -------------------------------------------------------------------------------

def format_number(value, language: str, digits: int | None = None, signed: bool = False) -> str:
    """A number for display: exact by default (the copy of the data must not round), or rounded
    to `digits` significant digits for effects and weights. Strings pass through unchanged."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return TEXTS[language]["yes" if value else "no"]
    if not isinstance(value, int | float):
        return str(value)
    text = _plain(abs(value), digits)
    if language == "de":
        text = text.replace(".", ",")
    if value < 0 and text.strip("0,.") != "":
        return MINUS + text
    return ("+" + text) if signed and value > 0 else text


def _plain(magnitude: float, digits: int | None) -> str:
    if isinstance(magnitude, int):
        return str(magnitude)
    if magnitude == 0 or not math.isfinite(magnitude):
        return "0" if magnitude == 0 else str(magnitude)
    if digits is None:
        text = repr(magnitude)
        if "e" not in text:  # repr is the shortest exact form; only exponents need rewriting
            return text.removesuffix(".0")
        decimals = min(20, max(0, 16 - math.floor(math.log10(magnitude))))
    else:
        decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    text = f"{magnitude:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_date(value: str | None, language: str) -> str:
    """An ISO 8601 date or UTC timestamp for display; unknown forms are shown as they are."""
    if not value:
        return "—"
    if not isinstance(value, str):
        return str(value)
    try:
        if "T" not in value:
            return _date(dt.date.fromisoformat(value), language)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return f"{_date(moment.date(), language)}, {moment:%H:%M} UTC"


def _date(day: dt.date, language: str) -> str:
    if language == "de":
        return f"{day:%d.%m.%Y}"
    return f"{day.day} {EN_MONTHS[day.month - 1]} {day.year}"


# "Art. 15" and "15 DSGVO" must not break apart at a line end (a lone "DSGVO)" on the next line)
_GLUE_AFTER = re.compile(r"(?<!\w)(Art\.|Abs\.|lit\.|Nr\.|§) ")
_GLUE_BEFORE = re.compile(r" (DSGVO|GDPR|BDSG)\b")


def _glued(value):
    if isinstance(value, dict):
        return {key: _glued(item) for key, item in value.items()}
    return _GLUE_BEFORE.sub("\u00a0\\1", _GLUE_AFTER.sub("\\1\u00a0", value))


@functools.cache
def _texts(language: str) -> dict:
    """TEXTS for the language, with no-break spaces inside legal citations."""
    return _glued(TEXTS[language])


def _outcome(value, language: str) -> str:
    """Known outcome codes in words; any other outcome label as the content has it."""
    if isinstance(value, str):
        return TEXTS[language]["outcomes"].get(value, value)
    return format_number(value, language)


# --- the chart --------------------------------------------------------------------------------

CHART_WIDTH, ROW, LABEL_END, BAR_LEFT, BAR_RIGHT = 640, 22, 226, 300, 580
LABEL_CHARS = 34


def contribution_chart_svg(contributions: list, language: str, *, chart_id: str = "chart") -> str:
    """A horizontal bar chart of the per-feature effects as inline SVG markup (escaped here,
    since the template inserts it as safe). Raised bars go right of the zero line, lowered bars
    left; each row also carries its signed value, so colour is never the only cue. `chart_id`
    keeps the ids of several charts in one document apart."""
    t = TEXTS[language]
    zero = (BAR_LEFT + BAR_RIGHT) / 2
    largest = max((abs(c["contribution"]) for c in contributions), default=0) or 1
    rows = [_chart_row(i, c, zero, (BAR_RIGHT - zero) / largest, language)
            for i, c in enumerate(contributions)]
    bottom = 6 + ROW * len(contributions)
    height = bottom + 30
    legend = _chart_legend(bottom + 14, t)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{CHART_WIDTH}" height="{height}" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'font-family="DejaVu Sans" font-size="11">'
        f'<title id="{chart_id}-title">{_e(t["chart_title"])}</title>'
        f'<desc id="{chart_id}-desc">{_e(t["chart_desc"])}</desc>'
        + "".join(rows)
        + f'<line x1="{zero}" y1="2" x2="{zero}" y2="{bottom + 2}" stroke="#222" stroke-width="1"/>'
        + legend + "</svg>"
    )


def _chart_row(index: int, item: dict, zero: float, scale: float, language: str) -> str:
    y = 6 + index * ROW
    middle = y + ROW / 2 + 4  # text baseline, roughly centred on the bar
    value = item["contribution"]
    width = abs(value) * scale
    label = item.get("label") or item.get("feature", "")
    if len(label) > LABEL_CHARS:  # the full label is in the table next to the chart
        label = label[:LABEL_CHARS - 1] + "…"
    text = format_number(value, language, digits=3, signed=True)
    parts = [f'<text x="{LABEL_END}" y="{middle}" text-anchor="end">{_e(label)}</text>']
    if value > 0:
        parts.append(f'<rect x="{zero}" y="{y + 4}" width="{width:.1f}" height="{ROW - 8}" '
                     f'fill="{RAISED_COLOUR}"/>')
        parts.append(f'<text x="{zero + width + 4:.1f}" y="{middle}">{_e(text)}</text>')
    elif value < 0:
        parts.append(f'<rect x="{zero - width:.1f}" y="{y + 4}" width="{width:.1f}" '
                     f'height="{ROW - 8}" fill="{LOWERED_COLOUR}"/>')
        parts.append(f'<text x="{zero - width - 4:.1f}" y="{middle}" text-anchor="end">{_e(text)}</text>')
    else:
        parts.append(f'<text x="{zero + 4}" y="{middle}">{_e(text)}</text>')
    return "".join(parts)


def _chart_legend(y: float, t: dict) -> str:
    # mirrors the bars: "lowered" left of the zero line, "raised" right of it
    directions, zero = t["directions"], (BAR_LEFT + BAR_RIGHT) / 2
    return (
        f'<rect x="{zero - 14}" y="{y - 9}" width="10" height="10" fill="{LOWERED_COLOUR}"/>'
        f'<text x="{zero - 18}" y="{y}" text-anchor="end">{_e(directions["lowered"])}</text>'
        f'<rect x="{zero + 4}" y="{y - 9}" width="10" height="10" fill="{RAISED_COLOUR}"/>'
        f'<text x="{zero + 18}" y="{y}">{_e(directions["raised"])}</text>'
    )


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


# --- the view the template renders ------------------------------------------------------------

def disclosure_html(content: dict, anchor: dict) -> str:
    """The disclosure as HTML (autoescaped Django template); render_disclosure_pdf prints it."""
    language = content["language"]
    t = _texts(language)
    context = {
        "t": t, "lang": language, "content": content, "anchor": anchor,
        "title": f'{TEXTS[language]["doc_title"]} \u2013 {content["request"]["id"]}',  # metadata: plain
        "request": _request_view(content["request"], language),
        "generated_at": format_date(content.get("generated_at"), language),
        "signed_at": format_date(anchor["checkpoint"].get("signed_at"), language),
        "rights_contact": t["rights_contact"].format(dpo=content["controller"]["dpo_contact"]),
        "decisions": [_decision_view(d, language, n) for n, d in enumerate(content["decisions"])],
    }
    return render_to_string("reports/disclosure.html", context)


def _request_view(request: dict, language: str) -> dict:
    view = dict(request)
    for key in ("received_on", "due_on", "extended_until"):
        view[key] = format_date(request.get(key), language) if request.get(key) else None
    return view


def _decision_view(decision: dict, language: str, number_in_document: int) -> dict:
    t = _texts(language)
    number = lambda value: format_number(value, language)  # noqa: E731
    review = decision.get("review")
    return {
        "raw": decision,
        "heading": t["decision_heading"].format(date=format_date(decision["made_at"], language)),
        "review_at": format_date(review.get("at"), language) if review else None,
        "inputs": [dict(i, value=number(i["value"]), collected_at=format_date(i["collected_at"], language))
                   for i in decision["inputs"]],
        "score": number(decision["score"]), "cut_off": number(decision["cut_off"]),
        "outcome": _outcome(decision["outcome"], language),
        "score_kind": t["score_kinds"].get(decision.get("score_scale"), decision.get("score_scale")),
        # prose rounds to four significant digits; the tables and disclosure.json are exact
        "result_text": t["result_text"].format(score=format_number(decision["score"], language, 4),
                                               cut_off=number(decision["cut_off"]),
                                               outcome=_outcome(decision["outcome"], language)),
        "model": _model_view(decision, language),
        "effects": _effects_view(decision, language),
        "method_text": _method_text(decision, language),
        "chart": mark_safe(contribution_chart_svg(  # noqa: S308 (escaped inside)
            decision["contributions"], language, chart_id=f"chart-{number_in_document}")),
        "counterfactual": _counterfactual_view(decision, language),
        "ai_role": t["ai_role_solely" if decision["solely_automated"] else "ai_role_reviewed"],
    }


def _labels(decision: dict) -> dict:
    return {i["feature"]: i["label"] for i in decision["inputs"]}


def _model_view(decision: dict, language: str) -> dict:
    t, model = _texts(language), decision["model"]
    weights = model.get("weights") or {}
    kind = weights.get("kind")
    labels = _labels(decision)
    logic = {"coefficients": [t["logic_coefficients"]], "importances": [t["logic_importances"]]}
    paragraphs = logic.get(kind, [t["logic_none"]])
    if kind == "coefficients" and decision.get("contribution_scale") == "log-odds":
        paragraphs = [*paragraphs, t["logic_logistic"]]
    values = weights.get("values") or {}
    return {
        "raw": model,
        "registered_at": format_date(model.get("registered_at"), language),
        "weights_header": {"coefficients": t["col_coefficient"],
                           "importances": t["col_importance"]}.get(kind),
        # every feature in the model's order, so the table reads like the model's definition
        "weights": [(labels.get(f, f), format_number(values.get(f), language, digits=4))
                    for f in [*model["features"], *sorted(set(values) - set(model["features"]))]],
        "intercept": (format_number(weights["intercept"], language, digits=4)
                      if weights.get("intercept") is not None else None),
        "logic": paragraphs,
        "training": sorted((model.get("training_parameters") or {}).items()),
    }


def _effects_view(decision: dict, language: str) -> list:
    directions = _texts(language)["directions"]
    return [{"label": c["label"], "value": format_number(c["value"], language),
             "effect": format_number(c["contribution"], language, digits=3, signed=True),
             "direction": directions.get(c["direction"], c["direction"])}
            for c in decision["contributions"]]


def _method_text(decision: dict, language: str) -> str:
    t, method = _texts(language), decision.get("contribution_method")
    if method == "linear-exact":
        scale = decision.get("contribution_scale")
        return t["method_linear"].format(base=format_number(decision.get("base_value"), language, 4),
                                         scale=t["scales"].get(scale, scale))
    if method == "reference-substitution":
        return t["method_substitution"]
    if method == "tree-shap":
        scale = decision.get("contribution_scale")
        return t["method_tree_shap"].format(
            base=format_number(decision.get("base_value"), language, 4),
            scale=t["scales"].get(scale, scale))
    return t["method_other"].format(method=method) if method else ""


def _counterfactual_view(decision: dict, language: str) -> dict:
    t, cf = _texts(language), decision.get("counterfactual")
    if not cf:
        return {"text": t["counterfactual_none"], "note": decision.get("counterfactual_note") or ""}
    text = t["counterfactual"].format_map({
        "label": cf["label"], "from": format_number(cf["from"], language),
        "to": format_number(cf["to"], language), "score": format_number(cf["score"], language, 4),
        "outcome": _outcome(cf["outcome"], language)})
    return {"text": text, "note": t["counterfactual_verified" if cf.get("verified")
                                    else "counterfactual_unverified"]}


# --- the PDF ----------------------------------------------------------------------------------

def _no_fetching() -> URLFetcher:
    # Everything the document needs is inline; a URL smuggled into a value must not be fetched.
    return URLFetcher(allowed_protocols=())


def _attachment(content: dict) -> Attachment:
    created = _generated_at(content)
    return Attachment(file_obj=io.BytesIO(dumps(content)), name="disclosure.json",
                      description=TEXTS[content["language"]]["attachment_description"],
                      created=created, modified=created, relationship="Data",
                      url_fetcher=_no_fetching())


def _generated_at(content: dict) -> dt.datetime:
    # The attachment dates come from the content, so the same content renders the same way.
    try:
        moment = dt.datetime.fromisoformat(content["generated_at"])
    except (KeyError, TypeError, ValueError):
        return dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment


def render_disclosure_pdf(content: dict, anchor: dict) -> bytes:
    """The disclosure as a tagged PDF/A-3b with the canonical JSON attached as disclosure.json
    (AFRelationship /Data)."""
    document = HTML(string=disclosure_html(content, anchor), url_fetcher=_no_fetching())
    return document.write_pdf(pdf_variant="pdf/a-3b", pdf_tags=True,
                              attachments=[_attachment(content)])
