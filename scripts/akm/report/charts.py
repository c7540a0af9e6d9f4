"""The report's charts as PNG pictures, drawn with matplotlib (Agg) from the figures of a table.

A :class:`~akm.report.model.Chart` names a table of its section and the columns it draws, so a chart
shows exactly the numbers its table prints (nothing is computed a second time). One picture serves the
DOCX (embedded) and the HTML (a ``data:`` URI): it is drawn once per report and language.

Pictures are deterministic, so the report's files are the same byte for byte on every run and machine
with the same pinned matplotlib: one fixed size and resolution, matplotlib's own copy of DejaVu Sans
(never a font the machine happens to have; it has every letter of Uzbek Latin, ``ʻ`` included), fixed
colours, and no ``Software`` or time in the PNG's metadata. Numbers and dates on the axes and bars are
written by Babel in the report's language (``1 234``, ``16-noy``).
"""

from __future__ import annotations

import functools
from datetime import date
from io import BytesIO
from pathlib import Path

from akm.i18n import babel_locale, format_number, language
from akm.report.model import Chart

WIDTH_IN = 6.3
"""A chart's width in inches: the text width of a portrait A4 page with 2.5 cm margins (16 cm)."""
DPI = 150
FONT_SIZE = 8
LABEL_CHARS = 34
MANY_POINTS = 45
"""From this many days on, a time series is a line, not bars."""
COLOURS = ("#2f6f9f", "#e08a1e", "#c23b22", "#6a9f2f", "#7b5ea7", "#8c8c8c")
RESULT_COLOURS = ("#4d9a3b", "#e0a21e", "#c23b22")
"""Succeeded, with warnings, failed: what the backup chart stacks."""


def short(label: str, limit: int = LABEL_CHARS) -> str:
    """*label* cut to *limit* characters with ``…``."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def day_label(day: date) -> str:
    """A day as an axis shows it: day and short month in the report's language (``16-noy``, ``Nov 16``)."""
    from babel.dates import format_skeleton

    return format_skeleton("MMMd", day, locale=babel_locale())


def _label(value) -> str:
    return day_label(value) if isinstance(value, date) else short(str(value))


def png(chart: Chart) -> bytes:
    """The chart as a PNG picture (the same bytes for the same chart, language and matplotlib)."""
    labels, series = chart.points()
    return _draw(
        chart.kind,
        tuple(_label(v) for v in labels),
        tuple((name, tuple(float(v) for v in values)) for name, values in series),
        chart.colours or COLOURS,
        bool(labels) and isinstance(labels[0], date),
        language(),
    )


def height_in(kind: str, points: int) -> float:
    """The picture's height: a bar per row for ``bars``, a fixed band for a vertical chart."""
    if kind == "bars":
        return min(1.0 + 0.28 * points, 8.0)
    return 2.9


@functools.lru_cache(maxsize=32)
def _draw(kind, labels, series, colours, dates, lang) -> bytes:
    """Draw once per distinct chart; ``lang`` is part of the key because Babel's formats depend on it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager, ticker
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    font = font_manager.FontProperties(
        fname=Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", size=FONT_SIZE
    )
    figure = Figure(figsize=(WIDTH_IN, height_in(kind, len(labels))), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    positions = list(range(len(labels)))
    if kind == "bars":
        _bars(axes, positions, labels, series, colours)
    elif dates and len(labels) >= MANY_POINTS:
        _lines(axes, positions, labels, series, colours)
    else:
        _columns(axes, positions, labels, series, colours, stacked=kind == "stacked")
    number_axis = axes.xaxis if kind == "bars" else axes.yaxis
    number_axis.set_major_formatter(ticker.FuncFormatter(lambda value, _pos: format_number(_round(value))))
    number_axis.set_major_locator(ticker.MaxNLocator(nbins=6, integer=all(_whole(v) for _n, vs in series for v in vs)))
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="x" if kind == "bars" else "y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    if len(series) > 1:
        axes.legend(frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    for text in figure.findobj(Text):
        text.set_fontproperties(font)
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _whole(value: float) -> bool:
    return float(value).is_integer()


def _round(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 1)


def _bars(axes, positions, labels, series, colours) -> None:
    """Horizontal bars, the first row on top, each bar with its value at its end."""
    name, values = series[0]
    bars = axes.barh(positions, values, color=colours[0], label=name, height=0.6)
    axes.bar_label(bars, labels=[format_number(_round(v)) for v in values], padding=3)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.margins(x=0.12)


def _columns(axes, positions, labels, series, colours, stacked: bool) -> None:
    """Vertical bars: side by side per series, or stacked."""
    count = len(series)
    width = 0.8 if stacked else 0.8 / count
    bottom = [0.0] * len(positions)
    for index, (name, values) in enumerate(series):
        if stacked:
            axes.bar(positions, values, width, bottom=bottom, color=colours[index % len(colours)], label=name)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        else:
            shift = (index - (count - 1) / 2) * width
            axes.bar([p + shift for p in positions], values, width, color=colours[index % len(colours)], label=name)
    axes.set_xticks(positions, labels, rotation=90 if len(positions) > 10 else 0)


def _lines(axes, positions, labels, series, colours) -> None:
    """A long time series (a quarter or a year of days) as lines, with about a dozen dates shown."""
    for index, (name, values) in enumerate(series):
        axes.plot(positions, values, color=colours[index % len(colours)], linewidth=1.2, label=name)
    step = max(1, len(positions) // 12)
    axes.set_xticks(positions[::step], labels[::step], rotation=90)
    axes.set_xlim(-0.5, len(positions) - 0.5)
