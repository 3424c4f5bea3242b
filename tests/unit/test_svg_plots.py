"""Figures inlined as SVG: no prolog, the same bytes for the same figure, attributes escaped."""

from __future__ import annotations

from matplotlib.figure import Figure

from shared.svg_plots import figure_svg, new_figure


def _figure() -> Figure:
    fig = new_figure(3, 2)
    fig.subplots().plot([1, 2, 3], [3, 1, 2])
    return fig


def test_an_svg_element_with_stable_bytes_and_escaped_attributes() -> None:
    first, second = figure_svg(_figure()), figure_svg(_figure())
    assert first.startswith("<svg ") and "<?xml" not in first and first == second
    tagged = figure_svg(_figure(), class_="chart", aria_label='a "quoted" <b>')
    assert tagged.startswith('<svg class="chart" aria-label="a &#34;quoted&#34; &lt;b&gt;" ')
