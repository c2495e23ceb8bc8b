"""Load a YAML config: parse, substitute ``${VAR}``, validate, and read secret files.

Every problem becomes a :class:`ConfigError` whose message names the key, so the daemon
can exit with status 2 and one line an operator can act on.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from forwarder.config.insecure import insecure_settings
from forwarder.config.model import Config
from forwarder.config.sources_dir import read_sources_dir

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TAGGED_SECTIONS = ("sources", "sinks")
_SECRET_KEY = re.compile(r"token|secret|password|passwd|authorization|private|key|auth", re.I)


class ConfigError(Exception):
    """One or more configuration problems, each worded as ``<key>: <problem>`` (one line
    each, see :meth:`lines`); ``key`` and ``problem`` are the first one's."""

    def __init__(self, key: str | None, problem: str) -> None:
        self.key = key
        self.problem = problem
        self.problems: list[tuple[str | None, str]] = [(key, problem)]
        super().__init__(_line(key, problem))

    @classmethod
    def combine(cls, errors: Sequence[ConfigError]) -> ConfigError:
        """One error carrying every problem of ``errors`` (at least one), in order."""
        first = cls(errors[0].key, errors[0].problem)
        first.problems = [problem for error in errors for problem in error.problems]
        first.args = ("\n".join(first.lines()),)
        return first

    def lines(self) -> list[str]:
        """Every problem as one ``<key>: <problem>`` line."""
        return [_line(key, problem) for key, problem in self.problems]


def _line(key: str | None, problem: str) -> str:
    return f"{key}: {problem}" if key else problem


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate the config file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(None, f"cannot read config file {path}: {error.strerror}") from None
    return parse_config(text, environ if environ is not None else os.environ, origin=str(path))


def parse_config(text: str, environ: Mapping[str, str], origin: str = "<config>") -> Config:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(None, f"{origin} is not valid YAML{where}: {problem}") from None
    if not isinstance(document, dict):
        raise ConfigError(None, f"{origin} must be a YAML mapping of settings")
    document = _substitute(document, environ, ())
    if document.get("sources_dir") is not None:
        document = _with_sources_dir(document, environ)
    try:
        config = Config.model_validate(document)
    except ValidationError as error:
        raise _all_problems(error) from None
    problems = [
        ConfigError(finding.key, finding.message)
        for finding in insecure_settings(config)
        if finding.refused
    ]
    problems.extend(shared_output_files(config))
    if problems:
        raise ConfigError.combine(problems)
    return config


