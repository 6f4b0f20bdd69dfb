"""Enrolled templates in Milvus (pymilvus): embedded milvus-lite locally, Milvus
standalone or distributed by URI in production, same code.

One row per (template, store scope): a customer enrolled for every store has scope "*", one
enrolled for a few stores has a row per store, so a store's search is a plain filter on the
scope and "every customer" is no filter at all. The search filters on `store_key`, a 63-bit
hash of the scope, not on the `store_id` string: milvus-lite evaluates a filter row by row over
segments it has not sealed, and at 100k rows `store_id in [...]` added 3.6 ms to each search
against 0.8 ms for the integer (7.9 against 5.1 ms for 8 queries). Two stores whose names
hash alike would see each other's customers: with 63 bits, about one chance in 10^11 among
10,000 stores. Counts and listings, off the hot path, filter on the string itself. Scores are inner
products of L2-normalised vectors (cosine similarity). Index (GAITPAY_MILVUS_INDEX): IVF_FLAT
by default, HNSW on a Milvus server. milvus-lite refuses HNSW, and it searches rows of segments
it has not sealed through its own interim IVF index, whatever nprobe says: at 100k x 128 that
finds the true customer in the top 5 for about 10% fewer probes than an exact search does
(`gaitpay bench matcher`: 0.027 against 0.030 with model synthetic-20261125-291dec62). FLAT is exact
there, at about 40% of the windows per second.

One model's templates. A window's embedding scores against templates of its own model only:
another model's vectors live in another space, and the score calibration belongs to this
one. So a search with `model_versions` set (the matcher's own name first, then former names
of the same weights) filters on `search_key`, a 63-bit hash of the template's model and
scope together, instead of `store_key`: one integer list still, so the search costs what it
did (`tools/model_filter_bench.py`, 100k rows on milvus-lite, three runs: `search_key` 0.89-1.07
times the time of the `store_key` search, a second filter on a `model_key` beside `store_key`
1.29-1.54 times). A search of every store filters on
`model_key` alone. Templates of another model stay stored (identity owns them; erasure still
finds them) and are counted at start, but no search returns them.

One embedding size per collection. Milvus fixes a vector field's size when the collection is
made, so a model of another size (the 384 of an ensemble of three networks against one
network's 128) gets collections of its own, `<collection>_d<size>_v<schema>`: 128 keeps the
plain names every deployment already has. Templates of the other size stay where they are
(identity owns them, and no search of this model could use them); the matcher names those
collections at start (`milvus.collections_of_another_size`), and their customers enrol again,
as after any model change.

Consistency. A Strong search on a Milvus server waits until the query nodes have caught up
with "now", which takes a time tick (proxy.timeTickInterval, 200 ms by default): every window
would wait that long (measured on an embedded Milvus 2.3.5 server: p50 200 ms per search).
So searches are Bounded (they read what the query nodes have applied, at once), and every
write ends with a Strong read of the customer's rows, which returns only once the write is
applied. A query node's serviceable time only moves forward, so every search after that, by
this replica or another, sees the write: a removed customer is unfindable, a new enrolment
findable, as soon as the call returns. That holds with one in-memory replica of the
collection (Milvus's default); with more, set GAITPAY_MILVUS_SEARCH_CONSISTENCY=Strong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import grpc
import numpy as np
import structlog
from pymilvus import DataType, MilvusClient, MilvusException

from matcher.domain.identification import Hit
from matcher.domain.templates import Template, model_of
from mesh.dependencies import MILVUS_GRPC_OPTIONS

log = structlog.get_logger("gaitpay.matcher.milvus")
ALL_STORES = "*"
SCHEMA_VERSION = 4  # 2: body measures; 3: store_key; 4: model_key and search_key
BODY_FIELDS = ("shoulder_height_m", "hip_height_m")  # gait.body.MEASURES, in metres; 0: not measured
MIGRATION_PROGRESS_EVERY_S = 10.0
_SAFE = re.compile(r"^[A-Za-z0-9_.:@\-]{1,64}$")


class TemplateIndexError(RuntimeError):
    """Milvus refused or failed; the message names the operation."""


@dataclass(frozen=True)
class MilvusConfig:
    uri: str
    collection: str = "gait_templates"
    dim: int = 128
    index_type: str = "IVF_FLAT"  # HNSW on a Milvus server
    nlist: int = 1024
    nprobe: int = 32
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 64
    search_consistency: str = "Bounded"  # Strong with several in-memory replicas (see above)
    timeout_s: float = 5.0
    # The models whose templates a search may return (see "One model's templates" above):
    # the matcher's version first, then former names of the same weights. Empty: any model
    # (tools that load one model's vectors themselves).
    model_versions: tuple[str, ...] = ()


LEGACY_DIM = 128  # the size every collection had before sizes were named


def sized_name(collection: str, dim: int) -> str:
    """The collection name for embeddings of `dim` (see "One embedding size per collection")."""
    return collection if dim == LEGACY_DIM else f"{collection}_d{dim}"


def _scalar_index_type(server_version: str, numeric: bool = False) -> str:
    """INVERTED from Milvus 2.4 on; a 2.3 server (the embedded `milvus` package) has Trie for
    strings and STL_SORT for numbers."""
    found = re.match(r"v?(\d+)\.(\d+)", server_version or "")
    if found and (int(found.group(1)), int(found.group(2))) < (2, 4):
        return "STL_SORT" if numeric else "Trie"
    return "INVERTED"


def _quoted(values: Sequence[str]) -> str:
    for v in values:
        if v != ALL_STORES and not _SAFE.match(v):
            raise ValueError(f"identifier {v!r} has characters a filter expression must not hold")
    return json.dumps(list(values))


def _key(text: str, person: bytes) -> int:
    """Stable across processes and versions, so never Python's hash()."""
    digest = hashlib.blake2b(text.encode(), digest_size=8, person=person).digest()
    return int.from_bytes(digest, "big") >> 1  # INT64 holds 63 bits of it


