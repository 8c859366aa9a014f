"""Benchmarks at helpdesk scale: wall time and peak memory of every pipeline stage.

This module owns ``make bench`` / ``make bench-quick``. For each size it generates a
simulator export once (Parquet, cached in ``benchmarks/work`` keyed by size and seed),
then runs each stage in a fresh Python process and measures

- ``seconds``: wall time of the stage call itself, timed inside the child with
  ``time.perf_counter`` (interpreter start, imports and loading the input tables are
  excluded, except where the stage's own entry point loads them: ``train``, ``score``);
- ``process_seconds``: wall time of the whole child process, as the parent saw it;
- ``peak_mb``: the child's peak resident memory (``ru_maxrss`` from ``os.wait4`` of
  that child alone, so one stage's peak never leaks into the next), in MiB;
- ``baseline_mb``: the child's peak RSS just before the timed call (interpreter,
  imports and input tables), so ``peak_mb - baseline_mb`` is what the stage added.

Stages (all after ``validate`` read the canonical tables ``validate`` wrote):

- ``validate``: ``pipeline.ingest.validate_export(export, out_dir)`` on the raw Parquet
  export, including writing the canonical tables;
- ``featurize``: ``features.build.build_features`` of every ticket as of the export time;
- ``snapshots``: ``models.dataset.snapshot_features`` (the training snapshots);
- ``train``: ``pipeline.train.train`` end to end, reusing the ``snapshots`` output;
- ``score``: ``pipeline.score.score`` of the open tickets, end to end, file output,
  ``db_url=""`` (no database);
- ``score_all``: the same with ``all_tickets=True``: every ticket is scored as if it
  were open. The simulator leaves only ~1.6 % of tickets open, so this is the
  "score 100 k open tickets" case at 100k tickets.

The reference ratio times ``tests.features.reference.reference_features`` (plain
Python, one ticket at a time) against ``build_features`` on identical inputs: a
seeded sample of tickets of the smallest export and all their events, as of that
export's time.

Also: ``--profile STAGE|auto`` runs one stage under a profiler (a stdlib sampling
profiler by default; ``--profiler cprofile`` for deterministic counts) and writes the
hot spots to ``benchmarks/work/profiles/``.

Nothing here prints ticket text; logs hold only counts, timings and tracebacks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import signal
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

THIS_FILE = Path(__file__).resolve()
REPO_ROOT = THIS_FILE.parent.parent
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/run.py` puts benchmarks/ first, not the repo
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_WORK_DIR = REPO_ROOT / "benchmarks" / "work"
DEFAULT_RESULTS = REPO_ROOT / "benchmarks" / "results.json"
DEFAULT_PARAMS = REPO_ROOT / "params.yaml"
DEFAULT_SEED = 7
STAGES = ("validate", "featurize", "snapshots", "train", "score", "score_all")
# Inputs each stage needs besides the export, produced by an earlier stage.
PREREQUISITES = {
    "validate": (),
    "featurize": ("validate",),
    "snapshots": ("validate",),
    "train": ("validate", "snapshots"),
    "score": ("validate", "train"),
    "score_all": ("validate", "train"),
}
MIB = 1024.0  # ru_maxrss is in KiB on Linux
SAMPLE_EVERY_STAGE = "SAMPLE_EVERY_STAGE"  # flag file in <work>/profiles, see _profile_request


@dataclass(frozen=True)
class Target:
    """A performance target from the issue; ``stage``/``tickets`` pick the run it is judged on."""

    name: str
    description: str
    stage: str | None = None
    tickets: int | None = None
    max_seconds: float | None = None
    max_peak_mb: float | None = None
    min_ratio: float | None = None


TARGETS = (
    Target("featurize_1m", "featurize 10 M events (1 M tickets) as of one time in under 30 s, peak memory under 4 GB",
           stage="featurize", tickets=1_000_000, max_seconds=30.0, max_peak_mb=4096.0),
    Target("score_100k_open", "score 100 k open tickets (with their events) end to end in under 10 s "
           "(measured as score_all on the 100k export: every ticket scored as if open)",
           stage="score_all", tickets=100_000, max_seconds=10.0),
    Target("snapshots_1m", "build training snapshots for 1 M tickets in under 2 min",
           stage="snapshots", tickets=1_000_000, max_seconds=120.0),
    Target("reference_speedup", "fast path at least 20x the reference implementation (identical inputs)",
           min_ratio=20.0),
)


# ----------------------------------------------------------------------------- paths


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
    def snapshots(self) -> Path:
        return self.work / "snapshots" / f"{self.key}.parquet"

    @property
    def model(self) -> Path:
        return self.work / "models" / self.key

    def scored(self, all_tickets: bool) -> Path:
        return self.work / "scored" / f"{self.key}-{'all' if all_tickets else 'open'}.parquet"

    def log(self, stage: str) -> Path:
        return self.work / "logs" / f"{stage}-{self.key}.log"

    def child_result(self, stage: str) -> Path:
        return self.work / "logs" / f"{stage}-{self.key}.json"

    def output_of(self, stage: str) -> Path:
        """The file whose existence (and age) says ``stage`` has produced its output."""
        return {
            "validate": self.canonical / "canonical.json",
            "snapshots": self.snapshots,
            "train": self.model / "model.json",
        }[stage]


# ============================================================================ child side


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB


def _load_params(path: str) -> dict:
    from pipeline.params import load_params

    return load_params(path)


def _load_canonical(paths: Paths):
    """The validated tables ``validate`` wrote (read without re-validating)."""
    from pipeline.ingest import load_export

    if not paths.output_of("validate").is_file():
        raise SystemExit(f"{paths.canonical}: no canonical tables; run the validate stage first")
    export = load_export(paths.canonical)
    return export.tickets, export.events


class _Timer:
    """Times one call, optionally under a profiler; keeps the seconds and the RSS before it."""

    def __init__(self, profiler: "_Profiler | None") -> None:
        self.profiler = profiler
        self.seconds = float("nan")
        self.baseline_mb = float("nan")

    def __call__(self, fn: Callable[[], object]) -> object:
        self.baseline_mb = _peak_rss_mb()
        if self.profiler:
            self.profiler.start()
        started = time.perf_counter()
        try:
            return fn()
        finally:
            self.seconds = time.perf_counter() - started
            if self.profiler:
                self.profiler.stop()


def _stage_generate(paths: Paths, params: dict, options: argparse.Namespace, timer: _Timer) -> dict:
    from pipeline.simulate import simulate_export

    if paths.export_tmp.exists():
        shutil.rmtree(paths.export_tmp)
    simulation = timer(lambda: simulate_export(paths.export_tmp, paths.size, paths.seed, fmt="parquet"))
    return {"tickets": len(simulation.tickets), "events": len(simulation.events),
            "export_at": simulation.export_at.isoformat()}


def _stage_validate(paths: Paths, params: dict, options: argparse.Namespace, timer: _Timer) -> dict:
    from pipeline.ingest import DEFAULT_EARLY_EVENT_TOLERANCE_MINUTES, validate_export

    tolerance = float(params.get("ingest", {}).get(
        "early_event_tolerance_minutes", DEFAULT_EARLY_EVENT_TOLERANCE_MINUTES))
    result = timer(lambda: validate_export(paths.export, paths.canonical, tolerance))
    return {"tickets": len(result.tickets), "events": len(result.events),
            "rows": result.total_input_rows, "details": {"rejected_rows": result.rejected_rows}}


def _stage_featurize(paths: Paths, params: dict, options: argparse.Namespace, timer: _Timer) -> dict:
    from features.build import build_features
    from features.calendar import BusinessHours

    tickets, events = _load_canonical(paths)
    hours = BusinessHours.from_params(params.get("business_hours"))
    # as_of=None: the export's latest timestamp, i.e. the moment the export was taken.
    table = timer(lambda: build_features(tickets, events, None, hours))
    return {"tickets": len(tickets), "events": len(events), "rows": len(table)}


def _stage_snapshots(paths: Paths, params: dict, options: argparse.Namespace, timer: _Timer) -> dict:
    from models.dataset import snapshot_features
    from pipeline.io import write_table

    tickets, events = _load_canonical(paths)
    table = timer(lambda: snapshot_features(tickets, events, params))
    write_table(table, paths.snapshots)  # untimed: the input of the train stage
    return {"tickets": len(tickets), "events": len(events), "rows": len(table)}


def _stage_train(paths: Paths, params: dict, options: argparse.Namespace, timer: _Timer) -> dict:
    from pipeline.train import train

    if not paths.snapshots.is_file():
        raise SystemExit(f"{paths.snapshots}: no snapshots; run the snapshots stage first")
    result = timer(lambda: train(paths.canonical, paths.model, snapshots_file=paths.snapshots, params=params))
    meta = result.model.meta
    counts = _canonical_rows(paths)
    return {
        "tickets": counts["tickets"], "events": counts["events"], "rows": result.risk_rows,
        "details": {"risk_rows": result.risk_rows, "urgency_rows": result.urgency_rows,
                    "risk_best_iteration": meta.get("risk_best_iteration"),
                    "urgency_best_iteration": meta.get("urgency_best_iteration")},
    }


def _score(paths: Paths, params: dict, timer: _Timer, all_tickets: bool) -> dict:
    from pipeline.score import score

    if not paths.output_of("train").is_file():
        raise SystemExit(f"{paths.model}: no model; run the train stage first")
    steps: list[str] = []  # score() reports each step's seconds through echo
    result = timer(lambda: score(paths.canonical, paths.scored(all_tickets), model_dir=paths.model, db_url="",
                                 all_tickets=all_tickets, params=params, echo=steps.append))
    counts = _canonical_rows(paths)
    return {"tickets": counts["tickets"], "events": counts["events"], "rows": len(result.scored),
            "details": {"steps": _parse_steps(steps)}}


def _stage_score(paths: Paths, params: dict, options: argparse.Namespace, timer: _Timer) -> dict:
    return _score(paths, params, timer, all_tickets=False)


def _stage_score_all(paths: Paths, params: dict, options: argparse.Namespace, timer: _Timer) -> dict:
    return _score(paths, params, timer, all_tickets=True)


def _parse_steps(lines: list[str]) -> dict[str, float]:
    """``"  scoring: 1.2 s"`` lines from :func:`pipeline.score.score` to ``{"scoring": 1.2}``."""
    steps = {}
    for line in lines:
        name, _, rest = line.strip().rpartition(":")
        if name and rest.strip().endswith(" s"):
            try:
                steps[name] = float(rest.strip()[:-2])
            except ValueError:
                continue
    return steps


def _canonical_rows(paths: Paths) -> dict[str, int]:
    marker = json.loads(paths.output_of("validate").read_text())
    rejects = int(marker.get("rejected_rows", 0))
    rows = marker["input_rows"]
    # Simulated exports validate without rejects; if any, they are subtracted from events (the bigger table).
    return {"tickets": int(rows["tickets"]), "events": int(rows["events"]) - rejects}


def _stage_reference(paths: Paths, params: dict, options: argparse.Namespace, timer: _Timer) -> dict:
    """Reference vs fast features on a seeded ticket sample of this export and all its events."""
    import numpy as np

    from features.build import build_features, latest_timestamp
    from features.calendar import BusinessHours

    reference_features = _import_reference(options.reference_wait_seconds)
    tickets, events = _load_canonical(paths)
    as_of = latest_timestamp(tickets, events)  # the export time, identical for both
    n = min(int(options.reference_tickets), len(tickets)) if options.reference_tickets > 0 else len(tickets)
    chosen = np.sort(np.random.default_rng(paths.seed).choice(len(tickets), size=n, replace=False))
    sample_tickets = tickets.iloc[chosen].reset_index(drop=True)
    sample_events = events[events["ticket_id"].isin(sample_tickets["ticket_id"])].reset_index(drop=True)
    hours = BusinessHours.from_params(params.get("business_hours"))

    fast_seconds = []
    for _ in range(options.fast_repeats):  # best of a few: the fast run is short enough to be noisy
        fast = timer(lambda: build_features(sample_tickets, sample_events, as_of, hours))
        fast_seconds.append(timer.seconds)
    reference = timer(lambda: reference_features(sample_tickets, sample_events, as_of, hours))
    reference_seconds = timer.seconds
    fast_best = min(fast_seconds)
    return {
        "tickets": n, "events": len(sample_events), "rows": len(fast),
        "details": {
            "source_export_tickets": len(tickets), "source_export_events": len(events),
            "as_of": as_of.isoformat(), "reference_seconds": reference_seconds,
            "fast_seconds": fast_best, "fast_seconds_all_repeats": fast_seconds,
            "ratio": reference_seconds / fast_best if fast_best > 0 else None,
            "mismatched_features": _mismatched_features(fast, reference),
        },
    }


def _import_reference(wait_seconds: float):
    """``reference_features``, polling for up to ``wait_seconds`` while its module is being written."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            from tests.features.reference import reference_features

            return reference_features
        except ImportError:
            if time.monotonic() > deadline:
                raise SystemExit("tests/features/reference.py is not importable; the reference ratio needs it")
            time.sleep(30)


