"""Stage `simulate`: the embedded demo export (contract CSV/Parquet or Zendesk API dumps) plus truth.csv."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import UserError
from pipeline.core.io import write_table
from pipeline.core.params import SimulateParams
from pipeline.sources.simulator import Simulation, simulate, simulate_export
from pipeline.sources.zendesk_write import write_zendesk_export

FORMATS = ("csv", "parquet", "zendesk")


def simulate_demo(out_dir: str | Path, settings: SimulateParams, fmt: str = "csv") -> Simulation:
    """Simulate a desk per ``settings`` and write it to ``out_dir`` in ``fmt``."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "zendesk":
        simulation = simulate(settings.tickets, seed=settings.seed, start=settings.start, days=settings.days)
        write_zendesk_export(out_dir, simulation.tickets, simulation.events)
        write_table(simulation.truth, Path(out_dir) / "truth.csv")
        return simulation
    return simulate_export(out_dir, n_tickets=settings.tickets, seed=settings.seed, start=settings.start,
                           days=settings.days, fmt=fmt)
