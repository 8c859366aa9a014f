"""Plain-language reasons: which contributions are picked, and phrases built from the row's own values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_NAMES
from models.reasons import PHRASES, duration, phrase, plural, times, top_reasons

COLUMNS = ["current_wait_minutes", "group_hops", "reopens", "channel", "first_reply_minutes"]
from pipeline.core.params import ReasonsParams


def reasons_of(contributions, features, **settings):
    """:func:`top_reasons` with the params model's defaults for what a test does not set."""
    defaults = ReasonsParams()
    return top_reasons(contributions, features, **{
        "max_reasons": defaults.max_reasons, "min_contribution": defaults.min_contribution, **settings})


def features_frame(index=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "current_wait_minutes": [1560.0, 45.0, 0.0, 3000.0],
            "group_hops": [2, 1, 0, 0],
            "reopens": [2, 0, 1, 1],
            "channel": pd.Categorical(["email", "chat", "web", "phone"]),
            "first_reply_minutes": [np.nan, 30.0, 12.0, 75.0],
        },
        index=index,
    )


def contributions_frame(index=None) -> pd.DataFrame:
    return pd.DataFrame(
        [
            [0.9, 0.5, 0.3, 0.2, -1.0],    # three above 0.05, a fourth smaller one dropped
            [0.04, 0.06, -0.2, 0.0, 0.01],  # only group_hops is above 0.05
            [0.05, 0.01, -0.3, 0.0, 0.0],   # 0.05 itself is not above the minimum
            [0.1, -0.1, 0.7, 0.3, 0.2],     # order follows contribution size, not column order
        ],
        columns=COLUMNS,
        index=index,
    )


def test_top_reasons_pick_the_largest_positive_pushes_with_the_rows_values():
    reasons = reasons_of(contributions_frame(), features_frame(), max_reasons=3, min_contribution=0.05)
    assert reasons.tolist() == [
        "customer waiting 26 h for a reply; passed between 3 groups; reopened twice",
        "passed between 2 groups",
        "",
        "reopened once; came in by phone; first reply took 75 min",
    ]


def test_at_most_max_reasons():
    reasons = reasons_of(contributions_frame(), features_frame(), max_reasons=1)
    assert reasons.tolist() == ["customer waiting 26 h for a reply", "passed between 2 groups", "", "reopened once"]
    assert all(r.count(";") <= 1 for r in reasons_of(contributions_frame(), features_frame(), max_reasons=2))


def test_min_contribution_filters_small_pushes():
    reasons = reasons_of(contributions_frame(), features_frame(), max_reasons=3, min_contribution=0.4)
    assert reasons.tolist() == [
        "customer waiting 26 h for a reply; passed between 3 groups", "", "", "reopened once",
    ]


def test_rows_are_matched_by_position_not_index_labels():
    # Scoring passes frames with the same row order; their index labels need not be 0..n-1.
    reasons = reasons_of(contributions_frame(index=[7, 3, 9, 1]), features_frame(index=[7, 3, 9, 1]))
    assert reasons.tolist()[0] == "customer waiting 26 h for a reply; passed between 3 groups; reopened twice"
    assert reasons.tolist()[3] == "reopened once; came in by phone; first reply took 75 min"


def test_custom_separator_and_empty_input():
    reasons = reasons_of(contributions_frame(), features_frame(), max_reasons=2, separator=" | ")
    assert reasons.iloc[0] == "customer waiting 26 h for a reply | passed between 3 groups"
    empty = reasons_of(contributions_frame().iloc[:0], features_frame().iloc[:0])
    assert len(empty) == 0


@pytest.mark.parametrize("minutes, text", [
    (0, "0 min"), (45, "45 min"), (89, "89 min"), (120, "2 h"), (1560, "26 h"), (2879, "48 h"),
    (2880, "2 days"), (4320, "3 days"), (np.nan, "0 min"), (-5, "0 min"),
])
def test_duration(minutes, text):
    assert duration(pd.Series([minutes], dtype="float64")).tolist() == [text]


def test_counting_words():
    assert times(pd.Series([0, 1, 2, 3])).tolist() == ["0 times", "once", "twice", "3 times"]
    assert plural(pd.Series([1, 3]), "agent reply", "agent replies").tolist() == ["1 agent reply", "3 agent replies"]


def test_phrases_use_each_rows_value():
    assert phrase("group_hops", pd.Series([0, 2], index=[5, 6])).tolist() == [
        "passed between 1 groups", "passed between 3 groups"]
    assert phrase("reopens", pd.Series([2])).tolist() == ["reopened twice"]
    assert phrase("first_reply_minutes", pd.Series([np.nan, 30.0])).tolist() == [
        "no agent reply yet", "first reply took 30 min"]
    assert phrase("requester_previous_bad_ratings", pd.Series([1])).tolist() == ["customer rated 1 earlier ticket bad"]
    assert phrase("created_weekday", pd.Series([0, 6])).tolist() == ["created on Monday", "created on Sunday"]
    assert phrase("some_new_feature", pd.Series([4])).tolist() == ["some new feature = 4"]


def test_every_model_feature_has_a_phrase():
    # Without one, agents would read "some feature = 3".
    assert set(FEATURE_NAMES) <= set(PHRASES)