def _mismatched_features(fast, reference) -> list[str]:
    """Feature columns on which the two implementations disagree (a sanity check, not a test)."""
    import numpy as np
    import pandas as pd

    from features.build import FEATURE_NAMES

    mismatched = []
    for name in FEATURE_NAMES:
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


CHILD_STAGES: dict[str, Callable[..., dict]] = {
    "generate": _stage_generate,
    "validate": _stage_validate,
    "featurize": _stage_featurize,
    "snapshots": _stage_snapshots,
    "train": _stage_train,
    "score": _stage_score,
    "score_all": _stage_score_all,
    "reference": _stage_reference,
}


def child_main(options: argparse.Namespace) -> int:
    """Run one stage in this (fresh) process and write its measurements as JSON."""
    paths = Paths(Path(options.work), options.size, options.seed)
    params = _load_params(options.params)
    code = code_state()  # the code this stage ran, recorded per stage
    profile_out, profiler_name = _profile_request(options, paths)
    profiler = _make_profiler(profiler_name) if profile_out else None
    timer = _Timer(profiler)
    measured = CHILD_STAGES[options.child](paths, params, options, timer)
    measured.setdefault("seconds", timer.seconds)
    measured["baseline_mb"] = timer.baseline_mb
    measured["self_peak_mb"] = _peak_rss_mb()
    if profiler:
        report = profiler.report(measured["seconds"])
        profile_out.parent.mkdir(parents=True, exist_ok=True)
        profile_out.write_text(report)
        measured.setdefault("details", {})["profiled_with"] = profiler_name
    if options.child in STAGES:
        measured.setdefault("details", {})["code"] = code
    Path(options.child_result).write_text(json.dumps(measured, default=str))
    return 0


