"""Numbers and dates as a disclosure shows them, per language (de: decimal comma, 05.10.2026;
en: decimal point, 5 October 2026): one rule for every value, wherever the document prints it
(docs/disclosures.md)."""

import datetime as dt
import math

from reports.texts import TEXTS

MINUS = "\u2212"  # a real minus sign: screen readers say "minus", and it is as wide as "+"
EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")


# One rule for every number in the document, wherever it appears (tables, prose, the chart):
# a value with at most SHORT_DIGITS significant digits, as entered data is (3217.5, 0.00042),
# reads exactly as recorded; a longer one, as computed values are (a score of
# 0.38802883215629), is rounded to ROUNDED_DIGITS significant digits, never inside its integer
# part. disclosure.json keeps every value exact.
SHORT_DIGITS, ROUNDED_DIGITS = 8, 4


def format_number(value, language: str, *, signed: bool = False) -> str:
    """A number for display, the same for the same value on every page. `signed` (effects on
    the score, in the table and in the chart alike) puts a "+" before a positive value.
    Strings pass through unchanged."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return TEXTS[language]["yes" if value else "no"]
    if not isinstance(value, int | float):
        return str(value)
    text = _plain(abs(value))
    if language == "de":
        text = text.replace(".", ",")
    if value < 0 and text.strip("0,.") != "":
        return MINUS + text
    return ("+" + text) if signed and value > 0 else text


def _plain(magnitude: float) -> str:
    if isinstance(magnitude, int):
        return str(magnitude)
    if magnitude == 0 or not math.isfinite(magnitude):
        return "0" if magnitude == 0 else str(magnitude)
    exact = _exact(magnitude)
    if len(exact.replace(".", "").lstrip("0")) <= SHORT_DIGITS:
        return exact
    decimals = max(0, ROUNDED_DIGITS - 1 - math.floor(math.log10(magnitude)))
    text = f"{magnitude:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _exact(magnitude: float) -> str:
    """The shortest text that reads back as the same float, without an exponent."""
    text = repr(magnitude)
    if "e" not in text:
        return text.removesuffix(".0")
    decimals = min(20, max(0, 16 - math.floor(math.log10(magnitude))))
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
