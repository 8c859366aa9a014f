"""The typed parameters model: the one home of every default of the pipeline.

``params.yaml`` is read into :class:`Params`. Every section and key is declared here
with its default and unit; an unknown or misspelt key is an error naming the key and
the file, never silently ignored. Stages receive the sections they need as typed
objects, so no module below reads a raw dict or carries a default of its own.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.core.errors import UserError, one_line

DEFAULT_PARAMS_FILE = Path("params.yaml")
URGENCY_LEVELS = ("low", "normal", "high", "urgent")


class Section(BaseModel):
    """A params section: unknown keys are refused, values are immutable once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulateParams(Section):
    """The embedded demo export (stage ``simulate``)."""

    tickets: int = Field(20000, ge=1)
    seed: int = 7
    start: str = "2026-01-05"
    days: int = Field(120, ge=1)
    """The export is cut at ``start`` + this many days (days)."""
    later_days: int = Field(14, ge=1)
    """The desk keeps running this long after the export; ``simulate --later-out`` writes the
    same desk's export at that later moment, so ``monitor`` can judge the first run (days)."""


class IngestParams(Section):
    early_event_tolerance_minutes: float = Field(5.0, ge=0)
    """Events stamped up to this long before ``created_at`` are clock skew and kept."""
    max_reject_rate: float = Field(0.0, ge=0, le=1)
    """Share of input rows that may be rejected before a run fails."""
    future_tolerance_minutes: float = Field(60.0, ge=0)
    """Without ``--as-of``, a timestamp later than the wall clock plus this is rejected."""
    future_warning_share: float = Field(0.01, ge=0, le=1)
    """Warn when more than this share of timestamps (0..1) is later than the wall clock."""
    max_text_chars: int = Field(20000, ge=1)
    """Message bodies and subjects are cut to this many characters when read."""
    encoding: str = "utf-8"
    """Text encoding of CSV exports (``--encoding``), e.g. ``cp1252`` or ``latin-1``."""
    delimiter: str = "auto"
    """CSV field separator (``--delimiter``): ``auto`` (a comma, or ``;``/tab when the
    header line has no comma), ``tab``, or one character."""
    events_per_slice: int = Field(1 << 20, ge=1)
    """Parquet events are read, validated and written this many rows at a time: each row is
    judged on its own given the clean tickets, so `validate`'s peak memory is about one raw
    slice plus the clean tickets, whatever the export's size (1M tickets: about 1 GB)."""

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (use e.g. utf-8, cp1252, latin-1)") from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        value = {"tab": "\t", "\\t": "\t"}.get(value.lower(), value)
        if value != "auto" and (len(value) != 1 or value in "\"\r\n"):
            raise ValueError(f"delimiter {value!r} must be auto, tab or one character (such as ; or |)")
        return value

    def with_options(self, encoding: str | None = None, delimiter: str | None = None) -> IngestParams:
        """These settings with ``--encoding``/``--delimiter`` applied; a bad value is one line naming the option."""
        given = {"encoding": encoding, "delimiter": delimiter}
        updates = {key: value for key, value in given.items() if value is not None}
        if not updates:
            return self
        try:
            return IngestParams.model_validate({**self.model_dump(), **updates})
        except ValidationError as exc:
            first = exc.errors()[0]
            option = f"--{first['loc'][0]}" if first["loc"] else "option"
            raise UserError(f"{option}: {first['msg'].removeprefix('Value error, ')}") from None


