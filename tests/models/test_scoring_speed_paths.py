"""The fast scoring paths give what the straightforward computations give.

- contributions grouped per tree (models.scoring.risk_contributions) = LightGBM's full pred_contrib;
- contributions only for the tickets that show reasons: the same queue, every row and column;
- text hashed per distinct word = sklearn's HashingVectorizer, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

import models.scoring as scoring
from features.build import build_features
from features.calendar import BusinessHours
from models.scoring import _tree_splits, risk_contributions, score_tickets
from models.store import TriageModel
from models.text_model import TextModel
from pipeline.sources.ingest import load_export


@pytest.fixture(scope="module")
def model(demo) -> TriageModel:
    return TriageModel.load(demo.model_dir)


@pytest.fixture(scope="module")
def export(demo):
    return load_export(demo.export_dir)


@pytest.fixture(scope="module")
def features_now(demo, model, export) -> pd.DataFrame:
    hours = BusinessHours.from_params(demo.params.business_hours)
    features = build_features(export.tickets, export.events, None, hours, model.static_attributes,
                              model.prior_ratings)
    return model.with_text_scores(features)


def _at_the_splits(model: TriageModel, features: pd.DataFrame) -> pd.DataFrame:
    """Rows whose numeric values sit exactly on, just below and just above the trees' thresholds,
    at LightGBM's zero band, and missing: where a wrong grouping would show."""
    names = model.meta["risk_features"]
    settings = []  # (feature, value)
    for split_feature, threshold, is_categorical in _tree_splits(model.risk_booster)[:20]:
        for feature, cut, categorical in zip(split_feature, threshold, is_categorical):
            if not categorical and names[feature] in features.columns:
                settings += [(names[feature], value) for value in (
                    cut, np.nextafter(cut, -np.inf), np.nextafter(cut, np.inf), 0.0, 1e-36, -1e-36, np.nan)]
    assert len(settings) > 50
    rows = features.iloc[np.arange(len(settings)) % len(features)].reset_index(drop=True)
    rows = rows.astype({name: "float64" for name, _ in settings})
    for row, (name, value) in enumerate(settings):  # a test's few hundred rows
        rows.loc[row, name] = value
    return rows


def test_grouped_contributions_equal_lightgbm_full(model, features_now):
    rows = pd.concat([features_now, _at_the_splits(model, features_now)], ignore_index=True)
    fast = risk_contributions(model, rows)
    full = model.risk_contributions(rows)
    assert list(fast.columns) == list(full.columns) and fast.index.equals(full.index)
    assert np.abs(full.to_numpy()).max() > 0.1  # there is something to get wrong
    # Equal up to the order of the floating-point sums.
    np.testing.assert_allclose(fast.to_numpy(), full.to_numpy(), rtol=0, atol=1e-12)


def test_grouped_contributions_of_a_row_subset_keep_its_index(model, features_now):
    subset = features_now.iloc[::7]
    fast = risk_contributions(model, subset)
    assert fast.index.equals(subset.index)
    np.testing.assert_allclose(fast.to_numpy(), model.risk_contributions(subset).to_numpy(), rtol=0, atol=1e-12)


def test_queue_with_contributions_for_shown_tickets_only_equals_full_computation(demo, model, export, monkeypatch):
    as_of = export.events["at"].max()
    fast = score_tickets(model, export.tickets, export.events, as_of, demo.params, all_tickets=True)
    # The straightforward computation: LightGBM's contributions for every scored ticket.
    monkeypatch.setattr(scoring, "tier_rank", lambda tier: np.zeros(len(tier)))
    monkeypatch.setattr(scoring, "risk_contributions", lambda m, features: m.risk_contributions(features))
    reference = score_tickets(model, export.tickets, export.events, as_of, demo.params, all_tickets=True)
    assert (reference["tier"] == "P4").any() and (reference["reasons"] != "").sum() > 100
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)


TRICKY_TEXTS = [
    "", "   ", "a", "ab", "ab  cd\t\tE\u00a0F\u3000g\x1ch", "ΟΔΟΣ ΣΑΣ", "İstanbul İ",
    "환불 요청합니다!! 빨리 처리해 주세요", "x\x00y  z", "UPPER lower MiXeD", "\n\nhello\r\nworld\n",
    "Refund please - order #123 never arrived", "refund please - order #123 never arrived",
]


@pytest.mark.parametrize("ngram_range", [(3, 4), (2, 5), (1, 1)])
def test_text_vectors_equal_hashing_vectorizer_bit_for_bit(ngram_range):
    texts = np.array(TRICKY_TEXTS * 3 + [None, np.nan], dtype=object)
    model = TextModel(2**12, ngram_range, "char_wb", np.zeros(0), 0.0, np.zeros(0), 0.0)
    reference = HashingVectorizer(
        analyzer="char_wb", ngram_range=ngram_range, n_features=2**12, alternate_sign=False, norm="l2",
        lowercase=True, dtype=np.float32,
    ).transform(pd.Series(texts, dtype=object).fillna("").astype(str))
    fast = model.vectorize(texts)
    reference.sort_indices()
    fast.sort_indices()
    assert fast.dtype == reference.dtype and fast.shape == reference.shape
    assert np.array_equal(fast.indptr, reference.indptr) and np.array_equal(fast.indices, reference.indices)
    assert np.array_equal(fast.data, reference.data)


def test_text_scores_of_several_frames_at_once_equal_one_by_one():
    rng = np.random.default_rng(3)
    model = TextModel(2**10, (3, 4), "char_wb", rng.normal(size=2**10).astype(np.float32), 0.25,
                      rng.normal(size=2**10).astype(np.float32), -0.5)
    first = pd.DataFrame({"opening_text": TRICKY_TEXTS})
    second = pd.DataFrame({"opening_text": TRICKY_TEXTS[::-1] + ["only here"]})
    together = model.add_scores_to([first, second])
    for frame, scored in zip((first, second), together):
        pd.testing.assert_frame_equal(scored, model.add_scores(frame), check_exact=True)
    assert together[1]["text_risk_score"].nunique() > 5


def test_word_analyzer_keeps_the_plain_path():
    texts = np.array(TRICKY_TEXTS, dtype=object)
    model = TextModel(2**10, (1, 2), "word", np.zeros(0), 0.0, np.zeros(0), 0.0)
    reference = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=2**10, alternate_sign=False,
                                  norm="l2", lowercase=True, dtype=np.float32).transform(texts)
    assert (model.vectorize(texts) != reference).nnz == 0
