"""Benchmarks at helpdesk scale: wall time and peak memory of every pipeline stage.

The entry point of ``make bench`` / ``make bench-quick``. For each size it generates
a simulator export once (Parquet, cached in ``benchmarks/work`` keyed by size and
seed), then runs each stage in a fresh Python process and records its wall time and
peak memory in ``benchmarks/results.json``; see ``benchmarks/README.md`` for what
each column and stage means.

Modules: ``stages`` (what each stage times), ``measure`` (a stage in a fresh process:
time, peak memory, the watchdog), ``prepare`` (the cached export and stale inputs),
``profiling`` (``--profile STAGE`` under pyinstrument or cProfile), ``suite`` (the
whole run), ``targets``, ``environment`` and ``report`` (results.json and the tables).

The parent also runs itself as ``run.py --child STAGE ...`` for each measurement.
Nothing here prints ticket text; logs hold only counts, timings and tracebacks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# `python benchmarks/run.py` puts benchmarks/ first on sys.path, where its modules
# would shadow top-level names (and import twice, as `report` and `benchmarks.report`);
# the imports below need the repo root instead.
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    sys.path[0] = str(_HERE.parent)
elif str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from benchmarks.growth import growth_markdown, write_plot
from benchmarks.measure import child_main
from benchmarks.profiling import PROFILERS
from benchmarks.report import (
    markdown_report,
    print_summary,
    read_results,
    write_results,
)
from benchmarks.stages import RUNNERS
from benchmarks.suite import profile_stage, run_benchmarks
from benchmarks.workdir import (
    DEFAULT_PARAMS,
    DEFAULT_RESULTS,
    DEFAULT_SEED,
    DEFAULT_WORK_DIR,
    STAGES,
)
from pipeline.core.errors import UserError
from pipeline.core.params import load_params


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the pipeline stages at several export sizes.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000], help="Tickets per export.")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Simulator seed (part of the cache key).")
    parser.add_argument("--stages", nargs="*", choices=STAGES, default=list(STAGES),
                        help="Stages to measure (none: only the reference ratio).")
    parser.add_argument("--work", default=str(DEFAULT_WORK_DIR), help="Scratch directory (exports cache, outputs).")
    parser.add_argument("--out", default=str(DEFAULT_RESULTS), help="Results JSON file.")
    parser.add_argument("--params", default=str(DEFAULT_PARAMS), help="Parameters file for every stage.")
    parser.add_argument("--reference-tickets", type=int, default=0,
                        help="Tickets sampled from the smallest export for the reference ratio (0: all of them).")
    parser.add_argument("--no-reference", action="store_true", help="Skip the reference ratio.")
    parser.add_argument("--fast-repeats", type=int, default=3,
                        help="Fast featurize runs in the ratio (best one counts).")
    parser.add_argument("--max-rss-mb", type=float, default=14_000.0, help="Kill a stage whose RSS goes above this.")
    parser.add_argument("--stage-timeout", type=float, default=3600.0, help="Kill a stage running longer (seconds).")
    parser.add_argument("--profile", choices=(*STAGES, "auto"), metavar="STAGE",
                        help="Profile this stage (or 'auto': the slowest in --out) at the largest size; "
                             "the report is printed and kept in <work>/profiles/ (text, and HTML for pyinstrument).")
    parser.add_argument("--profiler", choices=PROFILERS, default=PROFILERS[0],
                        help="Profiler for --profile (default: %(default)s; cprofile gives call counts).")
    parser.add_argument("--markdown", action="store_true", help="Print --out as Markdown and exit.")
    parser.add_argument("--growth", action="store_true",
                        help="Draw the growth curve of --out (benchmarks/growth.png), print it as Markdown, exit.")
    parser.add_argument("--merge", action="store_true",
                        help="Keep the runs already in --out; re-measured (stage, tickets) pairs replace old ones.")
    # Internal: the parent runs each stage as `run.py --child STAGE ...`.
    parser.add_argument("--child", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    # Children run with cwd=REPO_ROOT; an absolute path means the same file wherever the parent was started.
    options.params = str(Path(options.params).resolve())
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.child:
        return child_main(options)
    if options.markdown:
        print(markdown_report(read_results(options.out)), end="")
        return 0
    if options.growth:
        runs = read_results(options.out)["runs"]
        print(growth_markdown(runs), end="")
        print(f"\nwrote {write_plot(runs)}")
        return 0
    try:  # fail here in one line, not once per stage after the exports were generated
        load_params(options.params)
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    if options.profile:
        return profile_stage(options)
    started = time.perf_counter()
    results = run_benchmarks(options)
    write_results(results, options.out)
    print_summary(results)
    print(f"\nwrote {options.out} ({time.perf_counter() - started:.0f} s in all)")
    return 0 if all(r.get("error") is None for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
