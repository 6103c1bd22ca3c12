"""Simple bar charts drawn on the server as SVG: horizontal bars, one or two series, each
bar labelled with its figure. The page shows the same figures in a table beside them.

The label column is as wide as the longest label needs (« Alpes-de-Haute-Provence (04) »
whole), within bounds; a label longer than the widest column wraps on several lines."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

CHAR = 7.2  # px: a generous average width of one character of the 13 px labels
LABEL_MIN = 60  # px left of the bars, at least
LABEL_MAX = 260  # px left of the bars, at most: longer labels wrap
LABEL_PAD = 10  # px between a label and its bars
BAR_AREA = 420  # px of the longest bar
VALUE_WIDTH = 70  # px right of the bars, for the figures
BAR = 16  # px height of one bar
LINE = 15  # px between two lines of a wrapped label
GAP = 12  # px between categories
TOP = 8


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    value: int
    series: int  # 0 or 1: the CSS class of its colour


@dataclass(frozen=True)
class Row:
    label: str
    label_y: int  # baseline of the label's first line
    lines: list[str]  # the label, wrapped to the label column
    bars: list[Bar]


@dataclass(frozen=True)
class BarChart:
    """An SVG's geometry: `width` × `height` px, one row per category; labels end at
    `label_x` (right-aligned), bars start at `label_x + LABEL_PAD`."""

    title: str
    description: str
    width: int
    height: int
    label_x: int
    line_height: int
    rows: list[Row]
    series: list[str]


def _label_width(labels: Sequence[str]) -> int:
    longest = max((len(label) for label in labels), default=0)
    return max(LABEL_MIN, min(LABEL_MAX, math.ceil(longest * CHAR)))


def _lines(label: str, width: int) -> list[str]:
    """The label on as many lines as the column needs (cut at spaces and hyphens; a word
    longer than a line is cut too)."""
    per_line = max(1, int(width // CHAR))
    return textwrap.wrap(label, per_line, break_on_hyphens=True) or [""]


def bar_chart(
    title: str,
    description: str,
    categories: Sequence[tuple[str, Sequence[int]]],
    series: Sequence[str],
) -> BarChart:
    """The geometry of a horizontal bar chart: `categories` are (label, one value per
    series), values ≥ 0 drawn to the scale of the largest."""
    top = max((v for _, values in categories for v in values), default=0) or 1
    label_width = _label_width([label for label, _ in categories])
    bars_x = label_width + LABEL_PAD
    rows = []
    y0 = TOP
    for label, values in categories:
        lines = _lines(label, label_width)
        bars_height = BAR * len(series)
        text_height = LINE * len(lines)
        height = max(bars_height, text_height)
        bars_top = y0 + (height - bars_height) // 2
        bars = [
            Bar(
                x=bars_x,
                y=bars_top + k * BAR,
                width=max(1, round(BAR_AREA * v / top)) if v else 0,
                height=BAR - 2,
                value=v,
                series=k,
            )
            for k, v in enumerate(values)
        ]
        # 13 px text: its baseline ~4 px below the middle of its line.
        label_y = y0 + (height - text_height) // 2 + LINE // 2 + 4
        rows.append(Row(label=label, label_y=label_y, lines=lines, bars=bars))
        y0 += height + GAP
    return BarChart(
        title=title,
        description=description,
        width=bars_x + BAR_AREA + VALUE_WIDTH,
        height=y0 - GAP + TOP,
        label_x=label_width,
        line_height=LINE,
        rows=rows,
        series=list(series),
    )
