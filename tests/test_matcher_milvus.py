"""The matcher's template index on a real Milvus: milvus-lite (the embedded default) and a
Milvus standalone server (what production runs), each test on both unless it says otherwise."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from matcher.adapters.milvus_index import MilvusConfig, MilvusTemplateIndex
from matcher.domain.templates import Template


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(params=["lite", "server"])
def index(request: pytest.FixtureRequest) -> MilvusTemplateIndex:
    uri = request.getfixturevalue("milvus_uri" if request.param == "lite" else "milvus_server_uri")
    return MilvusTemplateIndex(MilvusConfig(uri=uri, collection=f"t_{uuid.uuid4().hex[:12]}", dim=32,
                                            nlist=16, nprobe=16))


def enrol(index: MilvusTemplateIndex, rng: np.random.Generator, customers: int, stores: dict[int, list[str]]) \
        -> np.ndarray:
    centres = unit(rng.normal(size=(customers, 32)))
    for i, centre in enumerate(centres):
        templates = [Template(f"c{i}-t{j}", unit(centre + 0.1 * rng.normal(size=32)), 0.9, "m1") for j in range(2)]
        index.upsert(f"cust-{i}", templates, stores.get(i, []))
    return centres


def test_search_finds_the_customer_and_respects_store_scope(index: MilvusTemplateIndex) -> None:
    rng = np.random.default_rng(0)
    centres = enrol(index, rng, 50, stores={7: ["store-b"]})
    probe = unit(centres[3] + 0.1 * rng.normal(size=32))
    best = index.search(probe, "store-a", k=5)
    assert best[0][0] == "cust-3" and best[0][1] > 0.8
    assert len({c for c, _ in best}) == len(best)  # one entry per customer
    only_b = unit(centres[7] + 0.05 * rng.normal(size=32))
    assert "cust-7" not in [c for c, _ in index.search(only_b, "store-a", k=5)]
    assert index.search(only_b, "store-b", k=1)[0][0] == "cust-7"
    assert index.search(only_b, "store-a", k=1, all_stores=True)[0][0] == "cust-7"


def test_a_store_counts_the_rows_its_search_looks_through(index: MilvusTemplateIndex) -> None:
    # 4 customers for every store, 3 only for store-a, 2 for store-a and store-b; 2 templates each.
    enrol(index, np.random.default_rng(2), 9, stores={4: ["store-a"], 5: ["store-a"], 6: ["store-a"],
                                                     7: ["store-a", "store-b"], 8: ["store-a", "store-b"]})
    assert index.count("store-a") == 2 * (4 + 3 + 2)
    assert index.count("store-b") == 2 * (4 + 2)
    assert index.count("store-elsewhere") == 2 * 4
    assert index.count() == 2 * (4 + 3 + 2 * 2)  # every row: a customer of two stores has a row per store
    index.remove("cust-7")
    assert index.count("store-b") == 2 * (4 + 1)  # removed rows stop counting at once


def test_removal_is_immediate_and_upsert_is_idempotent(index: MilvusTemplateIndex) -> None:
    rng = np.random.default_rng(1)
    centres = enrol(index, rng, 20, stores={})
    rows = index.count()
    enrol(index, np.random.default_rng(1), 20, stores={})  # the same enrolment again
    assert index.count() == rows
    assert index.remove("cust-5") == 2
    probe = unit(centres[5] + 0.05 * rng.normal(size=32))
    assert "cust-5" not in [c for c, _ in index.search(probe, "any", k=10)]
    assert index.remove("cust-5") == 0


def test_a_write_is_searchable_the_moment_it_returns(index: MilvusTemplateIndex) -> None:
    # Searches do not wait for a time tick (Bounded); each write waits until Milvus has applied
    # it. On a server, a search right after an upsert that did not wait misses the new customer
    # about half the time (3 of 5 tries), so five rounds would catch a write that returns early.
    rng = np.random.default_rng(5)
    enrol(index, rng, 10, stores={})
    for round_ in range(5):
        vector = unit(rng.normal(size=32))
        customer = f"new-{round_}"
        index.upsert(customer, [Template(f"{customer}-t0", vector, 0.9, "m1")], ["store-a"])
        assert index.search(vector, "store-a", k=3)[0][0] == customer
        assert index.remove(customer) == 1
        assert customer not in [c for c, _ in index.search(vector, "store-a", k=10)]


def test_identifiers_that_could_inject_into_filters_are_refused(index: MilvusTemplateIndex) -> None:
    with pytest.raises(ValueError, match="filter"):
        index.search(unit(np.ones(32)), 'x" or store_id != "', k=1)



def test_a_flat_collection_searches_exactly(milvus_uri: str) -> None:
    # GAITPAY_MILVUS_INDEX=FLAT is the switch for exact search on embedded Milvus (at 100k x 128
    # its IVF search of unsealed rows is approximate whatever nprobe says): the collection must
    # be built FLAT, and its top 5 must be numpy's.
    rng = np.random.default_rng(11)
    gallery = unit(rng.normal(size=(3000, 32)))
    index = MilvusTemplateIndex(MilvusConfig(uri=milvus_uri, collection=f"t_{uuid.uuid4().hex[:12]}", dim=32,
                                             index_type="FLAT"))
    assert index._client.describe_index(index.config.collection, "embedding")["index_type"] == "FLAT"
    customers = [f"c{i:05d}" for i in range(len(gallery))]
    index.bulk_insert(customers, gallery, "m1")
    queries = unit(rng.normal(size=(40, 32)))
    found = index.search_many(queries, "s1", 5, all_stores=True)
    for query, top in zip(queries, found):
        exact = np.argsort(-(gallery @ query))[:5]
        assert [c for c, _ in top] == [customers[i] for i in exact]
        assert np.allclose([s for _, s in top], (gallery @ query)[exact], atol=1e-5)
