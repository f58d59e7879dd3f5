"""The chart of how each input moved the score: inline SVG for the disclosure's PDF, its labels
wrapped with the metrics of the font WeasyPrint embeds (docs/disclosures.md)."""

import functools
import html
import os

from reports.formatting import format_number
from reports.texts import TEXTS

RAISED_COLOUR = "#1d4ed8"   # blue, 6.7:1 against white
LOWERED_COLOUR = "#c2410c"  # orange-red, 5.2:1 against white; blue/orange also survives colour blindness
CHART_WIDTH, ROW, LABEL_END, BAR_LEFT, BAR_RIGHT = 640, 22, 226, 300, 580
FONT_SIZE, LINE = 11, 13  # the chart's text, in CSS pixels, and the distance of wrapped lines
LABEL_WIDTH = LABEL_END - 8  # room for a label line, right-aligned at LABEL_END
BAR_HEIGHT = ROW - 8
FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian, Ubuntu (the image)
              "/usr/share/fonts/dejavu/DejaVuSans.ttf",  # Fedora
              "/usr/share/fonts/TTF/DejaVuSans.ttf")  # Arch


def contribution_chart_svg(contributions: list, language: str, *, chart_id: str = "chart") -> str:
    """A horizontal bar chart of the per-feature effects as inline SVG markup (escaped here,
    since the template inserts it as safe). Raised bars go right of the zero line, lowered bars
    left; each row also carries its signed value, so colour is never the only cue. A label too
    long for its column wraps onto as many lines as it needs (never cut), and its row grows.
    `chart_id` keeps the ids of several charts in one document apart."""
    t = TEXTS[language]
    zero = (BAR_LEFT + BAR_RIGHT) / 2
    largest = max((abs(c["contribution"]) for c in contributions), default=0) or 1
    rows, top = [], 6.0
    for item in contributions:
        lines = wrap_label(item.get("label") or item.get("feature", ""))
        height = max(ROW, LINE * len(lines) + 9)
        rows.append(_chart_row(top, height, lines, item, zero, (BAR_RIGHT - zero) / largest,
                               language))
        top += height
    bottom = top
    height = bottom + 30
    legend = _chart_legend(bottom + 14, t)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{CHART_WIDTH}" height="{_n(height)}" '
        f'viewBox="0 0 {CHART_WIDTH} {_n(height)}" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'font-family="DejaVu Sans" font-size="{FONT_SIZE}">'
        f'<title id="{chart_id}-title">{_e(t["chart_title"])}</title>'
        f'<desc id="{chart_id}-desc">{_e(t["chart_desc"])}</desc>'
        + "".join(rows)
        + f'<line x1="{zero}" y1="2" x2="{zero}" y2="{_n(bottom + 2)}" stroke="#222" stroke-width="1"/>'
        + legend + "</svg>"
    )


def _chart_row(y: float, height: float, lines: list[str], item: dict, zero: float, scale: float,
               language: str) -> str:
    middle = y + height / 2 + 4  # text baseline, roughly centred on the bar
    first = y + (height - LINE * len(lines)) / 2 + 10  # the label's lines, centred on the row
    bar_top = y + (height - BAR_HEIGHT) / 2
    value = item["contribution"]
    width = abs(value) * scale
    text = format_number(value, language, signed=True)
    parts = [f'<text x="{LABEL_END}" y="{_n(first + i * LINE)}" text-anchor="end">{_e(line)}</text>'
             for i, line in enumerate(lines)]
    if value > 0:
        parts.append(f'<rect x="{zero}" y="{_n(bar_top)}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                     f'fill="{RAISED_COLOUR}"/>')
        parts.append(f'<text x="{zero + width + 4:.1f}" y="{_n(middle)}">{_e(text)}</text>')
    elif value < 0:
        parts.append(f'<rect x="{zero - width:.1f}" y="{_n(bar_top)}" width="{width:.1f}" '
                     f'height="{BAR_HEIGHT}" fill="{LOWERED_COLOUR}"/>')
        parts.append(f'<text x="{zero - width - 4:.1f}" y="{_n(middle)}" text-anchor="end">{_e(text)}</text>')
    else:
        parts.append(f'<text x="{zero + 4}" y="{_n(middle)}">{_e(text)}</text>')
    return "".join(parts)


def _n(value: float) -> str:
    """A coordinate: a whole number plainly, else one decimal (the same input, the same SVG)."""
    return f"{value:.1f}".removesuffix(".0")


def wrap_label(label: str, width: float = LABEL_WIDTH) -> list[str]:
    """The label in lines no wider than `width` CSS pixels at the chart's font size, broken at
    spaces; a single word wider than a line is broken inside (every character is kept)."""
    lines: list[str] = []
    for word in str(label).split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and text_width(candidate) <= width:
            lines[-1] = candidate
            continue
        while text_width(word) > width and len(word) > 1:
            cut = max(1, max(n for n in range(1, len(word) + 1)
                             if n == 1 or text_width(word[:n]) <= width))
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines or [""]


def text_width(text: str) -> float:
    """Its advance width in CSS pixels in DejaVu Sans at the chart's font size, from the font's
    own metrics (the font WeasyPrint embeds); a wide estimate where the font file is absent."""
    advances, fallback = _advances()
    return sum(advances.get(ord(ch), fallback) for ch in text) * FONT_SIZE


@functools.cache
def _advances() -> tuple[dict[int, float], float]:
    """Code point -> advance in em, read once per process."""
    from fontTools.ttLib import TTFont

    for path in FONT_FILES:
        if os.path.exists(path):
            font = TTFont(path, lazy=True)
            metrics, units = font["hmtx"].metrics, font["head"].unitsPerEm
            advances = {point: metrics[glyph][0] / units
                        for point, glyph in font.getBestCmap().items()}
            return advances, 1.0  # a character the font lacks: as wide as a CJK one
    return {}, 0.75  # wider than DejaVu Sans's average letter: wraps early rather than overflows


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
