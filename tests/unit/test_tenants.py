"""Tenants as data: ``sources_dir`` (one YAML file per tenant, as a mounted Kubernetes
ConfigMap/Secret lays it out) merged with the inline sources, the ``tenant`` of every
source, and ``forwarder normalize --tenant``."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from cli_harness import run_cli

from forwarder.config.loader import ConfigError, load_config
from forwarder.config.model import CalendlySourceConfig, GoogleCalendarSourceConfig

EXIT_CONFIG = 2


def _calendly(organization: str, **extra: str) -> str:
    settings = "".join(f", {key}: {value}" for key, value in extra.items())
    return (
        f"{{type: calendly, organization: https://api.calendly.com/organizations/{organization}"
        f", token_file: token{settings}}}"
    )


def _config(tmp_path: Path, sources: str = "", sources_dir: Path | None = None) -> Path:
    (tmp_path / "token").write_text("t")
    lines = [f"state_dir: {tmp_path / 'state'}"]
    if sources:
        lines.append(f"sources:\n{sources}")
    if sources_dir is not None:
        lines.append(f"sources_dir: {sources_dir}")
    lines.append(f"sinks:\n  out: {{type: file, path: {tmp_path / 'out.ndjson'}}}")
    lines.append("metrics: {enabled: false}")
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _tenant_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "sources.d"
    directory.mkdir()
    (directory / "acme.yaml").write_text(
        f"sources:\n  acme-cal: {_calendly('ACME', tenant='acme')}\n"
        "  acme-google:\n    type: google_calendar\n    tenant: acme\n"
        "    credentials_file: /run/secrets/acme/google.json\n"
        "    delegated_admin: admin@acme.example\n"
    )
    (directory / "globex.yml").write_text(f"sources:\n  globex: {_calendly('GLOBEX')}\n")
    # Not read: not YAML by name, hidden, or in a subdirectory.
    (directory / "notes.txt").write_text("sources: {x: 1}\n")
    (directory / ".hidden.yaml").write_text("sources: {x: 1}\n")
    (directory / "nested").mkdir()
    (directory / "nested" / "other.yaml").write_text("sources: {x: 1}\n")
    return directory


def test_sources_dir_merged_with_inline_sources(tmp_path: Path) -> None:
    directory = _tenant_dir(tmp_path)
    config = load_config(_config(tmp_path, f"  inline: {_calendly('IN')}\n", directory))
    assert list(config.sources) == ["inline", "acme-cal", "acme-google", "globex"]
    tenants = {source_id: source.tenant for source_id, source in config.sources.items()}
    # Default: the source's own id.
    assert tenants == {
        "inline": "inline",
        "acme-cal": "acme",
        "acme-google": "acme",
        "globex": "globex",
    }
    # Relative secret paths in a file are relative to its directory; absolute ones kept.
    acme_cal = config.sources["acme-cal"]
    assert isinstance(acme_cal, CalendlySourceConfig)
    assert acme_cal.token_file == directory / "token"
    acme_google = config.sources["acme-google"]
    assert isinstance(acme_google, GoogleCalendarSourceConfig)
    assert acme_google.credentials_file == Path("/run/secrets/acme/google.json")
    inline = config.sources["inline"]
    assert isinstance(inline, CalendlySourceConfig)
    assert inline.token_file == Path("token")  # inline: relative to the working directory


def test_sources_dir_alone_is_enough(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, sources_dir=_tenant_dir(tmp_path)))
    assert set(config.sources) == {"acme-cal", "acme-google", "globex"}


def test_kubernetes_mounted_directory_is_read_once(tmp_path: Path) -> None:
    """A ConfigMap volume: keys are top-level symlinks to ``..data/<key>``, ``..data`` a
    symlink to the hidden, timestamped directory that holds the files."""
    mount = tmp_path / "mount"
    versioned = mount / "..2026_11_30_10_00_00.123456789"
    versioned.mkdir(parents=True)
    (versioned / "acme.yaml").write_text(f"sources:\n  acme: {_calendly('ACME')}\n")
    (versioned / "token").write_text("t")
    os.symlink(versioned.name, mount / "..data")
    os.symlink("..data/acme.yaml", mount / "acme.yaml")
    os.symlink("..data/token", mount / "token")
    config = load_config(_config(tmp_path, sources_dir=mount))
    assert list(config.sources) == ["acme"]
    source = config.sources["acme"]
    assert isinstance(source, CalendlySourceConfig)
    assert source.token_file is not None and source.token_file.read_text() == "t"


def test_duplicate_id_names_both_files(tmp_path: Path) -> None:
    directory = _tenant_dir(tmp_path)
    (directory / "zeta.yaml").write_text(f"sources:\n  globex: {_calendly('OTHER')}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, sources_dir=directory))
    message = str(caught.value)
    assert caught.value.key == "sources.globex"
    assert str(directory / "globex.yml") in message and str(directory / "zeta.yaml") in message


def test_duplicate_of_an_inline_id_names_the_file(tmp_path: Path) -> None:
    directory = _tenant_dir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, f"  globex: {_calendly('IN')}\n", directory))
    assert caught.value.key == "sources.globex"
    assert str(directory / "globex.yml") in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sources: [unclosed\n", "is not valid YAML"),
        ("- a list\n", "must be a YAML mapping with a `sources:`"),
        ("sources:\n  bad: {type: calendly, organization: o, token_file: t, pge_size: 5}\n",
         "sources.bad.pge_size: unknown key"),
        ("sources:\n  bad: {type: calendly, organization: o, token_file: t, tenant: 'a b'}\n",
         "sources.bad.tenant: must be 1 to 64 letters"),
    ],
)  # fmt: skip
def test_a_broken_file_is_a_config_error_naming_it(
    tmp_path: Path, text: str, expected: str
) -> None:
    directory = _tenant_dir(tmp_path)
    (directory / "broken.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, sources_dir=directory))
    assert str(directory / "broken.yaml") in str(caught.value)
    assert expected in str(caught.value)


def test_a_broken_file_exits_2_at_start(tmp_path: Path) -> None:
    directory = _tenant_dir(tmp_path)
    (directory / "broken.yaml").write_text("sources: {bad: {type: nope}}\n")
    result = run_cli("check-config", "--config", str(_config(tmp_path, sources_dir=directory)))
    assert result.returncode == EXIT_CONFIG
    assert str(directory / "broken.yaml") in result.stderr.decode()


def test_a_missing_sources_dir_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, f"  a: {_calendly('A')}\n", tmp_path / "absent"))
    assert caught.value.key == "sources_dir"


@pytest.mark.parametrize("tenant", ["", "a b", "x" * 65, "ünï"])
def test_tenant_is_validated(tmp_path: Path, tenant: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, f"  a: {_calendly('A', tenant=repr(tenant))}\n"))
    assert caught.value.key == "sources.a.tenant"


def test_normalize_tenant_option() -> None:
    entry = {
        "uri": "https://api.calendly.com/activity_log_entries/ALE1",
        "occurred_at": "2026-03-20T10:11:12.123456Z",
        "namespace": "API",
        "action": "Token_Created",
        "details": {},
        "organization": "https://api.calendly.com/organizations/ORG1",
        "actor": {"type": "System", "display_name": "Calendly System"},
    }
    stdin = orjson.dumps(entry) + b"\n"
    result = run_cli("normalize", "--source", "calendly", "--tenant", "acme", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["labels"] == {"tenant": "acme"}
    ocsf = run_cli(
        "normalize", "--source", "calendly", "--format", "ocsf", "--tenant", "acme", stdin=stdin
    )
    assert orjson.loads(ocsf.stdout)["metadata"]["tags"] == [{"name": "tenant", "value": "acme"}]
    bad = run_cli("normalize", "--source", "calendly", "--tenant", "a b", stdin=stdin)
    assert bad.returncode == EXIT_CONFIG
    assert b"--tenant" in bad.stderr
