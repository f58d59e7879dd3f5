"""The disclosure PDF: what a customer, an archive and an auditor each get out of it.

Pure rendering, no database: the sample content follows reports/CONTENT.md, with two decisions
by two model versions (a logistic regression with coefficients and a counterfactual, a decision
tree with importances, address data and a note instead of a counterfactual). Each PDF is
checked with the poppler and qpdf tools a reader or an archive would use.
"""

import base64
import copy
import hashlib
import json
import math
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from audit.canonical import dumps
from reports.chart import LABEL_WIDTH, contribution_chart_svg, text_width, wrap_label
from reports.rendering import disclosure_html, format_number, render_disclosure_pdf
from reports.texts import TEXTS

# Organization texts, in the content's language as CONTENT.md requires.
ORG = {
    "en": {
        "purposes": "Assessing creditworthiness for consumer loans.",
        "legal_basis": "Art. 6(1)(b) GDPR (steps prior to entering into a contract)",
        "art22_ground": "Art. 22(2)(a) GDPR: necessary for entering into the loan contract",
        "categories": ["Income and assets", "Address data", "Existing obligations"],
        "recipients": "SCHUFA Holding AG (credit reference agency)",
        "transfers": "None. Your data is not transferred to countries outside the EU/EEA.",
        "retention": "Ten years after the end of the business relationship (§ 257 HGB).",
        "sources": "Your loan application and SCHUFA Holding AG.",
        "human_review": "A credit officer can review any decision on request.",
        "consequences": "If declined, we cannot offer you the loan applied for.",
        "identity": "ID card checked at branch 12",
        "note": "No single change of one value within realistic ranges would have changed the outcome.",
        "withheld_what": "The split thresholds of the decision tree",
        "withheld_why": "Trade secret; disclosing them would allow the model to be gamed.",
        "source_app": "Your loan application", "source_schufa": "SCHUFA Holding AG",
        "income": "Monthly net income", "debt": "Debt ratio", "years": "Years at current address",
        "postcode": "Postcode", "loans": "Number of existing loans",
        "income_meaning": "Your income after tax per month, in euros.",
        "debt_meaning": "The share of your income that goes to existing loans.",
        "years_meaning": "How long you have lived at your present address.",
        "postcode_meaning": "The postcode of your present address.",
        "loans_meaning": "How many loans you are repaying at present.",
        "recorded_ground": "Art. 22(2)(a) GDPR",
    },
    "de": {
        "purposes": "Prüfung der Kreditwürdigkeit für Verbraucherkredite.",
        "legal_basis": "Art. 6 Abs. 1 lit. b DSGVO (vorvertragliche Maßnahmen)",
        "art22_ground": "Art. 22 Abs. 2 lit. a DSGVO: für den Abschluss des Kreditvertrags erforderlich",
        "categories": ["Einkommen und Vermögen", "Anschriftendaten", "Bestehende Verpflichtungen"],
        "recipients": "SCHUFA Holding AG (Auskunftei)",
        "transfers": "Keine. Ihre Daten werden nicht in Länder außerhalb der EU/des EWR übermittelt.",
        "retention": "Zehn Jahre nach Ende der Geschäftsbeziehung (§ 257 HGB).",
        "sources": "Ihr Kreditantrag und die SCHUFA Holding AG.",
        "human_review": "Eine Kreditsachbearbeiterin kann jede Entscheidung auf Wunsch prüfen.",
        "consequences": "Bei einer Ablehnung können wir Ihnen den beantragten Kredit nicht anbieten.",
        "identity": "Personalausweis in Filiale 12 geprüft",
        "note": "Keine einzelne Änderung eines Werts in realistischem Rahmen hätte das Ergebnis geändert.",
        "withheld_what": "Die Schwellenwerte des Entscheidungsbaums",
        "withheld_why": "Geschäftsgeheimnis; ihre Offenlegung würde Manipulation ermöglichen.",
        "source_app": "Ihr Kreditantrag", "source_schufa": "SCHUFA Holding AG",
        "income": "Monatliches Nettoeinkommen", "debt": "Verschuldungsquote",
        "years": "Jahre an der aktuellen Anschrift", "postcode": "Postleitzahl",
        "loans": "Anzahl bestehender Kredite",
        "income_meaning": "Ihr monatliches Einkommen nach Steuern, in Euro.",
        "debt_meaning": "Der Anteil Ihres Einkommens, der auf bestehende Kredite entfällt.",
        "years_meaning": "Wie lange Sie an Ihrer jetzigen Anschrift wohnen.",
        "postcode_meaning": "Die Postleitzahl Ihrer jetzigen Anschrift.",
        "loans_meaning": "Wie viele Kredite Sie derzeit zurückzahlen.",
        "recorded_ground": "Art. 22(2)(a) GDPR",
    },
}
HEX = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("event", "root", "chain", "ref")}


