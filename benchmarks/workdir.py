"""Where a benchmark run keeps its files, and the stages it measures.

Scratch data lives under one work directory (``benchmarks/work``, git-ignored),
keyed by export size and simulator seed, so runs at different sizes never mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_SCRIPT = REPO_ROOT / "benchmarks" / "run.py"  # children are started through it, see measure.run_child
DEFAULT_WORK_DIR = REPO_ROOT / "benchmarks" / "work"
DEFAULT_RESULTS = REPO_ROOT / "benchmarks" / "results.json"
# Absolute, so a child started with cwd=REPO_ROOT and a parent started anywhere read the same file.
DEFAULT_PARAMS = REPO_ROOT / "params.yaml"
DEFAULT_SEED = 7
# Measured stages, in the order they run and are reported.
STAGES = ("validate", "featurize", "featurize_dask", "featurize_raw", "anchor_polars", "snapshots", "snapshots_dask",
          "train", "train_dask", "score", "score_all")


@dataclass(frozen=True)
class Paths:
    """Where one (size, seed) keeps its export, canonical tables and stage outputs."""

    work: Path
    size: int
    seed: int

    @property
    def key(self) -> str:
        return f"n{self.size}-seed{self.seed}"

    @property
    def export(self) -> Path:
        return self.work / "exports" / self.key

    @property
    def export_tmp(self) -> Path:
        return self.work / "exports" / f".{self.key}.tmp"

    @property
    def export_marker(self) -> Path:
        return self.export / "benchmark.json"

    @property
    def canonical(self) -> Path:
        return self.work / "canonical" / self.key

    @property
    def canonical_tmp(self) -> Path:
        """Where a chunked export's canonical tables are made (see :mod:`benchmarks.chunked`)."""
        return self.work / "canonical" / f".{self.key}.tmp"

    @property
    def snapshots(self) -> Path:
        return self.work / "snapshots" / f"{self.key}.parquet"

    @property
    def model(self) -> Path:
        return self.work / "models" / self.key

    def dask_output(self, what: str) -> Path:
        """The Dask stages' outputs: ``features`` / ``snapshots`` (Parquet directories), ``model``."""
        return self.work / "dask" / f"{self.key}-{what}{'' if what == 'model' else '.parquet'}"

    def scored(self, all_tickets: bool) -> Path:
        return self.work / "scored" / f"{self.key}-{'all' if all_tickets else 'open'}.parquet"

    def log(self, stage: str) -> Path:
        return self.work / "logs" / f"{stage}-{self.key}.log"

    def child_result(self, stage: str) -> Path:
        return self.work / "logs" / f"{stage}-{self.key}.json"

    def profile(self, stage: str, profiler: str) -> Path:
        """The text report of ``stage`` under ``profiler``; other formats sit beside it."""
        return self.work / "profiles" / f"{stage}-{self.key}-{profiler}.txt"

    def output_of(self, stage: str) -> Path:
        """The file whose existence (and age) says ``stage`` has produced its output."""
        return {
            "validate": self.canonical / "canonical.json",
            "snapshots": self.snapshots,
            "train": self.model / "model.json",
            "snapshots_dask": self.dask_output("snapshots"),
        }[stage]
