"""Reasons: only actionable features, each phrased with the ticket's value and a comparison with tonight's tickets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_NAMES
from models.reasons import (
    CONTEXT_FEATURES,
    REASONS,
    Reason,
    duration,
    duration_ko,
    percent,
    plural,
    reason_phrases,
    times,
    top_reasons,
)
from models.text_model import TEXT_SCORE_COLUMNS
from pipeline.core.params import ReasonsParams

COLUMNS = ["current_wait_minutes", "reopens", "group_hops", "channel", "first_reply_minutes", "text_risk_score",
           "has_assignee"]


def reasons_of(contributions, features, **settings):
    """:func:`top_reasons` with the params model's defaults for what a test does not set."""
    defaults = ReasonsParams()
    return top_reasons(contributions, features, **{
        "max_reasons": defaults.max_reasons, "min_contribution": defaults.min_contribution,
        "lowest_tier": defaults.lowest_tier, "language": defaults.language, **settings})


def features_frame(index=None) -> pd.DataFrame:
    # Tonight's four tickets; the comparisons below are worked out from these values by hand.
    return pd.DataFrame(
        {
            "current_wait_minutes": [540.0, 120.0, 0.0, 60.0],  # waiting ones: median of 540, 120, 60 = 120
            "reopens": [2, 0, 1, 0],                            # median 0.5; >= 2: 1 of 4, >= 1: 2 of 4
            "group_hops": [0, 3, 0, 0],                         # >= 3: 1 of 4
            "channel": pd.Categorical(["email", "chat", "web", "phone"]),
            "first_reply_minutes": [np.nan, 30.0, 240.0, 60.0],  # answered: median of 30, 240, 60 = 60
            "text_risk_score": [0.1, 0.9, 0.5, 0.3],            # median 0.4; below 0.9: 3 of 4, below 0.5: 2 of 4
            "has_assignee": [1, 1, 0, 1],                       # unassigned: 1 of 4
            "age_minutes": [600.0, 300.0, 500.0, 100.0],
        },
        index=index,
    )


def contributions_frame(index=None) -> pd.DataFrame:
    return pd.DataFrame(
        [
            [0.9, 0.3, 0.0, 2.0, 0.5, -0.1, 0.0],   # channel pushes most, but is context
            [0.8, 0.0, 0.6, 0.0, 0.0, 0.4, 0.0],    # a 120 min wait is tonight's median: no reason
            [0.0, 0.04, 0.0, 0.0, 0.3, 0.1, 0.2],   # reopens' 0.04 is under the 0.05 minimum
            [-0.2, -0.1, 0.0, 3.0, -0.3, 0.0, 0.0],  # only channel pushes up: no reason at all
        ],
        columns=COLUMNS,
        index=index,
    )


WAIT_0 = "customer waiting 9 h for a reply — half of tonight's waiting customers have waited under 2 h"
NO_REPLY_0 = "no agent reply yet after 10 h — half of tonight's answered tickets got a first reply within 60 min"
REOPENED_0 = "reopened twice — only 25% of tonight's tickets have as many"
HOPS_1 = "passed between 4 groups — only 25% of tonight's tickets have as many"
TEXT_1 = "opening message reads like past unhappy customers — more so than 75% of tonight's tickets"
REPLY_2 = "first reply took 4 h — half of tonight's answered tickets got a first reply within 60 min"
UNASSIGNED_2 = "nobody assigned yet — only 25% of tonight's tickets are unassigned"
TEXT_2 = "opening message reads like past unhappy customers — more so than 50% of tonight's tickets"


def test_every_feature_is_either_a_reason_or_context():
    # A new feature must be classified: an actionable reason (with a phrase) or context.
    classified = set(REASONS) | CONTEXT_FEATURES
    missing = (set(FEATURE_NAMES) | set(TEXT_SCORE_COLUMNS)) - classified
    assert not missing, f"classify these features in models/reasons.py: {sorted(missing)}"
    assert not set(REASONS) & CONTEXT_FEATURES


@pytest.mark.parametrize("feature", [
    "channel", "created_hour", "created_weekday", "created_on_weekend", "created_after_hours",
    "last_message_chars", "customer_text_chars", "age_minutes",
])
def test_context_features_are_never_reasons(feature):
    assert feature in CONTEXT_FEATURES and feature not in REASONS


def test_reasons_are_the_largest_actionable_pushes_with_value_and_comparison():
    reasons = reasons_of(contributions_frame(), features_frame())
    assert reasons.tolist() == [
        f"{WAIT_0}; {NO_REPLY_0}; {REOPENED_0}",
        f"{HOPS_1}; {TEXT_1}",
        f"{REPLY_2}; {UNASSIGNED_2}; {TEXT_2}",
        "",
    ]


