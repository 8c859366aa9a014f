"""The two runs the CLI can ask for: the whole benchmark suite, and one stage under a profiler.

Both only orchestrate: each stage runs in its own child (:mod:`benchmarks.measure`),
inputs are made by :mod:`benchmarks.prepare`, and the results document is
assembled here and written by :mod:`benchmarks.report`.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.chunked import CHUNKED_STAGES, is_chunked
from benchmarks.environment import code_state, machine_info, versions
from benchmarks.measure import run_child
from benchmarks.prepare import ensure_export, ensure_prerequisites
from benchmarks.report import merge_previous, read_results, text_table
from benchmarks.targets import evaluate_targets
from benchmarks.workdir import STAGES, Paths


def run_stage(stage: str, paths: Paths, options: argparse.Namespace, export: dict, failed: set[str]) -> dict:
    """One measured stage as a ``runs`` record; adds ``stage`` to ``failed`` when it fails."""
    record = {"stage": stage, "engine": stage_engine(stage), "tickets": export["tickets"], "events": export["events"]}
    problem = ensure_prerequisites(stage, paths, options, failed)
    if problem:
        failed.add(stage)
        return {**record, "seconds": None, "peak_mb": None, "error": problem}
    run = run_child(stage, paths, options)
    if not run.ok:
        failed.add(stage)
        return {**record, "seconds": None, "peak_mb": round(run.peak_mb, 1),
                "process_seconds": round(run.process_seconds, 2), "load_average": list(run.load_average),
                "error": run.error}
    measured = run.measured
    record.update({
        "tickets": measured.get("tickets", export["tickets"]),
        "events": measured.get("events", export["events"]),
        "rows": measured.get("rows"),
        "seconds": round(measured["seconds"], 3),
        "peak_mb": round(run.peak_mb, 1),
        "baseline_mb": round(measured["baseline_mb"], 1),
        "process_seconds": round(run.process_seconds, 2),
        "process_cpu_seconds": round(run.cpu_seconds, 2),
        "load_average": list(run.load_average),
    })
    if measured.get("details"):
        record["details"] = measured["details"]
    if "cluster_peak_mb" in measured.get("details", {}):
        # A Dask run's peak is the whole local cluster's (client, scheduler and workers together).
        record["details"]["client_peak_mb"] = record["peak_mb"]
        record["peak_mb"] = max(record["peak_mb"], measured["details"]["cluster_peak_mb"])
    return record


def stage_engine(stage: str) -> str:
    """The ``engine`` field of a run: ``dask`` for the Dask engine's stages, ``polars`` for the anchor."""
    if stage.endswith("_dask"):
        return "dask"
    return "polars" if stage == "anchor_polars" else "pandas"


def reference_ratio(paths: Paths, options: argparse.Namespace) -> dict:
    """Reference vs fast features on the same ticket sample of the smallest export."""
    problem = ensure_prerequisites("featurize", paths, options)  # needs the canonical tables
    if problem:
        return {"error": problem}
    run = run_child("reference", paths, options)
    if not run.ok:
        return {"error": run.error}
    details = run.measured["details"]
    return {
        "tickets": run.measured["tickets"], "events": run.measured["events"],
        "sample_of_export_tickets": details["source_export_tickets"],
        "sample_seed": paths.seed, "as_of": details["as_of"],
        "reference_seconds": round(details["reference_seconds"], 3),
        "fast_seconds": round(details["fast_seconds"], 4),
        "fast_repeats": options.fast_repeats,
        "ratio": round(details["ratio"], 1) if details["ratio"] else None,
        "mismatched_features": details["mismatched_features"],
    }


def run_benchmarks(options: argparse.Namespace) -> dict:
    """Measure every stage at every size; return the results document (not yet written)."""
    work = Path(options.work)
    stages = [s for s in STAGES if s in options.stages]
    results = {"machine": machine_info(), "versions": versions(), "code": code_state(),
               "date": datetime.now(UTC).isoformat(timespec="seconds"),
               "settings": {"seed": options.seed, "params": str(options.params), "stages": stages,
                            "score_db_url": "", "max_rss_mb": options.max_rss_mb},
               "exports": {}, "runs": []}
    for size in sorted(options.sizes):
        paths = Paths(work, size, options.seed)
        export = ensure_export(paths, options)
        results["exports"][str(size)] = export
        origin = "cached" if export["cached"] else f"generated in {export['generate_seconds']} s"
        print(f"\n{size} tickets, {export['events']} events ({origin}):", flush=True)
        failed: set[str] = set()
        at_size = [s for s in stages if not is_chunked(size) or s in CHUNKED_STAGES]
        if len(at_size) < len(stages):
            print(f"  (a {size}-ticket export is made in chunks for the Dask engine: "
                  f"{', '.join(s for s in stages if s not in at_size)} not run at this size)", flush=True)
        for stage in at_size:
            record = run_stage(stage, paths, options, export, failed)
            results["runs"].append(record)
            print(text_table([record]).splitlines()[-1], flush=True)
    results["reference_ratio"] = None
    if not options.no_reference:
        print("\nreference ratio ...", flush=True)
        results["reference_ratio"] = reference_ratio(Paths(work, min(options.sizes), options.seed), options)
    if options.merge:
        merge_previous(results, Path(options.out))
    results["targets"] = evaluate_targets(results["runs"], results["reference_ratio"])
    return results


def profile_stage(options: argparse.Namespace) -> int:
    """Run one stage at the largest size under ``--profiler``; print the report and keep it."""
    stage, size = options.profile, max(options.sizes)
    if stage == "auto":
        stage, size = slowest_stage(Path(options.out))
    paths = Paths(Path(options.work), size, options.seed)
    export = ensure_export(paths, options)
    problem = ensure_prerequisites(stage, paths, options)
    if problem:
        raise SystemExit(problem)
    out = paths.profile(stage, options.profiler)
    print(f"profiling {stage} at {size} tickets / {export['events']} events with {options.profiler} ...", flush=True)
    run = run_child(stage, paths, options, profile_out=out)
    if not run.ok:
        raise SystemExit(f"profiling {stage} failed: {run.error}")
    print(out.read_text())
    kept = [str(path) for path in (out, out.with_suffix(".html")) if path.is_file()]
    print(f"(peak {run.peak_mb:.0f} MB; report kept in {' and '.join(kept)})")
    return 0


def slowest_stage(results_file: Path) -> tuple[str, int]:
    """The stage that took longest at the largest size measured in ``results_file``."""
    if not results_file.is_file():
        raise SystemExit(f"{results_file}: no results yet; run the benchmarks first or name a stage")
    runs = [r for r in read_results(results_file)["runs"] if r.get("seconds") is not None]
    if not runs:
        raise SystemExit(f"{results_file}: no successful run to pick the slowest stage from; name a stage")
    largest = max(r["tickets"] for r in runs)
    slowest = max((r for r in runs if r["tickets"] == largest), key=lambda r: r["seconds"])
    return slowest["stage"], largest
