"""The fast scoring paths give what the straightforward computations give.

- contributions by numpy TreeSHAP (models.tree_shap, models.scoring.risk_contributions) = LightGBM's
  full pred_contrib, on real rows, rows on the splits, missing and unseen categories, per pattern or per row;
- contributions only for the tickets that show reasons: the same queue, every row and column;
- categorical feature columns put on the training levels once per category = once per row;
- reasons phrased only for the (ticket, reason) pairs shown = every phrase built, then the top ones picked;
- text hashed per distinct word = sklearn's HashingVectorizer, bit for bit.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

import models.scoring as scoring
import models.tree_predict as tree_predict
import models.tree_shap as tree_shap
from features.build import build_features
from features.calendar import BusinessHours
from models.reasons import TIER_ORDER, reason_catalogue, reason_phrases, tier_rank, top_reasons
from models.scoring import risk_contributions, score_tickets
from models.store import OTHER_LEVEL, TriageModel, prepare_matrix
from models.text_model import TextModel
from models.tree_shap import parse_trees, tree_contributions
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
    for tree in parse_trees(model.risk_booster.model_to_string())[:20]:
        for feature, cut, decision in zip(tree.split_feature, tree.threshold, tree.decision_type):
            if not decision & 1 and names[feature] in features.columns:
                settings += [(names[feature], value) for value in (
                    cut, np.nextafter(cut, -np.inf), np.nextafter(cut, np.inf), 0.0, 1e-36, -1e-36, np.nan)]
    assert len(settings) > 50
    rows = features.iloc[np.arange(len(settings)) % len(features)].reset_index(drop=True)
    rows = rows.astype({name: "float64" for name, _ in settings})
    for row, (name, value) in enumerate(settings):  # a test's few hundred rows
        rows.loc[row, name] = value
    return rows


def _odd_categories(model: TriageModel, features: pd.DataFrame) -> pd.DataFrame:
    """Rows whose categorical features are missing or a level the model never saw."""
    rows = features.iloc[:40].reset_index(drop=True).copy()
    categorical = list(model.meta["categorical_levels"])
    assert categorical
    for name in categorical:
        rows[name] = rows[name].astype(object)
        rows.loc[0:19, name] = None
        rows.loc[20:39, name] = "never-seen-level"
    return rows


@pytest.mark.parametrize("per", ["pattern", "row"])
def test_numpy_tree_shap_equals_lightgbm_full(model, features_now, monkeypatch, per):
    if per == "row":  # each row explained by itself instead of once per decision pattern
        monkeypatch.setattr(tree_shap, "_MAX_PATTERN_BITS", 0)
    rows = pd.concat([features_now, _at_the_splits(model, features_now), _odd_categories(model, features_now)],
                     ignore_index=True)
    fast = risk_contributions(model, rows)
    full = model.risk_contributions(rows)
    assert list(fast.columns) == list(full.columns) and fast.index.equals(full.index)
    assert np.abs(full.to_numpy()).max() > 0.1  # there is something to get wrong
    # Equal up to the order of the floating-point sums.
    np.testing.assert_allclose(fast.to_numpy(), full.to_numpy(), rtol=0, atol=1e-12)


def _every_kind_of_value(seed: int, n: int = 4000) -> np.ndarray:
    """Four columns: normal with NaNs, normal with zeros, normal, and a categorical code with NaNs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    x[rng.random(n) < 0.2, 0] = np.nan
    x[rng.random(n) < 0.3, 1] = 0.0
    x[:, 3] = rng.integers(0, 40, n)
    x[rng.random(n) < 0.1, 3] = np.nan
    return x


