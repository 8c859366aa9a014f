"""Text signals of customer messages, for English and Korean.

Each signal is computed once per message with Arrow string kernels (no Python loop
per message). Word lists are deliberately short and readable: they are what agents
see quoted back in the reasons ("angry wording in last message").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Negative / frustrated wording. Korean stems match inflected forms (최악이에요, 실망했습니다).
NEGATIVE_WORDS_EN = (
    "terrible", "awful", "worst", "unacceptable", "ridiculous", "angry", "frustrat",
    "disappoint", "useless", "horrible", "furious", "disgust", "scam", "waste", "complain",
    "still not", "still waiting", "no one", "nobody", "again", "never", "cancel", "refund",
    "lawyer", "joke", "fed up", "sick of",
)
NEGATIVE_WORDS_KO = (
    "최악", "실망", "화가", "화나", "짜증", "아직도", "답답", "어이없", "불만", "엉망",
    "환불", "취소", "또 ", "다시는", "황당", "불친절",
)
URGENT_WORDS_EN = (
    "urgent", "asap", "immediately", "emergency", "right now", "outage", "is down",
    "went down", "critical", "blocked", "cannot access", "can't access", "can't log",
    "cannot log", "locked out", "hacked", "security", "fraud", "charged twice",
    "payment failed", "deadline", "production",
)
URGENT_WORDS_KO = (
    "긴급", "급해", "급합니다", "급한", "당장", "빨리", "지금 바로", "장애", "접속이 안",
    "로그인이 안", "해킹", "결제 오류", "이중 결제", "마감",
)

TEXT_SIGNAL_COLUMNS = (
    "chars", "question_marks", "exclamations", "shouting", "negative_words", "urgent_words", "korean",
)


def _pattern(words: tuple[str, ...]) -> str:
    """One alternation over lower-cased words (matched against lower-cased text)."""
    escaped = (w.lower().replace(".", "\\.") for w in words)
    return "(" + "|".join(escaped) + ")"


_NEGATIVE_PATTERN = _pattern(NEGATIVE_WORDS_EN + NEGATIVE_WORDS_KO)
_URGENT_PATTERN = _pattern(URGENT_WORDS_EN + URGENT_WORDS_KO)


def text_signals(texts: pd.Series | np.ndarray) -> pd.DataFrame:
    """Per-text signals; shape (n_texts, 7), columns :data:`TEXT_SIGNAL_COLUMNS`.

    - ``chars``: length in characters;
    - ``question_marks``/``exclamations``: counts of ``?``/``？`` and ``!``/``！``;
    - ``shouting``: 1.0 when at least 8 Latin letters and 70 % or more of them are capitals;
    - ``negative_words``/``urgent_words``: matches of the word lists (case-insensitive);
    - ``korean``: 1.0 when the text contains Hangul.

    Each distinct text is analysed once (templated and repeated messages are common).
    """
    values = pa.array(pd.Series(texts).fillna("").astype(str), type=pa.large_string())
    distinct = pc.unique(values)
    which = pc.index_in(values, value_set=distinct).to_numpy(zero_copy_only=False)
    lower = pc.utf8_lower(distinct)
    letters = pc.count_substring_regex(distinct, "[A-Za-z]").to_numpy(zero_copy_only=False)
    capitals = pc.count_substring_regex(distinct, "[A-Z]").to_numpy(zero_copy_only=False)
    shouting = (letters >= 8) & (capitals >= 0.7 * np.maximum(letters, 1))
    per_distinct = pd.DataFrame(
        {
            "chars": pc.utf8_length(distinct).to_numpy(zero_copy_only=False).astype("float64"),
            "question_marks": _count(distinct, "[?？]"),
            "exclamations": _count(distinct, "[!！]"),
            "shouting": shouting.astype("float64"),
            "negative_words": _count(lower, _NEGATIVE_PATTERN),
            "urgent_words": _count(lower, _URGENT_PATTERN),
            "korean": pc.match_substring_regex(distinct, "[가-힣]").to_numpy(zero_copy_only=False).astype("float64"),
        }
    )
    return per_distinct.iloc[which].reset_index(drop=True)


def _count(array: pa.Array, pattern: str) -> np.ndarray:
    counts = pc.count_substring_regex(array, pattern)
    return counts.to_numpy(zero_copy_only=False).astype("float64")