def store_key(store_id: str) -> int:
    """The scope as the search filters on it (see above)."""
    return _key(store_id, b"gaitpay-store")


def model_key(model: str) -> int:
    """A template's model (Template.model: its tag without the protection labels) as a
    search of every store, and the counts, filter on it (see above)."""
    return _key(model, b"gaitpay-model")


def search_key(model: str, scope: str) -> int:
    """A template's model and scope as one store's search filters on them (see above)."""
    return _key(json.dumps([model, scope]), b"gaitpay-search")


def _scope_filter(store_id: str) -> str:
    _quoted([store_id])
    return f"store_key in {json.dumps([store_key(store_id), store_key(ALL_STORES)])}"


def _model_keys(model_versions: Sequence[str]) -> str:
    return json.dumps([model_key(v) for v in model_versions])


def _models_filter(model_versions: Sequence[str]) -> str:
    return f"model_key in {_model_keys(model_versions)}" if model_versions else ""


def _search_filter(store_id: str, all_stores: bool, model_versions: Sequence[str]) -> str:
    if not model_versions:
        return "" if all_stores else _scope_filter(store_id)
    if all_stores:
        return _models_filter(model_versions)
    _quoted([store_id])
    return f"search_key in {json.dumps([search_key(m, s) for m in model_versions for s in (store_id, ALL_STORES)])}"


def _body_fields(body: np.ndarray | None) -> dict[str, float]:
    values = [0.0] * len(BODY_FIELDS) if body is None else [float(v) for v in body]
    return dict(zip(BODY_FIELDS, values))


def _row(template: Template, customer_id: str, scope: str) -> dict:
    """One template's row in one scope (the key derived from the scope here, and only here)."""
    return {"row_id": f"{template.template_id}@{scope}", "template_id": template.template_id,
            "customer_id": customer_id, "store_id": scope, "store_key": store_key(scope),
            "model_version": template.model_version, "model_key": model_key(template.model),
            "search_key": search_key(template.model, scope),
            "quality": float(template.quality),
            **_body_fields(template.body), "embedding": np.asarray(template.vector, dtype=np.float32).tolist()}


def _body_of(row: dict) -> np.ndarray | None:
    values = np.array([row.get(name, 0.0) for name in BODY_FIELDS], dtype=np.float32)
    return values if (values > 0).all() else None


