"""The growth curve: how wall time and peak memory grow with the export, per stage and engine.

``run.py --growth`` reads ``results.json`` and writes ``benchmarks/growth.png`` (wall time
and peak memory against tickets, log-log, one line per stage and engine) and prints the
same numbers as a Markdown table for ``benchmarks/README.md``. Only sizes of at least
:data:`SMALLEST_TICKETS` are drawn: below that, start-up costs hide the growth.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.workdir import REPO_ROOT

PLOT_FILE = REPO_ROOT / "benchmarks" / "growth.png"
SMALLEST_TICKETS = 100_000
# (stage, label): the Dask engine's stages beside their one-machine counterparts.
CURVES = (
    ("featurize", "featurize (pandas)"),
    ("featurize_dask", "featurize (Dask)"),
    ("snapshots", "snapshots (pandas)"),
    ("snapshots_dask", "snapshots (Dask)"),
    ("train", "train (pandas)"),
    ("train_dask", "train (Dask)"),
)


def growth_points(runs: list[dict]) -> dict[str, list[dict]]:
    """Per stage of :data:`CURVES`, its measured runs at sizes >= :data:`SMALLEST_TICKETS`, by size."""
    points: dict[str, list[dict]] = {}
    for stage, _ in CURVES:
        measured = [r for r in runs if r["stage"] == stage and r.get("seconds") is not None
                    and r["tickets"] >= SMALLEST_TICKETS]
        if measured:
            points[stage] = sorted(measured, key=lambda r: r["tickets"])
    return points


def growth_markdown(runs: list[dict]) -> str:
    """The growth curve as a table: one row per stage, one column pair per size."""
    points = growth_points(runs)
    sizes = sorted({r["tickets"] for rows in points.values() for r in rows})
    header = "| stage | " + " | ".join(f"{s:,} tickets" for s in sizes) + " |"
    lines = [header, "| --- |" + " --- |" * len(sizes)]
    for stage, label in CURVES:
        if stage not in points:
            continue
        by_size = {r["tickets"]: r for r in points[stage]}
        cells = []
        for size in sizes:
            run = by_size.get(size)
            cells.append(f"{run['seconds']:,.0f} s, {run['peak_mb'] / 1024:,.1f} GB" if run else "not run")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_plot(runs: list[dict], path: Path = PLOT_FILE) -> Path:
    """Wall time and peak memory against tickets (log-log), one line per stage and engine."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: render to a file only
    import matplotlib.pyplot as plt

    points = growth_points(runs)
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage, label in CURVES:
        if stage not in points:
            continue
        rows = points[stage]
        tickets = [r["tickets"] for r in rows]
        style = "-o" if stage.endswith("_dask") else "--s"
        time_axis.plot(tickets, [r["seconds"] for r in rows], style, label=label)
        memory_axis.plot(tickets, [r["peak_mb"] / 1024 for r in rows], style, label=label)
    for axis, title in ((time_axis, "wall time (s)"), (memory_axis, "peak memory, whole cluster for Dask (GB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("tickets in the export")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    time_axis.legend(fontsize=8)
    figure.suptitle("csat-triage stages by export size (2 cores, 24 GB; benchmarks/results.json)", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
