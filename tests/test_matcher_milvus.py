"""The matcher's template index on a real Milvus: milvus-lite (the embedded default) and a
Milvus standalone server (what production runs), each test on both unless it says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import structlog.testing

from matcher.adapters import milvus_index
from gait.embedder import Embedder
from matcher.adapters.milvus_index import (BODY_FIELDS, SCHEMA_VERSION, MilvusConfig, MilvusTemplateIndex, sized_name,
                                           store_key)
from matcher.domain.templates import Template

if TYPE_CHECKING:
    from pymilvus import MilvusClient


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
    assert index._client.describe_index(index.collection, "embedding")["index_type"] == "FLAT"
    customers = [f"c{i:05d}" for i in range(len(gallery))]
    index.bulk_insert(customers, gallery, "m1")
    queries = unit(rng.normal(size=(40, 32)))
    found = index.search_many(queries, "s1", 5, all_stores=True)
    for query, top in zip(queries, found):
        exact = np.argsort(-(gallery @ query))[:5]
        assert [c for c, _ in top] == [customers[i] for i in exact]
        assert np.allclose([s for _, s in top], (gallery @ query)[exact], atol=1e-5)


def test_a_search_returns_templates_of_its_own_model_only(index: MilvusTemplateIndex) -> None:
    # After a model change, templates enrolled with the old model are still stored, but their
    # vectors live in another space: a window of this model must never score against them.
    rng = np.random.default_rng(12)
    probe = unit(rng.normal(size=32))
    # Identity tags each template "<model>/<transform label>[+<statistics label>]".
    for customer, model in (("current", "m2/t3"), ("renamed", "m2-old-name/t3+s1"), ("stale", "m1/t3")):
        index.upsert(customer, [Template(f"{customer}-t0", unit(probe + 0.05 * rng.normal(size=32)), 0.9, model)], [])
    index.upsert("scoped-stale", [Template("ss-t0", probe, 0.9, "m1")], ["s1"])  # untagged: the model alone
    m2 = MilvusTemplateIndex(replace(index.config, model_versions=("m2", "m2-old-name")))
    for all_stores in (False, True):
        assert {c for c, _ in m2.search(probe, "s1", k=5, all_stores=all_stores)} == {"current", "renamed"}
    assert {c for c, _ in index.search(probe, "s1", k=5)} == {"current", "renamed", "stale", "scoped-stale"}
    assert m2.count("s1") == 2 and m2.count() == 2 and m2.count_of_other_models() == 2
    assert index.count_of_other_models() == 0  # searches every model: none is other
    assert m2.remove("stale") == 1  # erasure still finds another model's templates
    assert index.count() == 3
    # The one key of model and scope keeps to the store as well: a store-1 customer is not
    # found in store 2, but by a search of every store.
    index.upsert("scoped-current", [Template("sc-t0", probe, 0.9, "m2/t3")], ["s1"])
    assert m2.search(probe, "s1", k=1)[0][0] == "scoped-current"
    assert "scoped-current" not in {c for c, _ in m2.search(probe, "s2", k=5)}
    assert m2.search(probe, "s2", k=1, all_stores=True)[0][0] == "scoped-current"


def test_body_measures_come_back_with_the_customer_who_has_them(index: MilvusTemplateIndex) -> None:
    rng = np.random.default_rng(5)
    centres = unit(rng.normal(size=(3, 32)))
    body = np.array([1.42, 0.93], dtype=np.float32)
    index.upsert("measured", [Template("m-t0", centres[0], 0.9, "m1", body)], [])
    index.upsert("unmeasured", [Template("u-t0", centres[1], 0.9, "m1")], [])
    hits = {hit[0]: hit for hit in index.search(unit(centres[0] + centres[1]), "s", k=2, with_bodies=True)}
    assert np.allclose(hits["measured"].body, body)
    assert hits["unmeasured"].body is None
    assert all(hit.body is None for hit in index.search(centres[0], "s", k=2))  # not asked for: not read
    stored = index.templates_of(["measured", "unmeasured"])
    assert np.allclose(stored["measured"][0].body, body) and stored["unmeasured"][0].body is None


def older_schema_collection(client: MilvusClient, name: str, schema: int, rows: list[dict], dim: int = 32) -> None:
    """A collection as schema 1 (no body measures), 2 (no store_key) or 3 (no model_key) made
    it, holding rows."""
    from pymilvus import DataType

    fields = client.create_schema(auto_id=False, enable_dynamic_field=False)
    for field in ("row_id", "template_id", "customer_id", "store_id", "model_version"):
        fields.add_field(field, DataType.VARCHAR, is_primary=field == "row_id", max_length=140)
    fields.add_field("quality", DataType.FLOAT)
    if schema >= 2:
        for field in BODY_FIELDS:
            fields.add_field(field, DataType.FLOAT)
    if schema >= 3:
        fields.add_field("store_key", DataType.INT64)
    fields.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    params = client.prepare_index_params()
    params.add_index(field_name="embedding", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=fields, index_params=params)
    client.insert(name, rows)


def older_row(i: int, vector: np.ndarray, schema: int, store: str = "*",
              body: tuple[float, float] = (0.0, 0.0), model: str = "m1") -> dict:
    """Customer c<i>'s one template as a row of schema 1 (no body measures), 2 (no store_key)
    or 3 (no model_key)."""
    return {"row_id": f"c{i}-t0@{store}", "template_id": f"c{i}-t0", "customer_id": f"c{i}", "store_id": store,
            "model_version": model, "quality": 0.8, "embedding": vector.tolist(),
            **(dict(zip(BODY_FIELDS, body)) if schema >= 2 else {}),
            **({"store_key": store_key(store)} if schema >= 3 else {})}


@pytest.mark.parametrize("engine,older", [("lite", 1), ("server", 1), ("lite", 2), ("server", 2), ("lite", 3),
                                          ("server", 3)])
def test_a_collection_of_an_older_schema_is_copied_into_the_current_one(engine: str, older: int,
                                                                         request: pytest.FixtureRequest,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Milvus cannot add fields; the matcher copies an older collection's rows across (what
    # the older schema lacks gets its default: no body measures before 2, the scope's key
    # before 3, the model's key before 4) and drops it once every row is there.
    from pymilvus import MilvusClient

    uri = request.getfixturevalue("milvus_uri" if engine == "lite" else "milvus_server_uri")
    name = f"t_{uuid.uuid4().hex[:12]}"
    base = sized_name(name, 32)  # t_..._d32: the size is in the name of every schema's collection
    older_name = base if older == 1 else f"{base}_v{older}"  # schema 1 had no version in its name
    client = MilvusClient(uri=uri)
    vectors = unit(np.random.default_rng(8).normal(size=(2500, 32)))
    measured = {7: (1.62, 1.01)} if older >= 2 else {}
    older_schema_collection(client, older_name, older, [
        older_row(i, v, older, store="s1" if i % 2 else "*", body=measured.get(i, (0.0, 0.0)),
                  model="m0/t1" if i % 10 == 9 else ("m1" if i % 3 else "m1/t1+s2"))
        for i, v in enumerate(vectors)])
    monkeypatch.setattr(milvus_index, "MIGRATION_PROGRESS_EVERY_S", 0.0)  # progress after every batch
    with structlog.testing.capture_logs() as logs:
        index = MilvusTemplateIndex(MilvusConfig(uri=uri, collection=name, dim=32, nlist=16, nprobe=16))
    progress = [e for e in logs if e["event"] == "milvus.migrating" and "copied" in e]
    assert [e["copied"] for e in progress] == [2000, 2500] and all(e["rows"] == 2500 for e in progress)
    assert progress[-1]["eta_s"] == 0 and progress[0]["eta_s"] >= 0
    assert index.collection == f"{base}_v{SCHEMA_VERSION}" and SCHEMA_VERSION == 4
    assert not client.has_collection(older_name)
    assert index.count() == 2500
    # Scopes survive the copy: a store-scoped customer is found in its store, not in another.
    assert index.search(vectors[1235], "s1", k=1)[0][0] == "c1235"
    assert index.search(vectors[1235], "s2", k=1)[0][0] != "c1235"
    assert index.search(vectors[1234], "s2", k=1)[0][0] == "c1234"  # every store's
    best = index.search(vectors[1234], "any", k=1, with_bodies=True)[0]
    assert best[0] == "c1234" and best.body is None
    if older >= 2:
        assert np.allclose(index.search(vectors[7], "s1", k=1, with_bodies=True)[0].body, [1.62, 1.01])
    index.upsert("c1234", [Template("c1234-t0", vectors[1234], 0.8, "m1", np.array([1.5, 1.0]))], [])
    assert np.allclose(index.search(vectors[1234], "any", k=1, with_bodies=True)[0].body, [1.5, 1.0])
    # Each row's model survives the copy as its key: model m1's search never returns m0's rows.
    m1 = MilvusTemplateIndex(replace(index.config, model_versions=("m1",)))
    assert m1.count() == 2250 and m1.count_of_other_models() == 250
    assert m1.search(vectors[1239], "s1", k=1)[0][0] != "c1239" and index.search(vectors[1239], "s1", k=1)[0][0] == "c1239"
    assert m1.search(vectors[1235], "s1", k=1)[0][0] == "c1235"
    client.close()


def test_a_copy_cut_short_is_dropped_and_made_again_from_the_whole_collection(milvus_uri: str) -> None:
    # A schema 1 -> 2 copy that died midway leaves schema 1 whole beside a partial schema 2;
    # the next start (now on schema 3) must copy schema 1, not the partial one.
    from pymilvus import MilvusClient

    name = f"t_{uuid.uuid4().hex[:12]}"
    client = MilvusClient(uri=milvus_uri)
    vectors = unit(np.random.default_rng(9).normal(size=(300, 32)))
    base = sized_name(name, 32)
    for collection, schema, rows in ((base, 1, 300), (f"{base}_v2", 2, 120)):
        older_schema_collection(client, collection, schema,
                                [older_row(i, v, schema) for i, v in enumerate(vectors[:rows])])
    index = MilvusTemplateIndex(MilvusConfig(uri=milvus_uri, collection=name, dim=32, nlist=16, nprobe=16))
    assert index.count() == 300
    assert index.search(vectors[250], "s1", k=1)[0][0] == "c250"
    assert not client.has_collection(base) and not client.has_collection(f"{base}_v2")
    client.close()


def test_the_migrate_step_copies_an_older_collection_once_and_then_finds_nothing_to_do(
        milvus_uri: str, tmp_path: Path) -> None:
    # `python -m matcher migrate` is the matcher's Kubernetes init container: the copy a matcher
    # would make at start, with no startup probe to cut a long one short. It exits 0 when done;
    # run again (the next rollout's pods), it finds the current schema and copies nothing.
    from pymilvus import MilvusClient

    name = f"t_{uuid.uuid4().hex[:12]}"
    client = MilvusClient(uri=milvus_uri)
    model = Embedder()  # the matcher's model: 200 rows of it, 100 of another, at its size
    base = sized_name(name, model.dim)
    vectors = unit(np.random.default_rng(11).normal(size=(300, model.dim)))
    older_schema_collection(client, f"{base}_v2", 2, [older_row(i, v, 2, model="m0/t1" if i % 3 == 2 else f"{model.version}/t1")
                                                      for i, v in enumerate(vectors)], dim=model.dim)
    env = {**os.environ, "GAITPAY_HOME": str(tmp_path), "GAITPAY_MILVUS_URI": milvus_uri,
           "GAITPAY_MILVUS_COLLECTION": name}

    def migrate() -> tuple[int, list[dict]]:
        done = subprocess.run([sys.executable, "-m", "matcher", "migrate"], env=env, capture_output=True,
                              text=True, timeout=180)
        events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        return done.returncode, events

    code, events = migrate()
    assert code == 0, events
    said = {e["event"]: e for e in events}
    assert said["milvus.migrating"]["rows"] == 300 and said["milvus.migrated"]["rows"] == 300
    assert said["milvus.schema_current"] == {**said["milvus.schema_current"], "collection": f"{base}_v4",
                                             "rows": 200, "rows_of_other_models": 100,
                                             "collections_of_another_size": []}
    assert not client.has_collection(f"{base}_v2") and client.has_collection(f"{base}_v4")
    code, events = migrate()
    assert code == 0 and "milvus.migrated" not in {e["event"] for e in events}
    assert [e["rows"] for e in events if e["event"] == "milvus.schema_current"] == [200]
    index = MilvusTemplateIndex(MilvusConfig(uri=milvus_uri, collection=name, dim=model.dim))
    assert index.search(vectors[42], "s1", k=1)[0][0] == "c42"


def test_a_model_of_another_size_gets_collections_of_its_own(milvus_uri: str) -> None:
    # Milvus fixes a vector field's size: after a change to a model of another size (an
    # ensemble's 384 for one network's 128), the matcher opens collections of its own and
    # leaves the other size's templates as they were, naming them.
    name = f"t_{uuid.uuid4().hex[:12]}"
    rng = np.random.default_rng(12)
    old_vector, new_vector = unit(rng.normal(size=128)), unit(rng.normal(size=384))
    small = MilvusTemplateIndex(MilvusConfig(uri=milvus_uri, collection=name, dim=128, nlist=16, nprobe=16))
    small.upsert("c-old", [Template("c-old-t0", old_vector, 0.9, "m0")], [])
    big = MilvusTemplateIndex(MilvusConfig(uri=milvus_uri, collection=name, dim=384, nlist=16, nprobe=16,
                                           model_versions=("m1",)))
    assert small.collection == f"{name}_v{SCHEMA_VERSION}"  # 128 keeps the names deployments have
    assert big.collection == f"{name}_d384_v{SCHEMA_VERSION}"
    assert big.count() == 0 and big.collections_of_another_size() == [small.collection]
    big.upsert("c-new", [Template("c-new-t0", new_vector, 0.9, "m1")], [])
    assert big.search(new_vector, "s1", k=1)[0][0] == "c-new"
    assert small.count() == 1 and small.search(old_vector, "s1", k=1)[0][0] == "c-old"  # untouched
    assert small.collections_of_another_size() == [big.collection]


def test_the_migrate_step_without_a_milvus_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAITPAY_")}
    done = subprocess.run([sys.executable, "-m", "matcher", "migrate"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "GAITPAY_MILVUS_URI is empty" in done.stderr
    wrong = subprocess.run([sys.executable, "-m", "matcher", "migrat"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert wrong.returncode == 2 and "usage: python -m matcher [migrate]" in wrong.stderr


def test_store_keys_are_stable_and_distinct() -> None:
    # The search filters on the key, so it must not change between processes or versions
    # (Python's hash() of a str does) and different stores must not share one.
    assert 0 <= store_key("*") < 2 ** 63
    assert store_key("blr-indiranagar") == 0x60D3981CD1E7B330  # stored in every row: never changes
    keys = {store_key(f"store-{i}") for i in range(100_000)}
    assert len(keys) == 100_000
