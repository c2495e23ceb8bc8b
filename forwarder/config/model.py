"""The configuration schema. Every key is documented in ``config/reference.yaml``.

Models forbid unknown keys, so a typo is an error naming the key rather than a silently
ignored setting.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from forwarder.config.durations import Duration, parse_duration
from forwarder.schema.sharing import InternalDomains

EventFormat = Literal["ecs", "ocsf", "raw"]
# The re-scan steps of the Google source before its settle_window (see
# forwarder.sources.google.schedule): 2 min, 10 min, 40 min.
GOOGLE_RESCAN_STEPS = (120.0, 600.0, 2400.0)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretSource(Strict):
    """A secret given inline (discouraged) or, better, read from a file at start."""

    @staticmethod
    def _exactly_one(inline: object, file: object, name: str) -> None:
        if (inline is None) == (file is None):
            raise ValueError(f"set exactly one of {name} or {name}_file")


class UntrustedApiLimits(Strict):
    """What a source believes of its API, whatever the API says (see docs/delivery.md, threat
    model): response sizes, pages per window, waits it is asked for, clock offsets."""

    # Decompressed body size of one API response; a larger one is a retried error.
    max_response_bytes: int = Field(default=33_554_432, ge=65_536)
    # Pages read in one time window before the poll fails as a pagination loop.
    max_pages_per_window: int = Field(default=10_000, ge=1)
    # Longest wait believed from Retry-After, X-RateLimit-Reset or a quota error.
    max_retry_after: Duration = 900.0
    # Largest difference between the API's clock (its Date header) and ours believed.
    max_clock_offset: Duration = 900.0
    # Allow credentials over plain http:// to a host that is not loopback.
    allow_insecure: bool = False


# A tenant name: a metric label value and an event field (ECS labels.tenant), kept to
# characters every SIEM and PromQL accepts as is.
TENANT_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class TenantSource(Strict):
    """What every source carries: the tenant (customer) its events belong to. ``None``
    until :class:`Config` fills in the source's id (the default)."""

    tenant: str | None = Field(default=None, pattern=TENANT_PATTERN)


class CalendlySourceConfig(SecretSource, TenantSource, UntrustedApiLimits):
    """Calendly organization Activity Log (``GET /activity_log_entries``)."""

    type: Literal["calendly"]
    base_url: str = "https://api.calendly.com"
    organization: str = Field(min_length=1)
    token: SecretStr | None = None
    token_file: Path | None = None
    page_size: int = Field(default=100, ge=1, le=1000)
    poll_interval: Duration = 60.0
    overlap: Duration = 5.0
    initial_lookback: Duration = 86400.0
    # Refuse to start this source without committed state (set when its state is moved in
    # with `forwarder cursors import`, e.g. resharding): never a silent re-backfill.
    require_state: bool = False
    request_timeout: Duration = 30.0
    max_attempts: int = Field(default=5, ge=1)
    # Catch-up when more than `backfill_window` behind: windows (the first ones
    # `backfill_window` long, then sized to about a page each) read
    # `backfill_concurrency` at a time (1: one request at a time), each buffering at most
    # `backfill_buffer_pages` pages ahead of the pipeline.
    backfill_concurrency: int = Field(default=4, ge=1, le=32)
    backfill_window: Duration = 86400.0
    backfill_buffer_pages: int = Field(default=2, ge=1, le=100)

    @model_validator(mode="after")
    def _one_token(self) -> CalendlySourceConfig:
        self._exactly_one(self.token, self.token_file, "token")
        if self.backfill_window < 60:
            raise ValueError("backfill_window must be at least 60s")
        return self


