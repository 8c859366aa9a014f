"""The per-stage runners: what a child process times for each stage.

Each runner takes the paths of one (size, seed), the typed parameters, the CLI
options and a :class:`~benchmarks.measure.Timer`, times exactly the call the stage
is about and returns its counts (``tickets``, ``events``, ``rows``, ``details``).

Imports of the pipeline stay inside the runners: each stage runs in its own process,
and its ``baseline_mb`` and ``process_seconds`` should include only the libraries
that stage needs (``featurize`` must not pay for importing MLflow and LightGBM).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from benchmarks.workdir import Paths

if TYPE_CHECKING:
    import pandas as pd

    from benchmarks.measure import Timer
    from pipeline.core.params import Params

Runner = Callable[[Paths, "Params", argparse.Namespace, "Timer"], dict]


def _load_canonical(paths: Paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validated tables ``validate`` wrote (read without re-validating)."""
    from pipeline.sources.ingest import load_export

    if not paths.output_of("validate").is_file():
        raise SystemExit(f"{paths.canonical}: no canonical tables; run the validate stage first")
    export = load_export(paths.canonical)
    return export.tickets, export.events


def _canonical_rows(paths: Paths) -> dict[str, int]:
    """Ticket and event counts from the canonical marker, for stages whose entry point loads the tables itself."""
    marker = json.loads(paths.output_of("validate").read_text())
    rejects = int(marker.get("rejected_rows", 0))
    rows = marker["input_rows"]
    # Simulated exports validate without rejects; if any, they are subtracted from events (the bigger table).
    return {"tickets": int(rows["tickets"]), "events": int(rows["events"]) - rejects}


