"""The monitoring page's data: ``csat-triage monitor``'s JSON report, checked and turned into what
the page shows (rows in words, the trend chart's SVG coordinates). No model code is imported: the
page only reads the report, so ``serve`` stays light.

The report is re-read at every request (a nightly ``monitor`` replaces it); a missing, unreadable
or malformed file is a :class:`ReportProblem` with a one-line message, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

TIERS = ("P1", "P2", "P3", "P4")
# models.monitoring.psi's rule of thumb: < 0.1 stable, 0.1-0.25 moving, > 0.25 shifted
PSI_MOVING, PSI_SHIFTED = 0.1, 0.25
AUC_CHANCE = 0.5  # a ranking no better than a coin
DEFAULT_REPORT = Path("reports/monitoring.json")  # `csat-triage monitor`'s own --out default


class ReportProblem(Exception):
    """The report cannot be shown: ``status`` is the HTTP status, the message one line."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# The report's shape as models.monitoring / pipeline.stages.monitor write it. Fields the page shows
# are required (null allowed where the monitor writes null); fields added later are ignored.
class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TierOutcome(_Shape):
    outcomes: int
    bad_rate: float | None


class FeedbackOutcome(_Shape):
    verdicts: int
    disagree_share: float | None


class RunEntry(_Shape):
    run_id: int
    model_version: str
    scored_at: str
    tickets_scored: int
    outcomes_known: int
    bad_rate: float | None
    roc_auc: float | None
    pr_auc: float | None
    ece: float | None
    p1_precision: float | None
    bad_rate_by_tier: dict[str, TierOutcome]
    feedback: FeedbackOutcome


class Mover(_Shape):
    feature: str
    psi: float


class ScoreDrift(_Shape):
    first_run: int
    latest_run: int
    psi: float | None


class Drift(_Shape):
    score: ScoreDrift
    top_movers: list[Mover]
    note: str | None


class Report(_Shape):
    target: str
    export: str
    runs: list[RunEntry]
    drift: Drift
    alerts: list[str]


def _refuse_constant(constant: str) -> float:
    raise ValueError(f"holds {constant}, which is not JSON")


def read_report(path: Path | None) -> tuple[dict, Report]:
    """The report file's JSON and its checked form; :class:`ReportProblem` when there is none to show."""
    if path is None:
        raise ReportProblem("serve was started without --monitoring", 404)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportProblem(f"{path}: no monitoring report there yet", 404) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportProblem(f"{path}: cannot read the monitoring report ({exc})", 503) from None
    try:
        raw = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ReportProblem(f"{path}: not valid JSON ({exc})", 503) from None
    try:
        return raw, Report.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise ReportProblem(f"{path}: not a monitoring report ({where}: {first['msg']})", 503) from None


def monitor_command(db_shown: str, out: Path | None) -> str:
    """The command that writes the report this page reads, for this database (password hidden)."""
    return (f"csat-triage monitor LATER_EXPORT --db {shlex.quote(db_shown)} --model data/models/champion "
            f"--out {shlex.quote(str(out or DEFAULT_REPORT))}")


def modified(path: Path) -> str:
    """When the report file was last written, as "2026-05-04 23:59 UTC" ("-" if it went away since the read:
    cron may be replacing it)."""
    try:
        stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:
        return "-"
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def psi_words(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "shifted" if value > PSI_SHIFTED else "moving" if value > PSI_MOVING else "stable"


def latest_judged(report: Report) -> RunEntry | None:
    """The newest run with outcomes known: the newest runs still wait for their ratings."""
    judged = [run for run in report.runs if run.outcomes_known > 0]
    return judged[-1] if judged else None


def tier_rows(run: RunEntry) -> list[dict]:
    """Bad rate per tier of one run, P1 first, with a bar width (percent of the largest rate)."""
    rates = {tier: run.bad_rate_by_tier[tier] for tier in TIERS if tier in run.bad_rate_by_tier}
    largest = max((t.bad_rate for t in rates.values() if t.bad_rate is not None), default=0.0)
    return [{"tier": tier, "outcomes": t.outcomes, "bad_rate": t.bad_rate,
             "bar": 0.0 if not largest or t.bad_rate is None else round(100 * t.bad_rate / largest, 1)}
            for tier, t in rates.items()]


def trend_chart(runs: list[RunEntry], width: int = 640, height: int = 200, pad: int = 32) -> dict | None:
    """SVG coordinates of ROC AUC and ECE per run (both 0-1), oldest run left.

    A run without the number (no outcomes yet, or one class only) leaves a gap in its line.
    None when no run has either number.
    """
    if not any(run.roc_auc is not None or run.ece is not None for run in runs):
        return None
    n = len(runs)
    step = (width - 2 * pad) / max(n - 1, 1)
    xs = [round(pad + i * step, 1) if n > 1 else width / 2 for i in range(n)]

    def y(value: float) -> float:
        return round(height - pad - min(max(value, 0.0), 1.0) * (height - 2 * pad), 1)

    def series(name: str) -> dict:
        segments, current, dots = [], [], []
        for x, run in zip(xs, runs):
            value = getattr(run, name)
            if value is None:
                if current:
                    segments.append(current)
                current = []
                continue
            current.append(f"{x},{y(value)}")
            dots.append({"x": x, "y": y(value),
                         "label": f"run {run.run_id} ({run.scored_at[:10]}): {value:.3f}"})
        if current:
            segments.append(current)
        return {"segments": [" ".join(points) for points in segments], "dots": dots}

    return {
        "width": width, "height": height, "pad": pad,
        "auc": series("roc_auc"), "ece": series("ece"),
        "grid": [{"y": y(v), "label": f"{v:.2f}".rstrip("0").rstrip(".") if v else "0"}
                 for v in (0.0, 0.25, 0.5, 0.75, 1.0)],
        "chance_y": y(AUC_CHANCE),
        "ticks": [{"x": x, "label": str(run.run_id)} for x, run in zip(xs, runs)],
        "first": runs[0].scored_at[:10], "last": runs[-1].scored_at[:10],
    }


def page_context(report: Report) -> dict:
    """Everything the monitoring template needs, newest run first in the table."""
    judged = latest_judged(report)
    score = report.drift.score
    return {
        "report": report,
        "runs": report.runs[::-1],
        "chart": trend_chart(report.runs),
        "judged": judged,
        "tiers": tier_rows(judged) if judged else [],
        "movers": [{"feature": m.feature, "psi": m.psi, "words": psi_words(m.psi)} for m in report.drift.top_movers],
        "score_psi": score.psi, "score_words": psi_words(score.psi),
        "score_runs": (score.first_run, score.latest_run),
    }
