"""The results document: results.json on disk, and the tables printed or pasted into the README.

results.json is committed and read by other tools, so its keys are a contract:
top level ``machine``, ``versions``, ``code``, ``date``, ``settings``, ``exports``,
``runs``, ``reference_ratio``, ``targets`` (plus ``merged_with_run_of`` and
``code_of_merged_run`` after ``--merge``). Change them only together with its readers.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.workdir import STAGES


def write_results(results: dict, path: str | Path) -> Path:
    # The pipeline's writer (atomic, sorted keys); imported here because it pulls in
    # pandas, which the other modes of the CLI (--markdown, --help) do without.
    from pipeline.core.io import write_json

    return write_json(results, path)


def read_results(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def merge_previous(results: dict, results_file: Path) -> None:
    """Fold the runs of an earlier results file into ``results`` (new measurements win)."""
    if not results_file.is_file():
        return
    previous = read_results(results_file)
    measured = {(r["stage"], r["tickets"]) for r in results["runs"]}
    # Runs recorded before the Dask engine existed ran on one machine.
    kept = [{"engine": "pandas", **r} for r in previous.get("runs", []) if (r["stage"], r["tickets"]) not in measured]
    order = {stage: i for i, stage in enumerate(STAGES)}
    results["runs"] = sorted(kept + results["runs"], key=lambda r: (r["tickets"], order.get(r["stage"], 99)))
    results["exports"] = {**previous.get("exports", {}), **results["exports"]}
    if results["reference_ratio"] is None:
        results["reference_ratio"] = previous.get("reference_ratio")
    results["merged_with_run_of"] = previous.get("date")
    results["code_of_merged_run"] = previous.get("code_of_merged_run", previous.get("code"))


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
        lines += ["", (f"Reference ratio: {reference['ratio']}x ({reference['reference_seconds']} s reference vs "
                       f"{reference['fast_seconds']} s fast, best of {reference['fast_repeats']}) on "
                       f"{reference['tickets']:,} tickets / {reference['events']:,} events sampled from the "
                       f"{reference['sample_of_export_tickets']:,}-ticket export.")]
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


def print_summary(results: dict) -> None:
    """The end of a benchmark run on the terminal: every run, the reference ratio, the targets."""
    print("\n" + text_table(results["runs"]))
    reference = results["reference_ratio"] or {}
    if "ratio" in reference:
        print(f"\nreference ratio: {reference['ratio']}x ({reference['reference_seconds']} s / "
              f"{reference['fast_seconds']} s on {reference['tickets']} tickets, {reference['events']} events)")
    elif reference:
        print(f"\nreference ratio: not measured ({reference['error']})")
    print("\ntargets:")
    for target in results["targets"]:
        print(f"  [{_verdict(target['met']).strip('*'):>12}] {target['description']}: {_measured(target)}")
