"""Charts of measured curves for the docs: matplotlib (the ``bench`` extra), SVG, log scales."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _report import DOCS_DIR


@dataclass(frozen=True)
class Series:
    """One measured line; a floor is drawn dashed in the colour of the line it bounds."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    floor_of: str | None = None


def line_chart(
    stem: str,
    title: str,
    xlabel: str,
    ylabel: str,
    series: list[Series],
    *,
    out: Path = DOCS_DIR,
) -> Path:
    """Draw ``series`` on log-log axes into ``STEM.svg`` and return its path."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a build machine
    import matplotlib.pyplot as plt

    # A fixed salt and no date keep the SVG the same when the figures are.
    plt.rcParams["svg.hashsalt"] = "sessionkeeper"
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: small files, searchable
    figure, axes = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    colours: dict[str, Any] = {}
    for line in series:
        if line.floor_of is None:
            (drawn,) = axes.plot(line.xs, line.ys, marker="o", label=line.label)
            colours[line.label] = drawn.get_color()
    for line in series:
        if line.floor_of is not None:
            axes.plot(
                line.xs,
                line.ys,
                linestyle="--",
                marker=".",
                color=colours.get(line.floor_of),
                label=line.label,
            )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize="small")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.svg"
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)
    return path
