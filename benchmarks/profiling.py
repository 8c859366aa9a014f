"""Profilers a child process can run its timed call under (``run.py --profile STAGE``).

Only the timed call is profiled, never loading the inputs, so the report shows the
same work as the ``seconds`` column. The profiler is chosen on the command line
only (``--profiler``); nothing else switches profiling on.
"""

from __future__ import annotations

from pathlib import Path

PROFILERS = ("pyinstrument", "cprofile")
# Stages run from under a second (10k) to many minutes (1M); 1 ms, pyinstrument's
# default, still gives a few hundred samples at 10k.
PYINSTRUMENT_INTERVAL_S = 0.001


class PyinstrumentProfiler:
    """pyinstrument: a statistical profiler that charges a long C call (which holds the GIL
    and so delays the sampler) in full to the Python line that made it, and folds library
    frames away so the report reads in terms of project functions."""

    def __init__(self) -> None:
        from pyinstrument import Profiler

        self._profiler = Profiler(interval=PYINSTRUMENT_INTERVAL_S)

    def start(self) -> None:
        # Several start/stop pairs (the reference stage times several calls) add up to one session.
        self._profiler.start()

    def stop(self) -> None:
        self._profiler.stop()

    def write(self, out: Path, seconds: float) -> list[Path]:
        """The text report at ``out`` and the interactive HTML one beside it."""
        header = f"pyinstrument: {seconds:.1f} s stage wall time (timed call only, inputs loaded before)\n"
        out.write_text(header + self._profiler.output_text(unicode=False, color=False))
        html = out.with_suffix(".html")
        html.write_text(self._profiler.output_html(), encoding="utf-8")
        return [out, html]


class CProfiler:
    """cProfile: deterministic call counts, but its per-call overhead inflates functions
    called millions of times, so its times are only comparable with each other."""

    def __init__(self) -> None:
        import cProfile

        self._profile = cProfile.Profile()

    def start(self) -> None:
        self._profile.enable()

    def stop(self) -> None:
        self._profile.disable()

    def write(self, out: Path, seconds: float) -> list[Path]:
        import io
        import pstats

        stream = io.StringIO()
        stats = pstats.Stats(self._profile, stream=stream)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(30)
        out.write_text(f"cProfile: {seconds:.1f} s stage wall time (with profiler overhead)\n" + stream.getvalue())
        return [out]


Profiler = PyinstrumentProfiler | CProfiler


def make_profiler(name: str) -> Profiler:
    return {"pyinstrument": PyinstrumentProfiler, "cprofile": CProfiler}[name]()
