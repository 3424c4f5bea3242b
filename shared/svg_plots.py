"""Matplotlib figures drawn on the server and inlined in HTML as SVG (the backtest report, the console's chart).

No GUI backend (a bare Agg canvas), no fonts embedded (text stays text), no dates or random ids in the output (the
same figure gives the same bytes), and no XML prolog, so the SVG can sit inside a page. matplotlib escapes the
text it draws.
"""

from __future__ import annotations

import io

import matplotlib
from markupsafe import Markup
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def figure_svg(fig: Figure, **attributes: str) -> Markup:
    """The figure as an ``<svg>`` element; ``attributes`` are added to it, escaped (``aria_label="..."`` becomes
    ``aria-label="..."``, ``class_`` ``class``)."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "churnwatch"}):
        fig.savefig(
            buffer,
            format="svg",
            bbox_inches="tight",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    if attributes:
        extra = " ".join(
            Markup('{}="{}"').format(name.rstrip("_").replace("_", "-"), value) for name, value in attributes.items()
        )
        svg = svg.replace("<svg ", f"<svg {extra} ", 1)
    return Markup(svg)
