"""The identity service in the stack `gaitpay up` starts: enrolment with consent, keys in
Vault, protected templates in the matcher, identification, rotation, erasure, and an audit
chain that catches tampering."""

from __future__ import annotations

import time
import uuid

import grpc
import hvac
import numpy as np
import psycopg
import pytest
from pymilvus import MilvusClient

from edge.adapters.matcher_link import MatcherLink, keypoint_window
from gait.embedder import Embedder
from gait.synth.dataset import people, walks_of
from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from gaitpay.matcher.v1 import matcher_pb2
from gaitpay_cli.walk_messages import walk_message
from matcher.adapters.milvus_index import SCHEMA_VERSION, sized_name
from mesh.errors import error_info

pytestmark = pytest.mark.stack
# The matcher's collection in the stack's Milvus, named by the shipped model's embedding size.
TEMPLATES = f"{sized_name('gait_templates', Embedder().dim)}_v{SCHEMA_VERSION}"


def consent(purposes=("gait_identification", "payment")) -> identity_pb2.Consent:
    c = identity_pb2.Consent(policy_version="2026-11", purposes=list(purposes), retention_days=365,
                             jurisdiction="IN-DPDP")
    c.given_at.GetCurrentTime()
    return c


def rid() -> str:
    return str(uuid.uuid4())


def reason(exc: grpc.RpcError) -> str:
    from grpc_status import rpc_status

    return error_info(rpc_status.from_call(exc)).reason


async def identified_as(settings, walks, track: str) -> str:
    link = MatcherLink(settings)
    link.open()
    for seq, walk in enumerate(walks):
        await link.send(keypoint_window("store-1", "cam-1", track, seq, walk.keypoints[:, :17], walk.fps))
    await link.finish()
    decisions = [r.decision async for r in link.responses()]
    await link.close()
    last = decisions[-1]
    return last.customer_id if last.state == matcher_pb2.DECISION_STATE_IDENTIFIED else ""


def db_count(dsn: str, sql: str, *args) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


