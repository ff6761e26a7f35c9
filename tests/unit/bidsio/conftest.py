"""Fixtures for the bidsio tests: a synthetic PET-BIDS builder and a tree-unchanged guard."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from helpers.bids_skeleton import tree_digest, write_bids_skeleton

BuildBids = Callable[..., Path]


@pytest.fixture
def unchanged_tree() -> Iterator[Callable[[Path], Path]]:
    """Register input trees; at teardown assert each is byte-for-byte unchanged."""
    registered: list[tuple[Path, str]] = []

    def register(root: Path) -> Path:
        registered.append((Path(root), tree_digest(Path(root))))
        return Path(root)

    yield register
    for root, digest in registered:
        assert tree_digest(root) == digest, f"input tree {root} was modified"


@pytest.fixture
def synthetic_bids(tmp_path: Path, unchanged_tree: Callable[[Path], Path]) -> BuildBids:
    """Build a PET-BIDS tree from a dict (see ``helpers.bids_skeleton``) and guard it.

    Call as ``synthetic_bids(spec, post=callable)``: ``post(root)`` may damage the tree (corrupt a
    file, ...) before its digest is recorded, so that the check itself must not change it.
    """
    count = 0

    def build(
        spec: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        post: Callable[[Path], None] | None = None,
    ) -> Path:
        nonlocal count
        count += 1
        root = tmp_path / f"bids{count}"
        write_bids_skeleton(root, spec if spec is not None else {"01": {"sal": {}, "nal": {}}})
        if post is not None:
            post(root)
        return unchanged_tree(root)

    return build