def _input(o, feature, label, value, source, collected, address=False):
    return {"feature": feature, "label": o[label], "meaning": o[f"{label}_meaning"],
            "category": o["categories"][0], "source": o[source], "collected_at": collected,
            "is_address_data": address, "value": value}


def _labels(o, **features) -> dict:
    return {feature: o[key] for feature, key in features.items()}


def _logistic_decision(o, language: str):
    return {
        "id": "0b6c8f2e-5d0a-4c47-9a0e-3f1d2c4b5a61", "made_at": "2026-10-05T09:12:00Z",
        "purpose": o["purposes"], "legal_basis": o["legal_basis"],
        "art22_ground": TEXTS[language]["art22_grounds"]["a"],
        "solely_automated": True, "review": None, "recipients": ["SCHUFA Holding AG"],
        # all three recorded with the decision; its ground as the law's words in the language
        "origin": {"legal_basis": "decision", "art22_ground": "decision", "recipients": "decision"},
        "recorded": {"legal_basis": o["legal_basis"], "art22_ground": o["recorded_ground"],
                     "recipients": ["SCHUFA Holding AG"]},
        "model": {
            "name": "credit-risk", "version": 2, "registered_at": "2026-09-01T08:00:00Z",
            "package_digest": "sha256:" + HEX["chain"],
            "type": "Logistic regression (sklearn.linear_model.LogisticRegression)",
            "features": ["income", "debt_ratio", "years_at_address"],
            "training_parameters": {"C": "1.0", "max_iter": "200", "rows": "400"},
            "weights": {"kind": "coefficients", "intercept": -1.3,
                        "values": {"income": 0.00042, "debt_ratio": -4.8, "years_at_address": 0.03}},
            "labels": _labels(o, income="income", debt_ratio="debt", years_at_address="years"),
        },
        "inputs": [_input(o, "income", "income", 3217.5, "source_app", "2026-10-01"),
                   _input(o, "debt_ratio", "debt", 0.45, "source_app", "2026-10-01"),
                   _input(o, "years_at_address", "years", 7, "source_app", "2026-10-01", address=True)],
        "address_data_used": True,
        "score": 0.4134, "cut_off": 0.5, "outcome": "declined", "score_scale": "probability",
        "contribution_method": "linear-exact", "contribution_scale": "log-odds", "base_value": -0.1,
        "contributions": [
            {"feature": "debt_ratio", "label": o["debt"], "value": 0.45, "contribution": -0.72,
             "direction": "lowered"},
            {"feature": "income", "label": o["income"], "value": 3217.5, "contribution": 0.41,
             "direction": "raised"},
            {"feature": "years_at_address", "label": o["years"], "value": 7, "contribution": 0.06,
             "direction": "raised"}],
        "counterfactual": {"feature": "debt_ratio", "label": o["debt"], "from": 0.45, "to": 0.3,
                           "score": 0.5262, "outcome": "approved", "verified": True},
        "counterfactual_note": "",
    }