def test_the_channel_never_appears_even_with_the_largest_contribution():
    contributions = pd.DataFrame(0.0, index=range(4), columns=COLUMNS)
    contributions["channel"] = 5.0
    reasons = reasons_of(contributions, features_frame())
    assert reasons.tolist() == ["", "", "", ""]
    assert not reasons_of(contributions_frame(), features_frame()).str.contains("email|chat|web|phone").any()


def test_no_reasons_below_the_lowest_tier():
    tiers = np.array(["P4", "P1", "P3", "P2"], dtype=object)
    reasons = reasons_of(contributions_frame(), features_frame(), tier=tiers)
    assert reasons.tolist() == ["", f"{HOPS_1}; {TEXT_1}", f"{REPLY_2}; {UNASSIGNED_2}; {TEXT_2}", ""]
    only_p1 = reasons_of(contributions_frame(), features_frame(), tier=tiers, lowest_tier="P1")
    assert only_p1.tolist() == ["", f"{HOPS_1}; {TEXT_1}", "", ""]


def test_a_value_no_worse_than_tonights_typical_ticket_is_no_reason():
    # Row 1 waits 120 min, exactly tonight's median wait: its 0.8 push is not phrased.
    phrases = reason_phrases(features_frame())
    assert phrases["current_wait_minutes"].tolist() == [WAIT_0, "", "", ""]
    assert phrases["reopens"].tolist() == [REOPENED_0, "", "reopened once — only 50% of tonight's tickets have as many", ""]
    assert phrases["has_assignee"].tolist() == ["", "", UNASSIGNED_2, ""]
    assert "channel" not in phrases and "age_minutes" not in phrases


def test_each_phrase_carries_the_value_and_the_comparison():
    # One ticket per feature stands out; its phrase names its own value and tonight's reference.
    features = pd.DataFrame({
        "current_wait_minutes": [3000.0, 30.0, 90.0, 0.0],     # waiting: median of 30, 90, 3000 = 90
        "ping_pong_count": [0, 7, 1, 1],                       # >= 7: 1 of 4
        "requester_previous_bad_ratings": [0, 0, 0, 3],        # >= 3: 1 of 4
        "customer_negative_words": [1, 0, 0, 0],               # >= 1: 1 of 4
    })
    phrases = reason_phrases(features)
    assert phrases.loc[0, "current_wait_minutes"] == (
        "customer waiting 2 days for a reply — half of tonight's waiting customers have waited under 2 h")
    assert phrases.loc[1, "ping_pong_count"] == "7 back-and-forth exchanges — only 25% of tonight's tickets have as many"
    assert phrases.loc[3, "requester_previous_bad_ratings"] == (
        "customer rated 3 earlier tickets bad — only 25% of tonight's tickets have as many")
    assert phrases.loc[0, "customer_negative_words"] == "1 angry word from the customer — only 25% of tonight's tickets have as many"


def test_korean_phrases():
    reasons = reasons_of(contributions_frame(), features_frame(), language="ko")
    assert reasons.tolist() == [
        "고객이 9시간째 답변을 기다리는 중 — 오늘 대기 중인 고객 절반은 2시간 미만으로 기다렸습니다; "
        "10시간째 첫 답변 없음 — 오늘 답변된 티켓 절반은 60분 안에 첫 답변을 받았습니다; "
        "2번 재오픈됨 — 오늘 티켓 중 이 정도인 건 25%뿐입니다",
        "4개 그룹을 거침 — 오늘 티켓 중 이 정도인 건 25%뿐입니다; "
        "첫 메시지가 과거 불만 고객의 글과 비슷함 — 오늘 티켓의 75%보다 더 비슷합니다",
        "첫 답변까지 4시간 걸림 — 오늘 답변된 티켓 절반은 60분 안에 첫 답변을 받았습니다; "
        "아직 담당자 없음 — 오늘 티켓 중 담당자가 없는 건 25%뿐입니다; "
        "첫 메시지가 과거 불만 고객의 글과 비슷함 — 오늘 티켓의 50%보다 더 비슷합니다",
        "",
    ]


@pytest.mark.parametrize("language", ["en", "ko"])
def test_every_reason_has_a_phrase_with_a_comparison(language):
    # Every catalogued feature, on a population where row 0 stands out, gives a phrase with a
    # comparison dash (Korean phrases for ko: Hangul, no English words).
    names = [name for name, reason in REASONS.items() if reason.kind != "attribute"]
    values = {name: [0, 0, 0, 5] if REASONS[name].kind != "flag" else [REASONS[name].bad, 1 - REASONS[name].bad,
                                                                         1 - REASONS[name].bad, 1 - REASONS[name].bad]
              for name in names}
    features = pd.DataFrame(values, dtype="float64")
    features.loc[:, [n for n in names if REASONS[n].kind == "wait"]] = [[0.0], [30.0], [60.0], [3000.0]]
    phrases = reason_phrases(features, language)
    for name in names:
        row = 0 if REASONS[name].kind == "flag" else 3
        text = phrases.loc[row, name]
        assert " — " in text, (name, text)
        if language == "ko":
            assert any("\uac00" <= ch <= "\ud7a3" for ch in text) and "tonight" not in text, (name, text)