@pytest.mark.parametrize("per", ["pattern", "row"])
@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_numpy_tree_shap_equals_lightgbm_on_every_kind_of_split(monkeypatch, zero_as_missing, per):
    """Missing as NaN or as zero, either default side, categorical sets (missing, negative and
    unseen codes go right): a small model trained to have each."""
    if per == "row":
        monkeypatch.setattr(tree_shap, "_MAX_PATTERN_BITS", 0)
    x = _every_kind_of_value(seed=4)
    y = ((np.nan_to_num(x[:, 0], nan=1.0) + x[:, 1] + (x[:, 1] == 0) > 0.5) ^ (x[:, 3] % 3 == 0)).astype(int)
    booster = lgb.train({"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 5, "verbose": -1,
                         "zero_as_missing": zero_as_missing, "max_cat_to_onehot": 4, "deterministic": True,
                         "num_threads": 1, "seed": 1}, lgb.Dataset(x, y, categorical_feature=[3]), num_boost_round=25)
    trees = parse_trees(booster.model_to_string())
    decisions = np.concatenate([tree.decision_type for tree in trees])
    assert (decisions & 1).any() and ((decisions >> 2) & 3 == (1 if zero_as_missing else 2)).any()
    odd = np.array([[0.0, 0.0, 0.0, -1.0], [1e-36, -1e-36, np.nan, 41.0], [np.nan, np.nan, 5.0, 2.5], [-0.0, 1e-30, 0, 0]])
    rows = np.vstack([x[:500], odd])
    full = booster.predict(rows, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(tree_contributions(trees, rows).T, full, rtol=0, atol=1e-12)


def test_model_the_numpy_tree_shap_cannot_read_takes_lightgbm_path(model, features_now, monkeypatch):
    monkeypatch.setattr(tree_shap, "MAX_PATH_FEATURES", 1)
    assert parse_trees(model.risk_booster.model_to_string()) is None
    subset = features_now.iloc[:50]
    pd.testing.assert_frame_equal(risk_contributions(model, subset), model.risk_contributions(subset))


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
    monkeypatch.setattr(scoring, "risk_contributions", lambda m, features, *args: m.risk_contributions(features))
    reference = score_tickets(model, export.tickets, export.events, as_of, demo.params, all_tickets=True)
    assert (reference["tier"] == "P4").any() and (reference["reasons"] != "").sum() > 100
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)


def _reference_top_reasons(contributions, features, max_reasons, min_contribution, tier, lowest_tier, language,
                           catalogue) -> pd.Series:
    """Every phrase of every row built, then the largest candidates of each row joined (the old way)."""
    names = [c for c in contributions.columns if c in catalogue and c in features.columns]
    texts = reason_phrases(features, language, catalogue)[names].to_numpy(dtype=object)
    values = contributions[names].to_numpy(dtype="float64")
    candidate = (values > min_contribution) & (texts != "")
    candidate &= (tier_rank(tier) <= TIER_ORDER.index(lowest_tier))[:, None]
    out = []
    for row in range(len(values)):  # a test's plain loop
        order = sorted(np.flatnonzero(candidate[row]), key=lambda j: -values[row, j])[:max_reasons]
        out.append("; ".join(texts[row, j] for j in order))
    return pd.Series(out, dtype=object)


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize(("max_reasons", "min_contribution", "lowest_tier"), [(3, 0.05, "P3"), (5, 0.0, "P4")])
def test_reasons_phrased_for_shown_pairs_only_equal_every_phrase_built(
        model, features_now, language, max_reasons, min_contribution, lowest_tier):
    contributions = model.risk_contributions(features_now)
    tier = np.array(TIER_ORDER, dtype=object)[np.arange(len(features_now)) % 4]
    catalogue = reason_catalogue(model.meta.get("attributes", {}))
    fast = top_reasons(contributions, features_now, max_reasons, min_contribution, tier=tier,
                       lowest_tier=lowest_tier, language=language, catalogue=catalogue)
    reference = _reference_top_reasons(contributions, features_now, max_reasons, min_contribution, tier,
                                       lowest_tier, language, catalogue)
    assert (reference != "").sum() > 100 and reference.str.count("; ").max() == min(max_reasons, 5) - 1
    pd.testing.assert_series_equal(fast, reference, check_exact=True)


def test_categorical_columns_mapped_per_category_equal_mapped_per_row():
    levels = {"a": ["x", "y"], "b": ["p", "q", OTHER_LEVEL], "c": ["k"]}
    rows = pd.DataFrame({"a": ["x", "z", None, "y", "x"], "b": ["p", "rare", None, "q", "rare2"],
                         "c": [None] * 5, "n": [1, 2, 3, 4, 5]})
    names = ["a", "b", "c", "n"]
    per_row = prepare_matrix(rows, names, levels)
    per_category = prepare_matrix(rows.astype({"a": "category", "b": "category", "c": "category"}), names, levels)
    pd.testing.assert_frame_equal(per_category, per_row)
    assert per_row["b"].tolist() == ["p", OTHER_LEVEL, np.nan, "q", OTHER_LEVEL]
    assert per_row["a"].isna().tolist() == [False, True, True, False, False]


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