def _tree_decision(o):
    return {
        "id": "7d2e9a14-1b3c-4f5e-8a6b-9c0d1e2f3a4b", "made_at": "2026-03-14T15:40:00Z",
        "purpose": o["purposes"], "legal_basis": o["legal_basis"], "art22_ground": o["art22_ground"],
        "solely_automated": False, "recipients": [o["recipients"]],
        # none recorded with the decision: all three from the organization's profile
        "origin": {"legal_basis": "profile", "art22_ground": "profile", "recipients": "profile"},
        "recorded": {"legal_basis": "", "art22_ground": "", "recipients": []},
        "review": {"reviewer": "J. Schmidt", "action": "confirmed", "at": "2026-03-15T10:05:00Z"},
        "model": {
            "name": "credit-risk", "version": 1, "registered_at": "2026-01-20T12:00:00Z",
            "package_digest": "sha256:" + HEX["root"],
            "type": "Decision tree (sklearn.tree.DecisionTreeClassifier)",
            "features": ["income", "postcode", "existing_loans"],
            "training_parameters": {"max_depth": "4", "min_samples_leaf": "20"},
            "weights": {"kind": "importances", "intercept": None,
                        "values": {"income": 0.55, "postcode": 0.15, "existing_loans": 0.3}},
            "labels": _labels(o, income="income", postcode="postcode", existing_loans="loans"),
        },
        "inputs": [_input(o, "income", "income", 2980.25, "source_app", "2026-03-10"),
                   _input(o, "postcode", "postcode", "10115", "source_app", "2026-03-10", address=True),
                   _input(o, "existing_loans", "loans", 2, "source_schufa", "2026-03-12")],
        "address_data_used": True,
        "score": 0.71, "cut_off": 0.6, "outcome": "approved", "score_scale": "probability",
        "contribution_method": "reference-substitution", "contribution_scale": "score", "base_value": 0.66,
        "contributions": [
            {"feature": "income", "label": o["income"], "value": 2980.25, "contribution": 0.12,
             "direction": "raised"},
            {"feature": "existing_loans", "label": o["loans"], "value": 2, "contribution": -0.05,
             "direction": "lowered"},
            {"feature": "postcode", "label": o["postcode"], "value": "10115", "contribution": 0.0,
             "direction": "none"}],
        "counterfactual": None, "counterfactual_note": o["note"],
    }


def sample_content(language: str) -> dict:
    o = ORG[language]
    return {
        "format": "ledgerflow.disclosure/1", "language": language, "version": 1,
        "generated_at": "2026-11-27T10:00:00Z",
        "request": {"id": "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "subject_name": "Erika Mustermann",
                    "subject_ref": HEX["ref"], "received_on": "2026-11-02", "due_on": "2026-12-02",
                    "extended_until": "2027-02-02", "extension_reason": o["note"],
                    "identity_verification": o["identity"]},
        "controller": {"name": "Musterbank AG", "address": "Bankstraße 1\n60311 Frankfurt am Main",
                       "dpo_contact": "datenschutz@musterbank.example"},
        "supervisory_authority": {"name": "Hessischer Beauftragter für Datenschutz und Informationsfreiheit",
                                  "address": "Postfach 3163, 65021 Wiesbaden"},
        "processing": {key: o[key] for key in ("purposes", "legal_basis", "art22_ground", "categories",
                                                "recipients", "transfers", "retention", "sources",
                                                "human_review", "consequences")},
        "processes_personal_data": True,
        "decisions": [_logistic_decision(o, language), _tree_decision(o)],
        "withheld": [{"what": o["withheld_what"], "why": o["withheld_why"]}],
    }


def anchor_for(content: dict) -> dict:
    root, signature = base64.b64encode(bytes.fromhex(HEX["root"])).decode(), base64.b64encode(
        hashlib.sha512(b"signature").digest() + b"\x8a\x1f\x02\xc4").decode()
    note = f"ledgerflow.example/musterbank/audit\n42\n{root}\n\n\u2014 musterbank-audit-2026 {signature}\n"
    return {"content_sha256": hashlib.sha256(dumps(content)).hexdigest(), "audit_seq": 41,
            "audit_event_hash": HEX["event"],
            "checkpoint": {"tree_size": 42, "root_hash": HEX["root"], "chain_hash": HEX["chain"],
                           "signed_at": "2026-11-27T10:00:01Z", "key_name": "musterbank-audit-2026",
                           "note": note}}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)


