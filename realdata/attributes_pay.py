"""Do attributes pay? A per-ticket table with attributes as field events, no text, no priorities.

Run from the repository root (not a DVC stage; about 6 minutes on the 2-core VM):
    .venv/bin/python realdata/attributes_pay.py [WORK_DIR] [--tickets N] [--seed S]

The desk is generated (the simulator, whose product area, customer plan, form and order
value move the chance of a bad rating and partly change during a ticket's life), then cut
down to what a per-ticket CSAT table carries: tickets with creation time, channel,
requester and rating; status events (opened, solved) and attribute ``field`` events. No
message events, no subjects or bodies, no priorities. The same table is trained twice with
the repository's default ``params.yaml`` through the CLI: once as is, once with every
attribute in ``attributes.exclude``. Both are judged by ``evaluate`` on the same held-out
newest tickets; the script prints the two test ROC AUCs and the best baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv" / "bin" / "csat-triage")


def option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def run(*args: str) -> None:
    print("$ csat-triage", " ".join(args), flush=True)
    subprocess.run([CLI, *args], check=True, cwd=ROOT)


def per_ticket_table(raw: Path, out: Path) -> list[str]:
    """The simulated export cut to a per-ticket table; returns the attribute names."""
    tickets = pd.read_csv(raw / "tickets.csv", dtype=str, keep_default_na=False)
    events = pd.read_csv(raw / "events.csv", dtype=str, keep_default_na=False)
    tickets = tickets.assign(subject="", priority="", group="", assignee="")
    events = events[events["kind"].isin(["status", "field"])].assign(body="")
    out.mkdir(parents=True, exist_ok=True)
    tickets.to_csv(out / "tickets.csv", index=False)
    events.to_csv(out / "events.csv", index=False)
    return sorted(events.loc[events["kind"] == "field", "field"].unique())


def main() -> None:
    positional = [a for i, a in enumerate(sys.argv[1:], 1) if not a.startswith("--") and not sys.argv[i - 1].startswith("--")]
    work = Path(positional[0] if positional else "/tmp/attributes_pay").resolve()
    work.mkdir(parents=True, exist_ok=True)
    run("simulate", "--out", str(work / "simulated"), "--tickets", option("--tickets", "20000"),
        "--seed", option("--seed", "7"))
    names = per_ticket_table(work / "simulated", work / "raw")
    run("validate", str(work / "raw"), "--out", str(work / "interim"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    results = {}
    for variant, exclude in (("with attributes", []), ("without attributes", names)):
        folder = work / variant.replace(" ", "_")
        folder.mkdir(exist_ok=True)
        params["attributes"]["exclude"] = exclude
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        run("train", str(work / "interim"), "--out", str(folder / "model"), "--params", str(folder / "params.yaml"))
        run("evaluate", str(folder / "model"), "--out", str(folder / "metrics.json"),
            "--params", str(folder / "params.yaml"))
        results[variant] = json.loads((folder / "metrics.json").read_text())["bad_csat"]
    print(f"\nattributes: {', '.join(names)}")
    print("| model | test ROC AUC | best baseline |\n| --- | ---: | --- |")
    for variant, section in results.items():
        best = max(section["baselines"].items(), key=lambda kv: kv[1]["roc_auc"] or 0)
        print(f"| {variant} | {section['roc_auc']:.3f} | {best[0]} {best[1]['roc_auc']:.3f} |")


if __name__ == "__main__":
    main()
