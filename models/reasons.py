"""Plain-language reasons: why a ticket needs attention, in words an agent can act on.

A reason is a feature the agent can see and do something about (a wait, a reopen, a
hop between groups, angry wording, a customer's bad history), picked from LightGBM's
per-row contributions (SHAP values on the log-odds) when it pushes this ticket's risk
up by more than ``min_contribution``. Context the agent cannot change (channel, hour
of creation, message length, ...) is never a reason on its own: :data:`CONTEXT_FEATURES`.

Each phrase states the ticket's value AND a comparison with tonight's scored tickets
(the rows passed in), e.g. "customer waiting 9 h for a reply — half of tonight's
waiting customers have waited under 2 h". A feature is only a reason when its value is
worse than tonight's typical ticket (above the median, or a flag most tickets do not
have), so the comparison always reads as "this ticket stands out". Tickets below
``lowest_tier`` (P4 by default) get no reasons. What stands out is judged one feature at
a time over all rows; phrases are built only for the (ticket, reason) pairs shown, one
feature at a time, never one row at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["wait", "count", "flag", "score", "attribute"]
# (value as a number, comparison as text) -> phrase, one language.
Text = Callable[[pd.Series, pd.Series], pd.Series]
TIER_ORDER = ("P1", "P2", "P3", "P4")


@dataclass(frozen=True)
class Reason:
    """How one feature becomes a reason.

    ``kind`` fixes the comparison with tonight's tickets:

    - ``wait`` (minutes): the median over tonight's tickets with a value (``positive_only``:
      with a value above 0, e.g. only customers who are waiting); a reason when above it.
    - ``count``: the share of tonight's tickets with at least this value; a reason when
      above the median (so the share is at most half).
    - ``flag`` (0/1): the share of tonight's tickets with the same value; a reason when the
      value is ``bad`` and fewer than half of tonight's tickets have it.
    - ``score`` (a learned text score): the share of tonight's tickets scoring lower; a
      reason when above the median.
    - ``attribute`` (a category, e.g. a product): the share of tonight's tickets with the
      same value; a reason when fewer than half have it.
    """

    kind: Kind
    en: Text
    ko: Text
    bad: int = 1
    positive_only: bool = False
    # wait only: phrases for a missing value (no agent reply yet), quoting ``age_minutes``.
    missing_en: Text | None = None
    missing_ko: Text | None = None


def duration(minutes: pd.Series) -> pd.Series:
    """Minutes as a short human duration: "45 min", "26 h", "3 days"."""
    return _duration(minutes, " min", " h", " days")


def duration_ko(minutes: pd.Series) -> pd.Series:
    """Minutes as a short Korean duration: "45분", "26시간", "3일"."""
    return _duration(minutes, "분", "시간", "일")


def _duration(minutes: pd.Series, minute: str, hour: str, day: str) -> pd.Series:
    m = pd.to_numeric(minutes, errors="coerce").fillna(0.0).clip(lower=0)
    minutes_text = m.round().astype("int64").astype(str) + minute
    hours_text = (m / 60).round().astype("int64").astype(str) + hour
    days_text = (m / 1440).round().astype("int64").astype(str) + day
    return minutes_text.where(m < 90, hours_text.where(m < 48 * 60, days_text))


def _count(value: pd.Series) -> pd.Series:
    return pd.to_numeric(value, errors="coerce").fillna(0).round().astype("int64")


def times(value: pd.Series) -> pd.Series:
    """1 -> "once", 2 -> "twice", n -> "n times"."""
    n = _count(value)
    return n.map({1: "once", 2: "twice"}).fillna(n.astype(str) + " times")


def plural(value: pd.Series, word: str, words: str | None = None) -> pd.Series:
    """"1 message", "3 messages" (``words`` for irregular plurals)."""
    n = _count(value)
    return n.astype(str) + " " + np.where(n == 1, word, words or word + "s")


def n(value: pd.Series) -> pd.Series:
    return _count(value).astype(str)


def percent(share: np.ndarray) -> np.ndarray:
    """0.042 -> "4%"; a share above 0 that rounds to 0 -> "<1%"."""
    share = np.nan_to_num(np.asarray(share, dtype="float64"), nan=0.0)  # a missing value's share: never shown
    whole = np.rint(100 * share).astype("int64")
    return np.where((whole == 0) & (share > 0), "<1%", whole.astype(str).astype(object) + "%").astype(object)


def tier_rank(tier: np.ndarray) -> np.ndarray:
    """Position of each tier in :data:`TIER_ORDER` (P1 = 0); an unknown tier ranks after all."""
    position = pd.Index(TIER_ORDER).get_indexer(np.asarray(tier, dtype=object))  # a hash lookup: map is slow
    return np.where(position < 0, len(TIER_ORDER), position).astype("float64")


def _many(text: Callable[[pd.Series], pd.Series]) -> Text:
    """English count phrase + "— only 4% of tonight's tickets have as many"."""
    return lambda v, c: text(v) + " — only " + c + " of tonight's tickets have as many"


def _many_ko(text: Callable[[pd.Series], pd.Series]) -> Text:
    """Korean count phrase + "— 오늘 티켓 중 이 정도인 건 4%뿐입니다"."""
    return lambda v, c: text(v) + " — 오늘 티켓 중 이 정도인 건 " + c + "뿐입니다"


# The features that may be a reason, and how each is phrased. Every feature of
# features.build.FEATURE_NAMES (and of the learned text scores) is either here or in
# CONTEXT_FEATURES; a test enforces it, so a new feature forces a decision.
REASONS: dict[str, Reason] = {
    # Waits: the agent can answer now (or apologise for a slow first reply).
    "current_wait_minutes": Reason(
        "wait", positive_only=True,
        en=lambda v, c: "customer waiting " + duration(v) + " for a reply — half of tonight's waiting customers have waited under " + c,
        ko=lambda v, c: "고객이 " + duration_ko(v) + "째 답변을 기다리는 중 — 오늘 대기 중인 고객 절반은 " + c + " 미만으로 기다렸습니다"),
    "current_wait_business_minutes": Reason(
        "wait", positive_only=True,
        en=lambda v, c: "customer waiting " + duration(v) + " of business hours for a reply — half of tonight's waiting customers have waited under " + c,
        ko=lambda v, c: "고객이 업무 시간 기준 " + duration_ko(v) + "째 답변을 기다리는 중 — 오늘 대기 중인 고객 절반은 " + c + " 미만으로 기다렸습니다"),
    "requester_wait_minutes": Reason(
        "wait", positive_only=True,
        en=lambda v, c: "customer has waited " + duration(v) + " in total — half of tonight's customers waited under " + c,
        ko=lambda v, c: "고객이 총 " + duration_ko(v) + " 동안 답변을 기다림 — 오늘 고객 절반은 총 대기 시간이 " + c + " 미만입니다"),
    "requester_wait_business_minutes": Reason(
        "wait", positive_only=True,
        en=lambda v, c: "customer has waited " + duration(v) + " of business hours in total — half of tonight's customers waited under " + c,
        ko=lambda v, c: "고객이 업무 시간 기준 총 " + duration_ko(v) + " 동안 답변을 기다림 — 오늘 고객 절반은 총 대기 시간이 " + c + " 미만입니다"),
    "first_reply_minutes": Reason(
        "wait",
        en=lambda v, c: "first reply took " + duration(v) + " — half of tonight's answered tickets got a first reply within " + c,
        ko=lambda v, c: "첫 답변까지 " + duration_ko(v) + " 걸림 — 오늘 답변된 티켓 절반은 " + c + " 안에 첫 답변을 받았습니다",
        missing_en=lambda age, c: "no agent reply yet after " + duration(age) + " — half of tonight's answered tickets got a first reply within " + c,
        missing_ko=lambda age, c: duration_ko(age) + "째 첫 답변 없음 — 오늘 답변된 티켓 절반은 " + c + " 안에 첫 답변을 받았습니다"),
    # No reply yet is first_reply_minutes' reason (with the ticket's age); the business
    # variant and the time since the last reply only speak when there is a reply.
    "first_reply_business_minutes": Reason(
        "wait",
        en=lambda v, c: "first reply took " + duration(v) + " of business hours — half of tonight's answered tickets got one within " + c,
        ko=lambda v, c: "첫 답변까지 업무 시간 기준 " + duration_ko(v) + " 걸림 — 오늘 답변된 티켓 절반은 " + c + " 안에 첫 답변을 받았습니다"),
    "minutes_since_last_agent_reply": Reason(
        "wait",
        en=lambda v, c: "last agent reply " + duration(v) + " ago — half of tonight's tickets heard from an agent within " + c,
        ko=lambda v, c: "마지막 상담원 답변이 " + duration_ko(v) + " 전 — 오늘 티켓 절반은 " + c + " 안에 상담원 답변이 있었습니다"),
    "has_assignee": Reason(
        "flag", bad=0,
        en=lambda v, c: "nobody assigned yet — only " + c + " of tonight's tickets are unassigned",
        ko=lambda v, c: "아직 담당자 없음 — 오늘 티켓 중 담당자가 없는 건 " + c + "뿐입니다"),
    # Unanswered messages, ping-pong, reopens, transfers.
    "customer_messages": Reason(
        "count", en=_many(lambda v: "customer wrote " + plural(v, "message")),
        ko=_many_ko(lambda v: "고객 메시지 " + n(v) + "개")),
    "ping_pong_count": Reason(
        "count", en=_many(lambda v: plural(v, "back-and-forth exchange")),
        ko=_many_ko(lambda v: "고객과 " + n(v) + "번 주고받음")),
    "reopens": Reason(
        "count", en=_many(lambda v: "reopened " + times(v)), ko=_many_ko(lambda v: n(v) + "번 재오픈됨")),
    "times_solved": Reason(
        "count", en=_many(lambda v: "marked solved " + times(v)), ko=_many_ko(lambda v: n(v) + "번 해결 처리됨")),
    "group_hops": Reason(
        "count", en=_many(lambda v: "passed between " + (_count(v) + 1).astype(str) + " groups"),
        ko=_many_ko(lambda v: (_count(v) + 1).astype(str) + "개 그룹을 거침")),
    "assignee_hops": Reason(
        "count", en=_many(lambda v: "reassigned " + times(v)), ko=_many_ko(lambda v: "담당자가 " + n(v) + "번 바뀜")),
    # Angry or urgent wording.
    "last_message_question_marks": Reason(
        "count", en=_many(lambda v: plural(v, "question mark") + " in the last message"),
        ko=_many_ko(lambda v: "마지막 메시지에 물음표 " + n(v) + "개")),
    "last_message_exclamations": Reason(
        "count", en=_many(lambda v: plural(v, "exclamation mark") + " in the last message"),
        ko=_many_ko(lambda v: "마지막 메시지에 느낌표 " + n(v) + "개")),
    "last_message_shouting": Reason(
        "flag",
        en=lambda v, c: "last message written in capitals — only " + c + " of tonight's tickets have one",
        ko=lambda v, c: "마지막 메시지가 대문자로 작성됨 — 오늘 티켓 중 이런 건 " + c + "뿐입니다"),
    "last_message_negative_words": Reason(
        "count", en=_many(lambda v: plural(v, "angry word") + " in the last message"),
        ko=_many_ko(lambda v: "마지막 메시지에 불만 표현 " + n(v) + "개")),
    "last_message_urgent_words": Reason(
        "count", en=_many(lambda v: plural(v, "urgent word") + " in the last message"),
        ko=_many_ko(lambda v: "마지막 메시지에 긴급 표현 " + n(v) + "개")),
    "customer_negative_words": Reason(
        "count", en=_many(lambda v: plural(v, "angry word") + " from the customer"),
        ko=_many_ko(lambda v: "고객 메시지에 불만 표현 " + n(v) + "개")),
    "customer_urgent_words": Reason(
        "count", en=_many(lambda v: plural(v, "urgent word") + " from the customer"),
        ko=_many_ko(lambda v: "고객 메시지에 긴급 표현 " + n(v) + "개")),
    "customer_exclamations": Reason(
        "count", en=_many(lambda v: plural(v, "exclamation mark") + " from the customer"),
        ko=_many_ko(lambda v: "고객 메시지에 느낌표 " + n(v) + "개")),
    "customer_shouting_messages": Reason(
        "count", en=_many(lambda v: plural(v, "customer message") + " in capitals"),
        ko=_many_ko(lambda v: "대문자로 쓴 고객 메시지 " + n(v) + "개")),
    "subject_urgent_words": Reason(
        "count", en=_many(lambda v: plural(v, "urgent word") + " in the subject"),
        ko=_many_ko(lambda v: "제목에 긴급 표현 " + n(v) + "개")),
    "subject_negative_words": Reason(
        "count", en=_many(lambda v: plural(v, "angry word") + " in the subject"),
        ko=_many_ko(lambda v: "제목에 불만 표현 " + n(v) + "개")),
    "text_risk_score": Reason(
        "score",
        en=lambda v, c: "opening message reads like past unhappy customers — more so than " + c + " of tonight's tickets",
        ko=lambda v, c: "첫 메시지가 과거 불만 고객의 글과 비슷함 — 오늘 티켓의 " + c + "보다 더 비슷합니다"),
    "text_urgency_score": Reason(
        "score",
        en=lambda v, c: "opening message reads as urgent — more so than " + c + " of tonight's tickets",
        ko=lambda v, c: "첫 메시지가 긴급해 보임 — 오늘 티켓의 " + c + "보다 더 긴급해 보입니다"),
    # A bad history: the agent can take extra care with this customer.
    "requester_previous_bad_ratings": Reason(
        "count", en=_many(lambda v: "customer rated " + plural(v, "earlier ticket") + " bad"),
        ko=_many_ko(lambda v: "이 고객은 이전 티켓 " + n(v) + "건에 나쁜 평가를 남김")),
    "requester_previous_reopens": Reason(
        "count", en=_many(lambda v: "customer had " + plural(v, "earlier reopen")),
        ko=_many_ko(lambda v: "이 고객의 이전 티켓이 " + n(v) + "번 재오픈됨")),
    # Attributes (attr_<name>: product, plan, form, ...) are reasons too; their phrases are
    # made per model by reason_catalogue(), since the names come from the export.
}

# Context: true of the ticket, but nothing an agent can act on, so never a reason on its own.
CONTEXT_FEATURES: frozenset[str] = frozenset({
    "channel", "created_hour", "created_weekday", "created_on_weekend", "created_after_hours",
    "last_message_chars", "customer_text_chars", "customer_writes_korean",
    "current_priority",  # the agent's own setting; the reply target already follows it
    "current_group", "status_now",  # where the ticket sits, not what went wrong
    "notes",  # internal notes are invisible to the customer
    "agent_replies",  # our own replies; the back-and-forth is ping_pong_count's reason
    # Age counts time the ticket waited on the customer too; the part the agent can act
    # on (the customer waiting for us) is the wait features' reason.
    "age_minutes",
    # Many earlier tickets is a loyal customer, not a bad history (bad ratings and
    # reopens are the reasons).
    "requester_previous_tickets",
    # The team's load and record: a lead's lever (rebalance, coach), not this agent's on this
    # ticket; "the group is busy" would also land on every ticket of a busy group.
    "group_open_tickets", "assignee_open_tickets", "group_bad_rating_share", "assignee_bad_rating_share",
    # The organization's record: an account manager's matter, and the same on every ticket of
    # a large account; the customer's own bad ratings are the reason an agent can act on.
    "organization_previous_tickets", "organization_bad_rating_share",
})


def reason_catalogue(attribute_kinds: Mapping[str, str]) -> dict[str, Reason]:
    """:data:`REASONS` plus one reason per attribute feature of a model (``{"attr_x": "category"|"number"}``).

    An attribute is something the agent can see on the ticket and act on (route to the
    product team, apply the enterprise playbook): "product area: mobile_app — 8 % of
    tonight's tickets" when fewer than half of tonight's tickets share the value; a
    numeric one quotes the share of tonight's tickets with a lower value.
    """
    catalogue = dict(REASONS)
    for feature, kind in attribute_kinds.items():
        label = feature.removeprefix("attr_").replace("_", " ")
        if kind == "category":
            catalogue[feature] = Reason(
                "attribute", en=lambda v, c, label=label: label + ": " + v + " — " + c + " of tonight's tickets",
                ko=lambda v, c, label=label: label + ": " + v + " — 오늘 티켓의 " + c)
        else:
            catalogue[feature] = Reason(
                "score", en=lambda v, c, label=label: label + " " + _count(v).astype(str) + " — higher than " + c + " of tonight's tickets",
                ko=lambda v, c, label=label: label + " " + _count(v).astype(str) + " — 오늘 티켓의 " + c + "보다 높음")
    return catalogue


def _numbers(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype):  # already numbers: to_numeric's parsing is the slow part
        return values.astype("float64").reset_index(drop=True)
    if isinstance(values.dtype, pd.CategoricalDtype):  # each level parsed once (what to_numeric parses per row)
        levels = pd.to_numeric(pd.Series(np.asarray(values.cat.categories, dtype=object), dtype=object),
                               errors="coerce").to_numpy(dtype="float64")
        codes = values.cat.codes.to_numpy()
        return pd.Series(levels[np.clip(codes, 0, None)] if len(levels) else np.full(len(codes), np.nan),
                         dtype="float64").where(codes >= 0)
    return pd.to_numeric(values, errors="coerce").astype("float64").reset_index(drop=True)


def _texts(values: pd.Series) -> pd.Series:
    """``values.astype(object).astype(str)`` (missing stays missing), a categorical's made once per level."""
    if isinstance(values.dtype, pd.CategoricalDtype) and len(values.cat.categories):
        levels = pd.Series(np.asarray(values.cat.categories, dtype=object), dtype=object).astype(str)
        codes = values.cat.codes.to_numpy()
        return levels.take(np.clip(codes, 0, None)).reset_index(drop=True).where(codes >= 0)
    return values.astype(object).astype(str).reset_index(drop=True)


