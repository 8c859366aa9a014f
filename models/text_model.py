"""Learned text scores from the opening text (subject + the customer's first message).

Character n-grams (3-4 by default, within word boundaries) are hashed into a fixed number of
columns, so the model needs no vocabulary and works the same for English and Korean.
Two linear models read them:

- ``text_risk_score``: a linear-probability score of a bad outcome (ridge regression on 0/1);
- ``text_urgency_score``: expected urgency level, 0 = low .. 3 = urgent (ridge regression).

Ridge with the LSQR solver is fast and deterministic; the trees downstream only need
a good ordering from these scores, not calibrated values.

On the training period the scores are out-of-fold (each ticket scored by a model
that did not see it), so the trees downstream learn how much to trust them; other
periods and scoring use the model fitted on the whole training period. Coefficients
are stored as ``.npy`` arrays and loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import Ridge
from sklearn.preprocessing import normalize

from features.build import OPENING_TEXT
from pipeline.core.io import atomic_path, write_json
from pipeline.core.params import TextModelParams

TEXT_SCORE_COLUMNS = ("text_risk_score", "text_urgency_score")
_META, _RISK_COEF, _URGENCY_COEF = "text_model.json", "text_risk_coef.npy", "text_urgency_coef.npy"
# Every file a text model writes into a model directory (the store checksums them).
TEXT_MODEL_FILES = (_META, _RISK_COEF, _URGENCY_COEF)


def has_text(texts) -> bool:
    """Whether any opening text has a non-blank character (no subjects and no bodies give only blanks)."""
    return bool(pd.Series(texts, dtype=object).fillna("").astype(str).str.strip().ne("").any())


@dataclass
class TextModel:
    n_features: int
    ngram_range: tuple[int, int]
    analyzer: str  # "char_wb" (character n-grams inside words) or "word"
    risk_coef: np.ndarray
    risk_intercept: float
    urgency_coef: np.ndarray
    urgency_intercept: float

    def vectorize(self, texts) -> sparse.csr_matrix:
        """(n_texts, n_features) L2-normalised hashed character n-gram counts.

        Each distinct text is vectorised once (a ticket's snapshots share their opening text).
        """
        codes, uniques = distinct_texts(texts)
        return self._vectorize_distinct(uniques)[codes]

    def _hasher(self, analyzer: str, norm: str | None, lowercase: bool) -> HashingVectorizer:
        return HashingVectorizer(
            analyzer=analyzer, ngram_range=self.ngram_range, n_features=self.n_features,
            alternate_sign=False, norm=norm, lowercase=lowercase, dtype=np.float32,
        )

    def _vectorize_distinct(self, texts: np.ndarray) -> sparse.csr_matrix:
        """:meth:`vectorize` of texts known to be distinct, bit for bit what HashingVectorizer gives.

        Character n-grams inside words never cross a word boundary, so a text's counts are the
        sum of its words' counts: each distinct word is hashed once (a desk's texts share most
        of their words), then the counts are normalised exactly as HashingVectorizer does.
        """
        if len(texts) == 0:  # HashingVectorizer raises StopIteration on no documents
            return sparse.csr_matrix((0, self.n_features), dtype=np.float32)
        if self.analyzer != "char_wb":
            return self._hasher(self.analyzer, "l2", True).transform(texts)
        # HashingVectorizer's char_wb: lower-case, then split on whitespace (str.split, whose
        # whitespace is the regex \s it also uses), each word padded with one space.
        owner, word_code, distinct_words = _words(texts)
        if len(distinct_words) == 0:
            return sparse.csr_matrix((len(texts), self.n_features), dtype=np.float32)
        per_word = self._hasher("char_wb", None, False).transform(distinct_words)
        text_words = sparse.csr_matrix(
            (np.ones(len(word_code), dtype=np.float32), (owner, word_code)),
            shape=(len(texts), len(distinct_words)),
        )
        counts = (text_words @ per_word).tocsr()  # whole counts in float32: exact, as HashingVectorizer's
        counts.sum_duplicates()  # sorted indices: the order HashingVectorizer's rows have, so normalising matches
        return normalize(counts, norm="l2", copy=False)

    def scores(self, texts) -> pd.DataFrame:
        """Both text scores per text; shape (n_texts, 2), columns :data:`TEXT_SCORE_COLUMNS`."""
        return self._scores(*distinct_texts(texts))

    def _scores(self, codes: np.ndarray, uniques: np.ndarray) -> pd.DataFrame:
        # Scored once per distinct text and taken back: a row's score is the same sum either way.
        x = self._vectorize_distinct(uniques)
        return pd.DataFrame({
            "text_risk_score": np.asarray(x @ self.risk_coef + self.risk_intercept)[codes],
            "text_urgency_score": np.asarray(x @ self.urgency_coef + self.urgency_intercept)[codes],
        })

    def add_scores(self, features: pd.DataFrame) -> pd.DataFrame:
        """``features`` with the text scores computed from its ``opening_text`` (if not already there)."""
        if all(c in features.columns for c in TEXT_SCORE_COLUMNS):
            return features
        scores = self.scores(features[OPENING_TEXT])
        return features.assign(**{c: scores[c].to_numpy() for c in TEXT_SCORE_COLUMNS})

    def add_scores_to(self, frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
        """:meth:`add_scores` of several frames at once: a text they share is hashed once."""
        todo = [i for i, f in enumerate(frames) if not all(c in f.columns for c in TEXT_SCORE_COLUMNS)]
        if not todo:
            return list(frames)
        scores = self._scores(*distinct_texts(*(frames[i][OPENING_TEXT] for i in todo)))
        out, start = list(frames), 0
        for i in todo:
            part = scores.iloc[start:start + len(frames[i])]
            out[i] = frames[i].assign(**{c: part[c].to_numpy() for c in TEXT_SCORE_COLUMNS})
            start += len(frames[i])
        return out

    def save(self, model_dir: Path) -> None:
        write_json({"n_features": self.n_features, "ngram_range": list(self.ngram_range), "analyzer": self.analyzer,
                    "risk_intercept": self.risk_intercept, "urgency_intercept": self.urgency_intercept},
                   model_dir / _META)
        for name, array in ((_RISK_COEF, self.risk_coef), (_URGENCY_COEF, self.urgency_coef)):
            with atomic_path(model_dir / name) as tmp:
                with open(tmp, "wb") as handle:
                    np.save(handle, np.asarray(array, dtype=np.float32), allow_pickle=False)

    @classmethod
    def load(cls, model_dir: Path, read: Callable[[str], bytes] | None = None) -> TextModel:
        """The text model of ``model_dir``; ``read(file_name) -> bytes`` reads each file (the store
        passes one that verifies checksums first). Arrays load with ``allow_pickle=False``."""
        read = read or (lambda name: (Path(model_dir) / name).read_bytes())
        meta = json.loads(read(_META))
        return cls(
            n_features=int(meta["n_features"]), ngram_range=tuple(meta["ngram_range"]),
            analyzer=str(meta.get("analyzer", "char_wb")),
            risk_coef=np.load(io.BytesIO(read(_RISK_COEF)), allow_pickle=False),
            risk_intercept=float(meta["risk_intercept"]),
            urgency_coef=np.load(io.BytesIO(read(_URGENCY_COEF)), allow_pickle=False),
            urgency_intercept=float(meta["urgency_intercept"]),
        )


def distinct_texts(*parts) -> tuple[np.ndarray, np.ndarray]:
    """(per text the number of its distinct text, the distinct texts as an object array) of the
    texts of ``parts`` (arrays or Series) one after the other; a missing text is "".

    Arrow text (the feature tables' ``opening_text``) is compared in Arrow: no Python string
    per row, only per distinct text.
    """
    arrow = [pa.array(p.array) for p in parts
             if isinstance(p, pd.Series) and isinstance(p.array, pd.arrays.ArrowStringArray)]
    if len(arrow) == len(parts):
        chunks = [chunk.cast(pa.large_string()) for part in arrow
                  for chunk in (part.chunks if isinstance(part, pa.ChunkedArray) else [part])]
        if not chunks:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=object)
        encoded = pc.dictionary_encode(pc.fill_null(pa.chunked_array(chunks, type=pa.large_string()), "")
                                       .combine_chunks())
        return (encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp),
                np.asarray(encoded.dictionary.to_pylist(), dtype=object))
    values = np.concatenate([np.asarray(p, dtype=object) for p in parts]) if parts else np.zeros(0, dtype=object)
    codes, uniques = pd.factorize(pd.Series(values, dtype=object).fillna("").astype(str))
    return codes, np.asarray(uniques, dtype=object)


# Private-use characters (no case, no whitespace): one that no text contains marks where a text ends.
_TEXT_ENDS = tuple(chr(c) for c in range(0xE000, 0xE010))


def _words(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every text's words as ``str.lower().split()`` gives them, one after the other: (the
    text each word is from, each word's number, the distinct words as an object array).

    All texts are lower-cased and split at once, joined by a mark no text contains with a
    space on either side: a space ends any word and any case context (the final sigma), so
    each text's words are the ones it has alone.
    """
    everything = "".join(texts)
    mark = next((m for m in _TEXT_ENDS if m not in everything), None)  # a loop over a few candidates
    if mark is None:  # each text on its own
        words = pd.Series(texts, dtype=object).str.lower().str.split().explode()
        words = words[words.notna()]  # a text with no word explodes to one missing value
        word_code, distinct = pd.factorize(words.to_numpy(dtype=object))
        return words.index.to_numpy().astype(np.intp), word_code.astype(np.intp), np.asarray(distinct, dtype=object)
    encoded = pc.dictionary_encode(pa.array(f" {mark} ".join(texts).lower().split(), type=pa.large_string()))
    code = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    distinct = encoded.dictionary.to_pylist()
    if mark not in distinct:  # a single text: no mark between texts
        return np.zeros(len(code), dtype=np.intp), code, np.asarray(distinct, dtype=object)
    mark_code = distinct.index(mark)
    ends = code == mark_code
    code = code[~ends]
    del distinct[mark_code]
    return np.cumsum(ends)[~ends], code - (code > mark_code), np.asarray(distinct, dtype=object)


def _fit_linear(x, y, strength: float) -> tuple[np.ndarray, float]:
    """Ridge regression (coefficients, intercept); all zeros when there is nothing to learn."""
    if x.shape[0] < 2 or len(np.unique(y)) < 2:
        return np.zeros(x.shape[1], dtype=np.float32), 0.0
    model = Ridge(alpha=1.0 / strength, solver="lsqr")
    model.fit(x, y)
    return model.coef_.ravel().astype(np.float32), float(model.intercept_)


def fit_text_scores(
    risk_rows: pd.DataFrame, urgency_rows: pd.DataFrame, urgency_code: np.ndarray, params: TextModelParams,
) -> tuple[TextModel, pd.DataFrame, pd.DataFrame]:
    """Fit both text models on the training period and score every row of both frames.

    ``risk_rows`` need ``ticket_id``, ``period``, ``label``, ``opening_text``;
    ``urgency_rows`` need ``ticket_id``, ``period``, ``opening_text`` with
    ``urgency_code`` (0..3) aligned to them. Returns the model and both frames with
    :data:`TEXT_SCORE_COLUMNS` added. A training-period row gets both scores from
    models that did not see its ticket (folds by ticket id, shared by both frames).
    """
    folds, strength = params.folds, params.strength
    model = TextModel(params.n_features, tuple(params.ngram_range), params.analyzer,
                      np.zeros(0, np.float32), 0.0, np.zeros(0, np.float32), 0.0)
    risk_x = model.vectorize(risk_rows[OPENING_TEXT].to_numpy(dtype=object))
    urgency_x = model.vectorize(urgency_rows[OPENING_TEXT].to_numpy(dtype=object))

    fits = {}
    for kind, rows, x, target in (("risk", risk_rows, risk_x, risk_rows["label"].to_numpy(dtype="float64")),
                                  ("urgency", urgency_rows, urgency_x, np.asarray(urgency_code, dtype="float64"))):
        # One example per training ticket (its latest text): long tickets do not count more.
        fit_rows = (rows["period"] == "train").to_numpy() & ~rows["ticket_id"].duplicated(keep="last").to_numpy()
        fold = _fold_of(rows["ticket_id"], folds)
        fits[kind] = (
            _fit_linear(x[fit_rows], target[fit_rows], strength),
            {k: _fit_linear(x[fit_rows & (fold != k)], target[fit_rows & (fold != k)], strength)
             for k in range(folds)},
        )
    (model.risk_coef, model.risk_intercept), _ = fits["risk"]
    (model.urgency_coef, model.urgency_intercept), _ = fits["urgency"]

    def scored(rows: pd.DataFrame, x) -> pd.DataFrame:
        in_train = (rows["period"] == "train").to_numpy()
        fold = _fold_of(rows["ticket_id"], folds)
        columns = {}
        for kind, column in (("risk", "text_risk_score"), ("urgency", "text_urgency_score")):
            (coef, intercept), per_fold = fits[kind]
            score = np.asarray(x @ coef + intercept, dtype="float64")
            for k, (fold_coef, fold_intercept) in per_fold.items():
                held = in_train & (fold == k)
                score[held] = np.asarray(x[held] @ fold_coef + fold_intercept, dtype="float64")
            columns[column] = score
        return rows.assign(**columns)

    return model, scored(risk_rows, risk_x), scored(urgency_rows, urgency_x)


def _fold_of(ticket_ids: pd.Series, folds: int) -> np.ndarray:
    """Deterministic fold per ticket id, the same in every frame."""
    return (pd.util.hash_array(ticket_ids.astype(str).to_numpy(dtype=object)) % np.uint64(folds)).astype("int64")
