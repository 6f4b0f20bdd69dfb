"""The identity core: customers, consent, enrolment, keys, erasure, payment-method tokens and
the audit chain. It knows ports (Database, Keys, WalkEmbedder, TemplateIndex, Protector), not
gRPC, SQL or Vault. Every mutating use case takes a request id: the first outcome is stored
in the same transaction as the change and replayed to retries."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Sequence

import numpy as np

from identity.domain import audit
from identity.domain.errors import (ConsentRequired, CustomerErased, CustomerNotFound, DuplicateCustomer,
                                    NoPaymentMethod, PoorWalks)
from identity.domain.ports import (AuditRow, ConsentRow, CustomerRow, Database, EnrolmentStatistics, Envelope,
                                   IndexTemplate, Keys, PaymentMethodRow, Protector, TemplateIndex, TemplateRow,
                                   TransactionRecords, Tx, WalkEmbedder, WalkEmbedding)
from mesh.errors import InvalidArgument
from mesh.idempotency import request_fingerprint

BIOMETRIC_PURPOSE = "gait_identification"
MIN_WALK_QUALITY = 0.35  # below this a walk has too few clean cycles to be a template


class UnusableWalk(ValueError):
    """The embedder cannot use this walk (too short, body not visible...)."""


@dataclass(frozen=True)
class ConsentInput:
    policy_version: str
    purposes: tuple[str, ...]
    retention_days: int
    given_at: datetime
    jurisdiction: str


@dataclass(frozen=True)
class WalkInput:
    keypoints: np.ndarray  # [T, J, 3]
    fps: float
    source: str = ""
    # Body measures [shoulder, hip] in metres from a calibrated enrolment camera; None: not measured.
    body: np.ndarray | None = None

    def digest(self) -> str:
        """What the walk is, for idempotency (a walk without measures digests as it always did)."""
        content = hashlib.sha256(self.keypoints.tobytes())
        if self.body is not None:
            content.update(np.asarray(self.body, dtype=np.float32).tobytes())
        return content.hexdigest()


# A template's sealed plaintext (identity.templates.payload): 3 = the float32 embedding, the
# walk's float32 body measures (NaN: not measured), then the model head's float32 projection;
# rows sealed before projections were kept are 2 (no projection), before body measures 1 (the
# embedding alone).
TEMPLATE_PAYLOAD = 3
BODY_MEASURES = 2  # gait.body.MEASURES: shoulder and hip heights


@dataclass(frozen=True)
class OpenedTemplate:
    vector: np.ndarray  # the embedding under the model's own statistics
    body: np.ndarray | None
    projection: np.ndarray | None  # None: sealed before projections were kept, or the model has none


def _sealed_payload(vector: np.ndarray, body: np.ndarray | None, projection: np.ndarray | None) -> tuple[bytes, int]:
    """The plaintext to seal and its payload number (2 where the model gave no projection)."""
    measures = np.full(BODY_MEASURES, np.nan, np.float32) if body is None else np.asarray(body, np.float32)
    plain = vector.astype(np.float32).tobytes() + measures.tobytes()
    if projection is None:
        return plain, 2
    return plain + np.asarray(projection, np.float32).tobytes(), TEMPLATE_PAYLOAD


def _opened_payload(raw: bytes, payload: int) -> OpenedTemplate:
    values = np.frombuffer(raw, dtype=np.float32)
    if payload == 1:
        return OpenedTemplate(values, None, None)
    projection = None
    if payload == 3:
        dim = (len(values) - BODY_MEASURES) // 2
        values, projection = values[:dim + BODY_MEASURES], values[dim + BODY_MEASURES:]
    vector, body = values[:-BODY_MEASURES], values[-BODY_MEASURES:]
    return OpenedTemplate(vector, body if np.isfinite(body).all() else None, projection)


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    display_name: str
    phone_hint: str
    biometric_consent: bool
    templates: int
    created_at: str
    status: str = "active"


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str
    quality: float = 0.0


@dataclass(frozen=True)
class EnrolmentResult:
    accepted: int
    rejected: list[Rejection] = field(default_factory=list)
    template_quality: float = 0.0


@dataclass(frozen=True)
class ChargeProfile:
    customer_id: str
    payment_method_id: str
    gateway: str
    gateway_token: str
    per_visit_limit_paise: int
    daily_limit_paise: int
    # Every active method, the default first: the payment router fails over along these.
    routes: tuple[PaymentMethodRow, ...] = ()


def phone_hint(phone: str) -> str:
    return f"{phone[:3]}{'*' * max(0, len(phone) - 7)}{phone[-4:]}" if phone else ""


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class IdentityCore:
    db: Database
    keys: Keys
    index: TemplateIndex
    embedder: WalkEmbedder
    protector: Callable[[], Protector]  # fetched per use: a re-issued transform takes effect
    clock: Callable[[], datetime] = _now
    # Billing and payment records of the customer; None where they are not deployed.
    transactions: TransactionRecords | None = None
    # The transform read anew from its source (a re-protection must not use a cached one).
    fresh_protector: Callable[[], Protector] | None = None
    # The enrolment source's head-norm statistics: templates with a projection are normalised
    # with them before protection. None: templates keep the model's own statistics.
    enrolment_statistics: EnrolmentStatistics | None = None

    _heads: threading.local = field(default_factory=threading.local)

    # -- helpers ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        """A database transaction; once it commits, the newest audit head it wrote is
        anchored outside the database (Vault), so truncating the chain is detectable."""
        self._heads.pending = None
        with self.db.transaction() as tx:
            yield tx
        head, self._heads.pending = self._heads.pending, None
        if head is not None:
            self.keys.anchor_audit(*head)

    def _replayed(self, tx: Tx, request_id: str, operation: str, fingerprint: str) -> dict | None:
        stored = tx.claim_request(request_id, operation, fingerprint)
        return None if stored is None else json.loads(stored)

    def _remember(self, tx: Tx, request_id: str, result: object) -> None:
        tx.save_response(request_id, json.dumps(asdict(result), default=str).encode())  # type: ignore[call-overload]

    def _audit(self, tx: Tx, action: str, customer_id: str, actor: str, attributes: dict[str, str]) -> int:
        last_sequence, prev_mac = tx.last_audit()  # locks the chain's head until commit
        sequence, at = last_sequence + 1, self.clock()
        payload = audit.link(prev_mac, audit.canonical(sequence, at, action, customer_id, actor, attributes))
        mac = self.keys.audit_macs([payload])[0]
        tx.insert_audit(AuditRow(sequence, at, action, customer_id, actor, attributes, prev_mac, mac))
        self._heads.pending = (sequence, mac)
        return sequence

    def _active_customer(self, tx: Tx, customer_id: str, lock: bool = True) -> CustomerRow:
        row = tx.customer(customer_id, lock=lock)
        if row is None:
            raise CustomerNotFound(customer_id)
        if row.status == "erased":
            raise CustomerErased(customer_id)
        return row

    # -- customers ---------------------------------------------------------------------------

    def create_customer(self, request_id: str, display_name: str, phone: str, email: str,
                        consent: ConsentInput, home_region: str = "", actor: str = "") -> CustomerView:
        fp = request_fingerprint("create_customer", display_name, phone, email, asdict(consent), home_region)
        phone_lookup = self.keys.lookup_hash(f"phone:{phone}") if phone else None
        email_lookup = self.keys.lookup_hash(f"email:{email.lower()}") if email else None
        with self._transaction() as tx:
            replay = self._replayed(tx, request_id, "create_customer", fp)
            if replay is not None:
                return CustomerView(**replay)
            if tx.lookup_taken(phone_lookup, email_lookup):
                raise DuplicateCustomer("a customer with this phone number or email already exists")
            customer_id = str(uuid.uuid4())
            self.keys.create_customer_key(customer_id)
            tx.insert_customer(CustomerRow(
                customer_id, "active", self.keys.encrypt_field(customer_id, display_name),
                self.keys.encrypt_field(customer_id, phone), phone_hint(phone), phone_lookup,
                self.keys.encrypt_field(customer_id, email), email_lookup, home_region))
            tx.insert_consent(ConsentRow(customer_id, consent.policy_version, tuple(consent.purposes),
                                         consent.retention_days, consent.jurisdiction, consent.given_at))
            self._audit(tx, "customer.created", customer_id, actor,
                        {"policy_version": consent.policy_version, "purposes": ",".join(consent.purposes),
                         "jurisdiction": consent.jurisdiction})
            view = CustomerView(customer_id, display_name, phone_hint(phone),
                                BIOMETRIC_PURPOSE in consent.purposes, 0, self.clock().isoformat())
            self._remember(tx, request_id, view)
            return view

    def get_customer(self, customer_id: str, actor: str = "") -> CustomerView:
        with self._transaction() as tx:
            row = tx.customer(customer_id)
            if row is None:
                raise CustomerNotFound(customer_id)
            consent = tx.active_consent(customer_id)
            templates = len(tx.templates(customer_id))
            self._audit(tx, "data_access.customer", customer_id, actor, {})
        name = "" if row.status == "erased" else self.keys.decrypt_field(customer_id, row.display_name_ct)
        return CustomerView(customer_id, name, row.phone_hint,
                            consent is not None and BIOMETRIC_PURPOSE in consent.purposes, templates,
                            row.created_at.isoformat() if row.created_at else "", row.status)

    # -- enrolment -----------------------------------------------------------------------------

    def enrol_walks(self, request_id: str, customer_id: str, walks: Sequence[WalkInput],
                    store_ids: Sequence[str] = (), actor: str = "") -> EnrolmentResult:
        walk_digests = [w.digest() for w in walks]
        fp = request_fingerprint("enrol_walks", customer_id, walk_digests, list(store_ids))
        with self._transaction() as tx:
            replay = self._replayed(tx, request_id, "enrol_walks", fp)
            if replay is not None:
                return EnrolmentResult(replay["accepted"], [Rejection(**r) for r in replay["rejected"]],
                                       replay["template_quality"])
            self._active_customer(tx, customer_id)
            consent = tx.active_consent(customer_id)
            if consent is None or BIOMETRIC_PURPOSE not in consent.purposes:
                raise ConsentRequired(f"customer {customer_id} has not consented to {BIOMETRIC_PURPOSE}",
                                      metadata={"customer_id": customer_id})
            accepted, rejected = self._embed_walks(walks)
            if not accepted:
                raise PoorWalks(f"none of the {len(walks)} walks can be enrolled",
                                field_violations=[(f"walks[{r.index}]", r.reason) for r in rejected])
            protector = self.protector()
            new_rows = []
            for walk, embedding in accepted:
                template_id = f"{customer_id[:8]}-{uuid.uuid4().hex[:16]}"
                plain, payload = _sealed_payload(embedding.vector, walk.body, embedding.projection)
                envelope = self.keys.seal(customer_id, plain, template_id.encode())
                new_rows.append(TemplateRow(template_id, customer_id, self.embedder.model_version,
                                            self._index_label(protector), embedding.quality, envelope.wrapped_key,
                                            envelope.nonce, envelope.ciphertext, walk.source, payload))
            tx.insert_templates(new_rows)
            # Every template is normalised anew with the statistics in force now, so a customer
            # never has templates of two statistics side by side in the index.
            everything = self._protected(customer_id, tx.templates(customer_id), protector)
            tx.relabel_templates(customer_id, self._index_label(protector))
            self.index.upsert(request_id, customer_id, everything, store_ids)
            quality = float(np.mean([e.quality for _, e in accepted]))
            self._audit(tx, "enrolment", customer_id, actor,
                        {"accepted": str(len(accepted)), "rejected": str(len(rejected)),
                         "quality": f"{quality:.3f}", "model": self.embedder.model_version})
            result = EnrolmentResult(len(accepted), rejected, quality)
            self._remember(tx, request_id, result)
            return result

    def _embed_walks(self, walks: Sequence[WalkInput]) -> tuple[list[tuple[WalkInput, WalkEmbedding]],
                                                                 list[Rejection]]:
        accepted, rejected = [], []
        for i, walk in enumerate(walks):
            try:
                embedding = self.embedder.embed(walk.keypoints, walk.fps)
            except UnusableWalk as exc:
                rejected.append(Rejection(i, str(exc)))
                continue
            if embedding.quality < MIN_WALK_QUALITY:
                rejected.append(Rejection(i, f"walk quality {embedding.quality:.2f} is below "
                                             f"{MIN_WALK_QUALITY} (too few clean gait cycles)", embedding.quality))
                continue
            accepted.append((walk, embedding))
        return accepted, rejected

    def _index_label(self, protector: Protector) -> str:
        """What the index vectors of a customer were made with: the transform's label, and the
        enrolment statistics' where templates are normalised with them. A re-protection brings
        every customer whose label differs over to this one."""
        stats = self.enrolment_statistics
        return protector.label if stats is None else f"{protector.label}+{stats.label}"

    def _protected(self, customer_id: str, rows: list[TemplateRow], protector: Protector) -> list[IndexTemplate]:
        """The customer's raw templates, decrypted, normalised with the enrolment statistics
        where those are set and the template kept its projection (older templates keep the
        model's own statistics), and transformed for the index, each with the customer's
        enrolment body: the mean over their measured walks (one walk's measures vary with
        camera and shoes; the mean is what a visit is compared with). Only templates of the
        embedder's model go to the index: the matcher searches (and stores) no other model's,
        so after a model change a customer's old templates stay here, sealed, and their new
        enrolment is indexed alone."""
        opened = []
        for row in rows:
            raw = self.keys.open(customer_id, Envelope(row.wrapped_key, row.nonce, row.ciphertext),
                                 row.template_id.encode())
            opened.append((row, _opened_payload(raw, row.payload)))
        measured = [t.body for _, t in opened if t.body is not None]
        body = np.mean(measured, axis=0).astype(np.float32) if measured else None
        stats, label = self.enrolment_statistics, self._index_label(protector)
        out = []
        for row, template in opened:
            if not self.embedder.names.accepts(row.model_version):
                continue
            vector = template.vector
            if stats is not None and template.projection is not None:
                vector = stats.embed(template.projection[None])[0]
            out.append(IndexTemplate(row.template_id, protector.apply(vector), row.quality,
                                     f"{row.model_version}/{label}", body))
        return out

    # -- keys ----------------------------------------------------------------------------------

    def rotate_key(self, request_id: str, customer_id: str, actor: str = "") -> int:
        """New key version; data keys and fields re-wrapped inside Vault. Old versions keep
        decrypting meanwhile, so nothing stops during a rotation."""
        with self._transaction() as tx:
            replay = self._replayed(tx, request_id, "rotate_key",
                                    request_fingerprint("rotate_key", customer_id))
            if replay is not None:
                return int(replay["version"])
            row = self._active_customer(tx, customer_id)
            version = self.keys.rotate(customer_id)
            templates = tx.templates(customer_id)
            rewrapped = self.keys.rewrap(customer_id, [t.wrapped_key for t in templates])
            tx.rewrap_templates(dict(zip((t.template_id for t in templates), rewrapped)))
            fields = [c for c in (row.display_name_ct, row.phone_ct, row.email_ct) if c]
            new_fields = dict(zip(fields, self.keys.rewrap(customer_id, fields)))
            tx.replace_fields(customer_id, new_fields.get(row.display_name_ct, ""), new_fields.get(row.phone_ct, ""),
                              new_fields.get(row.email_ct, ""))
            self._audit(tx, "key.rotated", customer_id, actor, {"version": str(version),
                                                                 "rewrapped": str(len(templates) + len(fields))})
            self._remember(tx, request_id, _Version(version))
            return version

    # -- template protection -------------------------------------------------------------------

    def reprotect_templates(self, request_id: str, actor: str = "",
                            progress: Callable[[int], None] = lambda done: None) -> tuple[int, int, int]:
        """Bring every active customer's index vectors to the current transform (after a
        re-issue in Vault) and the current enrolment statistics (after they were measured or
        measured again). Resumable by construction: the customers left are those whose
        templates carry another transform's label, so a repeat (or a run after a crash) does only
        what is left. The matcher keeps each customer's store scopes. Returns (customers,
        templates, transform version)."""
        protector = (self.fresh_protector or self.protector)()
        label = self._index_label(protector)
        customers = templates = 0
        while True:
            with self._transaction() as tx:
                batch = tx.customers_not_protected_with(label, 100)
            if not batch:
                break
            for customer_id in batch:
                with self._transaction() as tx:
                    rows = tx.templates(customer_id)
                    protected = self._protected(customer_id, rows, protector)
                    # The index first, the label after: a crash in between is redone, never skipped.
                    # A customer with templates of an older model only has none to index (theirs
                    # stay unsearched in the matcher until they enrol again).
                    if protected:
                        self.index.upsert(str(uuid.uuid5(uuid.UUID(request_id), customer_id)), customer_id,
                                          protected, (), keep_store_scopes=True)
                    tx.relabel_templates(customer_id, label)
                customers, templates = customers + 1, templates + len(rows)
                progress(customers)
        with self._transaction() as tx:
            self._audit(tx, "templates.reprotected", "", actor,
                        {"transform": label, "customers": str(customers), "templates": str(templates)})
        return customers, templates, protector.version

    # -- consent and erasure ------------------------------------------------------------------

    def withdraw_consent(self, request_id: str, customer_id: str, actor: str = "") -> int:
        with self._transaction() as tx:
            replay = self._replayed(tx, request_id, "withdraw_consent",
                                    request_fingerprint("withdraw", customer_id))
            if replay is not None:
                return int(replay["count"])
            self._active_customer(tx, customer_id)
            self.index.remove(request_id, customer_id)  # unfindable before anything else
            destroyed = tx.delete_templates(customer_id)
            tx.withdraw_consent(customer_id, self.clock())
            self._audit(tx, "consent.withdrawn", customer_id, actor, {"templates_destroyed": str(destroyed)})
            self._remember(tx, request_id, _Count(destroyed))
            return destroyed

    def erase(self, request_id: str, customer_id: str, actor: str = "") -> tuple[str, int]:
        """Right to erasure: templates out of the index, the customer's key destroyed (every
        ciphertext under it unreadable), personal columns wiped, payment tokens dropped;
        the audit chain keeps only the random customer id, which nothing links to a person."""
        with self._transaction() as tx:
            replay = self._replayed(tx, request_id, "erase", request_fingerprint("erase", customer_id))
            if replay is not None:
                return replay["erased_at"], int(replay["count"])
            row = tx.customer(customer_id, lock=True)
            if row is None:
                raise CustomerNotFound(customer_id)
            at = self.clock()
            # First, and idempotent: if billing or payment can't be reached the erasure fails
            # whole and is retried, rather than leaving transactions linked to the person.
            linked = self.transactions.anonymise(request_id, customer_id) if self.transactions else 0
            self.index.remove(request_id, customer_id)
            self.keys.destroy(customer_id)
            templates = tx.delete_templates(customer_id)
            anonymised = tx.erase_customer(customer_id, at) + linked
            self._audit(tx, "customer.erased", customer_id, actor,
                        {"templates_destroyed": str(templates), "records_anonymised": str(anonymised)})
            self._remember(tx, request_id, _Erased(at.isoformat(), anonymised))
            return at.isoformat(), anonymised

    # -- payment methods ------------------------------------------------------------------------

    def add_payment_method(self, request_id: str, customer_id: str, kind: str, gateway: str, token: str,
                           last4: str = "", brand: str = "", upi_handle_masked: str = "",
                           actor: str = "", gateway_customer: str = "") -> str:
        if token.isdigit() and len(token) >= 12:
            raise InvalidArgument("gateway_token looks like a card number; send the gateway's token",
                                  field_violations=[("gateway_token", "must be a gateway token, never a PAN")])
        fp = request_fingerprint("add_payment_method", customer_id, kind, gateway, token, last4, brand,
                                 upi_handle_masked, gateway_customer)
        with self._transaction() as tx:
            replay = self._replayed(tx, request_id, "add_payment_method", fp)
            if replay is not None:
                return str(replay["payment_method_id"])
            self._active_customer(tx, customer_id)
            pm_id = str(uuid.uuid4())
            tx.insert_payment_method(PaymentMethodRow(pm_id, customer_id, kind, gateway, token, last4, brand,
                                                      upi_handle_masked, 1_000_000, 2_500_000, gateway_customer))
            self._audit(tx, "payment_method.added", customer_id, actor,
                        {"kind": kind, "gateway": gateway, "last4": last4, "brand": brand})
            self._remember(tx, request_id, _PaymentMethod(pm_id))
            return pm_id

    def charge_profile(self, customer_id: str, actor: str = "") -> ChargeProfile:
        with self._transaction() as tx:
            self._active_customer(tx, customer_id, lock=False)
            methods = tx.active_payment_methods(customer_id)
            if not methods:
                raise NoPaymentMethod(customer_id)
            pm = methods[0]
            self._audit(tx, "data_access.charge_profile", customer_id, actor, {"payment_method": pm.payment_method_id})
        return ChargeProfile(customer_id, pm.payment_method_id, pm.gateway, pm.gateway_token,
                             pm.per_visit_limit_paise, pm.daily_limit_paise, tuple(methods))

    def contact(self, customer_id: str, purpose: str, actor: str = "") -> Contact:
        """Where to reach an active customer; the read is audited with its purpose."""
        with self._transaction() as tx:
            row = self._active_customer(tx, customer_id, lock=False)
            self._audit(tx, "data_access.contact", customer_id, actor, {"purpose": purpose})

        def opened(ciphertext: str) -> str:  # a field the customer left empty stays empty
            return self.keys.decrypt_field(customer_id, ciphertext) if ciphertext else ""

        return Contact(customer_id, opened(row.display_name_ct), opened(row.email_ct), opened(row.phone_ct))

    # -- audit -------------------------------------------------------------------------------------

    def append_audit(self, request_id: str, action: str, customer_id: str, attributes: dict[str, str],
                     actor: str = "") -> int:
        fp = request_fingerprint("append_audit", action, customer_id, attributes)
        with self._transaction() as tx:
            replay = self._replayed(tx, request_id, "append_audit", fp)
            if replay is not None:
                return int(replay["sequence"])
            sequence = self._audit(tx, action, customer_id, actor, attributes)
            self._remember(tx, request_id, _Sequence(sequence))
            return sequence

    def verify_audit(self) -> audit.ChainReport:
        return audit.verify(self.db.audit_rows(), self.keys.audit_macs, self.keys.audit_anchor())


@dataclass(frozen=True)
class Contact:
    customer_id: str
    display_name: str
    email: str
    phone_e164: str


@dataclass(frozen=True)
class _Version:
    version: int


@dataclass(frozen=True)
class _Count:
    count: int


@dataclass(frozen=True)
class _Erased:
    erased_at: str
    count: int


@dataclass(frozen=True)
class _PaymentMethod:
    payment_method_id: str


@dataclass(frozen=True)
class _Sequence:
    sequence: int