async def test_enrol_identify_rotate_erase_and_audit(local_stack) -> None:
    state_env = __import__("json").loads((local_stack.home / "stack.json").read_text())["env"]
    dsn, vault_addr, root = state_env["GAITPAY_POSTGRES_DSN"], state_env["VAULT_ADDR"], state_env["VAULT_TOKEN"]
    walks, _ = walks_of(people(1, seed=9001), 4, seed=9002)
    phone = f"+9198{uuid.uuid4().int % 10**8:08d}"
    with local_stack.channel("identity") as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        create = identity_pb2.CreateCustomerRequest(request_id=rid(), display_name="Asha Rao", phone_e164=phone,
                                                    email=f"asha.{uuid.uuid4().hex[:6]}@example.com",
                                                    consent=consent(), home_region="IN-KA")
        customer = stub.CreateCustomer(create, timeout=30).customer
        assert customer.phone_hint == phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
        assert stub.CreateCustomer(create, timeout=30).customer.customer_id == customer.customer_id  # same request id
        cid = customer.customer_id
        # Nothing personal in plaintext at rest; the lookup is a keyed hash.
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT display_name_ct, phone_ct, phone_lookup FROM identity.customers "
                               "WHERE customer_id = %s", (cid,)).fetchone()
        assert row[0].startswith("vault:v1:") and row[1].startswith("vault:v1:") and phone not in row[2]

        customers_before = db_count(dsn, "SELECT count(*) FROM identity.customers")
        with pytest.raises(grpc.RpcError) as dup:  # another customer with the same phone
            stub.CreateCustomer(identity_pb2.CreateCustomerRequest(
                request_id=rid(), display_name="Someone Else", phone_e164=phone, consent=consent()), timeout=30)
        assert dup.value.code() == grpc.StatusCode.ALREADY_EXISTS and reason(dup.value) == "DUPLICATE_CUSTOMER"
        with pytest.raises(grpc.RpcError) as reused:  # the same request id for another request
            stub.CreateCustomer(identity_pb2.CreateCustomerRequest(
                request_id=create.request_id, display_name="Other", phone_e164="+919000000001", consent=consent()),
                timeout=30)
        assert reason(reused.value) == "IDEMPOTENCY_KEY_REUSED"
        assert db_count(dsn, "SELECT count(*) FROM identity.customers") == customers_before

        # Bad enrolments change nothing.
        no_consent = stub.CreateCustomer(identity_pb2.CreateCustomerRequest(
            request_id=rid(), display_name="No Biometrics", consent=consent(("payment",))), timeout=30).customer
        bad = walk_message(walks[0])
        bad.keypoints.xyc[5] = float("nan")
        cases = [
            (identity_pb2.EnrollWalksRequest(request_id=rid(), customer_id=cid, walks=[bad]),
             grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED"),
            (identity_pb2.EnrollWalksRequest(request_id=rid(), customer_id=str(uuid.uuid4()),
                                             walks=[walk_message(walks[0])]), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
            (identity_pb2.EnrollWalksRequest(request_id=rid(), customer_id=no_consent.customer_id,
                                             walks=[walk_message(walks[0])]),
             grpc.StatusCode.FAILED_PRECONDITION, "CONSENT_REQUIRED"),
        ]
        for request, code, why in cases:
            with pytest.raises(grpc.RpcError) as caught:
                stub.EnrollWalks(request, timeout=60)
            assert (caught.value.code(), reason(caught.value)) == (code, why), caught.value.details()
        assert db_count(dsn, "SELECT count(*) FROM identity.templates WHERE customer_id IN (%s, %s)",
                        cid, no_consent.customer_id) == 0

        enrol = identity_pb2.EnrollWalksRequest(request_id=rid(), customer_id=cid,
                                                walks=[walk_message(w) for w in walks], store_ids=["store-1"])
        result = stub.EnrollWalks(enrol, timeout=60)
        assert result.accepted + len(result.rejected) == 4 and result.accepted >= 2
        assert stub.EnrollWalks(enrol, timeout=60) == result  # a retry replays, adds nothing
        assert stub.GetCustomer(identity_pb2.GetCustomerRequest(customer_id=cid), timeout=30).customer.templates \
            == result.accepted

        # The index holds transformed templates: cosine with the raw embedding is near zero,
        # yet identification works because the matcher transforms queries the same way.
        milvus = MilvusClient(uri=state_env["GAITPAY_MILVUS_URI"])
        stored = milvus.query(TEMPLATES, filter=f'customer_id == "{cid}"', output_fields=["embedding"])
        raw = Embedder().vector(walks[0])
        assert max(abs(float(np.dot(raw, np.asarray(s["embedding"])))) for s in stored) < 0.5
        assert await identified_as(local_stack.settings(), walks[:3], f"t-{cid[:8]}") == cid
        # The matcher put the identification on the audit trail (sent in the background).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not db_count(
                dsn, "SELECT count(*) FROM identity.audit_log WHERE customer_id = %s AND action = 'identification'",
                cid):
            time.sleep(0.1)
        assert db_count(dsn, "SELECT count(*) FROM identity.audit_log WHERE customer_id = %s "
                        "AND action = 'identification'", cid) == 1

        # Key rotation: new version, old ciphertexts re-wrapped, everything still readable.
        version = stub.RotateCustomerKey(identity_pb2.RotateCustomerKeyRequest(request_id=rid(), customer_id=cid),
                                         timeout=30).key_version
        assert version == 2
        with psycopg.connect(dsn) as conn:
            wrapped = [r[0] for r in conn.execute("SELECT wrapped_key FROM identity.templates WHERE customer_id = %s",
                                                  (cid,))]
        assert wrapped and all(w.startswith("vault:v2:") for w in wrapped)
        assert stub.GetCustomer(identity_pb2.GetCustomerRequest(customer_id=cid), timeout=30).customer.display_name \
            == "Asha Rao"

        # Payment methods: tokens only.
        with pytest.raises(grpc.RpcError) as pan:
            stub.AddPaymentMethod(identity_pb2.AddPaymentMethodRequest(
                request_id=rid(), customer_id=cid, kind=identity_pb2.PAYMENT_METHOD_KIND_CARD, gateway="stripe",
                gateway_token="4242424242424242", last4="4242"), timeout=30)
        assert pan.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        stub.AddPaymentMethod(identity_pb2.AddPaymentMethodRequest(
            request_id=rid(), customer_id=cid, kind=identity_pb2.PAYMENT_METHOD_KIND_CARD, gateway="stripe",
            gateway_token="pm_card_visa", last4="4242", brand="visa"), timeout=30)
        profile = stub.GetChargeProfile(identity_pb2.GetChargeProfileRequest(customer_id=cid), timeout=30)
        assert profile.gateway_token == "pm_card_visa" and profile.per_visit_limit.currency_code == "INR"

        # Erasure: unfindable, ciphertexts undecryptable, personal columns gone.
        erased = stub.EraseCustomer(identity_pb2.EraseCustomerRequest(request_id=rid(), customer_id=cid), timeout=30)
        assert erased.erased_at.seconds > 0
        assert await identified_as(local_stack.settings(), walks[:3], f"after-{cid[:8]}") != cid
        assert not milvus.query(TEMPLATES, filter=f'customer_id == "{cid}"', output_fields=["customer_id"])
        vault = hvac.Client(url=vault_addr, token=root)
        with pytest.raises(hvac.exceptions.VaultError):
            vault.secrets.transit.decrypt_data(f"customer-{cid}", ciphertext=wrapped[0])
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT status, display_name_ct, phone_ct, phone_lookup FROM identity.customers "
                               "WHERE customer_id = %s", (cid,)).fetchone()
            tokens = conn.execute("SELECT gateway_token FROM identity.payment_methods WHERE customer_id = %s",
                                  (cid,)).fetchall()
        assert row == ("erased", "", "", None) and all(t[0] == "" for t in tokens)
        assert db_count(dsn, "SELECT count(*) FROM identity.templates WHERE customer_id = %s", cid) == 0
        with pytest.raises(grpc.RpcError) as gone:
            stub.EnrollWalks(identity_pb2.EnrollWalksRequest(request_id=rid(), customer_id=cid,
                                                             walks=[walk_message(walks[0])]), timeout=60)
        assert gone.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        milvus.close()

    # The audit chain: intact, then one edited row is caught by `gaitpay audit verify`.
    ok = local_stack.cli("audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact" in ok.stdout
    with psycopg.connect(dsn) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM identity.audit_log WHERE customer_id = %s "
                                              "ORDER BY sequence", (cid,))]
        assert actions[0] == "customer.created" and "enrolment" in actions and "key.rotated" in actions
        assert "payment_method.added" in actions and actions[-1] == "customer.erased"
        assert actions.index("identification") < actions.index("key.rotated")
        newest = conn.execute("SELECT * FROM identity.audit_log ORDER BY sequence DESC LIMIT 1").fetchone()
        conn.execute("DELETE FROM identity.audit_log WHERE sequence = %s", (newest[0],))
        conn.commit()
        truncated = local_stack.cli("audit", "verify")
        assert truncated.returncode == 1 and "deleted" in truncated.stderr, truncated.stderr
        conn.execute("INSERT INTO identity.audit_log VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                     (*newest[:5], psycopg.types.json.Jsonb(newest[5]), *newest[6:]))
        conn.commit()
        assert local_stack.cli("audit", "verify").returncode == 0  # restored exactly: intact again
        victim = conn.execute("SELECT sequence FROM identity.audit_log WHERE customer_id = %s AND action = "
                              "'enrolment' ORDER BY sequence LIMIT 1", (cid,)).fetchone()[0]
        conn.execute("UPDATE identity.audit_log SET attributes = attributes || '{\"accepted\": \"9\"}' "
                     "WHERE sequence = %s", (victim,))
    broken = local_stack.cli("audit", "verify")
    assert broken.returncode == 1
    assert f"BROKEN at entry {victim}" in broken.stderr and "altered" in broken.stderr


async def test_a_reissued_transform_reprotects_every_customer_without_a_restart(local_stack) -> None:
    """A leaked index is remedied by re-issuing the transform: the stored vectors change
    (the stolen ones match nothing), scopes stay, and identification goes on without a restart."""
    state_env = __import__("json").loads((local_stack.home / "stack.json").read_text())["env"]
    dsn = state_env["GAITPAY_POSTGRES_DSN"]
    walks, _ = walks_of(people(1, seed=9101), 4, seed=9102)
    with local_stack.channel("identity") as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        cid = stub.CreateCustomer(identity_pb2.CreateCustomerRequest(
            request_id=rid(), display_name="Ravi", consent=consent()), timeout=30).customer.customer_id
        # Measured by a calibrated enrolment camera: the measures ride sealed with the templates.
        bodies = [np.array([1.44 + 0.01 * i, 0.95]) for i in range(len(walks))]
        enrolled = stub.EnrollWalks(identity_pb2.EnrollWalksRequest(
            request_id=rid(), customer_id=cid, store_ids=["store-1"],
            walks=[walk_message(w, body=b) for w, b in zip(walks, bodies)]), timeout=60)
        rejected = {r.index for r in enrolled.rejected}
        enrolment_body = np.mean([b for i, b in enumerate(bodies) if i not in rejected], axis=0)
        # Payload 3: the embedding, the body measures and the head's projection (for enrolment statistics).
        assert db_count(dsn, "SELECT count(*) FROM identity.templates WHERE customer_id = %s AND payload = 3",
                        cid) == enrolled.accepted
        assert await identified_as(local_stack.settings(), walks[:3], f"pre-{cid[:8]}") == cid
        milvus = MilvusClient(uri=state_env["GAITPAY_MILVUS_URI"])
        fields = ["template_id", "store_id", "embedding", "model_version", "shoulder_height_m", "hip_height_m"]
        before = {r["template_id"]: r for r in milvus.query(TEMPLATES, filter=f'customer_id == "{cid}"',
                                                            output_fields=fields)}

        done = local_stack.cli("vault", "reissue-transform")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "re-protected" in done.stdout
        after = {r["template_id"]: r for r in milvus.query(TEMPLATES, filter=f'customer_id == "{cid}"',
                                                           output_fields=fields)}
        milvus.close()
        assert set(after) == set(before) and {r["store_id"] for r in after.values()} == {"store-1"}
        # What a thief took before the re-issue no longer lines up with what is stored now.
        overlap = [abs(float(np.dot(before[t]["embedding"], after[t]["embedding"]))) for t in after]
        assert max(overlap) < 0.5, overlap
        assert all(b["model_version"] != after[t]["model_version"] for t, b in before.items())  # the new label
        # Each row holds the customer's enrolment body (the mean of the measured walks), before and after.
        for rows in (before, after):
            assert all(np.allclose([r["shoulder_height_m"], r["hip_height_m"]], enrolment_body, atol=1e-5)
                       for r in rows.values())
        # The matcher re-reads the transform every second in this stack: within a few refreshes
        # (a loaded CI machine can take longer than one) it identifies the customer again.
        deadline, attempt, found = time.monotonic() + 15, 0, ""
        while found != cid and time.monotonic() < deadline:
            time.sleep(1.0)
            attempt += 1
            found = await identified_as(local_stack.settings(), walks[:3], f"post{attempt}-{cid[:8]}")
        assert found == cid
        again = stub.ReprotectTemplates(identity_pb2.ReprotectTemplatesRequest(request_id=rid()), timeout=120)
        assert again.customers == 0  # done already: a repeat does only what is left
        reindexed = local_stack.cli("templates", "reindex")
        assert reindexed.returncode == 0 and "re-indexed 0 customers" in reindexed.stdout, reindexed.stdout
    actions = db_count(dsn, "SELECT count(*) FROM identity.audit_log WHERE action = 'templates.reprotected'")
    assert actions >= 2


def test_contact_details_go_to_billing_alone_each_read_audited_and_none_after_erasure(local_stack) -> None:
    email, phone = f"meera.{uuid.uuid4().hex[:6]}@example.com", f"+9197{uuid.uuid4().int % 10**8:08d}"
    with local_stack.channel("identity") as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        customer = stub.CreateCustomer(identity_pb2.CreateCustomerRequest(
            request_id=rid(), display_name="Meera Iyer", phone_e164=phone, email=email, consent=consent()),
            timeout=30).customer
        ask = identity_pb2.GetContactRequest(customer_id=customer.customer_id, purpose="receipt")
        for caller in ("matcher", "gateway", "edge"):
            with local_stack.channel("identity", caller) as other, pytest.raises(grpc.RpcError) as refused:
                identity_pb2_grpc.IdentityServiceStub(other).GetContact(ask, timeout=10)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, caller
        with local_stack.channel("identity", "billing") as billing:
            contact = identity_pb2_grpc.IdentityServiceStub(billing).GetContact(ask, timeout=10)
        assert (contact.display_name, contact.email, contact.phone_e164) == ("Meera Iyer", email, phone)
        with pytest.raises(grpc.RpcError) as bad:
            stub.GetContact(identity_pb2.GetContactRequest(customer_id=customer.customer_id, purpose="Marketing!"),
                            timeout=10)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        stub.EraseCustomer(identity_pb2.EraseCustomerRequest(request_id=rid(), customer_id=customer.customer_id),
                           timeout=60)
        with pytest.raises(grpc.RpcError) as erased:
            stub.GetContact(ask, timeout=10)
        assert erased.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "erased" in erased.value.details()
    state_env = __import__("json").loads((local_stack.home / "stack.json").read_text())["env"]
    reads = db_count(state_env["GAITPAY_POSTGRES_DSN"], "SELECT count(*) FROM identity.audit_log WHERE "
                     "customer_id = %s AND action = 'data_access.contact'", customer.customer_id)
    assert reads == 1, "the one read that was allowed is in the audit trail"