def _profile_request(options: argparse.Namespace, paths: Paths) -> tuple[Path | None, str]:
    """Where to write this child's profile (None: no profiling) and with which profiler.

    Besides ``--profile-out``, the file ``<work>/profiles/SAMPLE_EVERY_STAGE`` asks every
    measured stage to run under the sampling profiler (about 1 % overhead), so a long
    run already in progress yields profiles of its own stages without being repeated.
    """
    if options.profile_out:
        return Path(options.profile_out), options.profiler
    if options.child in STAGES and (paths.work / "profiles" / SAMPLE_EVERY_STAGE).is_file():
        return paths.work / "profiles" / f"{options.child}-{paths.key}-sample.txt", "sample"
    return None, options.profiler


# ---------------------------------------------------------------------------- profilers


def _is_project_file(filename: str) -> bool:
    path = os.path.abspath(filename)
    return (path.startswith(str(REPO_ROOT) + os.sep) and os.sep + ".venv" + os.sep not in path
            and path != str(THIS_FILE))


def _where(filename: str) -> str:
    """A file name relative to the repo, or to its site-packages, for reports."""
    path = os.path.abspath(filename)
    if path.startswith(str(REPO_ROOT) + os.sep) and os.sep + ".venv" + os.sep not in path:
        return os.path.relpath(path, REPO_ROOT)
    marker = os.sep + "site-packages" + os.sep
    return path.split(marker, 1)[1] if marker in path else path