class Rendered:
    def __init__(self, content: dict, directory):
        self.content = content
        self.path = directory / f"disclosure-{content['language']}-{len(content['decisions'])}.pdf"
        self.path.write_bytes(render_disclosure_pdf(content, anchor_for(content)))

    def text(self) -> str:
        # one space for every run of whitespace: table cells and long headings wrap
        return re.sub(r"\s+", " ", _run("pdftotext", "-enc", "UTF-8", str(self.path), "-").stdout)


@pytest.fixture(scope="module", params=["en", "de"])
def rendered(request, tmp_path_factory) -> Rendered:
    return Rendered(sample_content(request.param), tmp_path_factory.mktemp("pdf"))


def _headings(t: dict) -> list[str]:
    return [value for key, value in t.items() if key.startswith("h_") and key != "h_address"] + [
        t["h_address"], t["doc_title"]]


def test_texts_have_the_same_keys_in_both_languages():
    def keys(mapping: dict, prefix: str = "") -> set[str]:
        return {f"{prefix}{k}" for k in mapping} | {
            key for k, v in mapping.items() if isinstance(v, dict) for key in keys(v, f"{k}.")}
    assert keys(TEXTS["en"]) == keys(TEXTS["de"])


def test_every_section_heading_is_in_the_pdf(rendered):
    text = rendered.text()
    for heading in _headings(TEXTS[rendered.content["language"]]):
        assert heading in text, heading


def test_the_subjects_values_are_shown_formatted_for_the_language(rendered):
    text, language = rendered.text(), rendered.content["language"]
    expected = {"en": ["3217.5", "2980.25", "0.4134", "0.5262", "1 October 2026",
                       "5 October 2026, 09:12 UTC", "2 February 2027"],
                "de": ["3217,5", "2980,25", "0,4134", "0,5262", "01.10.2026", "05.10.2026, 09:12 UTC",
                       "02.02.2027"]}[language]
    for value in [*expected, "10115", "Erika Mustermann", "Musterbank AG", HEX["event"][:20]]:
        assert value in text, value
    t = TEXTS[language]
    assert t["counterfactual"].format_map({
        "label": ORG[language]["debt"], "from": format_number(0.45, language),
        "to": format_number(0.3, language), "score": format_number(0.5262, language),
        "outcome": t["outcomes"]["approved"]}) in text
    assert ORG[language]["note"] in text  # the tree decision has no counterfactual, but says why
    assert t["directions"]["lowered"] in text and t["directions"]["raised"] in text


def test_the_pdf_is_structurally_sound(rendered):
    check = _run("qpdf", "--check", str(rendered.path))
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_pdf_declares_pdfa_3b_and_is_tagged(rendered):
    meta = _run("pdfinfo", "-meta", str(rendered.path)).stdout
    assert re.search(r'pdfaid:part(="|>)3', meta), meta
    assert re.search(r'pdfaid:conformance(="|>)B', meta), meta
    info = _run("pdfinfo", str(rendered.path)).stdout
    assert re.search(r"^Tagged:\s+yes$", info, re.MULTILINE), info
    assert TEXTS[rendered.content["language"]]["doc_title"] in info
    assert re.search(r"^Author:\s+Musterbank AG$", info, re.MULTILINE), info


def test_the_attachment_is_exactly_the_canonical_json(rendered, tmp_path):
    listing = _run("pdfdetach", "-list", str(rendered.path)).stdout
    assert "disclosure.json" in listing
    target = tmp_path / "out.json"
    assert _run("pdfdetach", "-save", "1", "-o", str(target), str(rendered.path)).returncode == 0
    attached = target.read_bytes()
    assert attached == dumps(rendered.content)
    assert hashlib.sha256(attached).hexdigest() == anchor_for(rendered.content)["content_sha256"]
    assert anchor_for(rendered.content)["content_sha256"] in rendered.text()


