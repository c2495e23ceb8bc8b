"""Load a YAML config: parse, substitute ``${VAR}``, validate, and read secret files.

Every problem becomes a :class:`ConfigError` whose message names the key, so the daemon
can exit with status 2 and one line an operator can act on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from forwarder.config.model import Config

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TAGGED_SECTIONS = ("sources", "sinks")


class ConfigError(Exception):
    """A configuration problem, worded as ``<key>: <problem>``."""

    def __init__(self, key: str | None, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)


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
    try:
        return Config.model_validate(document)
    except ValidationError as error:
        raise _first_problem(error) from None


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


def _first_problem(error: ValidationError) -> ConfigError:
    problems = error.errors(include_url=False)
    # A misspelt key usually also causes a "missing" error: report the typo first.
    problems.sort(key=lambda problem: problem["type"] != "extra_forbidden")
    first = problems[0]
    location = list(first["loc"])
    # Inside sources.<id> / sinks.<id> pydantic adds the union tag (the `type`) to the path.
    if len(location) >= 3 and location[0] in _TAGGED_SECTIONS:
        del location[2]
    key = ".".join(str(part) for part in location) or None
    message = first["msg"]
    if first["type"] == "missing":
        message = "missing required key"
    elif first["type"] == "extra_forbidden":
        message = "unknown key (check the spelling against config/reference.yaml)"
    elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        message = f"missing or unknown type: {message}"
    elif "input" in first and not isinstance(first["input"], dict | list):
        message = f"{message} (got {first['input']!r})"
    message = message.removeprefix("Value error, ")
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return ConfigError(key, message)


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