class BusinessHoursParams(Section):
    timezone: str = "UTC"
    start_hour: float = Field(8.0, ge=0, le=24)
    end_hour: float = Field(18.0, ge=0, le=24)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    """0 = Monday .. 6 = Sunday."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
        return value

    @field_validator("weekdays")
    @classmethod
    def _days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(d < 0 or d > 6 for d in value):
            raise ValueError("weekdays must be a non-empty list of 0 (Monday) .. 6 (Sunday)")
        return value

    @model_validator(mode="after")
    def _order(self) -> BusinessHoursParams:
        if not self.start_hour < self.end_hour:
            raise ValueError("start_hour must be before end_hour")
        return self


SnapshotMoment = Literal["opening", "customer_message", "solved", "field_change", "daily"]


class SnapshotsParams(Section):
    """Training rows: the moments in each ticket's life at which features are taken."""

    moments: Literal["auto"] | tuple[SnapshotMoment, ...] = "auto"
    """``auto``: opening, daily, and customer_message (a log with customer messages) or
    field_change (a log without, e.g. a ServiceNow audit log); solved only when the outcome is
    a rating (given after the solve), never for a time-based target the solve decides."""

    @field_validator("moments", mode="before")
    @classmethod
    def _known_moments(cls, value):
        # One clear message instead of pydantic's per-branch errors of the union.
        if value == "auto":
            return value
        known = get_args(SnapshotMoment)
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"expected auto or a list of moments from: {', '.join(known)}")
        unknown = [str(v) for v in value if v not in known]
        if unknown:
            raise ValueError(f"unknown moment {unknown[0]!r}; expected auto or a list of: {', '.join(known)}")
        return tuple(value)
    max_per_ticket: int = Field(6, ge=1)
    opening_window_minutes: float = Field(5.0, ge=0)
    """"Opening" = created_at + this; also the urgency model's as-of."""
    daily_local_time: str = Field("05:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    """The ``daily`` moment: this local wall-clock time (business_hours.timezone) on each day a
    ticket is open, the moment a nightly run scores it."""


class AttributesParams(Section):
    """Ticket attributes (product, plan, form, organization, custom fields) as features ``attr_<name>``.

    An attribute's history comes from ``field`` events (its value at any moment is the
    latest event at or before it). A ticket-row column is used only when listed in
    ``static``: a ticket row holds values as of the export, so only the user can assert
    that a column was already known when the ticket was created.
    """

    static: tuple[str, ...] = ()
    """Ticket-row columns known at creation (e.g. organization, brand, form): each is an
    attribute with that value from ``created_at`` on."""
    exclude: tuple[str, ...] = ()
    """Attribute names never used as features (e.g. a resolution code set at the end)."""
    exclude_from_urgency: tuple[str, ...] = ()
    """Attributes the urgency model must not read: those the priority is computed from (ServiceNow:
    impact and urgency), or it learns the formula of its own label. The risk model still uses them."""
    min_level_count: int = Field(20, ge=1)
    """Categorical levels seen on fewer training tickets than this are pooled into ``(other)`` (tickets)."""
    max_levels: int = Field(50, ge=1)
    """At most this many levels per categorical attribute are kept, the most frequent first."""


class TeamRecordParams(Section):
    """Cross-ticket features: the current group's and assignee's record and load."""

    prior_ratings: float = Field(20.0, ge=0)
    """A group's or assignee's share of bad ratings is shrunk toward the overall share as if it
    had this many more ratings at the overall rate (ratings)."""


class UnlabelWindow(Section):
    created_from: str
    created_to: str
    where: dict[str, list[str]] = {}


class TargetParams(Section):
    """What the risk model predicts; ``train --target COLUMN=VALUE`` overrides it."""

    column: str = "satisfaction"
    bad: tuple[str, ...] = ("bad",)
    good: tuple[str, ...] = ()
    """Values meaning a good outcome. Left out: ``good`` for ``satisfaction`` (so ``offered``
    is no label), else every non-empty value that is not bad."""
    unlabel: tuple[UnlabelWindow, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data):
        if isinstance(data, dict):
            data = dict(data)
            for key in ("bad", "good"):
                value = data.get(key)
                if isinstance(value, (str, bool, int)):
                    data[key] = [value]
                if data.get(key) is not None:
                    data[key] = [str(v).lower() for v in data[key]]
            if "good" not in data and data.get("column", "satisfaction") == "satisfaction":
                data["good"] = ["good"]
        return data


class TrainParams(Section):
    min_labelled_tickets: int = Field(200, ge=1)
    min_bad_tickets: int = Field(30, ge=1)
    exclude_features: tuple[str, ...] = ()
    refit_on_all_labels: bool = True
    """After the held-out fit (the test period unseen; every reported number and the gate),
    refit the models that score on every labelled ticket, the newest weeks included, with
    the round counts chosen out of time and a calibrator fitted out of fold."""
    max_tickets_per_model: int | None = Field(100_000, ge=100)
    """Each model (risk: labelled tickets; urgency: solved tickets with a priority) fits on at
    most this many tickets, the same ones on every run: a larger export is sampled by ticket
    (a ticket keeps all its rows; every period keeps its share; ``models.dataset.FitSample``).
    None: every ticket. What the cap costs in accuracy and saves in time: README, Performance.
    Metrics (evaluate) always use every ticket of the test period."""


class SplitParams(Section):
    """Out-of-time periods by ticket creation, oldest first, as shares of labelled tickets
    (normalised: 1, 1, 1, 1 means quarters)."""

    train: float = Field(0.55, gt=0)
    valid: float = Field(0.15, gt=0)
    calibrate: float = Field(0.10, gt=0)
    test: float = Field(0.20, gt=0)


class LightGBMParams(Section):
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(15, ge=2)
    min_data_in_leaf: int = Field(40, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(1.0, ge=0)
    max_rounds: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    seed: int = 42
    num_threads: int = Field(2, ge=1)
    """Fixed so that the same data give the same trees on any machine."""

    def booster_params(self) -> dict:
        """The LightGBM parameters (without the round counts, which go to ``lgb.train``)."""
        return self.model_dump(exclude={"max_rounds", "early_stopping_rounds", "balance_classes"})


class RiskModelParams(LightGBMParams):
    balance_classes: bool = False
    """True up-weights bad outcomes; calibration undoes the shift."""


class UrgencyModelParams(LightGBMParams):
    learning_rate: float = Field(0.1, gt=0)


class TextModelParams(Section):
    enabled: bool = True
    n_features: int = Field(2**17, ge=16)
    analyzer: Literal["char_wb", "char", "word"] = "char_wb"
    ngram_range: tuple[int, int] = (3, 4)
    strength: float = Field(1.0, gt=0)
    folds: int = Field(5, ge=2)


class ChampionParams(Section):
    metric: Literal["roc_auc", "pr_auc", "recall_top10", "recall_top20", "brier", "log_loss", "ece"] = "roc_auc"
    tolerance: float = Field(0.005, ge=0)
    min_lift_over_baselines: float = 0.005


class PolicyWeights(Section):
    risk: float = Field(0.5, ge=0)
    urgency: float = Field(0.3, ge=0)
    sla: float = Field(0.2, ge=0)

    @model_validator(mode="after")
    def _positive(self) -> PolicyWeights:
        if self.risk + self.urgency + self.sla <= 0:
            raise ValueError("policy weights must have a positive sum")
        return self


class ReplyTargetMinutes(Section):
    low: float = Field(1440.0, gt=0)
    normal: float = Field(480.0, gt=0)
    high: float = Field(120.0, gt=0)
    urgent: float = Field(30.0, gt=0)


class TierCutoffs(Section):
    P1: float = 60.0
    P2: float = 40.0
    P3: float = 20.0

    @model_validator(mode="after")
    def _ordered(self) -> TierCutoffs:
        if not self.P1 >= self.P2 >= self.P3:
            raise ValueError("tiers must satisfy P1 >= P2 >= P3")
        return self


class PolicyParams(Section):
    """priority_score = 100 * weighted mean of p_bad, p_urgent and SLA pressure."""

    weights: PolicyWeights = PolicyWeights()
    sla_target_minutes: ReplyTargetMinutes = ReplyTargetMinutes()
    sla_cap: float = Field(2.0, gt=0)
    """SLA pressure grows linearly to 1 at this multiple of the reply target, then only by the tail."""
    sla_tail_per_doubling: float = Field(0.25, ge=0)
    """SLA pressure added per doubling of the wait past ``sla_cap`` x target (0 = flat past the cap)."""
    tiers: TierCutoffs = TierCutoffs()
    capacity: int | None = Field(None, ge=1)
    """Tickets per day the team works first: P1 is the top N by priority score (None = the tiers.P1 cut-off)."""
    overdue_multiple: float | None = Field(None, gt=0)
    """A ticket waiting longer than this multiple of its reply target is at least P2 (None = off)."""


class ReasonsParams(Section):
    max_reasons: int = Field(3, ge=0)
    min_contribution: float = Field(0.05, ge=0)
    """Log-odds; smaller pushes are not worth an agent's attention."""
    lowest_tier: Literal["P1", "P2", "P3", "P4"] = "P3"
    """Tickets below this tier get no reasons (P4 by default: nothing to act on first)."""
    language: Literal["en", "ko"] = "en"
    """Language of the reason phrases (ko: Korean, for Korean-speaking teams)."""


