"""csat-triage: the pipeline's floors, from the ground up.

``core`` (contract, errors, I/O, params) <- ``features`` <- ``models`` <- ``sources`` |
``sinks`` | ``tracking`` <- ``stages`` (one per DVC stage) <- ``cli``. The import
contract in pyproject.toml enforces the order.
"""

import os

__version__ = "0.1.0"

# LightGBM's OpenMP threads spin while they wait (GNU OpenMP's default). Beside any other busy
# process that made fits erratic and several times dearer: one fit 3-49 s on 2 cores
# (FIELD-NOTES), `train` at 100k tickets 300 CPU s under load 4 instead of 49 s. The OpenMP
# runtime reads this once, when LightGBM loads; every command and DVC stage imports this
# package first. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
