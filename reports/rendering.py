"""The Art. 15 disclosure as a PDF/A-3b: HTML from a Django template, PDF from WeasyPrint.

The content dict (reports/CONTENT.md) is turned into a view of display strings here, so the
template only places them; numbers and dates are formatted per language (reports/formatting.py),
the effects chart drawn as SVG (reports/chart.py).
The canonical JSON of the content is attached as `disclosure.json` byte for byte, because the
SHA-256 printed on the cover and recorded in the audit trail is computed over those bytes.
"""

import datetime as dt
import functools
import io
import re

import pydyf
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from weasyprint import HTML, Attachment
from weasyprint.urls import URLFetcher

from audit.canonical import dumps
from reports.chart import contribution_chart_svg
from reports.formatting import format_date, format_number
from reports.texts import TEXTS

__all__ = ["disclosure_html", "figure_boxes_on_page", "format_date", "format_number",
           "json_attachment", "render_disclosure_pdf", "render_pdf"]


# --- texts ------------------------------------------------------------------------------------

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
        "legal": _legal_view(decision, language),
        "score": number(decision["score"]), "cut_off": number(decision["cut_off"]),
        "outcome": _outcome(decision["outcome"], language),
        "score_kind": t["score_kinds"].get(decision.get("score_scale"), decision.get("score_scale")),
        "result_text": t["result_text"].format(score=number(decision["score"]),
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


def _legal_view(decision: dict, language: str) -> list[tuple[str, str, str]]:
    """(row heading, value, where it comes from) for the legal basis, the Art. 22(2) ground and
    the recipients: the decision record's own entry, or the organization's profile."""
    t = _texts(language)
    origin, recorded = decision.get("origin") or {}, decision.get("recorded") or {}
    rows = []
    for name, heading in (("legal_basis", "legal_basis"), ("art22_ground", "art22_ground"),
                          ("recipients", "recipients")):
        value = decision.get(name)
        shown = "; ".join(value) if isinstance(value, list) else str(value or "")
        note = ""
        if origin.get(name) == "profile":
            note = t["origin_profile"]
        elif origin.get(name) == "decision":
            raw = recorded.get(name)
            raw = "; ".join(raw) if isinstance(raw, list) else str(raw or "")
            note = t["origin_decision"] if raw in ("", shown) else \
                t["origin_decision_as"].format(recorded=raw)
        rows.append((t[heading], shown, note))
    return rows


def _labels(decision: dict) -> dict:
    """Feature -> its plain-language name, for every feature the document names."""
    return {**(decision["model"].get("labels") or {}),
            **{i["feature"]: i["label"] for i in decision["inputs"]}}


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
        "weights": [(labels.get(f, f), format_number(values.get(f), language))
                    for f in [*model["features"], *sorted(set(values) - set(model["features"]))]],
        "intercept": (format_number(weights["intercept"], language)
                      if weights.get("intercept") is not None else None),
        "logic": paragraphs,
        "training": sorted((model.get("training_parameters") or {}).items()),
    }


def _effects_view(decision: dict, language: str) -> list:
    directions = _texts(language)["directions"]
    return [{"label": c["label"], "value": format_number(c["value"], language),
             "effect": format_number(c["contribution"], language, signed=True),
             "direction": directions.get(c["direction"], c["direction"])}
            for c in decision["contributions"]]


def _method_text(decision: dict, language: str) -> str:
    t, method = _texts(language), decision.get("contribution_method")
    if method == "linear-exact":
        scale = decision.get("contribution_scale")
        return t["method_linear"].format(base=format_number(decision.get("base_value"), language),
                                         scale=t["scales"].get(scale, scale))
    if method == "reference-substitution":
        return t["method_substitution"]
    if method == "tree-shap":
        scale = decision.get("contribution_scale")
        return t["method_tree_shap"].format(
            base=format_number(decision.get("base_value"), language),
            scale=t["scales"].get(scale, scale))
    return t["method_other"].format(method=method) if method else ""


def _counterfactual_view(decision: dict, language: str) -> dict:
    t, cf = _texts(language), decision.get("counterfactual")
    if not cf:
        return {"text": t["counterfactual_none"], "note": decision.get("counterfactual_note") or ""}
    text = t["counterfactual"].format_map({
        "label": cf["label"], "from": format_number(cf["from"], language),
        "to": format_number(cf["to"], language), "score": format_number(cf["score"], language),
        "outcome": _outcome(cf["outcome"], language)})
    return {"text": text, "note": t["counterfactual_verified" if cf.get("verified")
                                    else "counterfactual_unverified"]}


# --- the PDF ----------------------------------------------------------------------------------

def _no_fetching() -> URLFetcher:
    # Everything the document needs is inline; a URL smuggled into a value must not be fetched.
    return URLFetcher(allowed_protocols=())


def json_attachment(content: dict, name: str, description: str) -> Attachment:
    """The content's canonical JSON, byte for byte what its anchored SHA-256 was computed over
    (AFRelationship /Data)."""
    created = _generated_at(content)
    return Attachment(file_obj=io.BytesIO(dumps(content)), name=name, description=description,
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
    return render_pdf(disclosure_html(content, anchor), json_attachment(
        content, "disclosure.json", TEXTS[content["language"]]["attachment_description"]))


def render_pdf(html: str, attachment: Attachment) -> bytes:
    """`html` (inline, nothing fetched) as a tagged PDF/A-3b carrying `attachment`."""
    document = HTML(string=html, url_fetcher=_no_fetching())
    return document.write_pdf(pdf_variant="pdf/a-3b", pdf_tags=True, attachments=[attachment],
                              finisher=figure_boxes_on_page)


PT_PER_PX = 0.75  # 72 PDF points per inch / 96 CSS pixels per inch


def figure_boxes_on_page(document, pdf: pydyf.PDF) -> None:
    """Each tagged Figure's Layout BBox in default user space, as PDF requires (ISO 32000-1,
    14.8.5.4.3): points from the page's bottom left. WeasyPrint 70 writes the box's CSS pixels
    from the top left instead, so a chart low on an A4 page got a box beyond the page's edges,
    and a screen reader or a reflowing viewer found it nowhere. Run as WeasyPrint's finisher,
    on the PDF objects before they are written."""
    heights = {reference: page.height * PT_PER_PX
               for reference, page in zip(pdf.page_references, document.pages, strict=True)}
    for item in pdf.objects:
        if not isinstance(item, dict) or item.get("S") != "/Figure":
            continue
        layout = item.get("A")
        if isinstance(layout, dict) and "BBox" in layout and item.get("Pg") in heights:
            left, top, right, bottom = (float(v) * PT_PER_PX for v in layout["BBox"])
            height = heights[item["Pg"]]
            layout["BBox"] = pydyf.Array(round(v, 3) for v in (left, height - bottom, right,
                                                                 height - top))
