"""Stage `simulate`: the embedded demo export (contract CSV/Parquet or Zendesk API dumps) plus truth.csv.

With ``later_out``, the same desk's export ``later_days`` later goes there too (the
outcomes a later ``monitor`` run judges the first export's scores against).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import UserError
from pipeline.core.io import write_table
from pipeline.core.params import SimulateParams
from pipeline.sources.simulator import Simulation, simulate, simulate_export, simulate_later
from pipeline.sources.zendesk_write import write_zendesk_export

FORMATS = ("csv", "parquet", "zendesk")


def simulate_demo(out_dir: str | Path, settings: SimulateParams, fmt: str = "csv",
                  later_out: str | Path | None = None) -> Simulation:
    """Simulate a desk per ``settings`` and write it to ``out_dir`` (and its later export to ``later_out``)."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if later_out is not None and Path(later_out).resolve() == Path(out_dir).resolve():
        raise UserError(f"--later-out {later_out} is the --out directory: give the later export its own")
    if fmt != "zendesk":
        return simulate_export(out_dir, n_tickets=settings.tickets, seed=settings.seed, start=settings.start,
                               days=settings.days, fmt=fmt, later_days=settings.later_days, later_out=later_out)
    kwargs = {"seed": settings.seed, "start": settings.start, "days": settings.days, "later_days": settings.later_days}
    if later_out is None:
        exports = [(out_dir, simulate(settings.tickets, **kwargs))]
    else:
        exports = list(zip((out_dir, later_out), simulate_later(settings.tickets, **kwargs)))
    for directory, simulation in exports:
        write_zendesk_export(directory, simulation.tickets, simulation.events)
        write_table(simulation.truth, Path(directory) / "truth.csv")
    return exports[0][1]
