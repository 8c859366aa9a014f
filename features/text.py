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


def text_signals(texts: pd.Series | np.ndarray | pa.Array | pa.ChunkedArray) -> pd.DataFrame:
    """Per-text signals; shape (n_texts, 7), columns :data:`TEXT_SIGNAL_COLUMNS`.

    - ``chars``: length in characters;
    - ``question_marks``/``exclamations``: counts of ``?``/``？`` and ``!``/``！``;
    - ``shouting``: 1.0 when at least 8 Latin letters and 70 % or more of them are capitals;
    - ``negative_words``/``urgent_words``: matches of the word lists (case-insensitive);
    - ``korean``: 1.0 when the text contains Hangul.

    Each distinct text is analysed once (templated and repeated messages are common).
    """
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        values = pc.fill_null(texts, "").cast(pa.large_string())  # Arrow text stays in Arrow: no Python strings
    else:
        values = pa.array(pd.Series(texts).fillna("").astype(str), type=pa.large_string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)  # one hashing pass: the distinct texts and which one each is
    distinct = encoded.dictionary
    which = encoded.indices.to_numpy(zero_copy_only=False)
    lower = pc.utf8_lower(distinct)
    letters = _ascii_counts(distinct, "a", "z", fold_case=True)
    capitals = _ascii_counts(distinct, "A", "Z")
    shouting = (letters >= 8) & (capitals >= 0.7 * np.maximum(letters, 1))
    per_distinct = pd.DataFrame(
        {
            "chars": pc.utf8_length(distinct).to_numpy(zero_copy_only=False).astype("float64"),
            # ASCII marks counted as bytes, full-width ones as a literal (no regex match per mark).
            "question_marks": (_ascii_counts(distinct, "?", "?") + _literal_count(distinct, "？")).astype("float64"),
            "exclamations": (_ascii_counts(distinct, "!", "!") + _literal_count(distinct, "！")).astype("float64"),
            "shouting": shouting.astype("float64"),
            "negative_words": _count(lower, _NEGATIVE_PATTERN),
            "urgent_words": _count(lower, _URGENT_PATTERN),
            "korean": pc.match_substring_regex(distinct, "[가-힣]").to_numpy(zero_copy_only=False).astype("float64"),
        }
    )
    return per_distinct.iloc[which].reset_index(drop=True)


def take_text(values: pd.Series, rows: np.ndarray) -> pa.Array | None:
    """Arrow-backed text ``values`` at the row positions ``rows`` (missing stays null), as one
    Arrow array; None when the column is not Arrow text (the caller then stays in pandas).

    Canonical tables hold text as Arrow (``str``): taking in Arrow makes no Python string
    per row. Rows in ascending order are taken chunk by chunk, which is about twice as fast
    as Arrow's take on a chunked column (events usually come in file order).
    """
    if not isinstance(values.array, pd.arrays.ArrowStringArray):
        return None
    column = pa.array(values.array)  # a zero-copy view
    rows = np.asarray(rows, dtype="int64")
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if not len(rows) or not chunks:
        return pa.array([], type=column.type)
    if len(chunks) == 1 or not bool(np.all(rows[1:] >= rows[:-1])):
        taken = column.take(pa.array(rows))
        return taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken
    bounds = np.cumsum([0] + [len(chunk) for chunk in chunks])
    cut = np.searchsorted(rows, bounds)
    return pa.concat_arrays([chunk.take(pa.array(rows[cut[i]:cut[i + 1]] - bounds[i]))
                             for i, chunk in enumerate(chunks) if cut[i + 1] > cut[i]])


def _ascii_counts(strings: pa.Array, first: str, last: str, fold_case: bool = False) -> np.ndarray:
    """Per string, the characters from ASCII ``first`` to ``last`` (either case with ``fold_case``), int64.

    The same count as ``count_substring_regex`` with a character class, without a regex
    match per letter (most of the text time on letter-heavy texts): in UTF-8 a byte below
    128 is always a whole ASCII character, so counting bytes counts characters."""
    strings = pc.fill_null(strings, "").cast(pa.large_string())
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    counts = np.zeros(len(strings), dtype=np.int64)
    offsets_buffer, data_buffer = strings.buffers()[1:3]
    if not len(strings) or data_buffer is None:
        return counts
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[strings.offset:strings.offset + len(strings) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]:offsets[-1]]
    if fold_case:  # ASCII letters differ from their capitals by the 0x20 bit only
        data = data | np.uint8(0x20)
    # Unsigned arithmetic: a byte below ``first`` wraps around above the range.
    in_class = (data - np.uint8(ord(first))) <= np.uint8(ord(last) - ord(first))
    # One sum per non-empty string (reduceat would give an empty one its next byte).
    nonempty = offsets[1:] > offsets[:-1]
    if nonempty.any():
        counts[nonempty] = np.add.reduceat(in_class, offsets[:-1][nonempty] - offsets[0], dtype=np.int64)
    return counts


def _literal_count(array: pa.Array, text: str) -> np.ndarray:
    return pc.count_substring(array, text).to_numpy(zero_copy_only=False)


def _count(array: pa.Array, pattern: str) -> np.ndarray:
    counts = pc.count_substring_regex(array, pattern)
    return counts.to_numpy(zero_copy_only=False).astype("float64")
