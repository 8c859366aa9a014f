"""One-off sensitivity check (not a DVC stage): the 7-20 March labelling anomaly unlabelled.

Run from realdata/servicenow after `make uci`:
    ../../.venv/bin/python sensitivity_anomaly.py /tmp/anomaly
Writes an export copy whose moderate incidents opened 7-20 March 2016 have an empty
`sla_missed` (kept as tickets), trains on it with ./params.yaml, and evaluates both that
model and the pipeline's model on the new (later) test period. Prints ROC AUC per moment.
Data: UCI ML Repository dataset 498 (Amaral et al. 2018), CC BY 4.0.
"""

import json
import shutil
import sys
from pathlib import Path

from pipeline.core.io import write_export
from pipeline.core.params import load_params
from pipeline.sources.ingest import load_export
from pipeline.stages.evaluate_moments import evaluate_moments
from pipeline.stages.featurize import featurize
from pipeline.stages.train import train

work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/anomaly")
params = load_params("params.yaml")
export = load_export("data/interim")
tickets = export.tickets.copy()
window = (tickets.created_at >= "2016-03-07") & (tickets.created_at < "2016-03-21") & (tickets.priority == "normal")
print("unlabelled incidents:", int(window.sum()))
tickets["sla_missed"] = tickets["sla_missed"].astype(object).where(~window, "")
write_export(work / "export", tickets, export.events, "parquet")
featurize(work / "export", work / "snapshots.parquet", snapshots=True, params=params)
train(work / "export", work / "model", snapshots_file=work / "snapshots.parquet", params=params)

# The pipeline's model, judged on the same (later) test period.
shutil.rmtree(work / "pipeline_model", ignore_errors=True)
shutil.copytree("data/models/candidate", work / "pipeline_model")
meta_file = work / "pipeline_model" / "model.json"
meta = json.loads(meta_file.read_text())
meta["period_starts"] = json.loads((work / "model" / "model.json").read_text())["period_starts"]
meta_file.write_text(json.dumps(meta))
for name in ("model", "pipeline_model"):
    result = evaluate_moments(work / name, work / f"{name}_moments.json", "data/interim" if name == "pipeline_model" else None, params)
    for moment, section in result["moments"].items():
        print(name, moment, section["tickets"], round(section["model"]["roc_auc"], 3),
              {b: round(v["roc_auc"], 3) for b, v in section["baselines"].items()})
