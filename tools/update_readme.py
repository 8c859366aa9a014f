"""Rewrite the generated parts of README.md (the feature table) from the code."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from features.build import features_markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- FEATURES-TABLE:START -->", "<!-- FEATURES-TABLE:END -->"


def render(text: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{START}\n{features_markdown_table()}\n{END}", text)


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
    sys.exit(0)
