"""What a measurement depends on besides the code under test: machine, library versions, commit.

Recorded in results.json so that two runs can be told apart (and their numbers
not compared when the machine or the code differed).
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path

from benchmarks.workdir import REPO_ROOT

_KIB_PER_MIB = 1024.0


def machine_info() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_mb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mb = round(int(line.split()[1]) / _KIB_PER_MIB)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "memory_mb": memory_mb, "cpu_model": model, "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def code_state() -> dict:
    """The commit measured and the files that differed from it (read-only git calls)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=30, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    # Porcelain lines are "XY path"; the leading blank of " M path" matters, so no strip().
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    # The tree may be edited while a long run goes on: the diff's hash tells two states apart.
    diff_sha1 = hashlib.sha1(git("diff", "HEAD").encode()).hexdigest()[:12] if changed else None
    return {"commit": git("rev-parse", "HEAD").strip(), "modified_files": changed, "diff_sha1": diff_sha1}


def versions() -> dict:
    import lightgbm
    import numpy
    import pandas
    import pyarrow

    return {"python": platform.python_version(), "pandas": pandas.__version__, "numpy": numpy.__version__,
            "lightgbm": lightgbm.__version__, "pyarrow": pyarrow.__version__}