class _Profiler:
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def report(self, seconds: float) -> str: ...


class _SamplingProfiler(_Profiler):
    """Samples the main thread's stack every ``interval_s`` from a helper thread (stdlib only).

    Each sample is weighted by the wall time since the previous one, so a long C call
    that holds the GIL (and delays the sampler) still gets its full time, attributed to
    the project line that made the call. Reports: time per innermost *project* line
    (file:line, with the library function it was in), and inclusive time per project function.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.target_thread = threading.get_ident()
        self.lines: Counter = Counter()
        self.line_leaf: dict[tuple, Counter] = {}
        self.functions: Counter = Counter()
        self.total_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # A new thread per start: a stage may time several calls (the reference ratio does).
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(self.interval_s):
            frame = sys._current_frames().get(self.target_thread)
            now = time.perf_counter()
            weight, last = now - last, now
            if frame is not None:
                self._record(frame, weight)

    def _record(self, frame, weight: float) -> None:
        self.total_s += weight
        leaf = frame
        innermost_project = None
        seen_functions = set()
        while frame is not None:
            code = frame.f_code
            if _is_project_file(code.co_filename):
                if innermost_project is None:
                    innermost_project = frame
                seen_functions.add((_where(code.co_filename), code.co_firstlineno, code.co_name))
            frame = frame.f_back
        for function in seen_functions:
            self.functions[function] += weight
        if innermost_project is None:
            return
        code = innermost_project.f_code
        line = (_where(code.co_filename), innermost_project.f_lineno, code.co_name)
        self.lines[line] += weight
        leaf_code = leaf.f_code
        leaf_name = ("(project code)" if leaf is innermost_project
                     else f"{leaf_code.co_name} ({_where(leaf_code.co_filename)}:{leaf_code.co_firstlineno})")
        self.line_leaf.setdefault(line, Counter())[leaf_name] += weight

    def report(self, seconds: float) -> str:
        total = self.total_s or 1.0
        out = [f"sampling profile: {seconds:.1f} s stage wall time, {self.total_s:.1f} s sampled "
               f"every {self.interval_s * 1000:.0f} ms", "",
               "Hot lines (innermost project frame; share of sampled time; where the time went):"]
        for (file, line, name), weight in self.lines.most_common(25):
            leaf, _ = self.line_leaf[(file, line, name)].most_common(1)[0]
            out.append(f"  {100 * weight / total:5.1f}%  {weight:7.1f} s  {file}:{line} in {name}  -> {leaf}")
        out += ["", "Project functions, inclusive (share of sampled time):"]
        for (file, line, name), weight in self.functions.most_common(25):
            out.append(f"  {100 * weight / total:5.1f}%  {weight:7.1f} s  {name} ({file}:{line})")
        return "\n".join(out) + "\n"


class _CProfiler(_Profiler):
    """cProfile around the stage call; deterministic, but per-call overhead inflates tiny Python calls."""

    def __init__(self) -> None:
        import cProfile

        self._profile = cProfile.Profile()

    def start(self) -> None:
        self._profile.enable()

    def stop(self) -> None:
        self._profile.disable()

    def report(self, seconds: float) -> str:
        import io
        import pstats

        stream = io.StringIO()
        stats = pstats.Stats(self._profile, stream=stream)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(30)
        return f"cProfile: {seconds:.1f} s stage wall time (with profiler overhead)\n" + stream.getvalue()


def _make_profiler(name: str) -> _Profiler:
    return _CProfiler() if name == "cprofile" else _SamplingProfiler()


# =========================================================================== parent side


class _Watchdog(threading.Thread):
    """Kills a child that exceeds the RSS limit or the time limit (the machine is shared)."""

    def __init__(self, pid: int, max_rss_mb: float, timeout_s: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.max_rss_mb, self.timeout_s = pid, max_rss_mb, timeout_s
        self.killed_because: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.done.wait(0.25):
            rss_mb = _current_rss_mb(self.pid)
            if rss_mb is not None and rss_mb > self.max_rss_mb:
                self._kill(f"killed: RSS {rss_mb:.0f} MB above the --max-rss-mb limit {self.max_rss_mb:.0f}")
            elif time.monotonic() > deadline:
                self._kill(f"killed: still running after the --stage-timeout of {self.timeout_s:.0f} s")

    def _kill(self, why: str) -> None:
        if self.killed_because is None and not self.done.is_set():
            self.killed_because = why
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _current_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / MIB
    except OSError:
        return None
    return None


@dataclass
class ChildRun:
    ok: bool
    process_seconds: float
    peak_mb: float
    cpu_seconds: float  # user + system CPU of the child: less sensitive than wall time to a busy machine
    load_average: tuple[float, float]  # 1-minute load average as the child started and ended
    measured: dict
    error: str | None


def run_child(stage: str, paths: Paths, options: argparse.Namespace, profile_out: Path | None = None) -> ChildRun:
    """Run ``stage`` for ``paths`` in a fresh interpreter; peak RSS from ``os.wait4`` of that child."""
    log, result_file = paths.log(stage), paths.child_result(stage)
    log.parent.mkdir(parents=True, exist_ok=True)
    result_file.unlink(missing_ok=True)
    command = [sys.executable, str(THIS_FILE), "--child", stage, "--size", str(paths.size),
               "--seed", str(paths.seed), "--work", str(paths.work), "--params", str(options.params),
               "--child-result", str(result_file), "--reference-tickets", str(options.reference_tickets),
               "--fast-repeats", str(options.fast_repeats), "--profiler", options.profiler]
    if profile_out is not None:
        command += ["--profile-out", str(profile_out)]
    load_before = os.getloadavg()[0]
    with open(log, "w") as log_handle:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log_handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        watchdog = _Watchdog(child.pid, options.max_rss_mb, options.stage_timeout)
        watchdog.start()
        _, status, usage = os.wait4(child.pid, 0)
        watchdog.done.set()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        process_seconds = time.perf_counter() - started
    peak_mb = usage.ru_maxrss / MIB
    cpu_seconds = usage.ru_utime + usage.ru_stime
    load = (round(load_before, 2), round(os.getloadavg()[0], 2))
    if child.returncode == 0 and result_file.is_file():
        return ChildRun(True, process_seconds, peak_mb, cpu_seconds, load, json.loads(result_file.read_text()), None)
    error = watchdog.killed_because or f"exit code {child.returncode}: {_last_line(log)} (log: {log})"
    return ChildRun(False, process_seconds, peak_mb, cpu_seconds, load, {}, error)


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "no output"


def ensure_export(paths: Paths, options: argparse.Namespace) -> dict:
    """The cached simulator export for (size, seed); generated (in a child) when missing."""
    if paths.export_marker.is_file():
        return {**json.loads(paths.export_marker.read_text()), "cached": True}
    print(f"generating the {paths.size}-ticket export (seed {paths.seed}) ...", flush=True)
    run = run_child("generate", paths, options)
    if not run.ok:
        raise SystemExit(f"generating the {paths.size}-ticket export failed: {run.error}")
    if paths.export.exists():
        shutil.rmtree(paths.export)
    paths.export_tmp.rename(paths.export)
    info = {"tickets": run.measured["tickets"], "events": run.measured["events"],
            "export_at": run.measured["export_at"], "seed": paths.seed, "format": "parquet",
            "generate_seconds": round(run.measured["seconds"], 2), "generate_peak_mb": round(run.peak_mb, 1)}
    paths.export_marker.write_text(json.dumps(info, indent=2) + "\n")  # written last: marks the cache complete
    return {**info, "cached": False}


def _is_fresh(output: Path, source: Path) -> bool:
    return output.is_file() and output.stat().st_mtime >= source.stat().st_mtime


def ensure_prerequisites(stage: str, paths: Paths, options: argparse.Namespace,
                         failed: set[str] | None = None) -> str | None:
    """Produce (untimed) any missing input of ``stage``; returns an error message or None.

    ``failed``: stages that already failed at this size; their dependents are skipped
    rather than retried (a failing 1M-ticket train would otherwise run twice more).
    """
    failed = set() if failed is None else failed
    source = paths.export_marker
    for needed in PREREQUISITES[stage]:
        if needed in failed:
            return f"skipped: prerequisite {needed} failed"
        output = paths.output_of(needed)
        if not _is_fresh(output, source):
            print(f"  (preparing {needed} for {stage}, not recorded)", flush=True)
            run = run_child(needed, paths, options)
            if not run.ok:
                failed.add(needed)
                return f"prerequisite {needed} failed: {run.error}"
        source = output
    return None


def run_stage(stage: str, paths: Paths, options: argparse.Namespace, export: dict, failed: set[str]) -> dict:
    """One measured stage as a ``runs`` record; adds ``stage`` to ``failed`` when it fails."""
    record = {"stage": stage, "tickets": export["tickets"], "events": export["events"]}
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
    return record


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


def evaluate_targets(runs: list[dict], reference: dict | None) -> list[dict]:
    """Each target with the measurement it is judged on and ``met`` (None: not measured in this run)."""
    judged = []
    for target in TARGETS:
        entry = {"name": target.name, "description": target.description}
        if target.min_ratio is not None:
            ratio = (reference or {}).get("ratio")
            entry.update({"min_ratio": target.min_ratio, "measured_ratio": ratio,
                          "met": None if ratio is None else ratio >= target.min_ratio})
        else:
            run = next((r for r in runs if r["stage"] == target.stage and r["tickets"] == target.tickets
                        and r.get("seconds") is not None), None)
            entry.update({"stage": target.stage, "tickets": target.tickets, "max_seconds": target.max_seconds})
            if target.max_peak_mb is not None:
                entry["max_peak_mb"] = target.max_peak_mb
            if run is None:
                entry["met"] = None
            else:
                entry.update({"measured_seconds": run["seconds"], "measured_peak_mb": run["peak_mb"],
                              "events": run["events"]})
                met = run["seconds"] <= target.max_seconds
                if target.max_peak_mb is not None:
                    met = met and run["peak_mb"] <= target.max_peak_mb
                entry["met"] = met
        judged.append(entry)
    return judged


def machine_info() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_mb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mb = round(int(line.split()[1]) / MIB)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "memory_mb": memory_mb, "cpu_model": model, "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def code_state() -> dict:
    """The commit measured and the files that differed from it (read-only git calls)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    # Porcelain lines are "XY path"; the leading blank of " M path" matters, so no strip().
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    # The tree may be edited while a long run goes on: the diff's hash tells two states apart.
    diff_sha1 = hashlib.sha1(git("diff", "HEAD").encode()).hexdigest()[:12] if changed else None
    return {"commit": git("rev-parse", "HEAD").strip(), "modified_files": changed, "diff_sha1": diff_sha1}


