"""The account page's plot of the daily score history: matplotlib, drawn on the server, inlined as SVG.

Only dates and numbers are drawn (no account-derived text), and matplotlib escapes its SVG text anyway; the
XML prolog is dropped so the SVG sits inside the page. Bands are shaded at the scorecard's thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from markupsafe import Markup
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

from shared.svg_plots import figure_svg, new_figure

BAND_SHADES = ((0, 40, "#f6d5d5"), (40, 70, "#fbefc9"), (70, 100, "#d9efd9"))
BAND_COLOURS = {"red": "#c0392b", "yellow": "#c89400", "green": "#2e8b57"}


def score_points(history: Sequence[dict[str, Any]]) -> list[tuple[date, float, str]]:
    """(day, score, band) of each day with a score, in day order; malformed rows are left out."""
    points = []
    for h in history:
        try:
            points.append((date.fromisoformat(str(h["day"])[:10]), float(h["score"]), str(h.get("band") or "")))
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(points)


def score_history_svg(history: Sequence[dict[str, Any]]) -> Markup | None:
    """The plot, or None when there is no history to draw."""
    points = score_points(history)
    if not points:
        return None
    fig = new_figure(8, 2.6)
    ax = fig.subplots()
    days = [p[0] for p in points]
    for low, high, colour in BAND_SHADES:
        ax.axhspan(low, high, color=colour, zorder=0)
    ax.plot(days, [p[1] for p in points], color="#1f3b63", linewidth=1.8, zorder=2)  # type: ignore[arg-type]
    ax.scatter(
        days,  # type: ignore[arg-type]
        [p[1] for p in points],
        c=[BAND_COLOURS.get(p[2], "#1f3b63") for p in points],
        s=14,
        zorder=3,
    )
    ax.set_ylim(0, 100)
    ax.set_ylabel("health score")
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return figure_svg(fig, role="img", aria_label="daily health score", class_="score-chart")
