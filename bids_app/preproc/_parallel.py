"""Run independent per-frame work in a few threads (the numpy/scipy kernels release the GIL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def thread_map(
    func: Callable[[_Item], _Result], items: Sequence[_Item], n_threads: int
) -> list[_Result]:
    """``[func(item) for item in items]``, computed in ``n_threads`` threads when above one.

    Parameters
    ----------
    func : callable
        Work on one item; must not depend on the order in which items run.
    items : sequence
        The items, e.g. frame indices.
    n_threads : int
        Threads to use (``<= 1`` runs in the calling thread).

    Returns
    -------
    list
        Results in the order of ``items``, whatever the thread count.
    """
    if n_threads <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(n_threads, len(items))) as pool:
        return list(pool.map(func, items))
