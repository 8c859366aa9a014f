"""Exports that lack a model part's inputs, and model directories that are damaged.

- no priorities at all, or one priority for every ticket: the model ships without an
  urgency model, and scoring ranks on risk and SLA pressure alone;
- no text at all (no subjects, no message bodies): the model ships without text scores;
- a model file changed, truncated or missing: one ``error:`` line naming the file, before
  LightGBM parses anything (a truncated booster text crashes LightGBM's parser).

The small exports are one simulation (1,500 tickets) edited per test; models are tiny.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import OPENING_TEXT, build_features
from features.calendar import BusinessHours
from models.store import ModelIntegrityError, ModelMismatchError, TriageModel, model_version
from pipeline.core.errors import UserError
from pipeline.sources.ingest import load_export
from pipeline.sources.simulator import simulate_export
from pipeline.stages.score import score
from pipeline.stages.train import train
from tests.conftest import override
from tests.models.conftest import REPO_ROOT, fast_params

# Reply targets, cap and tail written out by hand (params.yaml policy), for the expected scores.
REPLY_TARGET_MINUTES = {"low": 1440.0, "normal": 480.0, "high": 120.0, "urgent": 30.0}
SLA_CAP = 2.0
SLA_TAIL_PER_DOUBLING = 0.25


@pytest.fixture(scope="module")
def small_params():
    return override(fast_params(), {
        "risk_model": {"max_rounds": 20},
        "urgency_model": {"max_rounds": 5},
        "text_model": {"n_features": 2**10},
        "train": {"min_labelled_tickets": 50, "min_bad_tickets": 10},
    })


@pytest.fixture(scope="module")
def base_export(tmp_path_factory):
    """(tickets, events) of one small simulated export, as the raw CSV text columns."""
    directory = tmp_path_factory.mktemp("base")
    simulate_export(directory, n_tickets=1500, seed=3)
    read = lambda name: pd.read_csv(directory / name, dtype=str, keep_default_na=False)  # noqa: E731
    return read("tickets.csv"), read("events.csv")


def write_export(directory: Path, tickets: pd.DataFrame, events: pd.DataFrame) -> Path:
    directory.mkdir(parents=True)
    tickets.to_csv(directory / "tickets.csv", index=False)
    events.to_csv(directory / "events.csv", index=False)
    return directory


def train_quietly(export_dir: Path, model_dir: Path, params) -> tuple[object, list[str]]:
    lines: list[str] = []
    return train(export_dir, model_dir, params=params, echo=lines.append), lines


def score_quietly(export_dir: Path, model_dir: Path, out: Path, params) -> pd.DataFrame:
    score(export_dir, out, model_dir=model_dir, db_url="", params=params, echo=lambda line: None)
    return pd.read_csv(out, dtype={"ticket_id": str})


# -- no priorities, or priorities that never vary -------------------------------------------------

def test_a_team_that_never_sets_priority_trains_without_an_urgency_model(base_export, small_params, tmp_path):
    tickets, events = base_export
    export = write_export(tmp_path / "export", tickets.assign(priority=""), events[events["kind"] != "priority"])
    result, lines = train_quietly(export, tmp_path / "model", small_params)

    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["urgency_model"] is None
    assert "no solved ticket has a final priority" in meta["skipped"]["urgency_model"]
    assert not (tmp_path / "model" / "urgency_model.txt").exists()
    assert result.skipped == {"urgency_model": meta["skipped"]["urgency_model"]}
    assert lines == [f"note: trained without the urgency model: {meta['skipped']['urgency_model']}"]
    # The risk model and the text scores are still there.
    assert meta["text_model"] == "text_model.json" and "text_risk_score" in meta["risk_features"]
    model = TriageModel.load(tmp_path / "model")
    assert model.urgency_booster is None and model.text_model is not None

    scored = score_quietly(export, tmp_path / "model", tmp_path / "scored.csv", small_params)
    assert len(scored) > 0
    assert scored["urgency"].isna().all() and scored["p_urgent"].isna().all()
    assert (scored["priority_score"] >= 0).all()  # above 100 only for long-overdue tickets (SLA tail)


def test_priorities_that_never_vary_score_on_risk_and_sla_alone(base_export, small_params, tmp_path):
    tickets, events = base_export
    tickets = tickets.assign(priority="normal")
    # Open tickets carry agents' priorities; every solved one is "normal", so nothing to learn.
    open_rows = ~tickets["status"].isin(["solved", "closed"])
    tickets.loc[open_rows, "priority"] = np.resize(["urgent", "low", "", "high"], int(open_rows.sum()))
    export = write_export(tmp_path / "export", tickets, events[events["kind"] != "priority"])
    result, _ = train_quietly(export, tmp_path / "model", small_params)
    scored = score_quietly(export, tmp_path / "model", tmp_path / "scored.csv", small_params)
    assert result.model.urgency_booster is None
    assert result.skipped["urgency_model"].startswith("every solved ticket of the training period has priority 'normal'")
    assert scored["urgency"].isna().all() and scored["p_urgent"].isna().all()
    agent = scored["ticket_id"].map(tickets.set_index("ticket_id")["priority"]).fillna("")
    assert set(agent) == {"urgent", "low", "", "high"}
    # Reply target: the agent's priority, else normal; the urgency weight (0.3) leaves the formula.
    target = agent.map(REPLY_TARGET_MINUTES).fillna(REPLY_TARGET_MINUTES["normal"])
    multiple = scored["current_wait_minutes"] / target
    sla = np.minimum(multiple, SLA_CAP) / SLA_CAP + SLA_TAIL_PER_DOUBLING * np.log2(np.maximum(multiple, SLA_CAP) / SLA_CAP)
    expected = 100 * (0.5 * scored["p_bad"] + 0.2 * sla) / (0.5 + 0.2)
    assert scored["priority_score"].to_numpy() == pytest.approx(expected.to_numpy(), abs=0.02)
    assert (scored["priority_score"] > 100 * 0.8 * 0.5 * scored["p_bad"]).any()  # not simply w_risk * p_bad


# -- no text -------------------------------------------------------------------------------------

def test_an_export_without_any_text_trains_and_scores_without_text_scores(base_export, small_params, tmp_path):
    tickets, events = base_export
    export = write_export(tmp_path / "export", tickets.drop(columns=["subject"]), events.drop(columns=["body"]))
    result, lines = train_quietly(export, tmp_path / "model", small_params)

    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["text_model"] is None
    assert "no ticket text" in meta["skipped"]["text_model"]
    assert not {"text_risk_score", "text_urgency_score"} & set(meta["risk_features"] + meta["urgency_features"])
    assert not list((tmp_path / "model").glob("text_*"))
    assert lines == [f"note: trained without the text model: {meta['skipped']['text_model']}"]
    assert result.model.urgency_booster is not None  # priorities still vary: urgency is learned

    scored = score_quietly(export, tmp_path / "model", tmp_path / "scored.csv", small_params)
    assert len(scored) > 0 and scored["urgency"].notna().all()
    assert not scored["reasons"].fillna("").str.contains("worded like").any()


def test_text_disabled_in_params_is_recorded_without_a_note(base_export, small_params, tmp_path):
    tickets, events = base_export
    export = write_export(tmp_path / "export", tickets, events)
    params = override(small_params, {"text_model": {"enabled": False}})
    result, lines = train_quietly(export, tmp_path / "model", params)
    assert result.model.text_model is None
    assert result.model.meta["skipped"] == {"text_model": "disabled (params text_model.enabled)"}
    assert lines == []


# -- model integrity -----------------------------------------------------------------------------

def copy_model(demo, tmp_path) -> Path:
    model_dir = tmp_path / "model"
    shutil.copytree(demo.model_dir, model_dir)
    return model_dir


def load_in_subprocess(model_dir: Path) -> tuple[int, str]:
    """Load a model directory in a fresh interpreter: (exit code, message).

    A fresh process because before the checks a truncated booster text killed the
    interpreter with a segmentation fault (exit -11) inside LightGBM.
    """
    code = (
        "import sys\n"
        "from models.store import TriageModel\n"
        "from pipeline.core.errors import UserError\n"
        "try:\n"
        "    TriageModel.load(sys.argv[1])\n"
        "except UserError as exc:\n"
        "    print(type(exc).__name__ + ': ' + str(exc)); sys.exit(2)\n"
        "print('loaded')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(model_dir)], cwd=REPO_ROOT, capture_output=True,
                          text=True, errors="replace", timeout=120)
    return done.returncode, done.stdout.strip()


def test_model_json_records_the_checksum_of_every_other_file(demo):
    meta = json.loads((demo.model_dir / "model.json").read_text())
    files = {p.name for p in demo.model_dir.iterdir()} - {"model.json"}
    assert set(meta["checksums"]) == files
    for name, digest in meta["checksums"].items():
        assert hashlib.sha256((demo.model_dir / name).read_bytes()).hexdigest() == digest, name


def test_checksums_leave_the_model_version_alone(demo, tmp_path):
    model = TriageModel.load(demo.model_dir)
    # The version is the content hash of the model parts, as before checksums existed.
    assert model.version == model_version(model.risk_booster, model.urgency_booster, model.calibrator,
                                          model.text_model, model.held_out)
    legacy = copy_model(demo, tmp_path)
    meta = json.loads((legacy / "model.json").read_text())
    meta.pop("checksums", None)
    (legacy / "model.json").write_text(json.dumps(meta))
    again = TriageModel.load(legacy)
    assert again.version == model.version
    assert "checksums" not in again.meta
    again.save(tmp_path / "resaved")  # re-saving an old directory adds the checksums, same version
    resaved = json.loads((tmp_path / "resaved" / "model.json").read_text())
    assert resaved["checksums"] == json.loads((demo.model_dir / "model.json").read_text())["checksums"]
    assert resaved["model_version"] == model.version


def test_a_truncated_booster_is_one_line_naming_the_file(demo, tmp_path):
    model_dir = copy_model(demo, tmp_path)
    text = (model_dir / "risk_model.txt").read_bytes()
    (model_dir / "risk_model.txt").write_bytes(text[: len(text) // 2])
    code, message = load_in_subprocess(model_dir)
    assert code == 2, message
    assert message.startswith("ModelIntegrityError: ") and "risk_model.txt" in message
    assert "checksum" in message and "re-train" in message and "\n" not in message


def test_the_score_command_refuses_a_truncated_model_with_exit_2(demo, tmp_path):
    model_dir = copy_model(demo, tmp_path)
    text = (model_dir / "urgency_model.txt").read_bytes()
    (model_dir / "urgency_model.txt").write_bytes(text[:1000])
    out = tmp_path / "scored.csv"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "score", str(demo.export_dir), "--out", str(out),
         "--model", str(model_dir), "--db", ""],
        cwd=REPO_ROOT, capture_output=True, text=True, errors="replace", timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("error: ") and "urgency_model.txt" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def changeable_digit(data: bytes, name: str) -> int:
    """Position of a byte that changes a number, not the file's structure (a leaf value, a float)."""
    if name.endswith(".npy"):
        return len(data) - 2  # inside the last float32
    start = data.index(b"leaf_value=") if name.endswith(".txt") else data.index(b":")
    return next(i for i in range(start, len(data)) if data[i:i + 1] in b"123456789")


