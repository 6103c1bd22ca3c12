"""The server-drawn bar charts: long labels whole (wrapped when needed), rows that never
overlap, the figures cards of the impact page one per card."""

from __future__ import annotations

from api.web.charts import LABEL_MAX, bar_chart


def test_a_long_departement_name_is_shown_whole() -> None:
    chart = bar_chart(
        "t", "d", [("Alpes-de-Haute-Provence (04)", [1, 0]), ("Var (83)", [1, 1])], ["a", "b"]
    )
    assert " ".join(chart.rows[0].lines) == "Alpes-de-Haute-Provence (04)"
    assert all(bar.x > chart.label_x for row in chart.rows for bar in row.bars)
    assert chart.width > chart.label_x + 420


def test_a_label_longer_than_the_widest_column_wraps_and_its_row_grows() -> None:
    label = "Communauté d'agglomération Provence-Alpes-Agglomération, pôle de Digne-les-Bains"
    chart = bar_chart("t", "d", [(label, [3]), ("Court", [1])], ["a"])
    first, second = chart.rows
    assert chart.label_x == LABEL_MAX
    assert len(first.lines) > 1
    assert "".join(first.lines).replace(" ", "") == label.replace(" ", "")
    # The second row starts below the last line of the first one.
    assert second.bars[0].y > first.label_y + 15 * (len(first.lines) - 1)
    assert chart.height >= second.bars[0].y + second.bars[0].height