def test_the_same_content_renders_to_the_same_bytes(rendered):
    # the PDF's hash goes into the audit trail; an auditor can render the content again
    assert render_disclosure_pdf(rendered.content, anchor_for(rendered.content)) == rendered.path.read_bytes()


def test_the_catalog_names_the_language_and_the_attachment_relationship(rendered, tmp_path):
    expanded = tmp_path / "qdf.pdf"
    _run("qpdf", "--qdf", "--object-streams=disable", str(rendered.path), str(expanded))
    raw = expanded.read_bytes()
    assert f"/Lang ({rendered.content['language']})".encode() in raw
    assert b"/AFRelationship /Data" in raw and b"/AF [" in raw
    assert b"/Subtype /application#2fjson" in raw


def test_without_decisions_the_pdf_says_no_automated_decision_was_made(tmp_path):
    content = sample_content("de")
    content["decisions"], content["withheld"] = [], []
    text = Rendered(content, tmp_path).text()
    t = TEXTS["de"]
    for expected in (t["no_decision"], t["data_none"], t["withheld_none"], t["h_automated"]):
        assert expected in text


def test_optional_parts_appear_only_when_the_content_has_them():
    content = sample_content("en")
    content["request"]["extended_until"], content["request"]["extension_reason"] = None, ""
    content["processes_personal_data"] = False
    content["decisions"][1]["contributions"] = []
    content["decisions"][0]["address_data_used"] = content["decisions"][1]["address_data_used"] = False
    html = disclosure_html(content, anchor_for(content)).replace("\u00a0", " ")  # glued citations
    t = TEXTS["en"]
    assert t["extended_until"] not in html and t["h_address"] not in html
    assert t["confirm_no"] in html and t["confirm_yes"] not in html
    assert html.count(t["effects_none"]) == 1 and html.count("<svg") == 1
    assert 'id="chart-0-title"' in html  # one id per chart, so several charts never clash


def test_html_in_values_is_shown_as_text_not_interpreted(tmp_path):
    content = sample_content("en")
    content["request"]["subject_name"] = '<b>Erika</b> & "Max" <img src="http://example.invalid/x">'
    content["decisions"][0]["inputs"][0]["source"] = "<script>alert(1)</script>"
    content["decisions"][0]["contributions"][0]["label"] = "</text><text>injected & <tspan>"
    html = disclosure_html(content, anchor_for(content))
    assert "<b>Erika" not in html and "<script>" not in html and "<tspan>" not in html
    assert "&lt;b&gt;Erika&lt;/b&gt; &amp; &quot;Max&quot;" in html
    text = Rendered(content, tmp_path).text()
    assert '<b>Erika</b> & "Max"' in text
    assert "<script>alert(1)</script>" in text


def test_the_chart_is_an_accessible_svg_with_bars_on_both_sides_of_zero():
    contributions = _logistic_decision(ORG["de"], "de")["contributions"]
    contributions[1]["label"] = 'Income <& "net">'
    svg = ET.fromstring(contribution_chart_svg(contributions, "de"))
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert svg.get("role") == "img"
    assert svg.find("s:title", ns).text == TEXTS["de"]["chart_title"]
    assert svg.find("s:desc", ns).text == TEXTS["de"]["chart_desc"]
    zero = float(svg.find("s:line", ns).get("x1"))
    bars = [r for r in svg.findall("s:rect", ns) if float(r.get("width")) > 10]
    lowered = [b for b in bars if float(b.get("x")) + float(b.get("width")) <= zero + 0.1]
    raised = [b for b in bars if float(b.get("x")) >= zero - 0.1]
    assert len(lowered) == 1 and len(raised) == 2
    assert {b.get("fill") for b in lowered}.isdisjoint({b.get("fill") for b in raised})
    labels = [t.text for t in svg.findall("s:text", ns)]
    assert 'Income <& "net">' in labels and "\u22120,72" in labels and "+0,41" in labels


