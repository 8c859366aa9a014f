"""The measurement that matters: the model against "oldest first" on the queue a nightly run scores.

Run from realdata/servicenow after `make uci` (not a DVC stage):
    ../../.venv/bin/python daily_queue_evaluation.py [MODEL_DIR] [--at HH:MM] [--days N] [--from DATE]
Takes the evaluated incidents, and at HH:MM UTC (default 05:30) of every day from their
start to the end of the log scores those that are open then (created before, not
resolved/closed by then), each with what was known at that moment, for N days (default
28: the weeks a nightly queue would have held them). Prints ROC AUC of the model, of
incident age ("oldest first") and of the current wait ("longest wait") over all
incident-days and over those at most 72 h old.

Which incidents, and which of the model's two boosters:
- without --from: the model's held-out test period (incidents created from its
  `period_starts.test`), scored by its held-out model (`TriageModel.heldout()`): a
  production refit (`train.refit_on_all_labels`) has trained on that period.
- --from DATE: incidents created from DATE, scored by the production model, the one a
  nightly run uses. DATE must be after every incident the model was trained on (its
  `training_period.last_ticket_created`), so train it on a cut of the log.

Protocol for the refit's gain (the model that has seen the newest weeks, issue 15):
1. Cut the log at C = 2016-04-09 as a nightly run on that morning would have seen it:
       ../../.venv/bin/python daily_queue_evaluation.py --cut 2016-04-09 --out CUT
   It reads the `make uci` import (data/raw), keeps incidents created by C and events up
   to C, and writes canonical tables to CUT. The log's `sla_missed` (and priority,
   status) are final values: an incident still open at C would carry a label from the
   future, so the cut keeps labels only for incidents resolved or closed by C (status at
   C from the status events) and sets status and priority to their values at C.
2. Train on the cut with the refit on and off (root params.yaml, the issue's setting):
       csat-triage train CUT --out M_ON --target sla_missed=true --params ../../params.yaml
       (and with train.refit_on_all_labels: false in a copy of params.yaml -> M_OFF)
3. Evaluate each on the full log's incidents created from C:
       ../../.venv/bin/python daily_queue_evaluation.py M_ON --from 2016-04-09
Data: UCI ML Repository dataset 498 (Amaral et al. 2018), CC BY 4.0.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import build_features, latest_timestamp
from features.calendar import BusinessHours
from models.metrics import ranking_metrics
from models.store import TriageModel
from models.target import Target
from pipeline.core import contract
from pipeline.core.params import load_params
from pipeline.sources.ingest import load_export
from pipeline.stages.validate import validate_export


def option(name: str, default: str | None) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def write_cut(day: str, out: str) -> None:
    """The import as of ``day`` 00:00 UTC, labels kept only where decided by then (protocol step 1)."""
    cut_at = pd.Timestamp(day, tz="UTC")
    export = load_export("data/raw", load_params("params.yaml").ingest, as_of=cut_at)
    tickets, events = export.tickets.copy(), export.events.sort_values("at", kind="stable")
    for column in ("status", "priority"):
        latest = events[events["kind"].astype(str) == column].groupby("ticket_id")["value"].last()
        values = tickets["ticket_id"].map(latest).astype(object)
        tickets[column] = values.where(values.notna(), "new" if column == "status" else None).to_numpy()
    decided = tickets["status"].isin(contract.DONE_STATUSES)
    tickets["sla_missed"] = tickets["sla_missed"].astype(object).where(decided.to_numpy(), None)
    Path(out, "raw").mkdir(parents=True, exist_ok=True)
    tickets.to_parquet(Path(out, "raw", "tickets.parquet"), index=False)
    events.to_parquet(Path(out, "raw", "events.parquet"), index=False)
    validate_export(Path(out, "raw"), out, load_params("params.yaml").ingest)
    print(f"cut at {cut_at:%Y-%m-%d %H:%M} UTC -> {out}: {len(tickets)} incidents ({int(decided.sum())} resolved "
          f"or closed, labelled; {int((~decided).sum())} open, unlabelled), {len(events)} events")


if "--cut" in sys.argv:
    write_cut(option("--cut", None), option("--out", None))
    sys.exit(0)

args = [a for i, a in enumerate(sys.argv[1:], 1) if not a.startswith("--") and not sys.argv[i - 1].startswith("--")]
at, n_days = option("--at", "05:30"), int(option("--days", "28"))
model = TriageModel.load(args[0] if args else "data/models/candidate")
params = load_params("params.yaml")
export = load_export("data/interim", params.ingest)
tickets, events = export.tickets, export.events

evaluated_from = option("--from", None)
if evaluated_from is None:
    test_start, which = pd.Timestamp(model.meta["period_starts"]["test"]), "held-out model, its test period"
    model = model.heldout()
else:
    test_start, which = pd.Timestamp(evaluated_from, tz="UTC"), "production model, incidents created after its data"
    last_seen = pd.Timestamp(model.meta["training_period"]["last_ticket_created"])
    if test_start <= last_seen:
        sys.exit(f"error: --from {evaluated_from}: the model was trained on incidents created up to {last_seen}; "
                 "train it on a cut of the log (see this script's docstring)")
labels = Target.from_spec(model.meta["target_spec"]).labels(tickets)
test = tickets[(tickets["created_at"] >= test_start).to_numpy() & labels.notna().to_numpy()]
hour, minute = (int(x) for x in at.split(":"))
first_day = test_start.normalize() + pd.Timedelta(days=1)
last_day = min(latest_timestamp(tickets, events).normalize(), first_day + pd.Timedelta(days=n_days - 1))
days = pd.date_range(first_day, last_day, freq="D", tz="UTC")
moments = days + pd.Timedelta(hours=hour, minutes=minute)

# Every (incident, day) with the incident created before the moment; open-ness is judged below.
grid = pd.DataFrame({"ticket_id": np.repeat(test["ticket_id"].to_numpy(dtype=object), len(moments)),
                     "as_of": np.tile(moments.to_numpy(), len(test))})
created = grid["ticket_id"].map(test.set_index("ticket_id")["created_at"])
grid = grid[(created < grid["as_of"]).to_numpy()].reset_index(drop=True)
grid["as_of"] = pd.to_datetime(grid["as_of"], utc=True)
features = build_features(tickets, events, grid, BusinessHours.from_params(params.business_hours))
open_now = ~features["status_now"].astype(str).isin(contract.DONE_STATUSES)
rows = features[open_now.to_numpy()].reset_index(drop=True)
y = rows["ticket_id"].map(pd.Series(labels.to_numpy(), index=tickets["ticket_id"].to_numpy())).to_numpy(dtype=float)
scores = {
    "model": model.predict_risk(rows),
    "oldest first (age)": rows["age_minutes"].to_numpy(dtype=float),
    "longest wait": rows["current_wait_minutes"].to_numpy(dtype=float),
}
print(f"model {model.version} ({model.target}; {which}); incidents created from {test_start:%Y-%m-%d %H:%M}; "
      f"daily at {at} UTC, {len(moments)} days ({moments[0]:%Y-%m-%d} to {moments[-1]:%Y-%m-%d})")
for name, mask in (("all open incidents", np.ones(len(rows), bool)),
                   ("incidents <= 72 h old", rows["age_minutes"].to_numpy() <= 72 * 60)):
    yy = y[mask]
    cells = ", ".join(f"{k} {ranking_metrics(v[mask], yy, np.ones(int(mask.sum())))['roc_auc']:.3f}"
                      for k, v in scores.items())
    print(f"{name}: {int(mask.sum())} incident-days ({int(pd.Series(rows['ticket_id'][mask]).nunique())} incidents, "
          f"{yy.mean():.1%} missed): ROC AUC {cells}")
