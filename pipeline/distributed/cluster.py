"""Where the Dask engine runs: a cluster at ``--scheduler ADDRESS``, or a local one sized by params ``engine``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from pipeline.core.errors import UserError
from pipeline.core.params import EngineParams

# Every listener of a local cluster stays on this machine: nothing is reachable from the network.
LOOPBACK = "127.0.0.1"
_CLOSE_SECONDS = 120


def local_cluster_size(engine: EngineParams) -> tuple[int, int, int]:
    """(workers, threads per worker, memory limit per worker in bytes) of a local cluster."""
    import psutil  # a dependency of distributed

    workers = engine.workers or os.cpu_count() or 1
    memory = (int(engine.memory_per_worker_gb * 1e9) if engine.memory_per_worker_gb
              else psutil.virtual_memory().total // workers)
    return workers, engine.threads_per_worker, memory


@contextmanager
def dask_client(engine: EngineParams, scheduler: str | None = None) -> Iterator:
    """A ``distributed.Client`` for the run, closed (and a local cluster shut down) on exit.

    ``scheduler``: a running scheduler's address (``tcp://host:8786``); None starts a
    ``LocalCluster`` on loopback with the dashboard on a free loopback port.
    """
    # Workers inherit OMP_WAIT_POLICY=PASSIVE from this process (set in pipeline/__init__.py).
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise UserError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from None
        try:
            yield client
        finally:
            client.close()
        return
    workers, threads, memory = local_cluster_size(engine)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, memory_limit=memory, host=LOOPBACK,
                           dashboard_address=f"{LOOPBACK}:0", processes=True)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        # Workers that held gigabytes can take longer to stop than the cluster's own close waits
        # (3M tickets: a TimeoutError after the run's output was complete); their nannies kill them
        # anyway. distributed's own exit handler ignores that timeout too (close_clusters).
        with suppress(TimeoutError):
            cluster.close(timeout=_CLOSE_SECONDS)


def worker_threads(client) -> int:
    """Threads over all workers of the cluster (at least 1)."""
    return max(sum(client.nthreads().values()), 1)
