"""The Helm chart: lints, renders valid Kubernetes objects and a config the daemon accepts,
never carries a secret, and refuses bad values with a message naming them."""

from __future__ import annotations

import json
import math
import typing
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_harness import (
    CHART,
    EXAMPLES,
    KUBERNETES_VERSIONS,
    Helm,
    config_text,
    one,
    pod_spec,
    walk,
)

from forwarder import __version__
from forwarder.config import model
from forwarder.config.durations import parse_duration
from forwarder.config.loader import parse_config

REQUIRED_EXAMPLES = (
    "values-kafka.yaml",
    "values-syslog.yaml",
    "values-http-splunk.yaml",
    "values-file.yaml",
)
VALUE_SETS = {"default": ()} | {
    path.stem: (path,) for path in sorted(EXAMPLES.glob("values-*.yaml"))
}
EXPECTED_KINDS = {
    "ConfigMap",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "Service",
    "ServiceAccount",
    "StatefulSet",
}
STATE_DIR = "/var/lib/forwarder"
# Keys that carry a secret value inline in the daemon's config: never in a chart's output.
INLINE_SECRET_KEYS = {"token", "password"}
SENTINEL = "s3cr3t-sentinel-value"

values_sets = pytest.mark.parametrize("values", list(VALUE_SETS.values()), ids=list(VALUE_SETS))


