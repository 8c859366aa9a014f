"""What a real night throws at `validate`, `train`, `score`, `queue` and `push-zendesk`.

The table breaks one thing per case — a model file, an option, a parameters file, a
database URL, a payload, an export — in a copy under ``tmp_path`` (the session demo
export and model, and "yesterday's" scored outputs) and runs the CLI. Every case is
checked against the same error contract: the exit code (0, with a ``warning:``/``note:``
line where the case says; 1 for rejects over the limit; 2 for a user error), exactly
one ``error:`` line on stderr, last, naming the file or option, no traceback, and —
for a failing run — every file under ``tmp_path`` byte-identical and nothing created.

The fault tests run real processes on loopback: a SQLite file locked by another
process, a PostgreSQL backend terminated in the middle of the write, SIGTERM during
`score` at several moments, and `--model-uri` leaving no download behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.sources.simulator import simulate_export
from tests.conftest import override
from tests.models.conftest import REPO_ROOT, Demo, demo_model
from tests.pipeline.sinks.test_writeback import postgres_server  # noqa: F401  (a fixture)

CLI = REPO_ROOT / ".venv" / "bin" / "csat-triage"
OUT_FILES = ("priorities.csv", "priorities.sqlite", "zendesk.json", ".priorities.csv.lock")


# ---------------------------------------------------------------- workspaces


@dataclass(frozen=True)
class Workspace:
    """Copies of the demo export and model, a params file and yesterday's outputs, all under ``root``."""

    root: Path
    export: Path
    model: Path
    params: Path
    small: Path  # a 1,500-ticket export for `train` cases
    small_params: Path

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def csv(self) -> Path:
        return self.out / "priorities.csv"

    @property
    def payload(self) -> Path:
        return self.out / "zendesk.json"

    def score(self, *options, export: Path | None = None) -> list:
        """`score` as the nightly job runs it, with ``options`` appended (a later option wins)."""
        return ["score", export or self.export, "--out", self.csv, "--model", self.model,
                "--zendesk-payload", self.payload, "--params", self.params, *options]


def write_params(params, path: Path) -> Path:
    path.write_text(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False))
    return path


