"""Write the three DVC pipelines (demo, ServiceNow, negative control) from one definition.

Every stage is defined once below: its command, the code packages it runs and the
params sections it reads. The root ``dvc.yaml`` and ``realdata/*/dvc.yaml`` are
rendered from it, so their dependencies cannot drift apart. ``make pipelines`` runs
this; ``tests/test_pipelines.py`` fails when a committed file differs from what this
renders.

Usage: python tools/render_dvc.py [--check]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

# The floors each stage's code comes from (whole packages: a change anywhere in them re-runs the stage).
CORE = ("pipeline/core", "pipeline/sources")
FEATURES = (*CORE, "features")
MODELS = (*FEATURES, "models")
READ_EXPORT = ("ingest",)  # every stage that reads an export validates it with these params
# `target` too: which snapshot moments `auto` takes depends on whether the outcome is a rating.
FEATURE_PARAMS = (*READ_EXPORT, "business_hours", "snapshots", "attributes", "team_record", "target")


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    code: tuple[str, ...]
    params: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()  # data dependencies
    outs: tuple[object, ...] = ()
    metrics: tuple[str, ...] = ()
    comment: str = ""


@dataclass(frozen=True)
class Pipeline:
    path: str  # the dvc.yaml, relative to the repo root
    header: str
    first: Stage  # the stage that makes data/raw (simulate or import)
    registry_name: str = "csat-triage"
    raw: str = "data/raw"
    truth: str | None = None  # the simulator's truth.csv, for the oracle ceiling
    extra: tuple[str, ...] = ()  # optional stages: "evaluate_moments", "score", "monitor"
    later_raw: str | None = None  # a later export of the same desk, for the monitor stage
    plots: list = field(default_factory=list)


def stages(p: Pipeline) -> list[Stage]:
    name_option = f" --name {p.registry_name}" if p.registry_name != "csat-triage" else ""
    truth_option = f" --truth {p.truth}" if p.truth else ""
    out = [
        p.first,
        Stage("validate", f"csat-triage validate {p.raw} --out data/interim",
              (*CORE, "pipeline/stages/validate.py"), READ_EXPORT, deps=(p.raw,), outs=("data/interim",)),
        Stage("featurize", "csat-triage featurize data/interim --snapshots --out data/features/snapshots.parquet",
              (*FEATURES, "pipeline/stages/featurize.py"), FEATURE_PARAMS, deps=("data/interim",),
              outs=("data/features/snapshots.parquet",)),
        Stage("train", "csat-triage train data/interim --snapshots data/features/snapshots.parquet "
                       "--out data/models/candidate",
              (*MODELS, "pipeline/stages/train.py"),
              (*FEATURE_PARAMS, "train", "split", "risk_model", "urgency_model", "text_model"),
              deps=("data/interim", "data/features/snapshots.parquet"), outs=("data/models/candidate",)),
        Stage("evaluate", "csat-triage evaluate data/models/candidate --out reports/metrics.json "
                          f"--plots reports/plots{truth_option}",
              (*MODELS, "pipeline/stages/evaluate.py"), FEATURE_PARAMS,
              deps=("data/models/candidate", "data/interim", "data/features/snapshots.parquet",
                    *((p.truth,) if p.truth else ())),
              outs=({"reports/plots": {"cache": False}},), metrics=("reports/metrics.json",)),
        Stage("register", "csat-triage register data/models/candidate --metrics reports/metrics.json "
                          f"--champion-dir data/models/champion --decision reports/champion.json{name_option}",
              (*MODELS, "pipeline/tracking", "pipeline/stages/register.py"), (*FEATURE_PARAMS, "champion"),
              deps=("data/models/candidate", "reports/metrics.json", "data/interim"),
              # One champion: never restored from DVC's cache or run cache (see pipeline/stages/register.py).
              outs=({"data/models/champion": {"cache": False, "persist": True}},),
              metrics=("reports/champion.json",),
              comment="MLflow store: MLFLOW_TRACKING_URI if set, else <DVC_ROOT>/mlflow.db (the repo root's)."),
    ]
    if "evaluate_moments" in p.extra:
        out.append(Stage(
            "evaluate_moments", "csat-triage evaluate-moments data/models/candidate --out reports/moments.json",
            (*MODELS, "pipeline/stages/evaluate_moments.py"), FEATURE_PARAMS,
            deps=("data/models/candidate", "data/interim"), metrics=("reports/moments.json",)))
    if "score" in p.extra:
        out.append(Stage(
            "score", "csat-triage score data/interim --model data/models/champion --out data/scored/priorities.csv "
                     "--db sqlite:///data/scored/priorities.sqlite "
                     "--zendesk-payload data/scored/zendesk_update_many.json",
            (*MODELS, "pipeline/sinks", "pipeline/tracking", "pipeline/stages/score.py"),
            (*FEATURE_PARAMS, "policy", "reasons", "zendesk", "history"),
            deps=("data/interim", "data/models/champion"),
            outs=("data/scored/priorities.csv", "data/scored/zendesk_update_many.json",
                  {"data/scored/priorities.sqlite": {"persist": True}})))
    if "monitor" in p.extra:
        # The later export of the same desk (simulate --later-out): the outcomes the scored queue turned into.
        out.append(Stage(
            "monitor", f"csat-triage monitor {p.later_raw} --db sqlite:///data/scored/priorities.sqlite "
                       "--model data/models/champion --out reports/monitoring.json --plots reports/monitoring",
            (*MODELS, "pipeline/sinks", "pipeline/stages/monitor.py"), (*FEATURE_PARAMS, "monitor"),
            deps=(p.later_raw, "data/scored/priorities.sqlite", "data/models/champion"),
            outs=({"reports/monitoring": {"cache": False}},), metrics=("reports/monitoring.json",)))
    return out


DEMO_PLOTS = [
    {"reports/plots/roc.csv": {"title": "ROC, test period", "x": "fpr", "y": "tpr"}},
    {"reports/plots/precision_recall.csv": {"title": "Precision-recall, test period", "x": "recall",
                                            "y": "precision"}},
    {"reports/plots/calibration.csv": {"title": "Calibration (predicted vs observed bad rate)", "x": "predicted",
                                       "y": "observed"}},
    {"reports/plots/feature_importance.csv": {"title": "Risk model feature importance (gain)",
                                              "template": "bar_horizontal", "x": "gain", "y": "feature"}},
    {"reports/plots/urgency_confusion.csv": {"title": "Urgency confusion, test period", "template": "confusion",
                                             "x": "predicted", "y": "actual"}},
    {"reports/monitoring/monitoring_runs.csv": {"title": "Monitoring: how each scoring run turned out",
                                                "x": "run_id", "y": ["roc_auc", "ece"]}},
]

SHARED = "../../../shared/datasets"
PIPELINES = (
    Pipeline(
        "dvc.yaml",
        "The demo pipeline on the embedded simulator. `make repro` runs it.",
        Stage("simulate", "csat-triage simulate --out data/raw/demo --later-out data/raw/demo_later",
              (*CORE, "pipeline/stages/simulate.py"), ("simulate",), outs=("data/raw/demo", "data/raw/demo_later")),
        raw="data/raw/demo", truth="data/raw/demo/truth.csv", extra=("score", "monitor"),
        later_raw="data/raw/demo_later", plots=DEMO_PLOTS,
    ),
    Pipeline(
        "realdata/servicenow/dvc.yaml",
        "The pipeline on a real IT service desk: the ServiceNow incident event log\n"
        "(UCI ML Repository, dataset 498, Amaral, Fantinato, Reijers, Peres 2018, CC BY 4.0).\n"
        "Run from the repo root: make uci",
        Stage("import", "csat-triage import-servicenow "
                        f"{SHARED}/uci-incident-log/incident_event_log.until-2016-04-30.csv.gz "
                        "--out data/raw --format parquet",
              (*CORE, "pipeline/stages/import_export.py"),
              deps=(f"{SHARED}/uci-incident-log/incident_event_log.until-2016-04-30.csv.gz",), outs=("data/raw",)),
        registry_name="csat-triage-servicenow", extra=("evaluate_moments",),
    ),
    Pipeline(
        "realdata/negative_control/dvc.yaml",
        "Negative control: the Kaggle \"Customer Support Ticket Dataset\" (8,469 synthetic tickets whose\n"
        "ratings are random; CC0 as published). A pipeline that shows skill here is leaking.\n"
        "Run from the repo root: make negative-control",
        Stage("import", "csat-triage import-kaggle-cst "
                        f"{SHARED}/negative-control-kaggle-cst/customer_support_tickets.csv.gz "
                        "--out data/raw --format parquet",
              (*CORE, "pipeline/stages/import_export.py"),
              deps=(f"{SHARED}/negative-control-kaggle-cst/customer_support_tickets.csv.gz",), outs=("data/raw",)),
        registry_name="csat-triage-negative-control",
    ),
)


def render(p: Pipeline) -> str:
    """The text of one dvc.yaml."""
    prefix = "../" * p.path.count("/")
    body: dict[str, dict] = {}
    for stage in stages(p):
        entry: dict[str, object] = {"cmd": stage.cmd, "deps": [*stage.deps, *(prefix + c for c in stage.code)]}
        if stage.params:
            entry["params"] = list(stage.params)
        if stage.outs:
            entry["outs"] = list(stage.outs)
        if stage.metrics:
            entry["metrics"] = [{m: {"cache": False}} for m in stage.metrics]
        body[stage.name] = entry
    document: dict[str, object] = {"stages": body}
    if p.plots:
        document["plots"] = p.plots
    comments = "".join(f"# {line}\n" for line in p.header.splitlines())
    generated = ("# Generated by tools/render_dvc.py from one definition of every stage; edit that file and run\n"
                 "# `make pipelines`, never this one (tests/test_pipelines.py checks they agree).\n")
    text = yaml.safe_dump(document, sort_keys=False, width=120, allow_unicode=True)
    lines, out = text.splitlines(), []
    for line in lines:
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":") and out:
            out.append("")
        out.append(line)
    return comments + generated + "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for p in PIPELINES:
        path = REPO_ROOT / p.path
        text = render(p)
        if "--check" in argv:
            if not path.is_file() or path.read_text() != text:
                stale.append(p.path)
        else:
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}; run `make pipelines`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
