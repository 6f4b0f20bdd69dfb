"""vault-policies/ loaded into a real OpenBao server: each service's token can do its job
and is refused everything else."""

from __future__ import annotations

import base64
from pathlib import Path

import hvac
import pytest
from hvac.exceptions import Forbidden

from mesh import vault_provision

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def vault(backing_services: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """The session's provisioned OpenBao (tests/conftest.py): address, root token, service tokens."""
    tokens = {k.removesuffix("_token"): v for k, v in backing_services.items()
              if k.endswith("_token") and k != "root_token"}
    return backing_services["vault_addr"], backing_services["root_token"], tokens


def as_service(vault, service: str) -> hvac.Client:
    addr, _, tokens = vault
    return hvac.Client(url=addr, token=tokens[service], timeout=5)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_identity_manages_customer_keys_and_nothing_else(vault) -> None:
    identity = as_service(vault, "identity")
    transit = identity.secrets.transit
    transit.create_key("customer-0001", mount_point="transit")
    ciphertext = transit.encrypt_data("customer-0001", plaintext=b64("+919876543210"))["data"]["ciphertext"]
    assert transit.decrypt_data("customer-0001", ciphertext=ciphertext)["data"]["plaintext"] == b64("+919876543210")
    transit.generate_data_key("customer-0001", key_type="plaintext")
    transit.rotate_key("customer-0001")
    transit.generate_hmac("lookup", hash_input=b64("phone:+91"), algorithm="sha2-256")
    identity.secrets.kv.v2.read_secret_version(vault_provision.TRANSFORM_PATH, mount_point="secret",
                                              raise_on_deleted_version=True)
    transit.update_key_configuration("customer-0001", deletion_allowed=True)
    transit.delete_key("customer-0001")
    refused = [
        lambda: identity.secrets.kv.v2.create_or_update_secret(vault_provision.TRANSFORM_PATH, {"secret": "00"},
                                                               mount_point="secret"),
        lambda: identity.secrets.kv.v2.read_secret_version("gaitpay/payment/stripe", mount_point="secret"),
        lambda: transit.encrypt_data("audit", plaintext=b64("x")),  # shared keys are for MACs only
        lambda: identity.sys.create_or_update_policy("mine", 'path "*" { capabilities = ["sudo"] }'),
        lambda: transit.export_key("customer-0002", key_type="encryption-key"),
    ]
    for attempt in refused:
        with pytest.raises(Forbidden):
            attempt()


def test_matcher_reads_the_transform_and_cannot_touch_keys(vault) -> None:
    _, root, _ = vault
    admin = hvac.Client(url=vault[0], token=root)
    admin.secrets.transit.create_key("customer-0003", mount_point="transit")
    ciphertext = admin.secrets.transit.encrypt_data("customer-0003", plaintext=b64("template"))["data"]["ciphertext"]
    matcher = as_service(vault, "matcher")
    matcher.secrets.kv.v2.read_secret_version(vault_provision.TRANSFORM_PATH, mount_point="secret",
                                             raise_on_deleted_version=True)
    for attempt in [
        lambda: matcher.secrets.transit.decrypt_data("customer-0003", ciphertext=ciphertext),
        lambda: matcher.secrets.transit.update_key_configuration("customer-0003", deletion_allowed=True),
        lambda: matcher.secrets.transit.delete_key("customer-0003"),
        lambda: matcher.secrets.transit.create_key("customer-9999"),
        lambda: matcher.secrets.kv.v2.create_or_update_secret(vault_provision.TRANSFORM_PATH, {"secret": "00"},
                                                              mount_point="secret"),
    ]:
        with pytest.raises(Forbidden):
            attempt()


@pytest.mark.parametrize("service", ["billing", "payment", "edge"])
def test_other_services_see_no_template_secret_and_no_customer_key(vault, service: str) -> None:
    _, root, _ = vault
    admin = hvac.Client(url=vault[0], token=root)
    admin.secrets.kv.v2.create_or_update_secret(f"gaitpay/{service}/config", {"k": "v"}, mount_point="secret")
    admin.secrets.transit.create_key("customer-0004", mount_point="transit")
    ciphertext = admin.secrets.transit.encrypt_data("customer-0004", plaintext=b64("x"))["data"]["ciphertext"]
    client = as_service(vault, service)
    assert client.secrets.kv.v2.read_secret_version(f"gaitpay/{service}/config", mount_point="secret",
                                                    raise_on_deleted_version=True)["data"]["data"] == {"k": "v"}
    other = "payment" if service != "payment" else "billing"
    admin.secrets.kv.v2.create_or_update_secret(f"gaitpay/{other}/config", {"k": "v"}, mount_point="secret")
    for attempt in [
        lambda: client.secrets.kv.v2.read_secret_version(vault_provision.TRANSFORM_PATH, mount_point="secret"),
        lambda: client.secrets.kv.v2.read_secret_version(f"gaitpay/{other}/config", mount_point="secret"),
        lambda: client.secrets.transit.decrypt_data("customer-0004", ciphertext=ciphertext),
        lambda: client.secrets.transit.generate_hmac("lookup", hash_input=b64("x")),
    ]:
        with pytest.raises(Forbidden):
            attempt()


def test_provisioning_twice_keeps_the_transform_secret(vault) -> None:
    addr, root, _ = vault
    admin = hvac.Client(url=addr, token=root)
    before = admin.secrets.kv.v2.read_secret_version(vault_provision.TRANSFORM_PATH, mount_point="secret",
                                                     raise_on_deleted_version=True)["data"]["data"]
    again = vault_provision.provision(addr, root)
    after = admin.secrets.kv.v2.read_secret_version(vault_provision.TRANSFORM_PATH, mount_point="secret",
                                                    raise_on_deleted_version=True)["data"]["data"]
    assert before == after and again.transform_version == 1
    assert set(again.tokens) == {p.stem for p in Path(vault_provision.POLICY_DIR).glob("*.hcl")}