@pytest.mark.parametrize("name", ["calibration.json", "text_risk_coef.npy", "urgency_model.txt"])
def test_a_changed_file_of_the_same_length_is_refused(demo, tmp_path, name):
    model_dir = copy_model(demo, tmp_path)
    data = bytearray((model_dir / name).read_bytes())
    position = changeable_digit(bytes(data), name)
    data[position] = ord("2") if data[position] != ord("2") else ord("3")
    (model_dir / name).write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as caught:
        TriageModel.load(model_dir)
    assert name in str(caught.value) and "checksum does not match" in str(caught.value)


@pytest.mark.parametrize("name", ["urgency_model.txt", "text_urgency_coef.npy", "calibration.json"])
def test_a_missing_file_is_refused_not_skipped(demo, tmp_path, name):
    model_dir = copy_model(demo, tmp_path)
    (model_dir / name).unlink()
    with pytest.raises(ModelIntegrityError) as caught:
        TriageModel.load(model_dir)
    message = str(caught.value)
    assert name in message and "missing" in message and "\n" not in message
    assert isinstance(caught.value, UserError)


def test_a_stale_part_file_is_neither_loaded_nor_kept(demo, base_export, small_params, tmp_path):
    """Training without urgency into a directory that held a model with one."""
    model_dir = copy_model(demo, tmp_path)
    tickets, events = base_export
    export = write_export(tmp_path / "export", tickets.assign(priority=""), events[events["kind"] != "priority"])
    train_quietly(export, model_dir, small_params)
    assert not (model_dir / "urgency_model.txt").exists()
    assert TriageModel.load(model_dir).urgency_booster is None