@pytest.mark.parametrize(("value", "language", "kwargs", "expected"), [
    (3217.5, "de", {}, "3217,5"), (3217.5, "en", {}, "3217.5"), (3200.0, "en", {}, "3200"),
    (0.62, "de", {}, "0,62"), (7, "de", {}, "7"), ("10115", "de", {}, "10115"),
    (-0.72, "en", {"signed": True}, "\u22120.72"), (0.41, "de", {"signed": True}, "+0,41"),
    (0.000412345, "de", {}, "0,000412345"), (123456.78, "en", {}, "123456.78"),  # as entered
    # computed values, longer than SHORT_DIGITS: four significant digits, the integer part kept
    (0.38802883215629, "en", {}, "0.388"), (0.41234567891, "de", {"signed": True}, "+0,4123"),
    (-0.000123456789, "en", {}, "\u22120.0001235"), (123456.789012345, "en", {}, "123457"),
    (1e-05, "en", {}, "0.00001"), (None, "en", {}, "—"), (True, "de", {}, "ja"),
    (-0.0001, "en", {"signed": True}, "\u22120.0001"), (0.0, "en", {"signed": True}, "0"),
])
def test_numbers_are_formatted_per_language(value, language, kwargs, expected):
    assert format_number(value, language, **kwargs) == expected


# --- what the issue found: one number format, sources, meanings, the chart -------------------

SCORE, EFFECT = 0.38802883215629, 0.41234567891
LONG_LABEL = {"en": "Number of late payments in the last twenty-four months before the application "
                    "(instalments of every loan and credit card with us)",
              "de": "Anzahl verspäteter Zahlungen in den letzten vierundzwanzig Monaten vor dem Antrag "
                    "(Raten aller Kredite und Kreditkarten bei uns)"}


def _issue_content(language: str) -> dict:
    """The sample with a computed score and effect (full float precision) and a label far
    longer than a chart row."""
    content = sample_content(language)
    decision = content["decisions"][0]
    decision["score"] = SCORE
    decision["contributions"][1]["contribution"] = EFFECT
    decision["contributions"][0]["label"] = LONG_LABEL[language]
    decision["inputs"][1]["label"] = decision["model"]["labels"]["debt_ratio"] = LONG_LABEL[language]
    return content


@pytest.fixture(scope="module", params=["en", "de"])
def issue(request, tmp_path_factory) -> Rendered:
    return Rendered(_issue_content(request.param), tmp_path_factory.mktemp("issue"))


def figures(path) -> list[dict]:
    """Every Figure structure element: its page (1-based), Layout BBox and the page's
    MediaBox, read from qpdf's JSON of the file's objects."""
    described = json.loads(_run("qpdf", "--json", str(path)).stdout)
    objects = {key.removeprefix("obj:"): item.get("value") for key, item in
               described["qpdf"][1].items() if isinstance(item, dict)}
    pages = [page["object"] for page in described["pages"]]
    found = []
    for item in objects.values():
        if isinstance(item, dict) and item.get("/S") == "/Figure":
            page = objects[item["/Pg"]]
            found.append({"page": pages.index(item["/Pg"]) + 1, "bbox": item["/A"]["/BBox"],
                          "media": page["/MediaBox"]})
    return found


def text_in(path, figure: dict) -> str:
    """The text poppler finds inside the figure's box (poppler measures from the top left)."""
    left, bottom, right, top = figure["bbox"]
    height = figure["media"][3]
    cropped = _run("pdftotext", "-enc", "UTF-8", "-f", str(figure["page"]), "-l", str(figure["page"]),
                   "-x", str(math.floor(left)), "-y", str(math.floor(height - top)),
                   "-W", str(math.ceil(right - left)), "-H", str(math.ceil(top - bottom)),
                   str(path), "-").stdout
    return re.sub(r"\s+", " ", cropped)


