"""The demo-data simulator: ``simulate`` (frames), ``simulate_later`` (one desk, two exports), ``simulate_export`` (files)."""

from pipeline.sources.simulator.assembly import Simulation, simulate, simulate_export, simulate_later

__all__ = ["Simulation", "simulate", "simulate_export", "simulate_later"]