# Scoring's parallel and array paths (issue 13: score 100k tickets in 5 s).


def _rows_to_get_wrong(model: TriageModel, features: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([features, _at_the_splits(model, features), _odd_categories(model, features)], ignore_index=True)


def test_prediction_arrays_give_the_predictions_of_the_frames_bit_for_bit(model, features_now):
    rows = _rows_to_get_wrong(model, features_now)
    for matrix, booster, raw in ((model.risk_matrix(rows), model.risk_booster, True),
                                 (model.urgency_matrix(rows), model.urgency_booster, False)):
        values = scoring.lightgbm_values(matrix, booster)
        assert values is not None and values.dtype == np.float64 and np.isnan(values).any()
        fast = booster.predict(values, raw_score=raw, num_threads=1)
        assert np.array_equal(fast, booster.predict(matrix, raw_score=raw))
        assert np.unique(np.round(fast, 6)).size > 50  # rows that differ


def test_frames_with_other_category_levels_than_the_booster_are_not_taken_as_arrays(model, features_now):
    matrix = model.risk_matrix(features_now.iloc[:20])
    name = next(c for c in matrix.columns if isinstance(matrix[c].dtype, pd.CategoricalDtype))
    matrix[name] = matrix[name].cat.add_categories(["not-a-training-level"])
    assert scoring.lightgbm_values(matrix, model.risk_booster) is None
    assert scoring.booster_trees(model.risk_booster, matrix) is None


@pytest.mark.parametrize("per", ["pattern", "row"])
def test_contributions_on_two_threads_equal_one_thread_bit_for_bit(model, features_now, monkeypatch, per):
    if per == "row":
        monkeypatch.setattr(tree_shap, "_MAX_PATTERN_BITS", 0)
    rows = _rows_to_get_wrong(model, features_now)
    values = scoring.lightgbm_values(model.risk_matrix(rows), model.risk_booster)
    trees = parse_trees(model.risk_booster.model_to_string())
    # The straightforward sum: tree after tree, each adding to its features.
    one_by_one = np.zeros((values.shape[1], len(values)))
    columns = {f: tree_shap.Column(np.ascontiguousarray(values[:, f])) for f in range(values.shape[1])}
    for tree in trees:  # a test's plain loop
        explained, row_pattern = tree_shap._explain_rows(tree, columns, len(values))
        for f, phi in explained.items():
            one_by_one[f] += phi if row_pattern is None else phi[row_pattern]
    assert np.abs(one_by_one).max() > 0.1
    for threads in (1, 2, 3):
        assert np.array_equal(tree_contributions(trees, values, threads=threads), one_by_one)


@pytest.mark.parametrize("all_tickets", [True, False])
def test_queue_with_the_fast_paths_equals_the_straightforward_computation(demo, model, export, monkeypatch,
                                                                         all_tickets):
    as_of = export.events["at"].max()
    monkeypatch.setattr(scoring, "_NUMPY_PREDICT_ROWS", 0)  # numpy predicts even the demo's few tickets
    monkeypatch.setattr(scoring, "_threads", lambda: 2)  # as on an idle machine
    fast = score_tickets(model, export.tickets, export.events, as_of, demo.params, all_tickets=all_tickets)
    # LightGBM predicts from the frames, the contributions are summed on one thread, the reasons
    # measured where they are picked.
    monkeypatch.setattr(scoring, "lightgbm_values", lambda matrix, booster: None)
    monkeypatch.setattr(scoring, "_threads", lambda: 1)
    monkeypatch.setattr(scoring, "reason_measures", lambda *args: None)
    reference = score_tickets(model, export.tickets, export.events, as_of, demo.params, all_tickets=all_tickets)
    assert len(reference) > 20 and (reference["reasons"] != "").sum() > 10
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)


def test_numpy_predictions_equal_lightgbm_bit_for_bit(model, features_now):
    rows = _rows_to_get_wrong(model, features_now)
    for matrix, booster, raw in ((model.risk_matrix(rows), model.risk_booster, True),
                                 (model.urgency_matrix(rows), model.urgency_booster, False)):
        values = scoring.lightgbm_values(matrix, booster)
        forest = tree_predict.read_forest(booster)
        assert forest is not None and forest.multiclass == (not raw)
        reference = booster.predict(values, raw_score=raw)
        for threads in (1, 2, 3):
            assert np.array_equal(tree_predict.predict_in_parts(forest, values, threads), reference)


