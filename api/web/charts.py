"""Simple bar charts drawn on the server as SVG: horizontal bars, one or two series, each
bar labelled with its figure. The page shows the same figures in a table beside them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LABEL_WIDTH = 190  # px left of the bars, for the category names
BAR_AREA = 420  # px of the longest bar
VALUE_WIDTH = 70  # px right of the bars, for the figures
BAR = 16  # px height of one bar
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
    label_y: int
    bars: list[Bar]


@dataclass(frozen=True)
class BarChart:
    """An SVG's geometry: `width` × `height` px, one row per category."""

    title: str
    description: str
    width: int
    height: int
    rows: list[Row]
    series: list[str]


def bar_chart(
    title: str,
    description: str,
    categories: Sequence[tuple[str, Sequence[int]]],
    series: Sequence[str],
) -> BarChart:
    """The geometry of a horizontal bar chart: `categories` are (label, one value per
    series), values ≥ 0 drawn to the scale of the largest."""
    top = max((v for _, values in categories for v in values), default=0) or 1
    per_row = BAR * len(series) + GAP
    rows = []
    for i, (label, values) in enumerate(categories):
        y0 = TOP + i * per_row
        bars = [
            Bar(
                x=LABEL_WIDTH,
                y=y0 + k * BAR,
                width=max(1, round(BAR_AREA * v / top)) if v else 0,
                height=BAR - 2,
                value=v,
                series=k,
            )
            for k, v in enumerate(values)
        ]
        rows.append(Row(label=label, label_y=y0 + BAR * len(series) // 2 + 4, bars=bars))
    return BarChart(
        title=title,
        description=description,
        width=LABEL_WIDTH + BAR_AREA + VALUE_WIDTH,
        height=TOP * 2 + len(categories) * per_row,
        rows=rows,
        series=list(series),
    )