def run_generate(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    from benchmarks import attributes
    from benchmarks.chunked import generate_chunked, is_chunked
    from pipeline.core.io import write_export, write_table
    from pipeline.sources.simulator import simulate

    if paths.export_tmp.exists():
        shutil.rmtree(paths.export_tmp)
    if is_chunked(paths.size):  # simulated and validated chunk by chunk: one chunk in memory at a time
        counts = timer(lambda: generate_chunked(paths, paths.seed))
        return {**counts, "attributes_version": attributes.VERSION}

    def generate():  # simulate_export, with the benchmark's six extra attributes in the events
        simulation = simulate(paths.size, paths.seed)
        events = attributes.with_benchmark_attributes(simulation.tickets, simulation.events, paths.seed)
        write_export(paths.export_tmp, simulation.tickets, events, "parquet")
        write_table(simulation.truth, paths.export_tmp / "truth.csv")
        fields = events["field"].where(events["kind"] == "field").dropna()
        return simulation, len(events), int(fields.nunique()), len(fields)

    simulation, n_events, n_attributes, n_field_events = timer(generate)
    return {"tickets": len(simulation.tickets), "events": n_events, "export_at": simulation.export_at.isoformat(),
            "attributes": n_attributes, "field_events": n_field_events, "attributes_version": attributes.VERSION}


def run_validate(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    from pipeline.stages.validate import validate_export

    result = timer(lambda: validate_export(paths.export, paths.canonical, params.ingest))
    return {"tickets": len(result.tickets), "events": result.clean_rows["events"],
            "rows": result.total_input_rows, "details": {"rejected_rows": result.rejected_rows}}


def run_featurize(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    from features.build import build_features
    from features.calendar import BusinessHours

    tickets, events = _load_canonical(paths)
    hours = BusinessHours.from_params(params.business_hours)
    # as_of=None: the export's latest timestamp, i.e. the moment the export was taken.
    table = timer(lambda: build_features(tickets, events, None, hours))
    return {"tickets": len(tickets), "events": len(events), "rows": len(table)}


def run_featurize_raw(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    """``featurize`` from the raw Parquet export: validate (read, type, check) then build the features.

    The project's side of the comparison with ``anchor_polars`` (issue 13): both start from
    the same files. The canonical tables are not written (``validate`` measures that)."""
    from features.build import build_features
    from features.calendar import BusinessHours
    from pipeline.sources.ingest import load_export

    hours = BusinessHours.from_params(params.business_hours)

    def featurize_raw():
        validated = load_export(paths.export, params.ingest)
        return validated, build_features(validated.tickets, validated.events, None, hours)

    validated, table = timer(featurize_raw)
    return {"tickets": len(validated.tickets), "events": len(validated.events), "rows": len(table),
            "details": {"rejected_rows": validated.rejected_rows}}


def run_anchor_polars(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    """The Polars anchor (:mod:`benchmarks.anchor_polars`) on the same raw export as ``featurize_raw``."""
    from benchmarks.anchor_polars import ANCHOR_FEATURES, anchor_features

    table = timer(lambda: anchor_features(paths.export, params.ingest.max_text_chars))
    export = json.loads(paths.export_marker.read_text())
    return {"tickets": int(export["tickets"]), "events": int(export["events"]), "rows": table.height,
            "details": {"features": len(ANCHOR_FEATURES)}}


def run_snapshots(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    from features.calendar import BusinessHours
    from features.snapshots import snapshot_features
    from pipeline.core.io import write_table

    tickets, events = _load_canonical(paths)
    hours = BusinessHours.from_params(params.business_hours)
    table = timer(lambda: snapshot_features(tickets, events, params.snapshots, hours))
    write_table(table, paths.snapshots)  # untimed: the input of the train stage
    return {"tickets": len(tickets), "events": len(events), "rows": len(table)}


def run_train(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    from pipeline.stages.train import train

    if not paths.snapshots.is_file():
        raise SystemExit(f"{paths.snapshots}: no snapshots; run the snapshots stage first")
    result = timer(lambda: train(paths.canonical, paths.model, snapshots_file=paths.snapshots,
                                 target=None, params=params))
    meta = result.model.meta
    return {
        **_canonical_rows(paths), "rows": result.risk_rows,
        "details": {"risk_rows": result.risk_rows, "urgency_rows": result.urgency_rows,
                    "risk_best_iteration": meta.get("risk_best_iteration"),
                    "urgency_best_iteration": meta.get("urgency_best_iteration")},
    }


def _score(paths: Paths, params: Params, timer: Timer, all_tickets: bool) -> dict:
    from pipeline.stages.score import score

    if not paths.output_of("train").is_file():
        raise SystemExit(f"{paths.model}: no model; run the train stage first")
    steps: list[str] = []  # score() reports each step's seconds through echo
    result = timer(lambda: score(paths.canonical, paths.scored(all_tickets), model_dir=paths.model, db_url="",
                                 all_tickets=all_tickets, params=params, echo=steps.append))
    return {**_canonical_rows(paths), "rows": len(result.scored), "details": {"steps": parse_steps(steps)}}


def run_score(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    return _score(paths, params, timer, all_tickets=False)


def run_score_all(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    return _score(paths, params, timer, all_tickets=True)


def parse_steps(lines: list[str]) -> dict[str, float]:
    """``"  scoring: 1.2 s"`` lines from :func:`pipeline.stages.score.score` to ``{"scoring": 1.2}``."""
    steps = {}
    for line in lines:
        name, _, rest = line.strip().rpartition(":")
        if name and rest.strip().endswith(" s"):
            try:
                steps[name] = float(rest.strip()[:-2])
            except ValueError:
                continue
    return steps


def run_reference(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    """Reference vs fast features on a seeded ticket sample of this export and all its events."""
    import numpy as np

    from features.build import build_features, latest_timestamp
    from features.calendar import BusinessHours
    from tests.features.reference import reference_features

    tickets, events = _load_canonical(paths)
    as_of = latest_timestamp(tickets, events)  # the export time, identical for both
    n = min(int(options.reference_tickets), len(tickets)) if options.reference_tickets > 0 else len(tickets)
    chosen = np.sort(np.random.default_rng(paths.seed).choice(len(tickets), size=n, replace=False))
    sample_tickets = tickets.iloc[chosen].reset_index(drop=True)
    sample_events = events[events["ticket_id"].isin(sample_tickets["ticket_id"])].reset_index(drop=True)
    hours = BusinessHours.from_params(params.business_hours)

    fast_seconds = []
    for _ in range(options.fast_repeats):  # best of a few: the fast run is short enough to be noisy
        fast = timer(lambda: build_features(sample_tickets, sample_events, as_of, hours))
        fast_seconds.append(timer.seconds)
    # Without the team features: their plain reference compares every ticket with every other
    # (quadratic), which would time the reference's design, not the fast path's speed-up.
    reference = timer(lambda: reference_features(sample_tickets, sample_events, as_of, hours, team=False))
    reference_seconds = timer.seconds
    fast_best = min(fast_seconds)
    return {
        "tickets": n, "events": len(sample_events), "rows": len(fast),
        "details": {
            "source_export_tickets": len(tickets), "source_export_events": len(events),
            "as_of": as_of.isoformat(), "reference_seconds": reference_seconds,
            "fast_seconds": fast_best, "fast_seconds_all_repeats": fast_seconds,
            "ratio": reference_seconds / fast_best if fast_best > 0 else None,
            "mismatched_features": mismatched_features(fast, reference),
        },
    }


def mismatched_features(fast: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    """Feature columns on which the two implementations disagree (a sanity check, not a test)."""
    import numpy as np
    import pandas as pd

    from features.build import CROSS_TICKET_FEATURES, FEATURE_NAMES

    mismatched = []
    for name in (f for f in FEATURE_NAMES if f not in CROSS_TICKET_FEATURES):  # see run_reference
        if name not in fast.columns or name not in reference.columns:
            mismatched.append(f"{name} (missing)")
            continue
        left, right = fast[name], reference[name]
        if isinstance(left.dtype, pd.CategoricalDtype) or isinstance(right.dtype, pd.CategoricalDtype):
            same = (left.astype(object).fillna("").to_numpy() == right.astype(object).fillna("").to_numpy()).all()
        else:
            same = np.allclose(left.to_numpy(dtype="float64"), right.to_numpy(dtype="float64"),
                               rtol=1e-6, atol=1e-6, equal_nan=True)
        if not same:
            mismatched.append(name)
    return mismatched


def _on_local_cluster(params: Params, timer: Timer, work: Callable) -> tuple[object, dict]:
    """Time ``work(client)`` on a LocalCluster sized by params ``engine``; also the cluster's peak memory.

    The child's own peak RSS (what ``peak_mb`` measures for one-process stages) misses the
    workers, which are its grandchildren: a thread sums the RSS of the whole process tree
    (client, scheduler, nannies, workers) every 0.2 s while the work runs.
    """
    import threading

    import psutil

    from pipeline.distributed.cluster import dask_client, local_cluster_size

    me = psutil.Process()
    peak = {"mb": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass  # a process that ended between listing and reading
            peak["mb"] = max(peak["mb"], total / 2**20)

    workers, threads, memory = local_cluster_size(params.engine)
    with dask_client(params.engine) as client:
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            result = timer(lambda: work(client))
        finally:
            done.set()
            sampler.join()
    return result, {"engine": "dask", "workers": workers, "threads_per_worker": threads,
                    "memory_limit_mb": round(memory / 2**20), "cluster_peak_mb": round(peak["mb"], 1)}


def run_featurize_dask(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    """``featurize`` (every ticket as of the export time) by the Dask engine: read, split by requester, features, write."""
    from pipeline.distributed.featurize import featurize_dask
    from pipeline.distributed.partition import read_export

    out = paths.dask_output("features")

    def work(client):
        export = read_export(client, str(paths.canonical), params.engine)
        return featurize_dask(client, export, params, out), export.pieces

    (written, pieces), details = _on_local_cluster(params, timer, work)
    return {**_canonical_rows(paths), "rows": written.rows, "details": {**details, "pieces": pieces}}


def run_snapshots_dask(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    """Training snapshots by the Dask engine (the ``snapshots`` stage's table, as a Parquet directory)."""
    from pipeline.distributed.featurize import featurize_dask
    from pipeline.distributed.partition import read_export

    out = paths.dask_output("snapshots")

    def work(client):
        export = read_export(client, str(paths.canonical), params.engine)
        return featurize_dask(client, export, params, out, snapshots=True), export.pieces

    (written, pieces), details = _on_local_cluster(params, timer, work)
    return {**_canonical_rows(paths), "rows": written.rows, "details": {**details, "pieces": pieces}}


def run_train_dask(paths: Paths, params: Params, options: argparse.Namespace, timer: Timer) -> dict:
    """``train --engine dask`` on the snapshots ``snapshots_dask`` wrote (the Dask engine end to end)."""
    from pipeline.stages.train import train_on_cluster

    snapshots = paths.dask_output("snapshots")
    if not snapshots.exists():
        raise SystemExit(f"{snapshots}: no snapshots; run the snapshots_dask stage first")
    result, details = _on_local_cluster(params, timer, lambda client: train_on_cluster(
        client, paths.canonical, paths.dask_output("model"), snapshots, None, params, print))
    meta = result.model.meta
    return {
        **_canonical_rows(paths), "rows": result.risk_rows,
        "details": {**details, "risk_rows": result.risk_rows, "urgency_rows": result.urgency_rows,
                    "risk_best_iteration": meta.get("risk_best_iteration"),
                    "urgency_best_iteration": meta.get("urgency_best_iteration")},
    }


# Everything a child process can be asked to run: the measured STAGES plus the export
# generator and the reference ratio, which results.json records outside ``runs``.
RUNNERS: dict[str, Runner] = {
    "generate": run_generate,
    "validate": run_validate,
    "featurize": run_featurize,
    "featurize_raw": run_featurize_raw,
    "anchor_polars": run_anchor_polars,
    "featurize_dask": run_featurize_dask,
    "snapshots": run_snapshots,
    "snapshots_dask": run_snapshots_dask,
    "train": run_train,
    "train_dask": run_train_dask,
    "score": run_score,
    "score_all": run_score_all,
    "reference": run_reference,
}