def test_an_old_model_directory_without_checksums_still_loads_and_predicts_the_same(demo, tmp_path):
    legacy = copy_model(demo, tmp_path)
    meta = json.loads((legacy / "model.json").read_text())
    meta.pop("checksums", None)
    (legacy / "model.json").write_text(json.dumps(meta))
    export = load_export(demo.export_dir)
    hours = BusinessHours.from_params(demo.params.business_hours)
    features = build_features(export.tickets.head(300), export.events, None, hours)
    assert OPENING_TEXT in features
    old, new = TriageModel.load(legacy), TriageModel.load(demo.model_dir)
    assert np.array_equal(old.predict_risk(features), new.predict_risk(features))
    assert old.predict_urgency(features).equals(new.predict_urgency(features))


def test_an_old_model_directory_with_a_truncated_booster_is_refused(demo, tmp_path):
    legacy = copy_model(demo, tmp_path)
    meta = json.loads((legacy / "model.json").read_text())
    meta.pop("checksums", None)
    (legacy / "model.json").write_text(json.dumps(meta))
    text = (legacy / "risk_model.txt").read_bytes()
    (legacy / "risk_model.txt").write_bytes(text[: len(text) * 3 // 4])
    code, message = load_in_subprocess(legacy)
    assert code == 2, message
    assert message.startswith("ModelIntegrityError: ") and "risk_model.txt" in message and "incomplete" in message


def test_a_damaged_model_json_is_one_line(demo, tmp_path):
    model_dir = copy_model(demo, tmp_path)
    text = (model_dir / "model.json").read_text()
    (model_dir / "model.json").write_text(text[: len(text) // 2])
    with pytest.raises(ModelIntegrityError, match="model.json: not valid JSON"):
        TriageModel.load(model_dir)


def test_a_model_trained_on_other_features_is_refused_at_load(demo, tmp_path):
    assert issubclass(ModelMismatchError, UserError)
    model_dir = copy_model(demo, tmp_path)
    meta = json.loads((model_dir / "model.json").read_text())
    meta["urgency_features"] = meta["urgency_features"] + ["sentiment_v2"]
    (model_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError) as caught:
        TriageModel.load(model_dir)  # before any export is read
    assert "sentiment_v2" in str(caught.value) and "retrain" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_text_score_features_without_a_text_model_are_refused(demo, tmp_path):
    model_dir = copy_model(demo, tmp_path)
    meta = json.loads((model_dir / "model.json").read_text())
    for name in ("text_model.json", "text_risk_coef.npy", "text_urgency_coef.npy"):
        meta.get("checksums", {}).pop(name, None)
        (model_dir / name).unlink()
    (model_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError, match="text_risk_score"):
        TriageModel.load(model_dir)
