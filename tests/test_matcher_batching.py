"""Micro-batching in front of the template index, for worker threads and for the event loop,
and the template transform kept fresh without a caller waiting on Vault."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import numpy as np
import pytest

from gait.protection import CancelableTransform
from matcher.adapters.batching import BatchingIndex
from mesh.errors import Unavailable
from mesh.vault_provision import RefreshingTransform


class SlowIndex:
    """Answers each query with its own first coordinate as the customer id, after a delay
    long enough for queries arriving together to share one search."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.with_bodies: list[bool] = []
        self.fail = fail

    def search_many(self, embeddings: np.ndarray, store_id: str, k: int,
                    all_stores: bool = False, with_bodies: bool = False) -> list[list[tuple[str, float]]]:
        time.sleep(0.02)
        self.batches.append(len(embeddings))
        self.with_bodies.append(with_bodies)
        if self.fail:
            raise RuntimeError("index down")
        return [[(f"c{int(e[0])}@{store_id}", 1.0)] for e in embeddings]

    def count(self, store_id: str | None = None) -> int:
        return 0


async def test_awaited_and_threaded_searches_share_batches_and_get_their_own_answers() -> None:
    inner = SlowIndex()
    index = BatchingIndex(inner)
    try:
        threaded = await asyncio.gather(*(asyncio.to_thread(index.search, np.array([i, 0.0]), "s1", 5)
                                          for i in range(4)))
        awaited = await asyncio.gather(*(index.search_async(np.array([i, 0.0]), "s2", 5) for i in range(10, 16)))
    finally:
        index.close()
    assert [r[0][0] for r in threaded] == [f"c{i}@s1" for i in range(4)]
    assert [r[0][0] for r in awaited] == [f"c{i}@s2" for i in range(10, 16)]
    assert sum(inner.batches) == 10 and len(inner.batches) < 10  # some queries rode together


async def test_bodies_are_read_only_for_a_batch_where_some_query_wants_them() -> None:
    inner = SlowIndex()
    index = BatchingIndex(inner)
    try:
        await asyncio.gather(*(index.search_async(np.array([i, 0.0]), "s", 5) for i in range(3)))
        await asyncio.gather(*(index.search_async(np.array([i, 0.0]), "s", 5, with_bodies=i == 1) for i in range(3)))
    finally:
        index.close()
    assert inner.with_bodies[0] is False and inner.with_bodies[-1] is True


async def test_a_failed_search_reaches_every_awaiting_caller() -> None:
    index = BatchingIndex(SlowIndex(fail=True))
    try:
        results = await asyncio.gather(*(index.search_async(np.array([i, 0.0]), "s", 5) for i in range(3)),
                                       return_exceptions=True)
    finally:
        index.close()
    assert all(isinstance(r, RuntimeError) and "index down" in str(r) for r in results)


def test_the_transform_is_refreshed_in_the_background_and_kept_when_vault_is_down() -> None:
    issued = [CancelableTransform(os.urandom(32), 1, 8)]
    vault_up = threading.Event()
    vault_up.set()

    def load() -> CancelableTransform:
        time.sleep(0.3)  # a slow Vault
        if not vault_up.is_set():
            raise Unavailable("vault unreachable while reading the template transform")
        return issued[-1]

    transform = RefreshingTransform(load, refresh_s=0.5)
    try:
        assert transform.current().version == 1
        issued.append(CancelableTransform(os.urandom(32), 2, 8))
        time.sleep(1.5)  # nobody asks meanwhile
        started = time.monotonic()
        assert transform.current().version == 2  # the thread read it...
        assert time.monotonic() - started < 0.1  # ...so the caller did not wait for Vault
        vault_up.clear()
        time.sleep(1.5)  # refreshes fail
        assert transform.current().version == 2
        with pytest.raises(Unavailable):
            transform.fresh()  # an explicit read reports the outage
        x = np.eye(8, dtype=np.float32)[:1]
        assert np.allclose(transform.apply(x), issued[1].apply(x))
    finally:
        transform.close()
