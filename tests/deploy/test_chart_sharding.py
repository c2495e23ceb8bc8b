"""The Helm chart with sharding: several replicas render valid manifests whose config the
daemon accepts with ``shard.count`` = replicaCount and each pod's index from its name, and
the schema refuses several replicas without sharding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_harness import KUBERNETES_VERSIONS, Helm, config_text, one, pod_spec

from forwarder.config.loader import parse_config
from forwarder.shard import Shard, resolve_shard


def _values(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def test_three_sharded_replicas_render_valid_manifests(helm: Helm, tmp_path: Path) -> None:
    path = _values(tmp_path, {"replicaCount": 3, "sharding": {"enabled": True}})
    lint = helm.lint([path])
    assert lint.returncode == 0 and "[WARNING]" not in lint.output, lint.output
    documents = helm.render([path])
    for document in documents:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = ".".join(str(part) for part in error.path)
                pytest.fail(f"{document['kind']} invalid for {version} at {where}: {error.message}")
    statefulset = one(documents, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    # One volume per pod: each replica keeps the cursors of its own sources.
    assert [claim["metadata"]["name"] for claim in statefulset["spec"]["volumeClaimTemplates"]] == [
        "state"
    ]
    container = pod_spec(documents)["containers"][0]
    assert {"name": "HOSTNAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in (
        container["env"]
    )
    config = parse_config(config_text(documents), environ={}, origin="config.yaml")
    assert config.shard.count == 3 and config.shard.index is None
    # Each pod is <statefulset>-<ordinal>: its shard is its ordinal.
    name = statefulset["metadata"]["name"]
    for ordinal in range(3):
        environ = {"HOSTNAME": f"{name}-{ordinal}"}
        assert resolve_shard(config.shard, environ=environ) == Shard(ordinal, 3)


def test_one_replica_renders_no_shard(helm: Helm) -> None:
    documents = helm.render()
    config = parse_config(config_text(documents), environ={}, origin="config.yaml")
    assert config.shard.count == 1
    assert "env" not in pod_spec(documents)["containers"][0]
    assert one(documents, "StatefulSet")["spec"]["replicas"] == 1


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"replicaCount": 3}, "replicaCount"),
        ({"replicaCount": 3, "sharding": {"enabled": False}}, "replicaCount"),
        ({"replicaCount": 0, "sharding": {"enabled": True}}, "replicaCount"),
        ({"sharding": {"enabled": True, "count": 2}}, "count"),
        ({"config": {"shard": {"count": 2}}}, "shard"),
    ],
    ids=["3 unsharded", "3 sharding off", "0 replicas", "unknown sharding key", "config.shard"],
)
def test_schema_refuses_replicas_without_sharding(
    helm: Helm, tmp_path: Path, values: dict[str, Any], named: str
) -> None:
    path = _values(tmp_path, values)
    for result in (helm.template([path]), helm.lint([path])):
        assert result.returncode != 0, f"accepted:\n{result.output}"
        assert "schema" in result.output, result.output
        assert named in result.output.replace("/", "."), result.output


def test_pods_watch_their_mounted_files_for_reloads(helm: Helm, tmp_path: Path) -> None:
    # Secrets and ConfigMaps update inside the pod's volumes and nobody sends SIGHUP to a
    # pod: by default the daemon watches them; a value of the user's own is kept.
    config = parse_config(config_text(helm.render()), environ={}, origin="config.yaml")
    assert config.reload.watch_interval == 30.0
    (tmp_path / "off").mkdir()
    path = _values(tmp_path / "off", {"config": {"reload": {"watch_interval": "0s"}}})
    config = parse_config(config_text(helm.render([path])), environ={}, origin="config.yaml")
    assert config.reload.watch_interval == 0.0
    (tmp_path / "typo").mkdir()
    path = _values(tmp_path / "typo", {"config": {"reload": {"watch_intervl": "5s"}}})
    assert "watch_intervl" in helm.lint([path]).output


def test_many_tenants_keep_a_pod_ready_when_one_tenant_fails(helm: Helm, tmp_path: Path) -> None:
    # One tenant's failure must not take a sharded pod out of service (nor hold up a
    # rollout); one company's single pod keeps the strict readiness.
    def readiness(values: dict[str, Any]) -> str:
        # Each its own directory: renders are cached by the values files' paths.
        directory = tmp_path / str(len(list(tmp_path.iterdir())))
        directory.mkdir()
        documents = helm.render([_values(directory, values)])
        return str(yaml.safe_load(config_text(documents))["metrics"]["readiness"])

    assert readiness({}) == "every_source"
    assert readiness({"replicaCount": 3, "sharding": {"enabled": True}}) == "any_source"
    assert readiness({"config": {"sources_dir": "/etc/forwarder/sources.d"}}) == "any_source"
    explicit = {
        "replicaCount": 2,
        "sharding": {"enabled": True},
        "metrics": {"readiness": "every_source"},
    }
    assert readiness(explicit) == "every_source"
