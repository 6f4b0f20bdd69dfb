"""Prometheus rules and Grafana dashboards: well formed, every alert tied to a runbook
section, and every metric they read exported by the running services (scraped from the
stack `gaitpay up` starts) or recorded by a rule. promtool is not installable here."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
import yaml

from mesh import config

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "k8s" / "monitoring"
PROMETHEUS_BUILTINS = {"up"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def metric_names(expr: str) -> set[str]:
    """The gaitpay_* and gaitpay:* series an expression reads, and Prometheus' own."""
    bare = _STRINGS.sub('""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    return {t for t in _IDENT.findall(bare) if t.startswith("gaitpay") or t in PROMETHEUS_BUILTINS}


def rules() -> list[dict]:
    doc = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((MONITORING / "dashboards").glob("*.json"))}


def test_rules_are_well_formed_and_alerts_have_severity_and_a_runbook_section():
    doc = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    assert {g["name"] for g in doc["groups"]} == {"gaitpay-slo-recording", "gaitpay-alerts"}
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
    recorded = set()
    for rule in rules():
        assert ("record" in rule) != ("alert" in rule), rule
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["expr"]
        if "record" in rule:
            assert re.fullmatch(r"gaitpay:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]
            recorded.add(rule["record"])
            continue
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["runbook_url"].split("#")[1] in anchors, rule["annotations"]["runbook_url"]
        assert re.fullmatch(r"\d+[sm]", rule["for"])
    burn = [r for r in rules() if r.get("alert", "").endswith("BudgetBurn")]
    slos = {r["labels"]["slo"] for r in burn}
    assert {"identification_errors", "identification_slow", "charge_errors", "charge_slow"} <= slos
    for slo in slos:  # multi-window: every burn alert pairs a long and a short window
        windows = {r["labels"]["window"] for r in burn if r["labels"]["slo"] == slo}
        assert windows == {"1h/5m", "6h/30m"}
    used = set().union(*(metric_names(r["expr"]) for r in rules()))
    assert {n for n in used if n.startswith("gaitpay:")} <= recorded


def test_dashboards_cover_red_per_rpc_and_the_business():
    boards = dashboards()
    assert set(boards) == {"mesh.json", "business.json"}
    assert len({b["uid"] for b in boards.values()}) == 2
    for board in boards.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)) and all(p["targets"] and p["title"] for p in board["panels"])
    mesh_exprs = " ".join(t["expr"] for p in boards["mesh.json"]["panels"] for t in p["targets"])
    for red in ("gaitpay_rpc_requests_total", 'code!="OK"', "gaitpay_rpc_duration_seconds_bucket"):
        assert red in mesh_exprs
    titles = " ".join(p["title"].lower() for p in boards["business.json"]["panels"])
    assert all(word in titles for word in ("visits", "identification", "captured", "approval"))


def _scrape(address: str) -> tuple[set[str], str]:
    port = config.port_of(address) + 1000  # the stack's metrics port offset
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}, text


@pytest.mark.stack
def test_every_metric_in_rules_and_dashboards_is_exported_by_a_service(local_stack):
    exported: set[str] = set()
    samples = ""
    for service in config.SERVICES:
        names, text = _scrape(local_stack.rows[service]["address"])
        exported |= names
        samples += text
    recorded = {r["record"] for r in rules() if "record" in r}
    exprs = [r["expr"] for r in rules()] + [t["expr"] for b in dashboards().values() for p in b["panels"]
                                            for t in p["targets"]]
    missing = set()
    for expr in exprs:
        for name in metric_names(expr):
            if name in recorded or name in PROMETHEUS_BUILTINS:
                continue
            base = next((name[: -len(s)] for s in _SUFFIXES if name.endswith(s) and name[: -len(s)] in exported), name)
            if base not in exported:
                missing.add(name)
    assert not missing, f"not exported by any service: {sorted(missing)}; exported: {sorted(exported)}"
    # The payment and billing figures are read from PostgreSQL, and were readable.
    assert {"gaitpay_payment_metrics_up", "gaitpay_payment_ledger_imbalance_minor", "gaitpay_billing_visits_total",
            "gaitpay_matcher_windows_total", "gaitpay_gateway_http_requests_total"} <= exported
    assert "gaitpay_payment_metrics_up 1.0" in samples and "gaitpay_billing_metrics_up 1.0" in samples
    assert "gaitpay_payment_ledger_imbalance_minor 0.0" in samples
