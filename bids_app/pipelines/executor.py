"""Run one task per participant: in this process, in local processes, or on a Dask cluster.

The default is a local process pool of ``--nprocs`` workers. With ``--dask-scheduler ADDRESS``
each participant becomes one task on a ``dask.distributed`` cluster (for instance one started
by dask-jobqueue on SLURM); ``--omp-nthreads`` and ``--mem-mb`` are passed as resource hints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING, TypeVar

from bids_app.errors import InputError

if TYPE_CHECKING:
    from distributed import Client

LOGGER = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def map_tasks(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    nprocs: int = 1,
    dask_scheduler: str | None = None,
    threads_per_task: int = 1,
    memory_mb: int | None = None,
) -> Iterator[R]:
    """Apply ``func`` to every item and yield results as they finish.

    Parameters
    ----------
    func : callable
        A picklable top-level function taking one item.
    items : sequence
        One item per task (e.g. one participant).
    nprocs : int
        Local worker processes (1 runs in this process, which keeps tracebacks simple).
    dask_scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler; when given, tasks go there.
    threads_per_task, memory_mb : int
        Resource hints for the Dask scheduler (ignored locally).

    Yields
    ------
    object
        ``func(item)`` results in completion order.
    """
    if dask_scheduler:
        yield from _map_dask(func, items, dask_scheduler, threads_per_task, memory_mb)
    elif nprocs <= 1 or len(items) <= 1:
        for item in items:
            yield func(item)
    else:
        with ProcessPoolExecutor(max_workers=min(nprocs, len(items))) as pool:
            futures = [pool.submit(func, item) for item in items]
            for future in as_completed(futures):
                yield future.result()


def _map_dask(
    func: Callable[[T], R],
    items: Sequence[T],
    address: str,
    threads_per_task: int,
    memory_mb: int | None,
) -> Iterator[R]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_as_completed
    except ImportError:
        msg = (
            "--dask-scheduler needs the 'distributed' package; install it with "
            "`pip install 'bids_app[dask]'`"
        )
        raise InputError(msg) from None
    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError) as exc:
        msg = f"cannot reach the Dask scheduler at {address!r} ({exc}); check the address"
        raise InputError(msg) from exc
    LOGGER.info("Submitting %d task(s) to the Dask scheduler at %s", len(items), address)
    resources = _resources(client, threads_per_task, memory_mb)
    try:
        futures = [
            client.submit(func, item, pure=False, resources=resources or None) for item in items
        ]
        for future in dask_as_completed(futures):
            yield future.result()
    finally:
        client.close()


def _resources(client: Client, threads: int, memory_mb: int | None) -> dict[str, float]:
    """Use abstract worker resources only when every worker declares them.

    Workers started with ``--resources "threads=4,memory_mb=8000"`` get at most as many tasks as
    fit; requesting resources that no worker declares would leave tasks pending forever.
    """
    info = client.scheduler_info()
    workers = info.get("workers", {}).values()
    declared = [set((w.get("resources") or {}).keys()) for w in workers]
    wanted: dict[str, float] = {"threads": float(threads)}
    if memory_mb:
        wanted["memory_mb"] = float(memory_mb)
    if declared and all(set(wanted) <= d for d in declared):
        return wanted
    return {}