class ZendeskParams(Section):
    risk_field_id: int = Field(360000000001, ge=0)
    tag_prefix: str = "csat_"
    risk_bands: dict[str, int] = {"high": 60, "medium": 30, "low": 0}


class HistoryParams(Section):
    """``ticket_score_history``: every scored row of every run, for the queue page's score history."""

    retention_runs: int = Field(90, ge=1)
    """Keep the rows of the last N scoring runs (about N days when scoring nightly); a run deletes older ones."""


class MonitorParams(Section):
    """``csat-triage monitor``: how past predictions turned out, and the thresholds that raise alerts."""

    auc_floor: float = Field(0.6, ge=0, le=1)
    """Alert when the ROC AUC of the latest judged run is below this."""
    ece_ceiling: float = Field(0.1, ge=0, le=1)
    """Alert when its expected calibration error (probability points, 0..1) is above this."""
    psi_ceiling: float = Field(0.25, ge=0)
    """Alert when a feature's or the score's population stability index is above this (> 0.25: shifted)."""
    min_outcomes: int = Field(50, ge=1)
    """A run is judged only once this many of its tickets have a known outcome (tickets)."""
    psi_bins: int = Field(10, ge=2)
    """Quantile bins of a numeric feature's training distribution for the PSI."""
    top_movers: int = Field(5, ge=1)
    """How many features with the largest PSI the report lists."""


