from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from cli_harness import run_cli
from pydantic import BaseModel

from forwarder.config.loader import ConfigError, load_config, parse_config
from forwarder.config.model import Config

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
state_dir: {state}
sources:
  cal:
    type: calendly
    organization: https://api.calendly.com/organizations/X
    token_file: {token}
sinks:
  out: {{type: file, path: {state}/out.ndjson}}
"""


def _config_text(tmp_path: Path, **replace: str) -> str:
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    text = MINIMAL.format(state=tmp_path / "state", token=token)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def _error(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ or {})
    return str(caught.value)


def test_minimal_config_has_safe_defaults(tmp_path: Path) -> None:
    config = parse_config(_config_text(tmp_path), {})
    source = config.sources["cal"]
    assert source.base_url == "https://api.calendly.com"
    assert source.page_size == 100 and source.overlap == 5.0
    assert config.pipeline.shutdown_grace == 30.0
    assert config.metrics.listen.startswith("127.0.0.1:")
    assert config.dead_letter_dir == tmp_path / "state" / "dead-letter"


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    text = _config_text(tmp_path) + "pipeline: {queue_capacity: lots}\n"
    assert _error(text).startswith("pipeline.queue_capacity: ")


def test_out_of_range_names_the_key_and_value(tmp_path: Path) -> None:
    text = _config_text(tmp_path).replace("    token_file:", "    page_size: 5000\n    token_file:")
    message = _error(text)
    assert message.startswith("sources.cal.page_size: ")
    assert "5000" in message


def test_missing_key_is_named(tmp_path: Path) -> None:
    text = _config_text(tmp_path).replace(
        "    organization: https://api.calendly.com/organizations/X\n", ""
    )
    assert _error(text) == "sources.cal.organization: missing required key"


def test_typo_is_reported_before_the_missing_key(tmp_path: Path) -> None:
    text = _config_text(tmp_path).replace("organization:", "organisation:")
    assert _error(text).startswith("sources.cal.organisation: unknown key")


def test_unknown_source_type(tmp_path: Path) -> None:
    text = _config_text(tmp_path).replace("type: calendly", "type: outlook")
    message = _error(text)
    assert message.startswith("sources.cal: missing or unknown type")


def test_token_and_token_file_are_exclusive(tmp_path: Path) -> None:
    text = _config_text(tmp_path).replace("    token_file:", "    token: inline\n    token_file:")
    assert "exactly one of token or token_file" in _error(text)


def test_settle_window_must_cover_two_hours(tmp_path: Path) -> None:
    config_text = _config_text(tmp_path).replace(
        "sinks:",
        "  gcal: {type: google_calendar, credentials_file: /x, delegated_admin: a@b.c,"
        " settle_window: 30m}\nsinks:",
    )
    message = _error(config_text)
    assert message.startswith("sources.gcal: ")
    assert "at least 2h" in message


def test_environment_substitution_and_defaults(tmp_path: Path) -> None:
    text = (
        _config_text(tmp_path).replace("https://api.calendly.com/organizations/X", "${ORG_URI}")
        + "log: {level: '${LEVEL:-warning}'}\n"
    )
    config = parse_config(text, {"ORG_URI": "https://api.calendly.com/organizations/Y"})
    assert config.sources["cal"].organization == "https://api.calendly.com/organizations/Y"
    assert config.log.level == "warning"


def test_unset_environment_variable_names_the_key(tmp_path: Path) -> None:
    text = _config_text(tmp_path).replace("https://api.calendly.com/organizations/X", "${NOPE}")
    assert _error(text) == "sources.cal.organization: environment variable NOPE is not set"


def test_durations_accept_units(tmp_path: Path) -> None:
    text = _config_text(tmp_path).replace(
        "    token_file:", "    poll_interval: 2m\n    token_file:"
    )
    assert parse_config(text, {}).sources["cal"].poll_interval == 120.0
    bad = _config_text(tmp_path).replace(
        "    token_file:", "    poll_interval: soon\n    token_file:"
    )
    assert _error(bad).startswith("sources.cal.poll_interval: invalid duration")


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    assert "not valid YAML at line 2" in _error("state_dir: x\nsources: {a: b: c}\n")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("page_size: 100", "page_size: many"), "sources.cal.page_size"),
        (
            ("    organization: https://api.calendly.com/organizations/X\n", ""),
            "sources.cal.organization",
        ),
    ],
)
def test_check_config_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, change: tuple[str, str], key: str
) -> None:
    text = _config_text(tmp_path).replace("    token_file:", "    page_size: 100\n    token_file:")
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(*change))
    result = run_cli("check-config", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert key in lines[0]


def test_unreadable_secret_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_config_text(tmp_path).replace(str(tmp_path / "token"), "/nonexistent/token"))
    for command in ("check-config", "run"):
        result = run_cli(command, "--config", str(path), cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1
        assert "sources.cal.token_file" in lines[0]
        assert "/nonexistent/token" in lines[0]


def test_secret_value_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(_config_text(tmp_path))
    result = run_cli("check-config", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert b"config OK" in result.stdout
    assert "secret-token" not in (result.stdout + result.stderr).decode()


def _model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        candidates = typing.get_args(field.annotation) or (field.annotation,)
        for annotation in candidates:
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                keys |= _model_keys(annotation, prefix + name + ".")
    return keys


def _yaml_keys(node: object, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(node, dict):
        for name, value in node.items():
            if prefix in ("sources.", "sinks."):
                keys |= _yaml_keys(value, prefix.rstrip(".") + ".<" + str(value.get("type")) + ">.")
                continue
            keys.add(prefix + str(name))
            keys |= _yaml_keys(value, prefix + str(name) + ".")
    return keys


def test_reference_config_is_valid_and_documents_every_key() -> None:
    reference = ROOT / "config" / "reference.yaml"
    config = load_config(reference)
    assert isinstance(config, Config)
    documented = _yaml_keys(yaml.safe_load(reference.read_text()))
    expected = _model_keys(Config) - {"sources", "sinks"}
    from forwarder.config import model

    for section, union in (("sources", model.SourceConfig), ("sinks", model.SinkConfig)):
        for variant in union.__origin__.__args__:  # type: ignore[attr-defined]
            kind = variant.model_fields["type"].annotation.__args__[0]
            expected |= _model_keys(variant, f"{section}.<{kind}>.")
    # Documented as comments: the inline alternatives to the *_file secrets.
    missing = (
        expected
        - documented
        - {
            "sources.<calendly>.token",
            "sinks.<kafka>.sasl.password",
            "sources_dir",  # a directory the loader would read
        }
    )
    assert not missing, f"keys missing from config/reference.yaml: {sorted(missing)}"


def test_demo_config_is_valid() -> None:
    config = load_config(ROOT / "config" / "demo.yaml")
    assert config.simulators is not None
    assert set(config.sources) == {"calendly", "google_calendar"}


def _with_kafka(tmp_path: Path, kafka: str) -> str:
    return (
        _config_text(tmp_path) + f"  kafka: {{type: kafka, bootstrap_servers: [b:9092], {kafka}}}\n"
    )


def test_kafka_sasl_needs_a_sasl_protocol(tmp_path: Path) -> None:
    text = _with_kafka(tmp_path, "sasl: {mechanism: PLAIN, username: u, password_file: /p}")
    message = _error(text)
    assert message.startswith("sinks.kafka: ") and "security_protocol SASL_SSL" in message


def test_kafka_idempotence_needs_acks_all(tmp_path: Path) -> None:
    assert "acks: all" in _error(_with_kafka(tmp_path, "acks: 1"))
    config = parse_config(_with_kafka(tmp_path, "acks: 1, enable_idempotence: false"), {})
    assert config.sinks["kafka"].acks == 1


def test_kafka_topic_template_fields_are_checked(tmp_path: Path) -> None:
    message = _error(_with_kafka(tmp_path, "topic: 'audit.{tenant}'"))
    assert message.startswith("sinks.kafka: ") and "{provider}" in message


def test_check_config_reads_kafka_secrets(tmp_path: Path) -> None:
    path = tmp_path / "kafka.yaml"
    path.write_text(
        _with_kafka(
            tmp_path,
            "security_protocol: SASL_SSL,"
            " sasl: {mechanism: SCRAM-SHA-512, username: u, password_file: /missing/pw}",
        )
    )
    result = run_cli("check-config", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "sinks.kafka.sasl.password_file" in result.stderr.decode()
