"""csat-triage: the pipeline's floors, from the ground up.

``core`` (contract, errors, I/O, params) <- ``features`` <- ``models`` <- ``sources`` |
``sinks`` | ``tracking`` <- ``stages`` (one per DVC stage) <- ``cli``. The import
contract in pyproject.toml enforces the order.
"""

__version__ = "0.1.0"
