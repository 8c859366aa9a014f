"""The one error contract: a :class:`UserError` is something the user can fix.

The CLI prints a ``UserError`` as one line on stderr and exits 2. Any other
exception is a bug: it propagates with its traceback (exit 1), so a failure inside
pandas, numpy or scikit-learn is never disguised as bad input.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input, a missing file, a wrong option: the message says what and how to fix it, in one line."""

    exit_code = 2


class ExportError(UserError):
    """An export (or another input file) cannot be used; the message says why in one line."""


class RejectLimitError(ExportError):
    """More input rows were rejected than ``--max-reject-rate`` allows: exit 1, which cron alerts tell apart."""

    exit_code = 1


def one_line(exc: BaseException, max_chars: int | None = None) -> str:
    """``exc``'s message on one line (a library's multi-line message would break the one-line contract)."""
    text = " ".join(str(exc).split())
    return text if max_chars is None else text[:max_chars]