class EngineParams(Section):
    """``--engine dask``: how the export is split and, without ``--scheduler``, the local cluster's size."""

    partitions: int = Field(0, ge=0)
    """Pieces the export is split into by requester (0: one per ``tickets_per_partition`` tickets,
    at least two per worker thread)."""
    tickets_per_partition: int = Field(250_000, ge=1)
    """With ``partitions: 0``: tickets per piece (a piece's tickets, events and features sit in one worker's memory)."""
    workers: int = Field(0, ge=0)
    """Worker processes of the local cluster started without ``--scheduler`` (0: one per CPU core)."""
    threads_per_worker: int = Field(1, ge=1)
    """Threads per local worker; LightGBM under Dask uses them for each fit."""
    memory_per_worker_gb: float = Field(0.0, ge=0)
    """Memory limit of each local worker, GB (0: the machine's memory shared evenly by the workers)."""


class Params(Section):
    """Every tunable of the pipeline; each section is one ``params.yaml`` mapping."""

    simulate: SimulateParams = SimulateParams()
    ingest: IngestParams = IngestParams()
    business_hours: BusinessHoursParams = BusinessHoursParams()
    snapshots: SnapshotsParams = SnapshotsParams()
    attributes: AttributesParams = AttributesParams()
    team_record: TeamRecordParams = TeamRecordParams()
    target: TargetParams = TargetParams()
    train: TrainParams = TrainParams()
    split: SplitParams = SplitParams()
    risk_model: RiskModelParams = RiskModelParams()
    urgency_model: UrgencyModelParams = UrgencyModelParams()
    text_model: TextModelParams = TextModelParams()
    champion: ChampionParams = ChampionParams()
    policy: PolicyParams = PolicyParams()
    reasons: ReasonsParams = ReasonsParams()
    zendesk: ZendeskParams = ZendeskParams()
    history: HistoryParams = HistoryParams()
    monitor: MonitorParams = MonitorParams()
    engine: EngineParams = EngineParams()

    def sections(self, *names: str) -> dict:
        """Plain data of some sections (for a model's metadata and MLflow)."""
        return {name: getattr(self, name).model_dump(mode="json") for name in names}


def parse_params(data: object, source: str = "params") -> Params:
    """Validate a mapping of sections; errors are one line naming the key and ``source``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        if first["type"] == "extra_forbidden":
            message = "unknown key (misspelt? see the sections and keys in pipeline/core/params.py)"
        else:
            message = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise UserError(f"{source}: {key}: {message}{more}") from None


def load_params(path: str | Path = DEFAULT_PARAMS_FILE) -> Params:
    """Read and validate a parameters file. A missing file is an error: no silent defaults."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path.resolve()}: parameters file not found; run from the project directory or pass --params FILE"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({one_line(exc)})") from None
    return parse_params(data, str(path))