def _shares(values: pd.Series) -> np.ndarray:
    """Per row, the share of the rows with a value that have the same value (NaN where missing)."""
    codes, _ = pd.factorize(values)
    present = codes >= 0
    counts = np.bincount(codes[present])
    return np.where(present, counts[np.where(present, codes, 0)] / max(int(present.sum()), 1), np.nan)


def _measure(
    reason: Reason, feature: str, features: pd.DataFrame, language: str,
) -> tuple[np.ndarray, Callable[[np.ndarray], pd.Series]]:
    """(whether the feature is a reason for each row, its phrase for the rows asked by position).

    What stands out is judged over all rows (tonight's scored tickets); a phrase is built
    only for the rows asked, since a queue shows a few reasons per ticket out of ~40.
    """
    median, share_of, constant = np.nan, None, None
    if reason.kind == "attribute":
        present = features[feature].notna().to_numpy()
        v = _texts(features[feature])
        share = _shares(v)
        share_of = share.__getitem__
        notable = (share < 0.5) & present  # an attribute never set says nothing to act on
    else:
        v = _numbers(features[feature])
        if reason.kind == "wait":
            known = v.dropna().to_numpy()
            population = known[known > 0] if reason.positive_only else known
            median = float(np.median(population)) if len(population) else np.nan
            notable = (v > median).to_numpy()
            constant = (duration if language == "en" else duration_ko)(pd.Series([median])).iloc[0]
        elif reason.kind == "flag":
            v = v.fillna(0).round()
            share = _shares(v)
            share_of = share.__getitem__
            notable = ((v == reason.bad).to_numpy()) & (share < 0.5)
        else:
            v = v.fillna(0)
            ordered = np.sort(v.to_numpy())
            median = float(v.median()) if len(v) else np.nan
            notable = (v > median).to_numpy()

            def below(rows: np.ndarray) -> np.ndarray:  # the share of the rows with a lower value
                return np.searchsorted(ordered, v.to_numpy()[rows], side="left") / max(len(v), 1)

            if reason.kind == "count":
                notable = notable & (v > 0).to_numpy()
                share_of = lambda rows: 1.0 - below(rows)  # noqa: E731 - share with at least this value
            else:
                share_of = below  # share scoring lower
    text = reason.en if language == "en" else reason.ko
    missing = reason.missing_en if language == "en" else reason.missing_ko
    no_value, age = None, None
    if reason.kind == "wait" and missing is not None and "age_minutes" in features:
        age = _numbers(features["age_minutes"])
        no_value = v.isna().to_numpy() & (age > median).to_numpy()
        notable = notable | no_value

    def phrase(rows: np.ndarray) -> pd.Series:
        values = v.iloc[rows]
        comparison = pd.Series(constant if share_of is None else percent(share_of(rows)), index=values.index,
                               dtype=object)
        out = text(values, comparison)
        if no_value is not None:
            out = out.where(~no_value[rows], missing(age.iloc[rows], comparison))
        return out.astype(object)

    return np.asarray(notable, dtype=bool), phrase


