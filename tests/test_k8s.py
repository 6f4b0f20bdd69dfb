"""The Kubernetes manifests: every overlay renders with kustomize, validates against the
Kubernetes schemas, keeps the hardening rules, and its NetworkPolicies allow exactly the
calls mesh/authz.py allows (the same table mTLS enforces)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mesh import config
from mesh.authz import ALLOWED_CALLERS, OPERATOR

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ("dev", "production")
KUBERNETES = "1.32"  # the kubectl/kustomize the image carries; schemas of that release
SECRETISH = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|DSN)$")


def render(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to render k8s/; it ships with the machine image"
    out = subprocess.run([kubectl, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_resource_validates_against_the_kubernetes_schemas(rendered):
    overlay, docs = rendered
    problems = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{overlay} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)


def test_every_service_is_deployed_hardened_probed_and_budgeted(rendered):
    overlay, docs = rendered
    deployments = of_kind(docs, "Deployment")
    assert set(deployments) == set(config.SERVICES)
    services, budgets = of_kind(docs, "Service"), of_kind(docs, "PodDisruptionBudget")
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is (name in ("identity", "matcher")), name  # Vault users only
        (container,) = pod["containers"]
        for each in (container, *pod.get("initContainers", [])):
            sc = each["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(each["resources"][kind]), (name, each["name"], kind)
            assert not each["image"].endswith(":latest") and each["image"] == container["image"]
        grpc_port = config.DEFAULT_PORTS[name]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["grpc"]["port"] == grpc_port + 2000, (name, probe)
        env = {e["name"]: e for e in container.get("env", [])}
        for var, entry in env.items():
            if SECRETISH.search(var):
                assert "valueFrom" in entry and "value" not in entry, f"{name}: {var} must come from a Secret"
        assert env[f"GAITPAY_{name.upper()}_ADDR"]["value"] == f"0.0.0.0:{grpc_port}"
        assert not container["image"].endswith(":latest")
        assert name in services and name in budgets
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
    configmaps = [d for d in docs if d["kind"] == "ConfigMap"]
    assert configmaps and not any(SECRETISH.search(k) for cm in configmaps for k in cm["data"])
    assert not [d for d in docs if d["kind"] == "Secret"], "secrets come from Vault or their owners, never manifests"
    namespace = of_kind(docs, "Namespace")["gaitpay"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_matcher_and_gateway_autoscale(rendered):
    overlay, docs = rendered
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {"matcher", "gateway"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    if overlay == "production":
        assert all(h["spec"]["minReplicas"] >= 3 for h in hpas.values())
        assert all(d["spec"]["replicas"] >= 3 for n, d in of_kind(docs, "Deployment").items() if n != "edge")


def test_the_matcher_migrates_its_templates_before_it_starts(rendered):
    # The schema copy runs where no startup probe can cut it short (docs/runbook.md).
    overlay, docs = rendered
    pod = of_kind(docs, "Deployment")["matcher"]["spec"]["template"]["spec"]
    (migrate,) = [c for c in pod["initContainers"] if c["name"] == "migrate-templates"]
    assert migrate["command"] == ["python", "-m", "matcher", "migrate"]
    assert migrate["envFrom"] == pod["containers"][0]["envFrom"]  # the same Milvus and collection
    assert "startupProbe" not in migrate


def test_network_policies_allow_exactly_the_calls_of_the_mesh(rendered):
    _, docs = rendered
    policies = of_kind(docs, "NetworkPolicy")
    deny = policies["default-deny"]
    assert deny["spec"]["podSelector"] == {} and set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    pod_name = "app.kubernetes.io/name"
    ingress, egress = set(), set()
    for policy in policies.values():
        target = policy["spec"]["podSelector"].get("matchLabels", {}).get(pod_name)
        for rule in policy["spec"].get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            for peer in rule.get("from", []):
                caller = peer.get("podSelector", {}).get("matchLabels", {}).get(pod_name)
                if caller and target and "namespaceSelector" not in peer:
                    assert ports == {config.DEFAULT_PORTS[target]}, policy["metadata"]["name"]
                    ingress.add((caller, target))
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                callee = peer.get("podSelector", {}).get("matchLabels", {}).get(pod_name)
                if callee and target and "namespaceSelector" not in peer:
                    egress.add((target, callee))
    expected = {("operator-toolbox" if c == OPERATOR else c, s) for s, callers in ALLOWED_CALLERS.items()
                for c in callers}
    assert ingress == expected
    assert egress == {(c, s) for c, s in expected if c != "operator-toolbox"}


def test_the_edge_is_one_process_per_store_with_its_queue_on_a_volume_that_outlives_the_pod(rendered):
    _, docs = rendered
    edge = of_kind(docs, "Deployment")["edge"]
    assert edge["spec"]["replicas"] == 1 and edge["spec"]["strategy"]["type"] == "Recreate"
    pod = edge["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    state_dir = {e["name"]: e.get("value") for e in container["env"]}["GAITPAY_EDGE_STATE_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes[mounts[state_dir]]["persistentVolumeClaim"]["claimName"]
    assert claim in of_kind(docs, "PersistentVolumeClaim")
