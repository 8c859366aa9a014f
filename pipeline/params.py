"""Loading ``params.yaml``: the one place every tunable lives."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.io import ExportError

DEFAULT_PARAMS_FILE = Path("params.yaml")


def load_params(path: str | Path | None = None) -> dict:
    """Read the parameters file; a missing default file gives ``{}`` (built-in defaults apply)."""
    path = Path(path) if path is not None else DEFAULT_PARAMS_FILE
    if not path.is_file():
        if path == DEFAULT_PARAMS_FILE:
            return {}
        raise ExportError(f"{path}: parameters file not found")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ExportError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(params, dict):
        raise ExportError(f"{path}: expected a mapping of sections at the top level")
    return params