def invoke(args: list, env: dict | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def tree(root: Path) -> dict[str, str]:
    """Every file and directory under ``root``: relative path -> sha256 of its bytes (or 'dir')."""
    return {str(p.relative_to(root)): ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    """The session's demo export and model (trained once, shared with tests/models)."""
    return demo_model(tmp_path_factory)


@pytest.fixture(scope="module")
def yesterday(demo, tmp_path_factory) -> Path:
    """The demo scored as of one day before its end: the outputs a failing run must leave alone."""
    root = tmp_path_factory.mktemp("yesterday")
    params = write_params(demo.params, root / "params.yaml")
    events = pd.read_csv(demo.export_dir / "events.csv", usecols=["at"])
    as_of = (pd.to_datetime(events["at"], utc=True).max() - pd.Timedelta(days=1)).isoformat()
    out = root / "out"
    result = invoke(["score", demo.export_dir, "--out", out / "priorities.csv", "--model", demo.model_dir,
                     "--zendesk-payload", out / "zendesk.json", "--params", params, "--as-of", as_of])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(OUT_FILES)
    return out


@pytest.fixture(scope="module")
def small_export(demo, tmp_path_factory) -> tuple[Path, object]:
    directory = tmp_path_factory.mktemp("small") / "export"
    simulate_export(directory, n_tickets=1500, seed=3)
    params = override(demo.params, {
        "risk_model": {"max_rounds": 20}, "urgency_model": {"max_rounds": 5}, "text_model": {"n_features": 2**10},
        "train": {"min_labelled_tickets": 50, "min_bad_tickets": 10},
    })
    return directory, params


@pytest.fixture
def ws(demo, yesterday, small_export, tmp_path) -> Workspace:
    export, model = tmp_path / "export", tmp_path / "model"
    export.mkdir()
    for name in ("tickets.csv", "events.csv"):
        shutil.copy2(demo.export_dir / name, export / name)
    shutil.copytree(demo.model_dir, model)
    shutil.copytree(yesterday, tmp_path / "out")
    shutil.copytree(small_export[0], tmp_path / "small")
    return Workspace(tmp_path, export, model, write_params(demo.params, tmp_path / "params.yaml"),
                     tmp_path / "small", write_params(small_export[1], tmp_path / "small_params.yaml"))


def check_contract(result, code: int, says: str) -> list[str]:
    """The error contract for one CLI run; returns its stderr lines."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    # Beside the error, stderr holds only warnings, notes and the indented progress lines.
    assert all(line.startswith(("error: ", "warning: ", "note: ", "  ")) for line in lines), result.stderr
    if code == 0:
        assert not errors, result.stderr
        assert says in result.output, result.output  # `train` prints its notes with the summary
    else:
        assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
        assert says in errors[0], errors[0]
    return lines


# ---------------------------------------------------------------- breaking things


def edit_meta(ws: Workspace, change) -> None:
    path = ws.model / "model.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta, indent=2))


def swap_booster(ws: Workspace, update_checksum: bool) -> None:
    """risk_model.txt replaced by a booster trained on other features (the urgency model's)."""
    data = (ws.model / "urgency_model.txt").read_bytes()
    (ws.model / "risk_model.txt").write_bytes(data)
    if update_checksum:
        edit_meta(ws, lambda meta: meta["checksums"].__setitem__("risk_model.txt", hashlib.sha256(data).hexdigest()))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def rewrite_table(path: Path, change) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame)
    frame.to_csv(path, index=False)


def no_priorities(ws: Workspace) -> None:
    rewrite_table(ws.small / "tickets.csv", lambda t: t.__setitem__("priority", ""))
    events = pd.read_csv(ws.small / "events.csv", dtype=str, keep_default_na=False)
    events[events["kind"] != "priority"].to_csv(ws.small / "events.csv", index=False)


def all_closed(ws: Workspace) -> None:
    """Every ticket closed (its row says so and no status event says otherwise)."""
    rewrite_table(ws.export / "tickets.csv", lambda t: t.__setitem__("status", "closed"))
    events = pd.read_csv(ws.export / "events.csv", dtype=str, keep_default_na=False)
    events[events["kind"] != "status"].to_csv(ws.export / "events.csv", index=False)


def helpdesk_status_name(tickets: pd.DataFrame) -> None:
    tickets.loc[3, "status"] = "In Progress"


def payload(ws: Workspace, text: str) -> Path:
    path = ws.root / "payload.json"
    path.write_text(text)
    return path


ZENDESK_ENV = {"ZENDESK_EMAIL": "ops@example.com", "ZENDESK_API_TOKEN": "not-a-real-token"}
GOOD_PAYLOAD = json.dumps({"batches": [{"tickets": [{"id": 1, "additional_tags": ["csat_p1"]}]}]})


@dataclass(frozen=True)
class Case:
    name: str
    args: object  # Workspace -> CLI arguments (after breaking what the case breaks)
    code: int
    says: str  # in the error line (exit 1/2) or in stderr (exit 0)
    changes: tuple[str, ...] = ()  # files a successful run may change
    env: dict | None = None
    marks: tuple = ()


def _then(action, args):
    """Run ``action(ws)`` for its side effect, then return ``args(ws)``."""
    def build(ws):
        action(ws)
        return args(ws)
    return build


CASES = [
    # -- the model directory
    Case("model.json lists a feature this version does not compute",
         _then(lambda ws: edit_meta(ws, lambda m: m["risk_features"].append("ticket_colour")), Workspace.score),
         2, "ticket_colour"),
    Case("model.json drops a feature (other files' checksums still match)",
         _then(lambda ws: edit_meta(ws, lambda m: m["risk_features"].pop()), Workspace.score),
         2, "model.json"),
    Case("model.json lists the features in another order",
         _then(lambda ws: edit_meta(ws, lambda m: m["risk_features"].reverse()), Workspace.score),
         2, "model.json"),
    Case("risk booster trained on other features, checksum not updated",
         _then(lambda ws: swap_booster(ws, update_checksum=False), Workspace.score), 2, "risk_model.txt: checksum"),
    Case("risk booster trained on other features, checksum updated",
         _then(lambda ws: swap_booster(ws, update_checksum=True), Workspace.score),
         2, "risk_model.txt"),
    Case("truncated risk_model.txt", _then(lambda ws: truncate(ws.model / "risk_model.txt"), Workspace.score),
         2, "risk_model.txt: checksum does not match"),
    Case("model directory without calibration.json",
         _then(lambda ws: (ws.model / "calibration.json").unlink(), Workspace.score),
         2, "calibration.json: missing from the model directory"),
    Case("model directory without a text coefficient file",
         _then(lambda ws: (ws.model / "text_risk_coef.npy").unlink(), Workspace.score),
         2, "text_risk_coef.npy: missing"),
    Case("--model points at a file", lambda ws: ws.score("--model", ws.model / "model.json"),
         2, "model.json: not a model directory"),
    Case("--model points at a missing directory", lambda ws: ws.score("--model", ws.root / "no-such-model"),
         2, "no-such-model: not a model directory"),
    Case("--model-uri that is a path", lambda ws: ws.score("--model-uri", str(ws.model)),
         2, "must look like models:/NAME@champion"),
    # -- where the outputs go
    Case("--out with a wrong suffix", lambda ws: ws.score("--out", ws.out / "priorities.txt"),
         2, "priorities.txt: output must end in .csv or .parquet"),
    Case("--out under a file", lambda ws: ws.score("--out", ws.csv / "priorities.csv"),
         2, "priorities.csv/priorities.csv: cannot write here"),
    Case("--out in a read-only directory",
         _then(lambda ws: (ws.root / "readonly").mkdir(mode=0o555),
               lambda ws: ws.score("--out", ws.root / "readonly" / "p.csv", "--db", "")),
         2, "readonly/p.csv: cannot write here", marks=(pytest.mark.skipif(
             os.geteuid() == 0, reason="running as root: a 0o555 directory is still writable (os.access)"),)),
    Case("validate --out under a file", lambda ws: ["validate", ws.export, "--out", ws.csv / "v",
                                                    "--params", ws.params],
         2, "cannot write here (Not a directory)"),
    Case("train --out under a file", lambda ws: ["train", ws.small, "--out", ws.csv / "model",
                                                 "--params", ws.small_params],
         2, "cannot write here"),
    # -- the parameters file
    Case("--params missing", lambda ws: ws.score("--params", ws.root / "nope.yaml"),
         2, "nope.yaml: parameters file not found"),
    Case("--params invalid YAML", _then(lambda ws: (ws.root / "bad.yaml").write_text("risk_model: [1, 2\n"),
                                        lambda ws: ws.score("--params", ws.root / "bad.yaml")),
         2, "bad.yaml: not valid YAML"),
    Case("--params with a misspelt key",
         _then(lambda ws: (ws.root / "typo.yaml").write_text("risk_model:\n  num_leafs: 3\n"),
               lambda ws: ["validate", ws.export, "--params", ws.root / "typo.yaml"]),
         2, "typo.yaml: risk_model.num_leafs: unknown key"),
    Case("--as-of that is not a timestamp", lambda ws: ws.score("--as-of", "last tuesday"),
         2, "--as-of 'last tuesday'"),
    # -- databases
    Case("score --db notaurl", lambda ws: ws.score("--db", "notaurl"), 2, "--db 'notaurl': not a database URL"),
    Case("score --db mysql:// without a driver", lambda ws: ws.score("--db", "mysql://u@127.0.0.1/db"),
         2, "no database driver"),
    Case("score --db PostgreSQL on a closed port",
         lambda ws: ws.score("--db", "postgresql+psycopg://u@127.0.0.1:1/db"),
         2, "database write failed, nothing changed there (connection failed"),
    Case("queue --db a missing SQLite file", lambda ws: ["queue", "--db", f"sqlite:///{ws.root / 'none.sqlite'}"],
         2, "none.sqlite: no such SQLite file"),
    Case("queue --db a file that is not a database", lambda ws: ["queue", "--db", f"sqlite:///{ws.csv}"],
         2, "cannot read the database"),
    Case("queue --db notaurl", lambda ws: ["queue", "--db", "notaurl"], 2, "not a database URL"),
    Case("queue --db mysql:// without a driver", lambda ws: ["queue", "--db", "mysql://u@127.0.0.1/db"],
         2, "no database driver"),
    Case("queue --db PostgreSQL on a closed port",
         lambda ws: ["queue", "--db", "postgresql+psycopg://u@127.0.0.1:1/db"], 2, "Connection refused"),
    # -- exports
    Case("score an export that is not there", lambda ws: ws.score(export=ws.root / "no-export"),
         2, "no-export: export directory not found"),
    Case("score a 0-byte events file", _then(lambda ws: (ws.export / "events.csv").write_bytes(b""), Workspace.score),
         2, "events.csv: empty file (0 bytes)"),
    Case("validate a 0-byte events file",
         _then(lambda ws: (ws.small / "events.csv").write_bytes(b""),
               lambda ws: ["validate", ws.small, "--params", ws.params]),
         2, "events.csv: empty file (0 bytes)"),
    Case("score rejects over the limit",
         _then(lambda ws: rewrite_table(ws.export / "tickets.csv", helpdesk_status_name), Workspace.score),
         1, "rows rejected"),
    Case("score an export with zero open tickets",
         _then(all_closed, Workspace.score),
         0, "warning: ", changes=("out/priorities.csv", "out/priorities.sqlite", "out/zendesk.json")),
    Case("train on an export where every rating is good",
         _then(lambda ws: rewrite_table(ws.small / "tickets.csv", lambda t: t.__setitem__(
             "satisfaction", t["satisfaction"].replace("bad", "good"))),
               lambda ws: ["train", ws.small, "--out", ws.root / "m", "--params", ws.small_params]),
         2, "(0 bad,"),
    Case("train on an export without ratings",
         _then(lambda ws: rewrite_table(ws.small / "tickets.csv", lambda t: t.__setitem__("satisfaction", "")),
               lambda ws: ["train", ws.small, "--out", ws.root / "m", "--params", ws.small_params]),
         2, "no labelled tickets"),
    Case("train on an export without priorities",
         _then(no_priorities, lambda ws: ["train", ws.small, "--out", ws.root / "m", "--params", ws.small_params]),
         0, "note: ", changes=("m",)),
    # -- push-zendesk
    Case("push a missing payload", lambda ws: ["push-zendesk", ws.root / "nope.json", "--subdomain", "acme"],
         2, "nope.json: payload not found", env=ZENDESK_ENV),
    Case("push a corrupt payload", lambda ws: ["push-zendesk", payload(ws, '{"batches": [{"tic'), "--subdomain", "acme"],
         2, "payload.json: not a readable JSON payload", env=ZENDESK_ENV),
    Case("push a payload of the wrong shape",
         lambda ws: ["push-zendesk", payload(ws, '{"batches": [{"tickets": []}]}'), "--subdomain", "acme"],
         2, "payload.json: expected", env=ZENDESK_ENV),
    Case("push without credentials", lambda ws: ["push-zendesk", payload(ws, GOOD_PAYLOAD), "--subdomain", "acme"],
         2, "set ZENDESK_EMAIL and ZENDESK_API_TOKEN", env={"ZENDESK_EMAIL": None, "ZENDESK_API_TOKEN": None}),
    Case("push to a non-Zendesk subdomain",
         lambda ws: ["push-zendesk", payload(ws, GOOD_PAYLOAD), "--subdomain", "evil.example.com/x"],
         2, "'evil.example.com/x' is not a Zendesk subdomain", env=ZENDESK_ENV),
    Case("push over plain http off this machine",
         lambda ws: ["push-zendesk", payload(ws, GOOD_PAYLOAD), "--subdomain", "acme",
                     "--base-url", "http://zendesk.example.com"], 2, "must use https", env=ZENDESK_ENV),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_every_broken_input_is_one_line_and_changes_nothing(ws, case):
    args = case.args(ws)  # breaks what the case breaks
    before = tree(ws.root)
    result = invoke(args, env=case.env)
    check_contract(result, case.code, case.says)
    after = tree(ws.root)
    if case.code != 0:
        assert after == before  # byte-identical, nothing created (not even a lock file)
        if case.env and case.env.get("ZENDESK_API_TOKEN"):
            assert case.env["ZENDESK_API_TOKEN"] not in result.output
        return
    changed = {path for path in set(before) | set(after) if before.get(path) != after.get(path)}
    assert changed and all(path.split("/")[0] in case.changes or path in case.changes for path in changed), changed
    assert any(line.startswith(("warning: ", "note: ")) for line in result.output.splitlines())


def test_the_table_is_big_enough():
    assert len(CASES) >= 30


def test_zero_open_tickets_warns_and_writes_an_empty_queue(ws):
    all_closed(ws)
    result = invoke(ws.score())
    check_contract(result, 0, "no open tickets to score")
    assert pd.read_csv(ws.csv).empty and json.loads(ws.payload.read_text())["ticket_count"] == 0
    # The Zendesk placeholder warning is a stderr warning too, not mixed into the summary on stdout.
    assert "warning" not in result.stdout


# ---------------------------------------------------------------- faults during the write


def test_a_sqlite_file_locked_by_another_process_fails_in_one_line(ws):
    db = ws.out / "priorities.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys\n"
         f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree(ws.root)
        started = time.monotonic()
        result = invoke(ws.score())
        elapsed = time.monotonic() - started
    finally:
        holder.communicate("", timeout=30)
    check_contract(result, 2, "database write failed, nothing changed there (database is locked)")
    assert elapsed < 20  # SQLite's busy timeout (5 s by default) plus scoring, then give up
    assert tree(ws.root) == before


def _big_queue(rows: int) -> pd.DataFrame:
    from tests.pipeline.sinks.test_writeback import queue_frame

    frame = queue_frame(*({"ticket_id": f"T{i}", "rank": i + 1} for i in range(2)))
    frame = frame.loc[frame.index.repeat(rows // 2)].reset_index(drop=True)
    frame["ticket_id"] = [f"T{i}" for i in range(len(frame))]
    frame["rank"] = range(1, len(frame) + 1)
    return frame


@pytest.mark.slow
def test_a_postgres_backend_killed_mid_write_changes_nothing(postgres_server):  # noqa: F811
    import sqlalchemy as sa

    from pipeline.core.errors import UserError
    from pipeline.sinks.writeback import metadata, read_queue, read_runs, write_queue
    from tests.pipeline.sinks.test_writeback import run_for

    url = f"{postgres_server}?application_name=csat-robustness-writer"
    admin = sa.create_engine(postgres_server)
    metadata.drop_all(admin)
    yesterday_queue = _big_queue(1000)
    write_queue(url, yesterday_queue, run_for(yesterday_queue))
    queue_before, runs_before = read_queue(postgres_server), read_runs(postgres_server)

    killed: list[int] = []
    write_ended = threading.Event()

    def kill_the_writer() -> None:
        deadline = time.monotonic() + 60
        with admin.connect() as connection:
            while not killed and not write_ended.is_set() and time.monotonic() < deadline:
                # A backend that has written inside its open transaction (it holds a transaction id).
                pids = connection.execute(sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'csat-robustness-writer' "
                    "AND backend_xid IS NOT NULL")).scalars().all()
                for pid in pids:
                    connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    killed.append(pid)
                connection.commit()
                time.sleep(0.01)

    tonight = _big_queue(200_000)
    killer = threading.Thread(target=kill_the_writer)
    killer.start()
    try:
        with pytest.raises(UserError) as error:
            write_queue(url, tonight, run_for(tonight), batch_size=2000)
    finally:
        write_ended.set()  # stops the killer if the write ended first
        killer.join(timeout=70)
    message = str(error.value)
    # The writer can see its connection close before the killer thread records the pid: join first.
    assert killed, f"the write failed without being killed: {message}"
    assert "database write failed, nothing changed there" in message and "\n" not in message
    assert "csat@" in message  # names the database (no password in this URL)
    assert read_queue(postgres_server).equals(queue_before)
    assert read_runs(postgres_server).equals(runs_before)
    admin.dispose()


def _snapshot(out: Path) -> dict:
    """What a reader sees: the file and payload bytes, the queue and the number of runs in the database."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{out / 'priorities.sqlite'}")
    with engine.connect() as connection:
        queue = connection.execute(sa.text(
            "SELECT ticket_id, p_bad, rank, tier, reasons FROM ticket_priorities ORDER BY ticket_id")).all()
        runs = connection.execute(sa.text("SELECT count(*) FROM scoring_runs")).scalar_one()
    engine.dispose()
    return {"csv": (out / "priorities.csv").read_bytes(), "payload": (out / "zendesk.json").read_bytes(),
            "queue": queue, "runs": runs}


@pytest.mark.slow
def test_sigterm_during_score_leaves_each_output_old_or_complete(ws):
    saved = ws.root / "saved"
    shutil.copytree(ws.out, saved)
    before = _snapshot(ws.out)
    assert invoke(ws.score("--all")).exit_code == 0  # the complete new version, as tonight's run writes it
    after = _snapshot(ws.out)
    assert after["csv"] != before["csv"] and after["queue"] != before["queue"]
    outcomes = []
    # Seconds after the "  scoring:" progress line, which comes right before the writes (about 0.5 s of
    # writing here: the file, then the database transaction, then the payload, then the file's rename).
    for delay in (0.0, 0.3):  # two moments keep the suite short; both land inside the writes here
        shutil.rmtree(ws.out)
        shutil.copytree(saved, ws.out)
        process = subprocess.Popen([CLI, *map(str, ws.score("--all"))], cwd=ws.root, text=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for line in process.stderr:
            if line.startswith("  scoring:"):
                break
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        stderr = process.stderr.read()
        code = process.wait(timeout=60)
        assert "Traceback" not in stderr, stderr
        # 143: stopped and cleaned up; 0: finished first; -15: ended between the run and the exit.
        assert code in (0, 143, -signal.SIGTERM), stderr
        if code == 143:
            assert stderr.strip().splitlines()[-1].startswith("error: stopped by SIGTERM")
        now = _snapshot(ws.out)
        for part in now:
            assert now[part] in (before[part], after[part]), (delay, part)
        assert now["runs"] == before["runs"] or now["queue"] == after["queue"], delay  # runs row with its queue
        assert sorted(p.name for p in ws.out.iterdir()) == sorted(OUT_FILES), delay  # no temp file, no journal
        outcomes.append((delay, code, [part for part in now if now[part] == after[part]]))
    # At least one run was stopped before it finished (else the test proved nothing).
    assert any(code == 143 for _, code, _ in outcomes), outcomes


@pytest.mark.slow
def test_score_from_the_registry_leaves_no_download_behind(demo, ws, tmp_path, monkeypatch):
    import tempfile

    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # MLflow keeps run artifacts under ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(demo.model_dir), artifact_path="model_dir")
    client.create_registered_model("csat-triage-risk")
    version = client.create_model_version("csat-triage-risk", f"{run.info.artifact_uri}/model_dir",
                                          run_id=run.info.run_id).version
    client.set_registered_model_alias("csat-triage-risk", "champion", version)

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # gettempdir() caches; this run must use TMPDIR
    args = ws.score("--model-uri", "models:/csat-triage-risk@champion")
    del args[args.index("--model"):args.index("--model") + 2]  # the registry only
    result = invoke(args)
    check_contract(result, 0, "")
    assert "scored" in result.stdout
    assert not list(temp.glob("csat-triage-model-*")), list(temp.iterdir())