def reason_phrases(
    features: pd.DataFrame, language: str = "en", catalogue: Mapping[str, Reason] = REASONS,
) -> pd.DataFrame:
    """Per row and reason feature present in ``features``, its phrase, or "" where the value
    does not stand out against the rows given (tonight's scored tickets)."""
    if language not in ("en", "ko"):
        raise ValueError(f"reasons language must be 'en' or 'ko', not {language!r}")
    columns = {}
    for feature, reason in catalogue.items():  # a loop over ~40 features; each is vectorised over rows
        if feature in features.columns:
            notable, phrase = _measure(reason, feature, features, language)
            column = np.full(len(features), "", dtype=object)
            column[notable] = phrase(np.flatnonzero(notable)).to_numpy(dtype=object)
            columns[feature] = column
    return pd.DataFrame(columns, index=range(len(features)), dtype=object)


@dataclass(frozen=True)
class ReasonMeasures:
    """Per reason feature, whether each of tonight's rows stands out and how to phrase it
    (:func:`measure_reasons`): what :func:`top_reasons` needs besides the contributions."""

    names: list[str]
    measured: list[tuple[np.ndarray, Callable[[np.ndarray], pd.Series]]]


def measure_reasons(
    columns, features: pd.DataFrame, language: str = "en", catalogue: Mapping[str, Reason] = REASONS,
) -> ReasonMeasures:
    """What stands out in ``features`` (tonight's rows) for each of ``columns`` (the
    contributions' columns) that may be a reason. It needs no contribution, so a caller can
    measure while the contributions are still being computed."""
    if language not in ("en", "ko"):
        raise ValueError(f"reasons language must be 'en' or 'ko', not {language!r}")
    names = [c for c in columns if c in catalogue and c in features.columns]
    return ReasonMeasures(names, [_measure(catalogue[name], name, features, language) for name in names])  # ~40


