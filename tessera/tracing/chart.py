"""``tessera trace --png``: a run's timeline as a Gantt chart (matplotlib, Agg backend).

One row per model or endpoint (see :func:`tessera.tracing.view.timeline_rows`). Each step (planning, a
subtask, join, answer) is a light bar with its name; its phases are coloured bars inside it (queue wait,
handoff gap, model load, prefill, decode, tool). The critical path's steps have a red outline and are joined
by a red line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tessera.errors import MissingDependencyError
from tessera.tracing.view import PHASES, phase, step_label, summary, timeline_rows

if TYPE_CHECKING:
    from tessera.types import Trace

__all__ = ["draw_png"]

CRITICAL = "#d62728"


def draw_png(trace: Trace, out: Path, *, title: str = "", dpi: int = 110) -> Path:
    """Draw ``trace`` as a Gantt chart into the PNG file ``out``; return ``out``."""
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError('the chart needs matplotlib: pip install "tessera[plot]"') from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    rows = timeline_rows(trace)
    t0 = trace.started
    total = max(trace.ended - t0, 1e-6)
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.5 * len(rows)))
    critical = set(trace.critical_path)
    centres: dict[str, tuple[float, float, float]] = {}
    kinds_seen: set[str] = set()
    for y, row in enumerate(rows):
        for step in row.steps:
            on_path = step.id in critical
            ax.barh(
                y,
                max(step.seconds, total / 400),
                left=step.start - t0,
                height=0.9,
                color=PHASES.get(step.kind, PHASES["subtask"])[1],
                edgecolor=CRITICAL if on_path else "#8a8a8a",
                linewidth=2.0 if on_path else 0.6,
                zorder=1,
            )
            centres[step.id] = (step.start - t0, step.end - t0, y)
            kinds_seen.add(step.kind)
        for part in row.parts:
            ax.barh(
                y,
                max(part.seconds, total / 600),
                left=part.start - t0,
                height=0.4,
                color=PHASES.get(phase(part), ("", "#555555", ""))[1],
                zorder=2,
            )
            kinds_seen.add(phase(part))
        for step in row.steps:
            if step.seconds / total > 0.04:
                ax.text(
                    step.start - t0 + total / 300,
                    y + 0.33,
                    step_label(step),
                    fontsize=7,
                    va="center",
                    zorder=3,
                )
    path = [centres[i] for i in trace.critical_path if i in centres]
    for (_, end, y0), (start, _, y1) in zip(path, path[1:], strict=False):
        ax.plot([end, max(start, end)], [y0, y1], color=CRITICAL, linewidth=1.2, zorder=4)
    ax.set_yticks(range(len(rows)), [r.label for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, total * 1.01)
    ax.set_xlabel("seconds from run start")
    ax.grid(axis="x", linestyle=":", linewidth=0.5)
    handles = [Patch(color=PHASES[k][1], label=PHASES[k][2]) for k in PHASES if k in kinds_seen]
    handles.append(Patch(facecolor="white", edgecolor=CRITICAL, linewidth=2, label="critical path"))
    ax.legend(
        handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=6, frameon=False
    )
    heading = summary(trace).splitlines()
    ax.set_title((title + "\n" if title else "") + heading[1] + "\n" + heading[0], fontsize=8, loc="left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