class MilvusTemplateIndex:
    def __init__(self, config: MilvusConfig) -> None:
        self.config = config
        self._client = MilvusClient(uri=config.uri, timeout=config.timeout_s, grpc_options=MILVUS_GRPC_OPTIONS)
        self._can_compact = True  # until the engine says otherwise (milvus-lite)
        self._ensure_collection()

    @property
    def collection(self) -> str:
        """The collection's name in Milvus: the configured one and the schema's version."""
        return f"{sized_name(self.config.collection, self.config.dim)}_v{SCHEMA_VERSION}"

    def _schema_collections(self) -> list[str]:
        """Names of every schema's collection of this size, oldest first, this one last
        (schema 1 had no version in its name)."""
        base = sized_name(self.config.collection, self.config.dim)
        return [base, *(f"{base}_v{v}" for v in range(2, SCHEMA_VERSION + 1))]

    def collections_of_another_size(self) -> list[str]:
        """Template collections of this name made for another embedding size: the templates
        of a model this one replaced, which no search here can use."""
        c = self.config
        mine = set(self._schema_collections())
        pattern = re.compile(rf"^{re.escape(c.collection)}(_d\d+)?(_v\d+)?$")
        try:
            names = self._client.list_collections(timeout=c.timeout_s)
        except (MilvusException, grpc.RpcError) as exc:
            raise TemplateIndexError(f"listing collections: {exc}") from exc
        return sorted(name for name in names if pattern.match(name) and name not in mine)

    def _ensure_collection(self) -> None:
        c = self.config
        present = [name for name in self._schema_collections()
                   if self._client.has_collection(name, timeout=c.timeout_s)]
        # A copy drops its source only once it has finished, so the oldest collection there is
        # the whole one, and any newer is a copy cut short (a crash, or a rollout of two schema
        # versions at once): those go, and the copy starts again from the whole one.
        older = present[0] if present and present[0] != self.collection else None
        if older:
            for name in present[1:]:
                self._client.drop_collection(name, timeout=max(c.timeout_s, 30))
        if older or not present:
            self._create_collection()
            if older:
                self._copy_rows_from(older)
        self._client.load_collection(self.collection, timeout=max(c.timeout_s, 30))

    def _create_collection(self) -> None:
        c = self.config
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("row_id", DataType.VARCHAR, is_primary=True, max_length=140)
        schema.add_field("template_id", DataType.VARCHAR, max_length=64)
        schema.add_field("customer_id", DataType.VARCHAR, max_length=64)
        schema.add_field("store_id", DataType.VARCHAR, max_length=64)
        schema.add_field("store_key", DataType.INT64)
        schema.add_field("model_version", DataType.VARCHAR, max_length=64)
        schema.add_field("model_key", DataType.INT64)
        schema.add_field("search_key", DataType.INT64)
        schema.add_field("quality", DataType.FLOAT)
        for name in BODY_FIELDS:
            schema.add_field(name, DataType.FLOAT)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=c.dim)
        index = self._client.prepare_index_params()
        if c.index_type == "HNSW":
            index.add_index(field_name="embedding", index_type="HNSW", metric_type="IP",
                            params={"M": c.hnsw_m, "efConstruction": c.hnsw_ef_construction})
        else:
            index.add_index(field_name="embedding", index_type=c.index_type, metric_type="IP",
                            params={"nlist": c.nlist})
        version = self._server_version()
        index.add_index(field_name="customer_id", index_type=_scalar_index_type(version))
        index.add_index(field_name="store_id", index_type=_scalar_index_type(version))
        index.add_index(field_name="store_key", index_type=_scalar_index_type(version, numeric=True))
        index.add_index(field_name="model_key", index_type=_scalar_index_type(version, numeric=True))
        index.add_index(field_name="search_key", index_type=_scalar_index_type(version, numeric=True))
        self._client.create_collection(self.collection, schema=schema, index_params=index,
                                       consistency_level="Bounded", timeout=max(c.timeout_s, 30))

    def _copy_rows_from(self, older: str) -> int:
        """Every row of a collection of an older schema, into this one; then the old one goes.
        Fields the older schema lacks get their defaults: no body measures (schema 1), the
        scope's store_key (schemas 1 and 2), the model's model_key and search_key (schemas 1 to 3)."""
        c = self.config
        self._client.load_collection(older, timeout=max(c.timeout_s, 60))
        fields = {f["name"] for f in self._client.describe_collection(older, timeout=c.timeout_s)["fields"]}
        wanted = ["row_id", "template_id", "customer_id", "store_id", "model_version", "quality", "embedding",
                  *BODY_FIELDS]
        total = self._row_count(older, strong=True, timeout_s=max(c.timeout_s, 60))
        log.info("milvus.migrating", source=older, target=self.collection, rows=total)
        rows = self._client.query_iterator(older, batch_size=2000, filter="",
                                           output_fields=[f for f in wanted if f in fields],
                                           timeout=max(c.timeout_s, 60))
        copied, started, reported = 0, time.monotonic(), time.monotonic()
        while batch := rows.next():
            self._client.insert(self.collection, [{**dict.fromkeys(BODY_FIELDS, 0.0), **row,
                                                   "store_key": store_key(row["store_id"]),
                                                   "model_key": model_key(model_of(row["model_version"])),
                                                   "search_key": search_key(model_of(row["model_version"]),
                                                                            row["store_id"])}
                                                  for row in batch],
                                timeout=max(c.timeout_s, 60))
            copied += len(batch)
            if time.monotonic() - reported >= MIGRATION_PROGRESS_EVERY_S:  # a long copy says how far it is
                reported = time.monotonic()
                rate = copied / (reported - started)
                log.info("milvus.migrating", copied=copied, rows=total, rows_per_s=round(rate),
                         eta_s=round(max(total - copied, 0) / rate) if rate else None)
        rows.close()
        if self._row_count(self.collection, strong=True, timeout_s=max(c.timeout_s, 60)) != copied:
            raise TemplateIndexError(f"copying {older} into {self.collection} lost rows; the old collection is kept")
        self._client.flush(self.collection, timeout=120)
        self._client.drop_collection(older, timeout=max(c.timeout_s, 30))
        log.info("milvus.migrated", source=older, target=self.collection, rows=copied)
        return copied

    def _server_version(self) -> str:
        """The server's version; "" from milvus-lite, which does not implement the call (and
        pymilvus would log that as an error: quiet for this one call)."""
        calls = logging.getLogger("pymilvus.decorators")
        level = calls.level
        calls.setLevel(logging.CRITICAL)
        try:
            return str(self._client.get_server_version(timeout=self.config.timeout_s))
        except (MilvusException, grpc.RpcError):
            return ""
        finally:
            calls.setLevel(level)

    def _search_params(self) -> dict:
        if self.config.index_type == "HNSW":
            return {"metric_type": "IP", "params": {"ef": self.config.hnsw_ef}}
        return {"metric_type": "IP", "params": {"nprobe": self.config.nprobe}}

    def upsert(self, customer_id: str, templates: Sequence[Template], store_ids: Sequence[str],
               keep_scopes: bool = False) -> int:
        """Replace the customer's templates (idempotent: same input, same rows). keep_scopes:
        in the stores they serve now; a customer with none stays without (nothing is revived)."""
        scopes = self._scopes_of(customer_id) if keep_scopes else (list(store_ids) or [ALL_STORES])
        if not scopes:
            return 0
        _quoted([customer_id, *scopes])
        rows = [_row(t, customer_id, scope) for t in templates for scope in scopes]
        try:
            self._client.delete(self.collection, filter=f"customer_id in {_quoted([customer_id])}",
                                timeout=self.config.timeout_s)
            self._client.upsert(self.collection, rows, timeout=self.config.timeout_s)
            self._applied(customer_id)
        except MilvusException as exc:
            raise TemplateIndexError(f"upsert of {len(rows)} template rows failed: {exc}") from None
        return len(templates)

    def _applied(self, customer_id: str) -> int:
        """A Strong read of the customer's rows: returns once the query nodes have applied
        every write before it (see Consistency above). Their row count now."""
        return self._row_count(self.collection, f"customer_id in {_quoted([customer_id])}", strong=True)

    def _row_count(self, collection: str, flt: str = "", strong: bool = False, timeout_s: float | None = None) -> int:
        """Rows of the collection matching the filter; strong: once every earlier write is applied
        (else as the collection's Bounded consistency sees them)."""
        rows = self._client.query(collection, filter=flt, output_fields=["count(*)"],
                                  timeout=timeout_s or self.config.timeout_s,
                                  **({"consistency_level": "Strong"} if strong else {}))
        return int(rows[0]["count(*)"]) if rows else 0

    def _scopes_of(self, customer_id: str) -> list[str]:
        try:
            rows = self._client.query(self.collection, filter=f"customer_id in {_quoted([customer_id])}",
                                      output_fields=["store_id"], consistency_level="Strong",
                                      timeout=self.config.timeout_s)
        except MilvusException as exc:
            raise TemplateIndexError(f"reading the stores of {customer_id} failed: {exc}") from None
        return sorted({r["store_id"] for r in rows})

    def bulk_insert(self, customers: Sequence[str], vectors: np.ndarray, model_version: str,
                    batch: int = 5000, bodies: np.ndarray | None = None) -> int:
        """Load many customers' first templates at once (benchmarks, migrations); rows are
        assumed new, so nothing is deleted first. bodies: each customer's body measures [N, 2]."""
        _quoted(list(customers))
        for start in range(0, len(customers), batch):
            rows = [_row(Template(f"{c}-t0", v, 1.0, model_version, None if bodies is None else bodies[start + i]),
                         c, ALL_STORES)
                    for i, (c, v) in enumerate(zip(customers[start:start + batch], vectors[start:start + batch]))]
            try:
                self._client.insert(self.collection, rows, timeout=max(self.config.timeout_s, 60))
            except MilvusException as exc:
                raise TemplateIndexError(f"bulk insert failed: {exc}") from None
        self._client.flush(self.collection, timeout=120)
        return len(customers)

    def wait_indexed(self, progress: Callable[[int], None] = lambda rows: None, timeout_s: float = 600.0) -> None:
        """Return once the vector index covers every sealed row (a server builds it in the
        background after a flush; until then searches scan those rows without it, so a
        benchmark would time the wrong thing). milvus-lite reports it finished at once."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                state = self._client.describe_index(self.collection, "embedding", timeout=self.config.timeout_s)
            except MilvusException as exc:
                raise TemplateIndexError(f"reading the index state failed: {exc}") from None
            progress(int(state.get("indexed_rows", 0)))
            if state.get("state") == "Finished" and not state.get("pending_index_rows"):
                return
            if time.monotonic() > deadline:
                raise TemplateIndexError(f"the index was not built within {timeout_s:.0f} s: {state}")
            time.sleep(0.5)

    def remove(self, customer_id: str) -> int:
        """Delete every template of the customer: unfindable at once (see Consistency above),
        physically gone once segments compact."""
        flt = f"customer_id in {_quoted([customer_id])}"
        try:
            found = self._client.query(self.collection, filter=flt, output_fields=["template_id"],
                                       consistency_level="Strong", timeout=self.config.timeout_s)
            self._client.delete(self.collection, filter=flt, timeout=self.config.timeout_s)
            left = self._applied(customer_id)
            # Sealed segments are what compaction rewrites; the delete is visible without it.
            self._client.flush(self.collection, timeout=max(self.config.timeout_s, 30))
        except MilvusException as exc:
            raise TemplateIndexError(f"removal failed: {exc}") from None
        if left:
            raise TemplateIndexError(f"removal failed: {left} template rows of {customer_id} still found")
        self.compact()
        return len({row["template_id"] for row in found})

    def compact(self) -> bool:
        """Ask the engine to drop deleted rows physically. milvus-lite has no manual
        compaction (UNIMPLEMENTED): returns False there."""
        if not self._can_compact:
            return False
        try:
            self._client.compact(self.collection, timeout=self.config.timeout_s)
            return True
        except (MilvusException, grpc.RpcError):
            self._can_compact = False
            return False

    def search(self, embedding: np.ndarray, store_id: str, k: int, all_stores: bool = False,
               with_bodies: bool = False) -> list[Hit]:
        return self.search_many(embedding[None], store_id, k, all_stores, with_bodies)[0]

    def search_many(self, embeddings: np.ndarray, store_id: str, k: int, all_stores: bool = False,
                    with_bodies: bool = False) -> list[list[Hit]]:
        """Per query: the k best customers (best template each), highest similarity first;
        with_bodies: with their body measures where they have them (two more fields to read,
        about a sixth more per search on milvus-lite, so only when a track has a body)."""
        flt = _search_filter(store_id, all_stores, self.config.model_versions)
        try:
            results = self._client.search(
                self.collection, data=np.asarray(embeddings, dtype=np.float32).tolist(),
                limit=4 * k, filter=flt, output_fields=["customer_id", *(BODY_FIELDS if with_bodies else ())],
                search_params=self._search_params(), consistency_level=self.config.search_consistency,
                timeout=self.config.timeout_s,
            )
        except MilvusException as exc:
            raise TemplateIndexError(f"search failed: {exc}") from None
        out = []
        for hits in results:
            best: dict[str, tuple[float, dict]] = {}  # customer -> their best template's score and row
            for hit in hits:
                entity, score = hit["entity"], float(hit["distance"])
                if score > best.get(entity["customer_id"], (-2.0,))[0]:
                    best[entity["customer_id"]] = (score, entity)
            top = sorted(best.items(), key=lambda kv: -kv[1][0])[:k]
            out.append([Hit(customer, score, _body_of(entity) if with_bodies else None)
                        for customer, (score, entity) in top])
        return out

    def customers_for_store(self, store_id: str, limit: int) -> list[str]:
        """Customers a store's search may return (scoped to it or to every store)."""
        flt = f"store_id in {_quoted([store_id, ALL_STORES])}"
        try:
            rows = self._client.query(self.collection, filter=flt, output_fields=["customer_id"],
                                      limit=min(16_384, 8 * limit), timeout=self.config.timeout_s)
        except MilvusException as exc:
            raise TemplateIndexError(f"listing the customers of a store failed: {exc}") from None
        return list(dict.fromkeys(row["customer_id"] for row in rows))[:limit]

    def templates_of(self, customer_ids: Sequence[str]) -> dict[str, list[Template]]:
        """Every stored template of these customers (one per template, whatever its scopes)."""
        out: dict[str, dict[str, Template]] = {}
        for start in range(0, len(customer_ids), 500):
            chunk = list(customer_ids[start:start + 500])
            try:
                rows = self._client.query(
                    self.collection, filter=f"customer_id in {_quoted(chunk)}",
                    output_fields=["customer_id", "template_id", "quality", "model_version", "embedding",
                                   *BODY_FIELDS],
                    timeout=max(self.config.timeout_s, 30))
            except MilvusException as exc:
                raise TemplateIndexError(f"reading templates failed: {exc}") from None
            for row in rows:
                out.setdefault(row["customer_id"], {})[row["template_id"]] = Template(
                    row["template_id"], np.asarray(row["embedding"], dtype=np.float32), float(row["quality"]),
                    row["model_version"], _body_of(row))
        return {c: list(t.values()) for c, t in out.items()}

    def count(self, store_id: str | None = None) -> int:
        """Rows a search of this store looks through (its own and every-store rows; None:
        every store's), of the models it searches. Deleted rows are not counted (a query,
        unlike the collection's stats)."""
        scope = "" if store_id is None else f"store_id in {_quoted([store_id, ALL_STORES])}"
        flt = " and ".join(p for p in (scope, _models_filter(self.config.model_versions)) if p)
        try:
            return self._row_count(self.collection, flt)
        except MilvusException as exc:
            raise TemplateIndexError(f"counting templates failed: {exc}") from None

    def count_of_other_models(self) -> int:
        """Rows of models no search returns (0 where every model is searched): templates
        enrolled before a model change, whose customers must enrol again to be recognised."""
        if not self.config.model_versions:
            return 0
        try:
            # milvus-lite has no "not (...)"
            return self._row_count(self.collection, f"model_key not in {_model_keys(self.config.model_versions)}")
        except MilvusException as exc:
            raise TemplateIndexError(f"counting templates failed: {exc}") from None

    def drop(self) -> None:
        """Delete the whole collection (benchmarks and tests that made their own)."""
        try:
            self._client.drop_collection(self.collection, timeout=max(self.config.timeout_s, 30))
        except MilvusException as exc:
            raise TemplateIndexError(f"dropping {self.collection} failed: {exc}") from None

    def close(self) -> None:
        self._client.close()