@pytest.mark.parametrize("zero_as_missing", [False, True])
@pytest.mark.parametrize("objective", ["binary", "multiclass"])
def test_numpy_predictions_equal_lightgbm_on_every_kind_of_split(zero_as_missing, objective):
    x = _every_kind_of_value(seed=6)
    y = (np.nan_to_num(x[:, 0], nan=1.0) + x[:, 1] + (x[:, 1] == 0) > 0.5).astype(int) + (x[:, 3] % 3 == 0)
    params = {"objective": objective, "num_leaves": 15, "min_data_in_leaf": 5, "verbose": -1,
              "zero_as_missing": zero_as_missing, "max_cat_to_onehot": 4, "deterministic": True, "num_threads": 1,
              "seed": 1, **({"num_class": 3} if objective == "multiclass" else {})}
    booster = lgb.train(params, lgb.Dataset(x, y if objective == "multiclass" else (y > 0).astype(int),
                                            categorical_feature=[3]), num_boost_round=25)
    decisions = np.concatenate([tree.decision_type for tree in tree_predict.read_forest(booster).trees])
    assert (decisions & 1).any() and ((decisions >> 2) & 3 == (1 if zero_as_missing else 2)).any()
    odd = np.array([[0.0, 0.0, 0.0, -1.0], [1e-36, -1e-36, np.nan, 41.0], [np.nan, np.nan, 5.0, 2.5],
                    [-0.0, 1e-30, 0, 0], [np.inf, -np.inf, 1e300, 3.0]])
    rows = np.vstack([x[:500], odd])
    forest = tree_predict.read_forest(booster)
    assert np.array_equal(tree_predict.predict(forest, rows), booster.predict(rows, raw_score=objective == "binary"))


def test_numpy_predictions_of_single_leaf_trees_and_models_read_otherwise():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(300, 3)), rng.integers(0, 2, 300)
    stumps = lgb.train({"objective": "binary", "min_data_in_leaf": 1000, "verbose": -1}, lgb.Dataset(x, y),
                       num_boost_round=5)
    forest = tree_predict.read_forest(stumps)
    assert forest.trees and all(len(tree.split_feature) == 0 for tree in forest.trees)
    assert np.array_equal(tree_predict.predict(forest, x), stumps.predict(x, raw_score=True))
    linear = lgb.train({"objective": "binary", "linear_tree": True, "verbose": -1}, lgb.Dataset(x, y),
                       num_boost_round=3)
    deep = lgb.train({"objective": "binary", "num_leaves": 31, "min_data_in_leaf": 2, "verbose": -1},
                     lgb.Dataset(x, y), num_boost_round=3)
    assert tree_predict.read_forest(linear) is None and tree_predict.read_forest(deep) is None


def test_queue_rank_on_naive_utc_times_equals_rank_on_the_zoned_times():
    from models.policy import rank_queue

    created = pd.Series(pd.to_datetime(["2026-03-29 00:30", "2026-03-29 01:30", "2026-03-29 00:30", "2026-03-28 23:00"])
                        ).dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")  # across a clock change
    ids = pd.Series(["b", "a", "a", "c"])
    score = np.array([1.0, 1.0, 1.0, 1.0])
    assert (rank_queue(score, created.dt.tz_convert(None), ids) == rank_queue(score, created, ids)).all()
    assert rank_queue(score, created.dt.tz_convert(None), ids).tolist() == [3, 4, 2, 1]


SIGMA_TEXTS = ["ΟΔΟΣ", "Σ", "ΑΣ ΣΑ", "xΣ", "Σx", "ΑΣ\u0301", "\u0301Σ", "ΑΣ\u00ad", "ΑΣ'Α"]


@pytest.mark.parametrize("case", ["marks free", "every mark used"])
def test_words_of_all_texts_split_at_once_equal_each_text_split_alone(case):
    import models.text_model as text_model

    texts = TRICKY_TEXTS + SIGMA_TEXTS + [""]
    if case == "every mark used":
        texts = texts + ["".join(text_model._TEXT_ENDS)]
    owner, code, distinct = text_model._words(np.array(texts, dtype=object))
    expected = [(i, word) for i, text in enumerate(texts) for word in text.lower().split()]  # a test's plain loop
    assert [(int(i), distinct[c]) for i, c in zip(owner, code)] == expected
    assert len(set(distinct)) == len(distinct)


