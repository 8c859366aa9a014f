"""The measurement that matters: the model against "oldest first" on the queue a nightly run scores.

Run from realdata/servicenow after `make uci` (not a DVC stage):
    ../../.venv/bin/python daily_queue_evaluation.py [MODEL_DIR] [--at HH:MM] [--days N]
Takes the model's held-out test period (incidents created from its `period_starts.test`,
never trained, validated or calibrated on), and at HH:MM UTC (default 05:30) of every day
from the test start to the end of the log scores the incidents of that period that are
open then (created before, not resolved/closed by then), each with what was known at that
moment, for N days (default 28: the weeks a nightly queue would have held them). Prints ROC AUC of the model, of incident age ("oldest first") and of the current
wait ("longest wait") over all incident-days and over those at most 72 h old.
Data: UCI ML Repository dataset 498 (Amaral et al. 2018), CC BY 4.0.
"""

import sys

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


def option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


args = [a for i, a in enumerate(sys.argv[1:], 1) if not a.startswith("--") and not sys.argv[i - 1].startswith("--")]
at, n_days = option("--at", "05:30"), int(option("--days", "28"))
model = TriageModel.load(args[0] if args else "data/models/candidate")
params = load_params("params.yaml")
export = load_export("data/interim", params.ingest)
tickets, events = export.tickets, export.events

test_start = pd.Timestamp(model.meta["period_starts"]["test"])
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
print(f"model {model.version} ({model.target}); test period from {test_start:%Y-%m-%d}; daily at {at} UTC, "
      f"{len(moments)} days")
for name, mask in (("all open incidents", np.ones(len(rows), bool)),
                   ("incidents <= 72 h old", rows["age_minutes"].to_numpy() <= 72 * 60)):
    yy = y[mask]
    cells = ", ".join(f"{k} {ranking_metrics(v[mask], yy, np.ones(int(mask.sum())))['roc_auc']:.3f}"
                      for k, v in scores.items())
    print(f"{name}: {int(mask.sum())} incident-days ({int(pd.Series(rows['ticket_id'][mask]).nunique())} incidents, "
          f"{yy.mean():.1%} missed): ROC AUC {cells}")