class GoogleCalendarSourceConfig(TenantSource, UntrustedApiLimits):
    """Google Workspace Calendar audit events (Reports API ``activities.list``)."""

    type: Literal["google_calendar"]
    base_url: str = "https://admin.googleapis.com"
    token_url: str | None = None
    credentials_file: Path
    delegated_admin: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    customer_id: str | None = None
    page_size: int = Field(default=1000, ge=1, le=1000)
    poll_interval: Duration = 60.0
    # How long after its time an activity may still be reported: the last step of
    # `rescan_schedule`. Either may be given alone (the other follows); both must agree.
    settle_window: Duration = 10800.0
    # Ages at which each slice of the log is read again for late activities, strictly
    # increasing, the last one = settle_window. Without it: the steps of the default
    # schedule shorter than settle_window, then settle_window.
    rescan_schedule: list[Duration] = Field(
        default_factory=lambda: [*GOOGLE_RESCAN_STEPS, 10800.0], min_length=1, max_length=8
    )
    # activities.list requests per minute the head, the re-scans and the backfill share
    # (Google allows 250 filtered queries a minute per Cloud project, shared by its tools;
    # token requests are not counted).
    max_requests_per_minute: int = Field(default=120, ge=1, le=2400)
    max_window: Duration = 3600.0
    end_margin: Duration = 5.0
    initial_lookback: Duration = 86400.0
    # Refuse to start this source without committed state (set when its state is moved in
    # with `forwarder cursors import`, e.g. resharding): never a silent re-backfill.
    require_state: bool = False
    request_timeout: Duration = 60.0
    max_attempts: int = Field(default=6, ge=1)
    # Catch-up when far behind: `max_window` windows read `backfill_concurrency` at a
    # time, each buffering at most `backfill_buffer_pages` pages.
    backfill_concurrency: int = Field(default=4, ge=1, le=32)
    backfill_buffer_pages: int = Field(default=2, ge=1, le=100)
    # The organization's own domains (`example.com`, `*.example.com` for its subdomains):
    # a grantee, guest, subscriber or recipient elsewhere is flagged `external`. Unset:
    # the flag is left out (unknown), never guessed from the actor's domain.
    internal_domains: list[str] | None = Field(default=None, min_length=1, max_length=1000)

    @field_validator("internal_domains")
    @classmethod
    def _internal_domains(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            InternalDomains(value)  # raises ValueError naming the bad entry
        return value

    @model_validator(mode="before")
    @classmethod
    def _schedule_or_settle_window(cls, data: object) -> object:
        """Fill in whichever of settle_window and rescan_schedule is not given."""
        if not isinstance(data, dict):
            return data
        schedule = data.get("rescan_schedule")
        settle = data.get("settle_window")
        if schedule is None and settle is not None:
            try:
                seconds = parse_duration(settle)
            except ValueError:
                return data  # reported on the field
            steps = [step for step in GOOGLE_RESCAN_STEPS if step < seconds]
            return {**data, "rescan_schedule": [*steps, settle]}
        if settle is None and isinstance(schedule, list) and schedule:
            return {**data, "settle_window": schedule[-1]}
        return data

    @model_validator(mode="after")
    def _windows(self) -> GoogleCalendarSourceConfig:
        if self.settle_window < 7200:
            raise ValueError(
                "settle_window must cover at least 2h: Google reports Calendar events "
                "up to a couple of hours late"
            )
        if self.max_window < 60:
            raise ValueError("max_window must be at least 60s")
        steps = self.rescan_schedule
        if any(later <= earlier for earlier, later in pairwise(steps)):
            raise ValueError("rescan_schedule must be strictly increasing")
        if steps[0] < 10 or steps[0] <= self.end_margin:
            raise ValueError("rescan_schedule steps must be at least 10s (and over end_margin)")
        if steps[-1] != self.settle_window:
            raise ValueError(
                f"the last step of rescan_schedule ({steps[-1]:g}s) must equal settle_window "
                f"({self.settle_window:g}s): give one of them, or both equal"
            )
        return self


SourceConfig = Annotated[
    CalendlySourceConfig | GoogleCalendarSourceConfig, Field(discriminator="type")
]


class FileSinkConfig(Strict):
    """Appends NDJSON to a local file, fsynced before acknowledging."""

    type: Literal["file"]
    path: Path
    format: EventFormat = "ecs"
    fsync: bool = True
    # Permissions of a file the sink creates (octal); events carry personal data.
    mode: str = Field(default="0600", pattern=r"^0?[0-7]{3}$")


class StdoutSinkConfig(Strict):
    """Writes NDJSON to standard output."""

    type: Literal["stdout"]
    format: EventFormat = "ecs"


class TlsConfig(Strict):
    """TLS towards a sink. The server certificate and host name are verified unless
    ``verify`` is false; ``ca_file`` replaces the system CAs."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password_file: Path | None = None
    verify: bool = True

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("set both cert_file and key_file for a client certificate")
        return self


class SaslConfig(SecretSource):
    """SASL authentication for Kafka (over TLS: use security_protocol SASL_SSL)."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_password(self) -> SaslConfig:
        self._exactly_one(self.password, self.password_file, "password")
        return self


class KafkaSinkConfig(Strict):
    """Produces each event to a Kafka topic, keyed by its deterministic id."""

    type: Literal["kafka"]
    bootstrap_servers: list[str] = Field(min_length=1)
    # {provider} and {source} are replaced per event.
    topic: str = Field(default="audit.{provider}", min_length=1)
    format: EventFormat = "ecs"
    acks: Literal["all", 1] = "all"
    enable_idempotence: bool = True
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = "gzip"
    linger: Duration = 0.005
    max_batch_bytes: int = Field(default=1_048_576, ge=1024)
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    request_timeout: Duration = 30.0
    client_id: str = "forwarder"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    tls: TlsConfig | None = None
    sasl: SaslConfig | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # Allow a SASL PLAIN password over PLAINTEXT to brokers that are not on loopback.
    allow_insecure: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSinkConfig:
        if self.enable_idempotence and self.acks != "all":
            raise ValueError("enable_idempotence needs acks: all")
        if self.sasl is not None and not self.security_protocol.startswith("SASL_"):
            raise ValueError("sasl needs security_protocol SASL_SSL (or SASL_PLAINTEXT)")
        if self.security_protocol.startswith("SASL_") and self.sasl is None:
            raise ValueError(f"security_protocol {self.security_protocol} needs a sasl section")
        try:
            self.topic.format(provider="p", source="s")
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"topic template {self.topic!r} may only use {{provider}} and {{source}}"
            ) from error
        return self