def versions() -> dict:
    import lightgbm
    import numpy
    import pandas
    import pyarrow

    return {"python": platform.python_version(), "pandas": pandas.__version__, "numpy": numpy.__version__,
            "lightgbm": lightgbm.__version__, "pyarrow": pyarrow.__version__}


# ----------------------------------------------------------------------------- reports


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _load(run: dict) -> str:
    load = run.get("load_average")
    return "-" if not load else f"{load[0]:.1f}-{load[1]:.1f}"


def text_table(runs: list[dict]) -> str:
    """The runs as an aligned plain-text table."""
    header = (f"{'stage':<10} {'tickets':>9} {'events':>10} {'rows':>9} {'seconds':>9} {'process s':>9} "
              f"{'CPU s':>8} {'peak MB':>8} {'load':>9}")
    lines = [header, "-" * len(header)]
    for run in runs:
        lines.append(
            f"{run['stage']:<10} {run['tickets']:>9} {run['events']:>10} {_fmt(run.get('rows'), 'd'):>9} "
            f"{_fmt(run.get('seconds'), '.2f'):>9} {_fmt(run.get('process_seconds'), '.1f'):>9} "
            f"{_fmt(run.get('process_cpu_seconds'), '.1f'):>8} {_fmt(run.get('peak_mb'), '.0f'):>8} {_load(run):>9}"
            + (f"  ERROR {run['error']}" if run.get("error") else "")
        )
    return "\n".join(lines)