def test_attribute_hook_phrases_a_category_with_its_share():
    catalogue = {"product": Reason(
        "attribute", en=lambda v, c: "product " + v + " — only " + c + " of tonight's tickets",
        ko=lambda v, c: "제품 " + v + " — 오늘 티켓 중 " + c + "뿐입니다")}
    features = pd.DataFrame({"product": ["Billing API", "App", "App", "App"]})
    contributions = pd.DataFrame({"product": [0.5, 0.5, 0.5, 0.5]})
    reasons = top_reasons(contributions, features, 3, 0.05, catalogue=catalogue)
    assert reasons.tolist() == ["product Billing API — only 25% of tonight's tickets", "", "", ""]


def test_at_most_max_reasons_and_min_contribution():
    reasons = reasons_of(contributions_frame(), features_frame(), max_reasons=1)
    assert reasons.tolist() == [WAIT_0, HOPS_1, REPLY_2, ""]
    strict = reasons_of(contributions_frame(), features_frame(), min_contribution=0.45)
    assert strict.tolist() == [f"{WAIT_0}; {NO_REPLY_0}", HOPS_1, "", ""]


def test_rows_are_matched_by_position_not_index_labels():
    reasons = reasons_of(contributions_frame(index=[7, 3, 9, 1]), features_frame(index=[7, 3, 9, 1]))
    assert reasons.tolist()[0] == f"{WAIT_0}; {NO_REPLY_0}; {REOPENED_0}"
    assert reasons.tolist()[1] == f"{HOPS_1}; {TEXT_1}"


def test_custom_separator_and_empty_input():
    reasons = reasons_of(contributions_frame(), features_frame(), max_reasons=2, separator=" | ")
    assert reasons.iloc[0] == f"{WAIT_0} | {NO_REPLY_0}"
    assert len(reasons_of(contributions_frame().iloc[:0], features_frame().iloc[:0])) == 0
    assert reasons_of(contributions_frame(), features_frame(), max_reasons=0).tolist() == ["", "", "", ""]


def test_unknown_language_is_a_bug_not_a_silent_default():
    with pytest.raises(ValueError, match="'en' or 'ko'"):
        reason_phrases(features_frame(), "fr")


@pytest.mark.parametrize("minutes, text, korean", [
    (0, "0 min", "0분"), (45, "45 min", "45분"), (89, "89 min", "89분"), (120, "2 h", "2시간"),
    (1560, "26 h", "26시간"), (2879, "48 h", "48시간"), (2880, "2 days", "2일"), (4320, "3 days", "3일"),
    (np.nan, "0 min", "0분"), (-5, "0 min", "0분"),
])
def test_duration(minutes, text, korean):
    assert duration(pd.Series([minutes], dtype="float64")).tolist() == [text]
    assert duration_ko(pd.Series([minutes], dtype="float64")).tolist() == [korean]


def test_counting_words_and_percentages():
    assert times(pd.Series([0, 1, 2, 3])).tolist() == ["0 times", "once", "twice", "3 times"]
    assert plural(pd.Series([1, 3]), "agent reply", "agent replies").tolist() == ["1 agent reply", "3 agent replies"]
    assert percent(np.array([0.0, 0.004, 0.25, 0.999])).tolist() == ["0%", "<1%", "25%", "100%"]


def test_attributes_are_reasons_with_tonights_share():
    from models.reasons import reason_catalogue

    catalogue = reason_catalogue({"attr_product_area": "category", "attr_order_value_usd": "number"})
    features = pd.DataFrame({
        "attr_product_area": pd.Categorical(["mobile_app", "billing", "billing", "billing", None]),
        "attr_order_value_usd": ["250", "10", "20", None, "30"],
    })
    contributions = pd.DataFrame({"attr_product_area": [0.4, 0.4, 0.4, 0.4, 0.4],
                                  "attr_order_value_usd": [0.3, 0.0, 0.0, 0.0, 0.0]})
    reasons = top_reasons(contributions, features, max_reasons=2, min_contribution=0.05, catalogue=catalogue)
    # mobile_app: 1 of the 4 tickets with an area; billing is the majority (no reason); a missing value is never one.
    assert reasons[0] == "product area: mobile_app — 25% of tonight's tickets; order value usd 250 — higher than 80% of tonight's tickets"
    assert reasons[1] == reasons[4] == ""