SYSLOG_FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "audit", "alert", "clock",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip
SYSLOG_SEVERITIES = (
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
)  # fmt: skip


class SyslogSinkConfig(Strict):
    """Sends each event as one syslog message (RFC 5424, or RFC 3164 as a legacy option)."""

    type: Literal["syslog"]
    host: str = Field(min_length=1)
    # Default: 514 for udp and tcp, 6514 for tls (RFC 5425).
    port: int | None = Field(default=None, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "tcp"
    # RFC 6587: octet counting (default) or LF-terminated frames, for tcp and tls.
    framing: Literal["octet_counting", "lf"] = "octet_counting"
    protocol: Literal["rfc5424", "rfc3164"] = "rfc5424"
    payload: Literal["json", "cef", "leef"] = "json"
    format: EventFormat = "ecs"
    facility: Literal[SYSLOG_FACILITIES] = "local0"  # type: ignore[valid-type]
    # A fixed severity, or `auto`: from the event (failures warning, the rest notice/info).
    severity: Literal[("auto", *SYSLOG_SEVERITIES)] = "auto"  # type: ignore[valid-type]
    hostname: str | None = None
    app_name: str = "forwarder"
    # MSGID: the event's action (`action`), a fixed string, or `-`.
    msgid: str = "action"
    timestamp_precision: Literal["microseconds", "milliseconds"] = "microseconds"
    bom: bool = True
    # SD-ID: printable ASCII but '=', ']' and '"' (RFC 5424 SD-NAME), at most 32 chars.
    sd_id: str = Field(default="forwarder@32473", pattern=r"^[!#-<>-\\^-~]{1,32}$")
    max_message_bytes: int = Field(default=65536, ge=480)
    max_udp_bytes: int = Field(default=2048, ge=480, le=65507)
    tls: TlsConfig | None = None
    server_name: str | None = None
    connect_timeout: Duration = 10.0
    write_timeout: Duration = 30.0

    @model_validator(mode="after")
    def _consistent(self) -> SyslogSinkConfig:
        if self.tls is not None and self.transport != "tls":
            raise ValueError("tls settings need transport: tls")
        return self


class HttpAuthConfig(Strict):
    """Credentials for the HTTP sink: ``bearer`` and ``splunk`` use a token, ``basic`` a
    username and password (each secret inline, from ``${VAR}``, or from a file)."""

    strategy: Literal["bearer", "basic", "splunk"]
    token: SecretStr | None = None
    token_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _credentials(self) -> HttpAuthConfig:
        if self.strategy == "basic":
            if not self.username:
                raise ValueError("basic auth needs a username")
            SecretSource._exactly_one(self.password, self.password_file, "password")
        else:
            SecretSource._exactly_one(self.token, self.token_file, "token")
        return self


class HttpBatchConfig(Strict):
    """A request carries at most ``max_events`` events and ``max_bytes`` (before
    compression); a partial batch is sent after waiting ``timeout`` for more."""

    max_events: int = Field(default=500, ge=1)
    max_bytes: int = Field(default=5_000_000, ge=1024)
    timeout: Duration = 1.0


class HttpConcurrencyConfig(Strict):
    """Requests in flight: fixed at ``max``, or adaptive between 1 and ``max`` (grows while
    the limit is reached and latency is steady, shrinks on 429/503 or a latency spike)."""

    adaptive: bool = True
    max: int = Field(default=16, ge=1, le=256)


# HTTP sink header names that suggest a credential: their values must come from
# header_files (a file, e.g. a mounted secret), never from the config text.
CREDENTIAL_HEADER = re.compile(r"key|token|auth|secret|password|cookie", re.IGNORECASE)
# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _check_header_name(name: str) -> None:
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid HTTP header name")


class HttpSinkConfig(Strict):
    """POSTs batches of events to an HTTP endpoint."""

    type: Literal["http"]
    url: str = Field(pattern=r"^https?://")
    encoding: Literal["ndjson", "json_array", "splunk_hec", "elasticsearch_bulk"] = "ndjson"
    format: EventFormat = "ecs"
    compression: Literal["none", "gzip"] = "gzip"
    batch: HttpBatchConfig = HttpBatchConfig()
    concurrency: HttpConcurrencyConfig = HttpConcurrencyConfig()
    auth: HttpAuthConfig | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # Header values read from files at start (credentials: X-API-Key, X-ClickHouse-Key...).
    header_files: dict[str, Path] = Field(default_factory=dict)
    tls: TlsConfig | None = None
    request_timeout: Duration = 30.0
    # A receiver's response body is read whole up to this many bytes (decompressed).
    max_response_bytes: int = Field(default=16_777_216, ge=65_536)
    # Longest wait believed from a receiver's Retry-After.
    max_retry_after: Duration = 900.0
    # Allow credentials over plain http:// to a host that is not loopback.
    allow_insecure: bool = False
    # Elasticsearch `_bulk`: target index ({provider} and {source} are replaced).
    index: str = "audit-{provider}"
    # Splunk HEC event metadata.
    splunk_index: str | None = None
    splunk_sourcetype: str = "_json"
    splunk_source: str = "forwarder:{provider}"

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            _check_header_name(name)
            if CREDENTIAL_HEADER.search(name):
                raise ValueError(
                    f"header {name} looks like a credential: put its value in a file and name"
                    f" that file under header_files ({name}: /run/secrets/...), so that it"
                    " stays out of config files and ConfigMaps"
                )
            if _HEADER_VALUE_CONTROL.search(value):
                raise ValueError(f"header {name}: a value is one line without control characters")
        return headers

    @field_validator("header_files")
    @classmethod
    def _file_header_names(cls, header_files: dict[str, Path]) -> dict[str, Path]:
        for name in header_files:
            _check_header_name(name)
        return header_files

    @model_validator(mode="after")
    def _consistent(self) -> HttpSinkConfig:
        named = {name.lower() for name in self.headers}
        for name in self.header_files:
            if name.lower() in named:
                raise ValueError(f"header {name} is set in both headers and header_files")
            if self.auth is not None and name.lower() == "authorization":
                raise ValueError("Authorization comes from auth or from header_files, not both")
        splunk_auth = self.auth is not None and self.auth.strategy == "splunk"
        if splunk_auth and self.encoding != "splunk_hec":
            raise ValueError("auth strategy splunk goes with encoding splunk_hec")
        if self.tls is not None and not self.url.startswith("https://"):
            raise ValueError("tls settings need an https:// url")
        return self


SinkConfig = Annotated[
    FileSinkConfig | StdoutSinkConfig | KafkaSinkConfig | SyslogSinkConfig | HttpSinkConfig,
    Field(discriminator="type"),
]


class PipelineConfig(Strict):
    queue_capacity: int = Field(default=10000, ge=1)
    shutdown_grace: Duration = 30.0
    retry_initial_backoff: Duration = 1.0
    retry_max_backoff: Duration = 30.0


class DeadLetterConfig(Strict):
    path: Path | None = None


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"
    # A `progress` line at info this often (events per source and sink, positions, queue
    # use): the daemon is otherwise silent while all is well. 0 turns it off.
    progress_interval: Duration = 60.0


class MetricsConfig(Strict):
    enabled: bool = True
    listen: str = Field(default="127.0.0.1:9108", pattern=r"^\[?[^\s\]]*\]?:\d{1,5}$")
    # /readyz turns false when a source or sink has been failing (or a source has not
    # completed a poll) for this long; credential errors turn it false at once.
    unready_after: Duration = 300.0
    # What a failing source does to /readyz. every_source: any failing source makes it
    # 503 (one company: a failing source is the pod's problem). any_source: only when no
    # source works (many tenants: one customer's revoked token must not take the replica
    # out of service or hold up a rollout); the others are listed as warnings.
    readiness: Literal["every_source", "any_source"] = "every_source"
    # Connections served at once (more are closed at once), and how long one may idle.
    max_connections: int = Field(default=64, ge=1, le=10_000)
    idle_timeout: Duration = 30.0
    # Listening beyond loopback on purpose (a pod, behind a NetworkPolicy): no warning.
    allow_insecure: bool = False

    @field_validator("listen")
    @classmethod
    def _port_in_range(cls, listen: str) -> str:
        # The pattern allows five digits; a port past 65535 would only fail at bind time,
        # after the sources and sinks started.
        port = int(listen.rpartition(":")[2])
        if port > 65535:
            raise ValueError(f"port {port} is out of range (0-65535)")
        return listen


class SimulatorsConfig(Strict):
    """Built-in API simulators started on loopback before the sources (demo mode)."""

    seed: int = 42
    host: str = "127.0.0.1"
    calendly_port: int = Field(default=18081, ge=0, le=65535)
    google_port: int = Field(default=18082, ge=0, le=65535)
    history: Duration = 86400.0
    calendly_rate_per_minute: float = Field(default=2.0, gt=0)
    google_rate_per_minute: float = Field(default=3.0, gt=0)
    google_max_lag: Duration = 30.0
    google_late_fraction: float = Field(default=0.02, ge=0, le=1)
    google_late_lag: Duration = 300.0
    calendly_token: str = "demo-calendly-token"
    organization: str = "https://api.calendly.com/organizations/DEMOORG000000001"
    delegated_admin: str = "admin@demo.example.com"


class ShardConfig(Strict):
    """Sources split across replicas: each replica runs the sources whose id hashes to its
    ``index`` (rendezvous hashing, see forwarder.shard) and keeps their state on its own
    volume. ``index`` unset: the ordinal of a StatefulSet pod's hostname (``<name>-<n>``)."""

    count: int = Field(default=1, ge=1, le=1024)
    index: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _index_in_range(self) -> ShardConfig:
        if self.index is not None and self.index >= self.count:
            raise ValueError(f"index {self.index} must be below count ({self.count})")
        return self


class ReloadConfig(Strict):
    """Reloading the source set while running (SIGHUP always reloads it)."""

    # How often the config file, the sources_dir files and the sources' secret files are
    # checked for a change, which reloads as SIGHUP does (a Kubernetes ConfigMap or
    # Secret update, where nobody sends a signal); 0: only on SIGHUP.
    watch_interval: Duration = 0.0


class GoogleQuotaConfig(Strict):
    """The request budget of each Google Cloud project, shared by every Google source whose
    service-account key belongs to it (Google's Reports API quota is per project: 250
    filtered ``activities.list`` queries a minute, shared with the project's other tools).
    Each source keeps its own ``max_requests_per_minute`` as a cap within it; see
    forwarder.sources.google.project_budget for the fair share."""

    # Requests a minute of a project not listed in `projects`.
    max_requests_per_minute: int = Field(default=200, ge=1, le=100_000)
    # Project id (the key file's project_id) -> requests a minute, for projects whose
    # quota Google raised or that other tools share more of.
    projects: dict[str, Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=dict)

    def per_minute(self, project_id: str) -> int:
        """The budget of ``project_id``."""
        return self.projects.get(project_id, self.max_requests_per_minute)


class Config(Strict):
    """The whole daemon configuration."""

    state_dir: Path
    sources: dict[str, SourceConfig] = Field(min_length=1)
    # A directory of YAML files, each `sources: {id: {...}}`, merged with `sources` by the
    # loader (forwarder.config.sources_dir): one file per tenant, mountable from a Secret.
    sources_dir: Path | None = None
    sinks: dict[str, SinkConfig] = Field(min_length=1)
    pipeline: PipelineConfig = PipelineConfig()
    dead_letter: DeadLetterConfig = DeadLetterConfig()
    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()
    simulators: SimulatorsConfig | None = None
    shard: ShardConfig = ShardConfig()
    google_quota: GoogleQuotaConfig = GoogleQuotaConfig()
    reload: ReloadConfig = ReloadConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_tenants(cls, data: object) -> object:
        """A source without a tenant is its own tenant: its id."""
        if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
            return data
        sources = {
            source_id: (
                {**source, "tenant": str(source_id)}
                if isinstance(source, dict) and source.get("tenant") is None
                else source
            )
            for source_id, source in data["sources"].items()
        }
        return {**data, "sources": sources}

    @model_validator(mode="after")
    def _ids(self) -> Config:
        for section in ("sources", "sinks"):
            for name in getattr(self, section):
                if not name.replace("_", "").replace("-", "").isalnum():
                    raise ValueError(
                        f"{section} id {name!r} must contain only letters, digits, '-' and '_'"
                    )
        return self

    @property
    def dead_letter_dir(self) -> Path:
        return self.dead_letter.path or self.state_dir / "dead-letter"
