"""Micro-batching in front of the template index.

Windows of many tracks arrive at once; one Milvus search with many query vectors costs
little more than a search with one. Callers hand in a query and wait for its answer: a
worker thread blocks (search), a coroutine awaits (search_async). A batching thread takes
whatever queries arrived within a short linger (or up to max_batch), groups them by search
scope, runs one search per group, and hands the answers back.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from matcher.domain.identification import Hit


@dataclass
class _Query:
    embedding: np.ndarray
    store_id: str
    k: int
    all_stores: bool
    with_bodies: bool
    answer: Future | asyncio.Future
    # How the batching thread hands an answer back: straight into a thread's Future, or
    # onto the event loop that awaits an asyncio.Future.
    deliver: Callable[[Callable[..., Any], Any], Any]


def _direct(setter: Callable[..., Any], value: Any) -> None:
    setter(value)


class BatchingIndex:
    def __init__(self, index, max_batch: int = 64, linger_s: float = 0.0005) -> None:  # type: ignore[no-untyped-def]
        self._index = index
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._queue: queue.Queue[_Query | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="index-batcher", daemon=True)
        self._thread.start()

    def search(self, embedding: np.ndarray, store_id: str, k: int, all_stores: bool = False,
               with_bodies: bool = False) -> list[Hit]:
        answer: Future = Future()
        self._queue.put(_Query(embedding, store_id, k, all_stores, with_bodies, answer, _direct))
        return answer.result(timeout=30)

    async def search_async(self, embedding: np.ndarray, store_id: str, k: int, all_stores: bool = False,
                           with_bodies: bool = False) -> list[Hit]:
        """The same search, awaited on the event loop: no worker thread waits for it."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future = loop.create_future()

        def deliver(setter: Callable[..., Any], value: Any) -> None:
            loop.call_soon_threadsafe(lambda: None if answer.done() else setter(value))

        self._queue.put(_Query(embedding, store_id, k, all_stores, with_bodies, answer, deliver))
        return await asyncio.wait_for(answer, timeout=30)

    def count(self, store_id: str | None = None) -> int:
        return self._index.count(store_id)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            try:
                while len(batch) < self._max_batch:
                    item = self._queue.get(timeout=self._linger_s)
                    if item is None:
                        self._queue.put(None)
                        break
                    batch.append(item)
            except queue.Empty:
                pass
            groups: dict[tuple[str, bool, int], list[_Query]] = {}
            for q in batch:
                groups.setdefault(("" if q.all_stores else q.store_id, q.all_stores, q.k), []).append(q)
            for (store, all_stores, k), queries in groups.items():
                try:
                    # Bodies for the whole group when any query wants them (one search, not two).
                    results = self._index.search_many(np.stack([q.embedding for q in queries]), store or "*", k,
                                                      all_stores, any(q.with_bodies for q in queries))
                    for q, r in zip(queries, results):
                        q.deliver(q.answer.set_result, r)
                except Exception as exc:  # noqa: BLE001 - each waiting caller gets the failure
                    for q in queries:
                        q.deliver(q.answer.set_exception, exc)
