"""Bar charts for the console, laid out here and drawn as inline SVG by the templates.

Server-side and script-free: nothing to load from elsewhere, nothing for the content
security policy to allow, and the page prints as it shows. Colours come from classes in
console.css (an inline style would be refused by the policy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 560  # a viewBox: the chart scales to its column, about this wide at 1366x768
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 32, 32  # room for the axis labels, legend and names
BAR_GAP = 2
GROUP_GAP = 0.3  # of a group's slot, between groups


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # its CSS class is bar-<series>
    title: str  # shown on hover and read by screen readers
    label: str  # drawn above the bar


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class GroupLabel:
    x: float
    text: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    left: int
    baseline: float
    bars: list[Bar]
    ticks: list[Tick]
    groups: list[GroupLabel]
    legend: list[tuple[str, str]]  # (series, label)


def nice_step(top: float, most: int = 5) -> float:
    """The smallest 1, 2 or 5 times a power of ten that needs at most `most` steps to `top`."""
    if top <= 0:
        return 1.0
    raw = top / most
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return float(m * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _number(value: float, unit: str) -> str:
    text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return text + unit


def bar_chart(
    title: str,
    groups: Sequence[str],
    series: Sequence[tuple[str, str]],
    values: Mapping[str, Mapping[str, float | None]],
    *,
    unit: str = "",
    whole: bool = False,
) -> Chart:
    """Bars of each series side by side for each group; a missing value draws no bar.
    `whole`: the values are counts, so the axis has no fractional ticks."""
    present = [v for g in groups for s, _ in series if (v := values[g].get(s)) is not None]
    step = nice_step(max(present, default=0.0))
    if whole:
        step = max(1.0, math.ceil(step))
    top = step * max(1, math.ceil(max(present, default=0.0) / step))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_h
    slot = plot_w / max(1, len(groups))
    bar_w = slot * (1 - GROUP_GAP) / max(1, len(series))
    bars, labels = [], []
    for i, group in enumerate(groups):
        x0 = LEFT + i * slot + slot * GROUP_GAP / 2
        labels.append(GroupLabel(round(LEFT + (i + 0.5) * slot, 1), group))
        for j, (key, name) in enumerate(series):
            value = values[group].get(key)
            if value is None:
                continue
            h = plot_h * max(value, 0.0) / top  # a negative time (clock skew) is labelled, not drawn
            text = _number(value, unit)
            bars.append(
                Bar(
                    x=round(x0 + j * bar_w + BAR_GAP / 2, 1),
                    y=round(baseline - h, 1),
                    width=round(max(1.0, bar_w - BAR_GAP), 1),
                    height=round(h, 1),
                    series=key,
                    title=f"{group}: {name} {text}",
                    label=text,
                )
            )
    ticks = [
        Tick(round(baseline - plot_h * k * step / top, 1), _number(k * step, unit))
        for k in range(round(top / step) + 1)
    ]
    return Chart(title, WIDTH, HEIGHT, LEFT, baseline, bars, ticks, labels, list(series))


def report_charts(report: Mapping[str, Any]) -> list[Chart]:
    """The report page's two charts: the calls of each line, and its times to pick-up."""
    lines = report["lines"]
    if not lines:
        return []
    names = [str(x["peer"]) for x in lines]
    calls = {
        str(x["peer"]): {k: float(x[k]) for k in ("calls_placed", "calls_received", "picked_up", "missed")}
        for x in lines
    }
    times = {str(x["peer"]): dict(x["pickup_seconds"]) for x in lines}
    return [
        bar_chart(
            "Calls per line",
            names,
            [
                ("calls_placed", "placed"),
                ("calls_received", "received"),
                ("picked_up", "picked up"),
                ("missed", "missed"),
            ],
            calls,
            whole=True,
        ),
        bar_chart(
            "Time to pick-up",
            names,
            [("median", "median"), ("p90", "90th percentile")],
            times,
            unit=" s",
        ),
    ]