def values_file(tmp_path: Path, values: dict[str, Any], name: str = "values.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    return path


def base_values() -> dict[str, Any]:
    """A small valid values document (calendly -> stdout) to break in one place."""
    return {
        "secretMounts": [{"name": "calendly", "existingSecret": "forwarder-calendly"}],
        "config": {
            "sources": [
                {
                    "id": "calendly",
                    "type": "calendly",
                    "organization": "https://api.calendly.com/organizations/X",
                    "token_file": "/run/secrets/calendly/token",
                }
            ],
            "sinks": [{"id": "console", "type": "stdout"}],
        },
    }


def test_chart_metadata_matches_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == __version__
    for name in REQUIRED_EXAMPLES:
        assert (EXAMPLES / name).is_file(), f"deploy/examples/{name} is missing"


@values_sets
def test_lint_strict(helm: Helm, values: tuple[Path, ...]) -> None:
    result = helm.lint(values)
    assert result.returncode == 0, result.output
    assert "[WARNING]" not in result.output and "[ERROR]" not in result.output, result.output


@values_sets
def test_manifests_are_valid_kubernetes_objects(helm: Helm, values: tuple[Path, ...]) -> None:
    documents = helm.render(values)
    assert {doc["kind"] for doc in documents} == EXPECTED_KINDS
    for document in documents:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = ".".join(str(part) for part in error.path)
                pytest.fail(f"{document['kind']} invalid for {version} at {where}: {error.message}")


@values_sets
def test_rendered_config_passes_the_forwarder_schema(helm: Helm, values: tuple[Path, ...]) -> None:
    documents = helm.render(values)
    text = config_text(documents)
    # The daemon's own validation (check-config without reading the secret files).
    config = parse_config(text, environ={}, origin="config.yaml")
    assert str(config.state_dir) == STATE_DIR
    assert config.metrics.enabled and config.metrics.listen == "0.0.0.0:9108"
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    for path in values:
        chart_values |= yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(config.sources) == [s["id"] for s in chart_values["config"]["sources"]]
    assert list(config.sinks) == [s["id"] for s in chart_values["config"]["sinks"]]


@values_sets
def test_no_secret_is_rendered(helm: Helm, values: tuple[Path, ...]) -> None:
    documents = helm.render(values)
    assert not [doc for doc in documents if doc["kind"] == "Secret"]
    mounted = {
        volume["secret"]["secretName"]
        for volume in pod_spec(documents)["volumes"]
        if "secret" in volume
    }
    for document in documents:
        if document["kind"] != "ConfigMap":
            continue
        for key, text in document["data"].items():
            parsed = yaml.safe_load(text)
            for path, value in walk(parsed):
                assert not (path and path[-1] in INLINE_SECRET_KEYS), f"{key}: {'.'.join(path)}"
                if path and path[-1].endswith("_file") and isinstance(value, str):
                    assert value.startswith(("/run/secrets/", "/etc/forwarder/", STATE_DIR)), (
                        f"{'.'.join(path)}: {value}"
                    )
    container = pod_spec(documents)["containers"][0]
    assert "env" not in container and "envFrom" not in container
    # Every secret file the config names comes from an existing Secret mounted read-only.
    config = yaml.safe_load(config_text(documents))
    secret_dirs = {
        mount["mountPath"]
        for mount in container["volumeMounts"]
        if mount["name"].startswith("secret-")
    }
    for path, value in walk(config):
        if not (path and path[-1].endswith("_file") and isinstance(value, str)):
            continue
        if value.startswith("/run/secrets/"):
            assert str(Path(value).parent) in secret_dirs, value
    assert len(mounted) == len(secret_dirs)


INLINE_SECRET_CASES = {
    "calendly token": ("sources", 0, {"token": SENTINEL}),
    "http auth token": (
        "sinks",
        0,
        {"type": "http", "url": "https://hec:8088", "encoding": "splunk_hec",
         "auth": {"strategy": "splunk", "token": SENTINEL}},
    ),
    "http basic password": (
        "sinks",
        0,
        {"type": "http", "url": "https://es:9200/_bulk",
         "auth": {"strategy": "basic", "username": "u", "password": SENTINEL}},
    ),
    "kafka sasl password": (
        "sinks",
        0,
        {"type": "kafka", "bootstrap_servers": ["k:9093"], "security_protocol": "SASL_SSL",
         "sasl": {"mechanism": "PLAIN", "username": "u", "password": SENTINEL}},
    ),
    "authorization header": (
        "sinks",
        0,
        {"type": "http", "url": "https://x", "headers": {"Authorization": SENTINEL}},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(INLINE_SECRET_CASES), ids=list(INLINE_SECRET_CASES))
def test_inline_secrets_are_refused(helm: Helm, tmp_path: Path, case: str) -> None:
    section, index, changes = INLINE_SECRET_CASES[case]
    values = base_values()
    values["config"][section][index] |= changes
    result = helm.template([values_file(tmp_path, values)])
    assert result.returncode != 0
    assert SENTINEL not in result.stdout
    expected = "Authorization" if "header" in case else "token" if "token" in case else "password"
    assert expected in result.stderr, result.stderr


def changed(path: str, value: Any) -> dict[str, Any]:
    values = base_values()
    node: Any = values
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        if int(last) == len(node):
            node.append(value)
        else:
            node[int(last)] = value
    else:
        node[last] = value
    return values


SCHEMA_CASES = {
    "replicas 2": (changed("replicaCount", 2), "replicaCount"),
    "unknown sink type": (
        changed("config.sinks.0", {"id": "x", "type": "splunk"}),
        "config.sinks.0.type",
    ),
    "negative grace": (changed("config.pipeline.shutdown_grace", "-5s"), "shutdown_grace"),
    "negative grace number": (changed("config.pipeline.shutdown_grace", -5), "shutdown_grace"),
    "duration typo": (changed("config.sources.0.poll_interval", "1 minute"), "poll_interval"),
    "wrong type": (changed("config.pipeline.queue_capacity", "lots"), "queue_capacity"),
    "page size range": (changed("config.sources.0.page_size", 5000), "page_size"),
    "misspelt source key": (changed("config.sources.0.page_sise", 10), "page_sise"),
    "misspelt top-level key": (changed("replicaCont", 1), "replicaCont"),
    "no sinks": (changed("config.sinks", []), "config.sinks"),
    "bad id": (changed("config.sinks.0.id", "my sink"), "config.sinks.0.id"),
    "metrics port": (changed("metrics.port", "http"), "metrics.port"),
    "kafka acks 1 with idempotence": (
        changed("config.sinks.0", {"id": "k", "type": "kafka", "bootstrap_servers": ["k:9092"],
                                "acks": 1}),
        "enable_idempotence",
    ),
    "syslog transport": (
        changed("config.sinks.0", {"id": "s", "type": "syslog", "host": "h", "transport": "quic"}),
        "transport",
    ),
    "relative secret path": (changed("config.sources.0.token_file", "token"), "token_file"),
    "mount without secret": (changed("secretMounts.0", {"name": "calendly"}), "existingSecret"),
    "retention policy": (changed("persistence.retentionPolicy.whenDeleted", "Keep"), "whenDeleted"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SCHEMA_CASES), ids=list(SCHEMA_CASES))
def test_schema_rejects_bad_values(helm: Helm, tmp_path: Path, case: str) -> None:
    values, named = SCHEMA_CASES[case]
    path = values_file(tmp_path, values)
    for result in (helm.template([path]), helm.lint([path])):
        assert result.returncode != 0, f"{case}: accepted\n{result.output}"
        assert "schema" in result.output, result.output
        # helm 3.17 names the value as a.b.0.c, later releases as a JSON pointer /a/b/0/c.
        assert named in result.output.replace("/", "."), result.output


TEMPLATE_CASES = {
    "secret file outside a mount": (
        changed("config.sources.0.token_file", "/etc/passwd"),
        "config.sources[0] (calendly).token_file: /etc/passwd is not in a mounted Secret",
    ),
    "secret of an undeclared mount": (
        changed("config.sources.0.token_file", "/run/secrets/other/token"),
        "/run/secrets/other/token is not in a mounted Secret",
    ),
    "nested tls file outside a mount": (
        changed("config.sinks.0", {"id": "s", "type": "syslog", "host": "h", "transport": "tls",
                                "tls": {"ca_file": "/etc/ssl/ca.pem"}}),
        "config.sinks[0] (s).tls.ca_file: /etc/ssl/ca.pem",
    ),
    "file sink on the read-only root": (
        changed("config.sinks.0", {"id": "f", "type": "file", "path": "/data/events.ndjson"}),
        "config.sinks[0] (f).path: /data/events.ndjson",
    ),
    "duplicate sink id": (
        changed("config.sinks.1", {"id": "console", "type": "stdout"}),
        'the id "console" is used twice',
    ),
    "short settle window": (
        changed("config.sources.0", {"id": "g", "type": "google_calendar", "settle_window": "1h",
                                  "credentials_file": "/run/secrets/calendly/sa.json",
                                  "delegated_admin": "a@example.com"}),
        "settle_window: must cover at least 2h",
    ),
    "grace period shorter than the drain": (
        changed("terminationGracePeriodSeconds", 20),
        "terminationGracePeriodSeconds (20) must be longer than config.pipeline.shutdown_grace",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(TEMPLATE_CASES), ids=list(TEMPLATE_CASES))
def test_template_refuses_inconsistent_values(helm: Helm, tmp_path: Path, case: str) -> None:
    values, message = TEMPLATE_CASES[case]
    result = helm.template([values_file(tmp_path, values)])
    assert result.returncode != 0, f"{case}: accepted"
    assert message in result.stderr, result.stderr


@values_sets
def test_pod_is_locked_down(helm: Helm, values: tuple[Path, ...]) -> None:
    documents = helm.render(values)
    statefulset = one(documents, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 1
    spec = pod_spec(documents)
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == 10001 and pod_security["fsGroup"] == 10001
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert one(documents, "ServiceAccount")["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/etc/forwarder/config.yaml"]["readOnly"] is True
    assert "/tmp" in mounts and STATE_DIR in mounts
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    for volume in volumes.values():
        if "secret" in volume:
            assert volume["secret"]["defaultMode"] == 0o440
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9108, "protocol": "TCP"}]
    if volumes.get("state") is None:  # persistence on: the cursors live on a PVC
        (claim,) = statefulset["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "state"
        assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == (
            "Retain"
        )


@pytest.mark.parametrize("grace", ["30s", "2m", 90, "1.5m", "500ms", "1h", 0])
def test_termination_grace_outlasts_the_drain(helm: Helm, grace: str | int) -> None:
    documents = helm.render(sets=(f"config.pipeline.shutdown_grace={grace}",))
    seconds = parse_duration(yaml.safe_load(config_text(documents))["pipeline"]["shutdown_grace"])
    assert seconds == parse_duration(grace)
    period = pod_spec(documents)["terminationGracePeriodSeconds"]
    assert isinstance(period, int)
    assert period > seconds
    assert period == math.ceil(seconds) + 15


def test_disruption_budget_lets_drains_evict_the_single_pod(helm: Helm) -> None:
    budget = one(helm.render(), "PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1 and "minAvailable" not in budget
    assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    strict = one(helm.render(sets=("podDisruptionBudget.minAvailable=1",)), "PodDisruptionBudget")
    assert strict["spec"]["minAvailable"] == 1 and "maxUnavailable" not in strict["spec"]


def test_explicit_termination_grace_is_kept(helm: Helm) -> None:
    documents = helm.render(sets=("terminationGracePeriodSeconds=300",))
    assert pod_spec(documents)["terminationGracePeriodSeconds"] == 300


def _checksum(documents: list[dict]) -> str:
    statefulset = one(documents, "StatefulSet")
    return statefulset["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_config_checksum_rolls_the_pod_on_config_changes_only(helm: Helm) -> None:
    default = _checksum(helm.render())
    assert len(default) == 64
    assert _checksum(helm.render(sets=("resources.limits.memory=1Gi",))) == default
    changed = {
        _checksum(helm.render(sets=(assignment,)))
        for assignment in (
            "config.log.level=debug",
            "config.pipeline.shutdown_grace=45s",
            "metrics.port=9200",
        )
    }
    assert default not in changed and len(changed) == 3


def _egress_ports(documents: list[dict]) -> set[tuple[int, str]]:
    policy = one(documents, "NetworkPolicy")
    rules = policy["spec"]["egress"]
    return {(port["port"], port["protocol"]) for rule in rules for port in rule["ports"]}


def test_network_policy_admits_only_metrics_and_the_configured_peers(helm: Helm) -> None:
    documents = helm.render((EXAMPLES / "values-kafka.yaml",))
    policy = one(documents, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert _egress_ports(documents) == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (9093, "TCP")}
    kafka_rule = next(rule for rule in policy["spec"]["egress"] if rule["ports"][0]["port"] == 9093)
    assert kafka_rule["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}}}
    ]


@pytest.mark.parametrize(
    ("example", "ports"),
    [
        ("values-syslog.yaml", {(6514, "TCP")}),
        ("values-http-splunk.yaml", {(8088, "TCP")}),
        ("values-file.yaml", set()),
    ],
)
def test_network_policy_derives_sink_ports(helm: Helm, example: str, ports: set) -> None:
    base = {(53, "UDP"), (53, "TCP"), (443, "TCP")}
    assert _egress_ports(helm.render((EXAMPLES / example,))) == base | ports


def test_network_policy_udp_syslog(helm: Helm, tmp_path: Path) -> None:
    udp = {"id": "s", "type": "syslog", "host": "h", "transport": "udp"}
    values = changed("config.sinks.0", udp)
    values["networkPolicy"] = {"egress": {"sinks": {"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}}}
    documents = helm.render((values_file(tmp_path, values),))
    assert (514, "UDP") in _egress_ports(documents)


def test_prometheus_operator_monitors(helm: Helm) -> None:
    documents = helm.render(
        sets=(
            "serviceMonitor.enabled=true",
            "serviceMonitor.labels.release=kube-prometheus-stack",
            "podMonitor.enabled=true",
        )
    )
    service = one(documents, "Service")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["name"] == "metrics"
    pod_labels = one(documents, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    kinds = (("ServiceMonitor", "endpoints"), ("PodMonitor", "podMetricsEndpoints"))
    for kind, endpoints_key in kinds:
        monitor = one(documents, kind)
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]["matchLabels"]
        target = service["metadata"]["labels"] if kind == "ServiceMonitor" else pod_labels
        assert selector.items() <= target.items()
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["siem"]}
        (endpoint,) = monitor["spec"][endpoints_key]
        assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert one(documents, "ServiceMonitor")["metadata"]["labels"]["release"] == (
        "kube-prometheus-stack"
    )
    assert "ServiceMonitor" not in {doc["kind"] for doc in helm.render()}


def test_persistence_off_uses_an_empty_dir(helm: Helm) -> None:
    documents = helm.render((EXAMPLES / "values-demo.yaml",))
    statefulset = one(documents, "StatefulSet")
    assert "volumeClaimTemplates" not in statefulset["spec"]
    volumes = {volume["name"]: volume for volume in pod_spec(documents)["volumes"]}
    assert volumes["state"] == {"name": "state", "emptyDir": {}}


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


def _properties(schema_node: dict[str, Any]) -> set[str]:
    if "anyOf" in schema_node:  # nullable objects
        schema_node = next(option for option in schema_node["anyOf"] if "properties" in option)
    return set(schema_node["properties"])


def test_schema_covers_every_config_key() -> None:
    """values.schema.json follows forwarder/config/model.py: a new key in the daemon's
    config must be added to the chart's schema (inline secrets excepted)."""
    definitions = _schema()["definitions"]
    config = _schema()["properties"]["config"]["properties"]

    def fields(model_class: type) -> set[str]:
        return set(model_class.model_fields) - INLINE_SECRET_KEYS

    pairs = [
        (definitions["calendlySource"], fields(model.CalendlySourceConfig) | {"id"}),
        (definitions["googleCalendarSource"], fields(model.GoogleCalendarSourceConfig) | {"id"}),
        (definitions["fileSink"], fields(model.FileSinkConfig) | {"id"}),
        (definitions["stdoutSink"], fields(model.StdoutSinkConfig) | {"id"}),
        (definitions["kafkaSink"], fields(model.KafkaSinkConfig) | {"id"}),
        (definitions["kafkaSink"]["properties"]["sasl"], fields(model.SaslConfig)),
        (definitions["syslogSink"], fields(model.SyslogSinkConfig) | {"id"}),
        (definitions["httpSink"], fields(model.HttpSinkConfig) | {"id"}),
        (definitions["httpSink"]["properties"]["auth"], fields(model.HttpAuthConfig)),
        (definitions["httpSink"]["properties"]["batch"], fields(model.HttpBatchConfig)),
        (definitions["httpSink"]["properties"]["concurrency"], fields(model.HttpConcurrencyConfig)),
        (definitions["tls"], fields(model.TlsConfig)),
        (config["pipeline"], fields(model.PipelineConfig)),
        (config["dead_letter"], fields(model.DeadLetterConfig)),
        (config["log"], fields(model.LogConfig)),
        (config["simulators"], fields(model.SimulatorsConfig)),
    ]
    for schema_node, expected in pairs:
        assert _properties(schema_node) == expected
    # state_dir and metrics are the chart's; everything else is in values.config.
    assert set(config) == set(model.Config.model_fields) - {"state_dir", "metrics"}
    for tagged, union in (("sink", model.SinkConfig), ("source", model.SourceConfig)):
        classes = typing.get_args(typing.get_args(union)[0])
        types = {typing.get_args(cls.model_fields["type"].annotation)[0] for cls in classes}
        assert set(definitions[tagged]["properties"]["type"]["enum"]) == types


# -- egress scoped to its destinations ----------------------------------------------------------

# What the default egress must never reach: the cloud metadata service (the node's
# credentials), the cluster's own private ranges, loopback.
UNREACHABLE = ("169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8")


def _egress_rules(documents: list[dict]) -> list[dict]:
    return one(documents, "NetworkPolicy")["spec"]["egress"]


def _validate(documents: list[dict]) -> None:
    for document in documents:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


def test_default_egress_is_dns_and_the_public_internet_on_the_api_ports(helm: Helm) -> None:
    documents = helm.render()
    _validate(documents)
    dns, *apis = _egress_rules(documents)
    assert {(port["port"], port["protocol"]) for port in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert len(apis) == 2, "one rule per source"
    for rule in apis:
        assert rule["ports"] == [{"port": 443, "protocol": "TCP"}]
        assert rule["to"], "a rule without peers admits any address"
        blocks = [peer["ipBlock"] for peer in rule["to"]]
        assert {block["cidr"] for block in blocks} == {"0.0.0.0/0", "::/0"}
        v4 = next(block for block in blocks if block["cidr"] == "0.0.0.0/0")
        assert set(UNREACHABLE) <= set(v4["except"])
        v6 = next(block for block in blocks if block["cidr"] == "::/0")
        assert {"fc00::/7", "fe80::/10", "::1/128"} <= set(v6["except"])


def test_egress_destinations_per_api_and_per_sink(helm: Helm, tmp_path: Path) -> None:
    gateway = [{"ipBlock": {"cidr": "203.0.113.7/32"}}]
    kafka_ns = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}}}]
    collectors = [{"ipBlock": {"cidr": "10.40.0.0/24"}}]
    values = base_values()
    values["config"]["sources"].append(
        {
            "id": "gcal",
            "type": "google_calendar",
            "delegated_admin": "a@example.com",
            "credentials_file": "/run/secrets/calendly/sa.json",
            "base_url": "https://reports.example.com:8443",
        }
    )
    values["config"]["sinks"] = [
        {"id": "k", "type": "kafka", "bootstrap_servers": ["k-0:9093", "k-1:9093"]},
        {
            "id": "hec",
            "type": "http",
            "url": "https://hec.example.com:8088/services/collector",
            "encoding": "splunk_hec",
        },
        {"id": "console", "type": "stdout"},
    ]
    values["networkPolicy"] = {"egress": {
        "apis": {"perSource": {"calendly": gateway}},
        "sinks": {"to": collectors, "perSink": {"k": kafka_ns}},
    }}  # fmt: skip
    documents = helm.render((values_file(tmp_path, values),))
    _validate(documents)
    rules = {
        tuple((port["port"], port["protocol"]) for port in rule["ports"]): rule.get("to")
        for rule in _egress_rules(documents)[1:]
    }
    default_internet = yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"][
        "egress"
    ]["apis"]["to"]
    assert rules == {
        ((443, "TCP"),): gateway,  # calendly: its own destination
        ((8443, "TCP"), (443, "TCP")): default_internet,  # gcal: its API and Google's token
        ((9093, "TCP"),): kafka_ns,
        ((8088, "TCP"),): collectors,
    }


def test_a_network_sink_without_a_destination_is_refused(helm: Helm, tmp_path: Path) -> None:
    values = changed("config.sinks.0", {"id": "hec", "type": "http", "url": "https://hec:8088"})
    result = helm.template([values_file(tmp_path, values)])
    assert result.returncode != 0
    assert "sink hec (http) has no destination: set networkPolicy.egress.sinks.perSink.hec" in (
        result.stderr
    )
    values["networkPolicy"] = {"enabled": False}
    assert helm.template([values_file(tmp_path, values)]).returncode == 0


def test_the_demo_opens_no_api_egress(helm: Helm) -> None:
    # The embedded simulators are on loopback: only DNS leaves the pod.
    (dns,) = _egress_rules(helm.render((EXAMPLES / "values-demo.yaml",)))
    assert {port["port"] for port in dns["ports"]} == {53}


# -- credential headers only from mounted Secrets -----------------------------------------------


def _http_sink(**fields: Any) -> dict[str, Any]:
    values = base_values()
    values["secretMounts"].append({"name": "clickhouse", "existingSecret": "forwarder-ch"})
    values["configMapMounts"] = [{"name": "ca", "configMap": "ca-bundle"}]
    values["config"]["sinks"] = [
        {"id": "ch", "type": "http", "url": "https://ch.example.com:8443/", **fields}
    ]
    values["networkPolicy"] = {"egress": {"sinks": {"to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}]}}}
    return values


def test_credential_headers_are_rendered_from_mounted_secrets(helm: Helm, tmp_path: Path) -> None:
    values = _http_sink(
        headers={"X-Tenant": "audit"},
        header_files={"X-ClickHouse-Key": "/run/secrets/clickhouse/key"},
    )
    documents = helm.render((values_file(tmp_path, values),))
    _validate(documents)
    config = parse_config(config_text(documents), environ={}, origin="config.yaml")
    sink = config.sinks["ch"]
    assert isinstance(sink, model.HttpSinkConfig)
    assert sink.headers == {"X-Tenant": "audit"}
    assert sink.header_files == {"X-ClickHouse-Key": Path("/run/secrets/clickhouse/key")}
    mounts = {m["mountPath"]: m for m in pod_spec(documents)["containers"][0]["volumeMounts"]}
    assert mounts["/run/secrets/clickhouse"]["readOnly"] is True
    volumes = {volume["name"]: volume for volume in pod_spec(documents)["volumes"]}
    assert volumes[mounts["/run/secrets/clickhouse"]["name"]]["secret"]["secretName"] == (
        "forwarder-ch"
    )


@pytest.mark.parametrize(
    "name",
    ["X-API-Key", "X-ClickHouse-Key", "X-Auth-Token", "Authorization", "Proxy-Authorization",
     "Cookie", "X-Client-Secret", "X-Password", "apikey"],
)  # fmt: skip
def test_credential_like_headers_are_refused_in_the_values(
    helm: Helm, tmp_path: Path, name: str
) -> None:
    values = _http_sink(headers={name: SENTINEL})
    result = helm.template([values_file(tmp_path, values)])
    assert result.returncode != 0, f"{name} accepted"
    assert SENTINEL not in result.stdout
    assert f"config.sinks[0] (ch).headers.{name}: a header whose name suggests a credential" in (
        result.stderr
    )
    assert f"header_files: {{{name}: /run/secrets/<name>/<key>}}" in result.stderr


def test_credential_like_kafka_headers_are_refused(helm: Helm, tmp_path: Path) -> None:
    values = changed(
        "config.sinks.0",
        {"id": "k", "type": "kafka", "bootstrap_servers": ["k:9093"],
         "headers": {"x-auth-token": SENTINEL}},
    )  # fmt: skip
    result = helm.template([values_file(tmp_path, values)])
    assert result.returncode != 0 and SENTINEL not in result.stdout
    assert "headers.x-auth-token: a header whose name suggests a credential" in result.stderr


@pytest.mark.parametrize(
    "path",
    ["/etc/forwarder/ca/key", "/run/secrets/undeclared/key", "/var/lib/forwarder/key",
     "/run/secrets/clickhouse"],
)  # fmt: skip
def test_header_files_must_be_in_a_mounted_secret(helm: Helm, tmp_path: Path, path: str) -> None:
    values = _http_sink(header_files={"X-ClickHouse-Key": path})
    result = helm.template([values_file(tmp_path, values)])
    assert result.returncode != 0, f"{path} accepted"
    assert (
        f"config.sinks[0] (ch).header_files.X-ClickHouse-Key: {path} is not in a mounted Secret"
        in result.stderr
    )


# -- the metrics listener ------------------------------------------------------------------------


def test_metrics_listener_is_bounded_and_its_exposure_declared(helm: Helm) -> None:
    from forwarder.config.insecure import insecure_settings

    text = config_text(helm.render())
    assert "# metrics.allow_insecure: the listener binds 0.0.0.0:9108" in text
    config = parse_config(text, environ={}, origin="config.yaml")
    assert config.metrics.allow_insecure is True
    assert (config.metrics.max_connections, config.metrics.idle_timeout) == (64, 30.0)
    assert not [f for f in insecure_settings(config) if f.key == "metrics.listen"]
    tuned = parse_config(
        config_text(helm.render(sets=("metrics.maxConnections=16", "metrics.idleTimeout=10s"))),
        environ={},
    )
    assert (tuned.metrics.max_connections, tuned.metrics.idle_timeout) == (16, 10.0)
    # Without the NetworkPolicy (or with it open to anyone) the daemon's warning stays.
    for sets in (("networkPolicy.enabled=false",), ("networkPolicy.ingress.from=null",)):
        open_config = parse_config(config_text(helm.render(sets=sets)), environ={})
        assert open_config.metrics.allow_insecure is False, sets
        assert [f for f in insecure_settings(open_config) if f.key == "metrics.listen"], sets
