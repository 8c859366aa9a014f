"""Running one stage in a fresh Python process and measuring it.

Parent side (:func:`run_child`): starts ``run.py --child STAGE``, reaps it with
``os.wait4`` so ``ru_maxrss`` is that child's peak alone (never an earlier stage's),
and kills it through a :class:`Watchdog` when it exceeds the memory or time limit.

Child side (:func:`child_main`): loads the parameters, runs the stage's runner with a
:class:`Timer` (optionally under a profiler) and writes what it measured as JSON for
the parent to read.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from benchmarks.environment import code_state
from benchmarks.profiling import Profiler, make_profiler
from benchmarks.stages import RUNNERS
from benchmarks.workdir import REPO_ROOT, RUN_SCRIPT, STAGES, Paths
from pipeline.core.params import load_params

MIB = 1024.0  # ru_maxrss and /proc VmRSS are in KiB on Linux
T = TypeVar("T")


# ============================================================================ child side


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB


class Timer:
    """Times one call, optionally under a profiler; keeps the seconds and the peak RSS before it."""

    def __init__(self, profiler: Profiler | None) -> None:
        self.profiler = profiler
        self.seconds = float("nan")
        self.baseline_mb = float("nan")

    def __call__(self, fn: Callable[[], T]) -> T:
        self.baseline_mb = peak_rss_mb()
        if self.profiler:
            self.profiler.start()
        started = time.perf_counter()
        try:
            return fn()
        finally:
            self.seconds = time.perf_counter() - started
            if self.profiler:
                self.profiler.stop()


def child_main(options: argparse.Namespace) -> int:
    """Run one stage in this (fresh) process and write its measurements as JSON."""
    paths = Paths(Path(options.work), options.size, options.seed)
    params = load_params(options.params)
    code = code_state()  # the code this stage ran, recorded per stage
    profiler = make_profiler(options.profiler) if options.profile_out else None
    timer = Timer(profiler)
    measured = RUNNERS[options.child](paths, params, options, timer)
    measured.setdefault("seconds", timer.seconds)
    measured["baseline_mb"] = timer.baseline_mb
    measured["self_peak_mb"] = peak_rss_mb()
    if profiler:
        out = Path(options.profile_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        profiler.write(out, measured["seconds"])
        measured.setdefault("details", {})["profiled_with"] = options.profiler
    if options.child in STAGES:
        measured.setdefault("details", {})["code"] = code
    Path(options.child_result).write_text(json.dumps(measured, default=str))
    return 0


# =========================================================================== parent side


class Watchdog(threading.Thread):
    """Kills a child that exceeds the RSS limit or the time limit (the machine is shared)."""

    def __init__(self, pid: int, max_rss_mb: float, timeout_s: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.max_rss_mb, self.timeout_s = pid, max_rss_mb, timeout_s
        self.killed_because: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.done.wait(0.25):
            rss_mb = current_rss_mb(self.pid)
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


def current_rss_mb(pid: int) -> float | None:
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
    command = [sys.executable, str(RUN_SCRIPT), "--child", stage, "--size", str(paths.size),
               "--seed", str(paths.seed), "--work", str(paths.work), "--params", str(options.params),
               "--child-result", str(result_file), "--reference-tickets", str(options.reference_tickets),
               "--fast-repeats", str(options.fast_repeats), "--profiler", options.profiler]
    if profile_out is not None:
        command += ["--profile-out", str(profile_out)]
    load_before = os.getloadavg()[0]
    with open(log, "w") as log_handle:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log_handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        watchdog = Watchdog(child.pid, options.max_rss_mb, options.stage_timeout)
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