def test_distinct_texts_of_arrow_columns_equal_factorize_of_the_python_strings():
    from models.text_model import distinct_texts

    first = pd.Series(TRICKY_TEXTS + [None] + SIGMA_TEXTS, dtype="str")
    second = pd.Series(["only here", None, TRICKY_TEXTS[4], ""], dtype="str")
    assert isinstance(first.array, pd.arrays.ArrowStringArray)  # the Arrow path is the one tested
    codes, uniques = distinct_texts(first, second)
    plain = pd.Series(np.concatenate([first.to_numpy(dtype=object), second.to_numpy(dtype=object)]), dtype=object)
    plain_codes, plain_uniques = pd.factorize(plain.fillna("").astype(str))
    assert uniques[codes].tolist() == np.asarray(plain_uniques, dtype=object)[plain_codes].tolist()
    assert len(uniques) == len(plain_uniques) and all(isinstance(u, str) for u in uniques)


def test_text_scores_of_arrow_columns_equal_scores_of_python_strings():
    rng = np.random.default_rng(5)
    model = TextModel(2**10, (3, 4), "char_wb", rng.normal(size=2**10).astype(np.float32), 0.25,
                      rng.normal(size=2**10).astype(np.float32), -0.5)
    frame = pd.DataFrame({"opening_text": pd.Series(TRICKY_TEXTS + SIGMA_TEXTS + [None], dtype="str")})
    plain = pd.DataFrame({"opening_text": frame["opening_text"].to_numpy(dtype=object)}, dtype=object)
    pd.testing.assert_frame_equal(model.add_scores(frame).drop(columns="opening_text"),
                                  model.add_scores(plain).drop(columns="opening_text"), check_exact=True)


def test_reason_values_of_a_categorical_made_per_level_equal_made_per_row():
    from models.reasons import _numbers, _texts

    levels = ["12", " 7.5", "1e3", "abc", "-0", "0x10", "12345678901234567891", "inf", "", "3", "4.50"]
    column = pd.Series(pd.Categorical((levels + [None]) * 3 + ["3"], categories=levels + ["never used"]))
    pd.testing.assert_series_equal(_numbers(column), pd.to_numeric(column, errors="coerce").astype("float64"),
                                   check_exact=True)
    pd.testing.assert_series_equal(_texts(column), column.astype(object).astype(str), check_exact=True)
    assert _numbers(column).notna().sum() > 10 and _texts(column).isna().sum() == 3
    empty = pd.Series(pd.Categorical([None, None]))
    pd.testing.assert_series_equal(_numbers(empty), pd.to_numeric(empty, errors="coerce").astype("float64"))
    pd.testing.assert_series_equal(_texts(empty), empty.astype(object).astype(str))


def test_one_thread_where_the_platform_has_no_load_average(monkeypatch):
    from models import scoring

    def no_load_average():
        raise OSError("no load average")

    monkeypatch.setattr(scoring.os, "getloadavg", no_load_average)
    assert scoring._threads() == 1
    monkeypatch.setattr(scoring.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(scoring.os, "cpu_count", lambda: 2)
    assert scoring._threads() == 2  # an idle machine with a core to spare


@pytest.mark.parametrize("moment", ["latest", "midway"])
def test_status_alone_equals_the_status_now_feature(demo, export, moment):
    """The nightly run picks the open tickets from :func:`status_at` before it computes their other
    features: it must give the feature's values, missing before a ticket's first status event too."""
    from features.build import features_from_timeline, status_at
    from features.conversation import build_timeline

    tickets, events = export.tickets, export.events
    at = events["at"].max() if moment == "latest" else events["at"].min() + (events["at"].max() - events["at"].min()) / 2
    queries = pd.DataFrame({"ticket_id": tickets.loc[tickets["created_at"] <= at, "ticket_id"], "as_of": at})
    timeline = build_timeline(tickets, events, BusinessHours.from_params(demo.params.business_hours))
    alone = pd.Series(status_at(tickets, timeline, queries), name="status_now")
    feature = features_from_timeline(tickets, timeline, queries)["status_now"]
    pd.testing.assert_series_equal(alone, feature)
    assert alone.nunique() >= 3  # open and done tickets alike, so agreeing is not trivial