def markdown_report(results: dict) -> str:
    """The results as Markdown (what goes into benchmarks/README.md)."""
    machine = results["machine"]
    lines = [f"Run of {results['date']} on {machine['cores']} cores ({machine['cpu_model']}), "
             f"{machine['memory_mb']} MB RAM; " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".",
             "", "| stage | tickets | events | rows | seconds | process s | CPU s | peak MB | load |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in results["runs"]:
        lines.append(f"| {run['stage']} | {run['tickets']:,} | {run['events']:,} | {_fmt(run.get('rows'), ',d')} | "
                     f"{_fmt(run.get('seconds'), '.2f')} | {_fmt(run.get('process_seconds'), '.1f')} | "
                     f"{_fmt(run.get('process_cpu_seconds'), '.1f')} | {_fmt(run.get('peak_mb'), ',.0f')} | "
                     f"{_load(run)} |" + (f" error: {run['error']}" if run.get("error") else ""))
    reference = results.get("reference_ratio") or {}
    if reference.get("ratio") is not None:
        lines += ["", f"Reference ratio: {reference['ratio']}x ({reference['reference_seconds']} s reference vs "
                      f"{reference['fast_seconds']} s fast, best of {reference['fast_repeats']}) on "
                      f"{reference['tickets']:,} tickets / {reference['events']:,} events sampled from the "
                      f"{reference['sample_of_export_tickets']:,}-ticket export."]
    lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
    for target in results["targets"]:
        lines.append(f"| {target['description']} | {_measured(target)} | {_verdict(target['met'])} |")
    return "\n".join(lines) + "\n"


def _measured(target: dict) -> str:
    if "measured_ratio" in target:
        return "-" if target["measured_ratio"] is None else f"{target['measured_ratio']}x"
    if target.get("measured_seconds") is None:
        return "not measured"
    text = f"{target['measured_seconds']:.1f} s"
    if "max_peak_mb" in target:
        text += f", {target['measured_peak_mb']:,.0f} MB"
    return text


def _verdict(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not measured"}[met]


def print_targets(targets: list[dict]) -> None:
    print("\ntargets:")
    for target in targets:
        print(f"  [{_verdict(target['met']).strip('*'):>12}] {target['description']}: {_measured(target)}")


# -------------------------------------------------------------------------------- main


def run_benchmarks(options: argparse.Namespace) -> dict:
    """Measure every stage at every size; write and return the results document."""
    work = Path(options.work)
    stages = [s for s in STAGES if s in options.stages]
    results = {"machine": machine_info(), "versions": versions(), "code": code_state(),
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
        for stage in stages:
            record = run_stage(stage, paths, options, export, failed)
            results["runs"].append(record)
            print(text_table([record]).splitlines()[-1], flush=True)
    results["reference_ratio"] = None
    if not options.no_reference:
        print("\nreference ratio ...", flush=True)
        results["reference_ratio"] = reference_ratio(Paths(work, min(options.sizes), options.seed), options)
    if options.merge:
        _merge_previous(results, Path(options.out))
    results["targets"] = evaluate_targets(results["runs"], results["reference_ratio"])
    return results


def _merge_previous(results: dict, results_file: Path) -> None:
    """Fold the runs of an earlier results file into ``results`` (new measurements win)."""
    if not results_file.is_file():
        return
    previous = json.loads(results_file.read_text())
    measured = {(r["stage"], r["tickets"]) for r in results["runs"]}
    kept = [r for r in previous.get("runs", []) if (r["stage"], r["tickets"]) not in measured]
    order = {stage: i for i, stage in enumerate(STAGES)}
    results["runs"] = sorted(kept + results["runs"], key=lambda r: (r["tickets"], order.get(r["stage"], 99)))
    results["exports"] = {**previous.get("exports", {}), **results["exports"]}
    if results["reference_ratio"] is None:
        results["reference_ratio"] = previous.get("reference_ratio")
    results["merged_with_run_of"] = previous.get("date")
    results["code_of_merged_run"] = previous.get("code_of_merged_run", previous.get("code"))


def profile_stage(options: argparse.Namespace) -> int:
    """Run one stage at the largest size under a profiler; print and keep the report."""
    stage, size = options.profile, max(options.sizes)
    if stage == "auto":
        stage, size = _slowest_stage(Path(options.out))
    paths = Paths(Path(options.work), size, options.seed)
    export = ensure_export(paths, options)
    problem = ensure_prerequisites(stage, paths, options)
    if problem:
        raise SystemExit(problem)
    out = paths.work / "profiles" / f"{stage}-{paths.key}-{options.profiler}.txt"
    print(f"profiling {stage} at {size} tickets / {export['events']} events with {options.profiler} ...", flush=True)
    run = run_child(stage, paths, options, profile_out=out)
    if not run.ok:
        raise SystemExit(f"profiling {stage} failed: {run.error}")
    print(out.read_text())
    print(f"(peak {run.peak_mb:.0f} MB; report kept in {out})")
    return 0


def _slowest_stage(results_file: Path) -> tuple[str, int]:
    if not results_file.is_file():
        raise SystemExit(f"{results_file}: no results yet; run the benchmarks first or name a stage")
    runs = [r for r in json.loads(results_file.read_text())["runs"] if r.get("seconds") is not None]
    largest = max(r["tickets"] for r in runs)
    slowest = max((r for r in runs if r["tickets"] == largest), key=lambda r: r["seconds"])
    return slowest["stage"], largest


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
    parser.add_argument("--fast-repeats", type=int, default=3, help="Fast featurize runs in the ratio (best one counts).")
    parser.add_argument("--max-rss-mb", type=float, default=14_000.0, help="Kill a stage whose RSS goes above this.")
    parser.add_argument("--stage-timeout", type=float, default=3600.0, help="Kill a stage running longer (seconds).")
    parser.add_argument("--profile", help="Profile this stage (or 'auto': the slowest in --out) at the largest size.")
    parser.add_argument("--profiler", choices=("sample", "cprofile"), default="sample")
    parser.add_argument("--markdown", action="store_true", help="Print --out as Markdown and exit.")
    parser.add_argument("--merge", action="store_true",
                        help="Keep the runs already in --out; re-measured (stage, tickets) pairs replace old ones.")
    # Internal: the parent runs each stage as `run.py --child STAGE ...`.
    parser.add_argument("--child", choices=sorted(CHILD_STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--reference-wait-seconds", type=float, default=1800.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if options.child:
        return child_main(options)
    if options.markdown:
        print(markdown_report(json.loads(Path(options.out).read_text())), end="")
        return 0
    if options.profile:
        return profile_stage(options)
    started = time.perf_counter()
    results = run_benchmarks(options)
    from pipeline.io import write_json

    write_json(results, options.out)
    print("\n" + text_table(results["runs"]))
    reference = results["reference_ratio"] or {}
    if "ratio" in reference:
        print(f"\nreference ratio: {reference['ratio']}x ({reference['reference_seconds']} s / "
              f"{reference['fast_seconds']} s on {reference['tickets']} tickets, {reference['events']} events)")
    elif reference:
        print(f"\nreference ratio: not measured ({reference['error']})")
    print_targets(results["targets"])
    print(f"\nwrote {options.out} ({time.perf_counter() - started:.0f} s in all)")
    return 0 if all(r.get("error") is None for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