def top_reasons(
    contributions: pd.DataFrame, features: pd.DataFrame, max_reasons: int, min_contribution: float,
    *, tier: np.ndarray | None = None, lowest_tier: str = "P3", language: str = "en", separator: str = "; ",
    catalogue: Mapping[str, Reason] = REASONS, measures: ReasonMeasures | None = None,
) -> pd.Series:
    """Per row, the phrases of the reason features pushing risk up the most, joined by ``separator``.

    ``contributions``: (n_rows, n_features) log-odds contributions; ``features``: the same
    rows' feature values, in the same order (the comparisons are taken over these rows).
    A feature is a candidate when it is in ``catalogue``, its contribution is above
    ``min_contribution`` and its value stands out; rows whose ``tier`` is below
    ``lowest_tier`` get "" (as do rows with no candidate). ``measures``:
    ``measure_reasons(contributions.columns, features, language, catalogue)`` when the caller
    has it already.
    """
    n_rows = len(contributions)
    names = [c for c in contributions.columns if c in catalogue and c in features.columns]
    k = min(max_reasons, len(names))
    if n_rows == 0 or k == 0:
        return pd.Series([""] * n_rows, dtype=object)
    if measures is None:
        measures = measure_reasons(contributions.columns, features, language, catalogue)
    if measures.names != names:
        raise ValueError("reason measures were taken for other columns than the contributions'")
    measured = measures.measured
    values = contributions[names].to_numpy(dtype="float64")
    candidate = (values > min_contribution) & np.column_stack([notable for notable, _ in measured])
    if tier is not None:
        candidate &= (tier_rank(tier) <= TIER_ORDER.index(lowest_tier))[:, None]
    rows = np.flatnonzero(candidate.any(axis=1))  # only tickets with a reason are ranked and phrased
    candidate, values = candidate[rows], values[rows]
    top = np.argsort(-np.where(candidate, values, -np.inf), axis=1, kind="stable")[:, :k]
    shown = np.take_along_axis(candidate, top, axis=1)  # candidates sort first: shown slots are a prefix
    chosen = np.full(top.shape, "", dtype=object)
    for j, (_, phrase) in enumerate(measured):  # one phrase call per feature, for the rows showing it
        row, slot = np.nonzero((top == j) & shown)
        if len(row):
            chosen[row, slot] = phrase(rows[row]).to_numpy(dtype=object)
    joined = chosen[:, 0]
    for slot in range(1, k):  # a loop over at most max_reasons slots, each over the rows with reasons
        joined = np.where(shown[:, slot], joined + separator + chosen[:, slot], joined)
    out = np.full(n_rows, "", dtype=object)
    out[rows] = joined
    return pd.Series(out, dtype=object)
