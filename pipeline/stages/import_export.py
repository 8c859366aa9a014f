"""Stage `import`: a helpdesk's own files -> an export in the contract (real-data pipelines start here)."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import UserError

SOURCES = ("servicenow", "kaggle-cst", "zendesk")


def import_export(source: str, src: str | Path, out_dir: str | Path, fmt: str = "csv") -> list[str]:
    """Convert ``src`` (a ``source`` file or dump directory) into an export; returns summary lines."""
    if source == "servicenow":
        from pipeline.sources.servicenow import import_servicenow

        summary = import_servicenow(src, out_dir, fmt)
    elif source == "kaggle-cst":
        from pipeline.sources.kaggle_cst import import_kaggle_cst

        summary = import_kaggle_cst(src, out_dir, fmt)
    elif source == "zendesk":
        from pipeline.sources.zendesk_read import import_zendesk

        return [*import_zendesk(src, out_dir, fmt).lines(), f"-> {out_dir}"]
    else:
        raise UserError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
    return [" ".join(f"{k}={v}" for k, v in summary.as_dict().items()) + f" -> {out_dir}"]