def test_a_number_reads_the_same_on_every_page_and_in_the_chart(issue):
    language, text = issue.content["language"], issue.text()
    score, effect = format_number(SCORE, language), format_number(EFFECT, language, signed=True)
    assert score == {"en": "0.388", "de": "0,388"}[language]
    # the derived data (section 3) and the result (section 5) state the same score
    assert text.count(score) == 2, text.count(score)
    assert TEXTS[language]["result_text"].format(
        score=score, cut_off=format_number(0.5, language),
        outcome=TEXTS[language]["outcomes"]["declined"]) in text
    digits = {"en": "0.38802", "de": "0,38802"}[language]
    assert digits not in text and {"en": "0.41234", "de": "0,41234"}[language] not in text
    # the effect: once in the table, once in the chart, both the same
    assert text.count(effect) == 2
    assert effect in text_in(issue.path, figures(issue.path)[0])


def test_a_long_label_wraps_in_the_chart_and_is_there_whole(issue):
    chart = text_in(issue.path, figures(issue.path)[0])
    assert LONG_LABEL[issue.content["language"]] in chart, chart
    assert "…" not in chart


def test_each_charts_tagged_box_lies_on_its_page_around_the_chart(issue):
    t = TEXTS[issue.content["language"]]
    found = figures(issue.path)
    assert len(found) == 2  # one chart per decision with effects
    for figure in found:
        left, bottom, right, top = figure["bbox"]
        page_left, page_bottom, page_right, page_top = figure["media"]
        assert page_left <= left < right <= page_right, figure
        assert page_bottom <= bottom < top <= page_top, figure
        assert right - left == pytest.approx(640 * 0.75, abs=1)  # the chart's width, in points
        # and the box is where the chart is drawn: its legend is inside it
        inside = text_in(issue.path, figure)
        assert t["directions"]["lowered"] in inside and t["directions"]["raised"] in inside, inside


def test_wrapped_lines_fit_the_label_column_and_keep_every_character():
    label = "Zahlungsverzugsmeldungen" * 3 + " of the last two years, all accounts " + "W" * 40
    lines = wrap_label(label)
    assert len(lines) > 3
    assert all(text_width(line) <= LABEL_WIDTH for line in lines)
    assert "".join(lines).replace(" ", "") == label.replace(" ", "")
    assert wrap_label("Income") == ["Income"]


def test_each_legal_entry_of_a_decision_says_where_it_comes_from(rendered):
    text, language = rendered.text(), rendered.content["language"]
    t, o = TEXTS[language], ORG[language]
    # the first decision recorded its own: its ground in the law's words, as recorded in the note
    assert t["art22_grounds"]["a"] in text
    assert t["origin_decision_as"].format(recorded=o["recorded_ground"]) in text
    assert t["origin_decision"] in text and "SCHUFA Holding AG" in text
    # the second recorded none: the profile's three texts, each saying so
    assert text.count(t["origin_profile"]) == 3
    for name in ("legal_basis", "art22_ground", "recipients"):
        assert o[name] in text
    # and the profile's own Art. 22(2) ground is printed in section 5, not only in the annex
    assert f'{t["h_art22_ground"]} {o["art22_ground"]}' in text


def test_every_input_is_shown_with_its_meaning(rendered):
    text = rendered.text()
    for decision in rendered.content["decisions"]:
        for item in decision["inputs"]:
            assert item["meaning"] in text, item["meaning"]


def test_without_categories_the_section_says_none():
    content = sample_content("en")
    content["processing"]["categories"] = []
    html = disclosure_html(content, anchor_for(content))
    assert TEXTS["en"]["categories_none"] in html


def test_the_content_is_not_changed_by_rendering(tmp_path):
    content = sample_content("en")
    before = copy.deepcopy(content)
    disclosure_html(content, anchor_for(content))
    assert content == before
