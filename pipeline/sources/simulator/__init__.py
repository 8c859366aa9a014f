"""The demo-data simulator: ``simulate`` (frames) and ``simulate_export`` (files)."""

from pipeline.sources.simulator.assembly import Simulation, simulate, simulate_export

__all__ = ["Simulation", "simulate", "simulate_export"]