def _with_sources_dir(document: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``document`` with the sources of its ``sources_dir`` files added to ``sources``."""
    directory = Path(str(document["sources_dir"])).expanduser()
    if not directory.is_dir():
        raise ConfigError("sources_dir", f"{directory} is not a directory")
    found = read_sources_dir(
        directory,
        lambda node: _substitute(node, environ, ()),
        ConfigError,
        _worded,
    )
    inline = document.get("sources")
    sources = dict(inline) if isinstance(inline, dict) else {}
    for source_id, (file, settings) in found.items():
        if source_id in sources:
            raise ConfigError(
                f"sources.{source_id}",
                f"defined in both the config file (sources:) and {file}: give each its own id",
            )
        sources[source_id] = settings
    return {**document, "sources": sources}


def _worded(problem: Any) -> tuple[str | None, str]:
    """One pydantic problem as (key, problem), worded as the config's own."""
    error = _problem(problem)
    return error.key, error.problem


def shared_output_files(config: Config) -> list[ConfigError]:
    """File sinks (and the dead-letter file) that would write the same file: every event
    written twice, interleaved. Paths are compared resolved (``./a`` and ``a``, links)."""
    from forwarder.checkpoint.statedir import DEAD_LETTER_FILE

    owners: dict[Path, str] = {}
    problems: list[ConfigError] = []
    outputs = [
        (f"sinks.{sink_id}.path", Path(sink.path))
        for sink_id, sink in config.sinks.items()
        if sink.type == "file"
    ]
    outputs.append(("dead_letter.path", Path(config.dead_letter_dir) / DEAD_LETTER_FILE))
    for key, path in outputs:
        resolved = path.expanduser().resolve()
        first = owners.setdefault(resolved, key)
        if first != key:
            problems.append(
                ConfigError(
                    key,
                    f"writes the same file as {first} ({resolved}): give each its own path",
                )
            )
    return problems


def _substitute(node: Any, environ: Mapping[str, str], path: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        return {key: _substitute(value, environ, (*path, str(key))) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(value, environ, (*path, str(i))) for i, value in enumerate(node)]
    if isinstance(node, str) and "$" in node:

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(".".join(path), f"environment variable {name} is not set")

        return _VARIABLE.sub(replace, node)
    return node


def _all_problems(error: ValidationError) -> ConfigError:
    """Every problem pydantic found, each naming its key, typos first (a misspelt key
    usually also causes a "missing" error)."""
    problems = error.errors(include_url=False)
    problems.sort(key=lambda problem: problem["type"] != "extra_forbidden")
    return ConfigError.combine([_problem(problem) for problem in problems])


# What a key whose value must match a pattern expects, in words (a regex means nothing
# to most operators): by the key's last part.
_PATTERN_WORDS = {
    "url": "must start with http:// or https://",
    "delegated_admin": "must be an email address (admin@example.com)",
    "mode": "must be an octal file mode such as 0600 or 0640",
    "sd_id": (
        "must be 1 to 32 printable ASCII characters without space, '=', ']' or '\"'"
        " (RFC 5424 SD-ID, e.g. forwarder@32473)"
    ),
    "listen": "must be host:port, e.g. 127.0.0.1:9108 or [::1]:9108",
    "tenant": "must be 1 to 64 letters, digits, '.', '_' or '-'",
}


def _problem(problem: Any) -> ConfigError:
    location = list(problem["loc"])
    # Inside sources.<id> / sinks.<id> pydantic adds the union tag (the `type`) to the path.
    if len(location) >= 3 and location[0] in _TAGGED_SECTIONS:
        del location[2]
    key = ".".join(str(part) for part in location) or None
    message = problem["msg"]
    secret = bool(_SECRET_KEY.search(key or ""))
    if problem["type"] == "missing":
        message = "missing required key"
    elif problem["type"] == "extra_forbidden":
        message = "unknown key (check the spelling against config/reference.yaml)"
    elif problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
        message = f"missing or unknown type: {message}"
    elif problem["type"] == "string_pattern_mismatch":
        name = str(location[-1]) if location else ""
        message = _PATTERN_WORDS.get(name, "has an invalid format (see config/reference.yaml)")
        if not secret:
            message = f"{message} (got {problem['input']!r})"
    elif "input" in problem and not isinstance(problem["input"], dict | list) and not secret:
        # Never echo what was given for a secret (a numeric token is still a token).
        message = f"{message} (got {problem['input']!r})"
    return ConfigError(key, message.removeprefix("Value error, "))


def read_secret(inline: SecretStr | None, file: Path | None, key: str) -> str:
    """The secret's value, from the inline setting or the file (trailing newline stripped)."""
    if inline is not None:
        return inline.get_secret_value()
    assert file is not None
    try:
        value = file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(
            f"{key}_file", f"cannot read secret file {file}: {error.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}_file", f"secret file {file} is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"{key}_file", f"secret file {file} is empty")
    return value


def read_json_secret_file(file: Path, key: str) -> bytes:
    """Raw bytes of a JSON credentials file (parsed by its user)."""
    try:
        return file.read_bytes()
    except OSError as error:
        raise ConfigError(key, f"cannot read credentials file {file}: {error.strerror}") from None


# Settings whose file holds a secret (read again here only to learn the value to redact).
_SECRET_FILE_KEYS = frozenset({"token_file", "password_file", "key_password_file"})


def collect_secrets(node: Any) -> list[str]:
    """Every secret value a config carries, inline or in its secret files, for the
    :class:`~forwarder.observability.redact.Redactor`. Files that cannot be read are
    skipped (building the component reports them, naming the key)."""
    secrets: list[str] = []
    if isinstance(node, SecretStr):
        secrets.append(node.get_secret_value())
    elif isinstance(node, dict):
        for value in node.values():
            secrets.extend(collect_secrets(value))
    elif isinstance(node, list | tuple):
        for value in node:
            secrets.extend(collect_secrets(value))
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name)
            if name in _SECRET_FILE_KEYS and isinstance(value, Path):
                secrets.extend(_file_secret(value))
            elif name == "header_files" and isinstance(value, dict):
                for path in value.values():
                    secrets.extend(_file_secret(Path(path)))
            elif name == "credentials_file" and isinstance(value, Path):
                secrets.extend(_service_account_secrets(value))
            else:
                secrets.extend(collect_secrets(value))
        username, password = getattr(node, "username", None), getattr(node, "password", None)
        password_file = getattr(node, "password_file", None)
        if isinstance(username, str) and (password is not None or password_file is not None):
            # Basic auth sends base64("user:password"): that form is a secret too.
            values = [password.get_secret_value()] if password is not None else []
            if password_file is not None:
                values.extend(_file_secret(Path(password_file)))
            for value in values:
                secrets.append(base64.b64encode(f"{username}:{value}".encode()).decode())
    return secrets


def _file_secret(path: Path) -> list[str]:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return []
    return [value] if value else []


def _service_account_secrets(path: Path) -> list[str]:
    try:
        info = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    if not isinstance(info, dict):
        return []
    return [
        str(info[name])
        for name in ("private_key", "private_key_id")
        if isinstance(info.get(name), str) and info[name]
    ]
