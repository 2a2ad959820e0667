"""The report as one self-contained HTML page: inline CSS, inline SVG charts, nothing fetched.

The sections come from `ipguard.reports.sections` (as for Markdown) and are laid out by the Jinja2
template `templates/report.html.j2` with autoescape on. Every value the template prints first
passes through `visible` (control and bidi characters shown as escapes) and then HTML escaping,
in the SVG too: no value needs a hand-placed escape call. The stylesheet prints on A4 with page
numbers and repeated table headings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ipguard.escape import visible
from ipguard.reports.sections import Report, build, minute
from ipguard.reports.summary import Summary

TEMPLATES = Path(__file__).with_name("templates")
SEVERITIES = frozenset({"critical", "high", "medium", "low", "info"})


def _finalize(value: Any) -> Any:
    """Every printed value shown visibly; markup made by the template itself passes as it is."""
    if isinstance(value, Markup):
        return value
    return visible(value, keep="\n")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )


@dataclass(frozen=True)
class Chart:
    """An SVG line chart's geometry: grid lines, time labels, the line and its dots."""

    title: str
    colour: str
    points: tuple[tuple[datetime, int], ...]
    width: int = 560
    height: int = 200
    left: int = 44
    top: int = 28
    bottom: int = 36

    @property
    def right(self) -> int:
        """Where the plot ends on the x axis."""
        return self.width - 16

    def _x(self, moment: datetime) -> float:
        start, end = self.points[0][0].timestamp(), self.points[-1][0].timestamp()
        if len(self.points) == 1:
            return round(self.left + (self.right - self.left) / 2, 1)
        span = max(end - start, 1.0)
        return round(self.left + (moment.timestamp() - start) / span * (self.right - self.left), 1)

    def _y(self, value: int) -> float:
        plot = self.height - self.top - self.bottom
        return round(self.top + plot - value / self._ceiling * plot, 1)

    @property
    def _step(self) -> int:
        return nice_step(max(max(value for _, value in self.points), 1))

    @property
    def _ceiling(self) -> int:
        peak = max(max(value for _, value in self.points), 1)
        return self._step * -(-peak // self._step)

    @property
    def ticks(self) -> list[tuple[int, float]]:
        """Grid lines: value and height."""
        return [(tick, self._y(tick)) for tick in range(0, self._ceiling + 1, self._step)]

    @property
    def labels(self) -> list[tuple[float, str, str]]:
        """Time labels under the first, middle and last points: x, text-anchor, text."""
        last = len(self.points) - 1
        out = []
        for index in sorted({0, last, last // 2}):
            anchor = "start" if index == 0 else "end" if index == last else "middle"
            out.append((self._x(self.points[index][0]), anchor, minute(self.points[index][0])))
        return out

    @property
    def polyline(self) -> str:
        """The line's points."""
        return " ".join(f"{self._x(moment)},{self._y(value)}" for moment, value in self.points)

    @property
    def dots(self) -> list[tuple[float, float, str]]:
        """A dot per run with its tooltip; none beyond 400 runs, where they only blur the line."""
        if len(self.points) > 400:
            return []
        return [(self._x(m), self._y(v), f"{minute(m)}: {v}") for m, v in self.points]


def nice_step(peak: int) -> int:
    """A round grid step giving four or five lines up to `peak`."""
    raw = max(peak / 4, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return int(factor * magnitude)
    return int(10 * magnitude)


def render(summary: Summary) -> str:
    """The whole page."""
    report: Report = build(summary)
    template = _environment().get_template("report.html.j2")
    return (
        template.render(
            r=report,
            hosts=Chart("Hosts seen per run", "#1f5fae", report.hosts_chart),
            open=Chart("Open findings after each run", "#c43d2b", report.open_chart),
            complete=len(report.hosts_chart),
            severities=SEVERITIES,
        ).strip()
        + "\n"
    )
