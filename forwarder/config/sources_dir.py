"""``sources_dir``: sources kept as data, one YAML file (or more) per tenant.

Each ``*.yaml`` / ``*.yml`` file directly in the directory holds ``sources: {id: {...}}``
with the same schema as the inline ``sources:``. Files are read in name order, at the
top level only: a Kubernetes ConfigMap or Secret volume shows its keys as top-level
symlinks into a hidden ``..2024_...`` directory (through ``..data``), so hidden names are
skipped and each key is read once, through its symlink.

Relative ``token_file`` / ``credentials_file`` paths in a file are relative to the
directory (so a tenant's Secret can carry its YAML file and its token side by side);
inline sources keep resolving them against the working directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from forwarder.config.model import SourceConfig

_SUFFIXES = (".yaml", ".yml")
# Settings of a source that name a file: made relative to the sources_dir directory.
_PATH_KEYS = ("token_file", "credentials_file")

# What a ConfigError is built from: (key, problem) -> exception. Passed in by the loader
# so that this module does not import it (the loader imports this one).
ErrorFactory = Callable[[str | None, str], Exception]


class _SourcesFile(BaseModel):
    """One file of a sources_dir: its sources, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: dict[str, SourceConfig]


def source_files(directory: Path) -> list[Path]:
    """The YAML files of ``directory`` in name order: top level, no hidden names."""
    entries = sorted(directory.iterdir(), key=lambda entry: entry.name)
    return [
        entry
        for entry in entries
        if not entry.name.startswith(".")
        and entry.name.endswith(_SUFFIXES)
        and entry.is_file()  # follows the symlink of a mounted key
    ]


def read_sources_dir(
    directory: Path,
    substitute: Callable[[Any], Any],
    error: ErrorFactory,
    problem_of: Callable[[Any], tuple[str | None, str]],
) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every source of ``directory``'s files: id -> (file, raw settings, ``${VAR}``
    substituted). Raises ``error(key, problem)`` naming the file for a file that cannot
    be read, is not YAML, does not validate, or repeats a source id of another file.
    ``problem_of`` words one pydantic error as (key, problem)."""
    try:
        files = source_files(directory)
    except OSError as exc:
        raise error("sources_dir", f"cannot read directory {directory}: {exc.strerror}") from None
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for file in files:
        for source_id, settings in _read_file(file, substitute, error, problem_of).items():
            if source_id in found:
                raise error(
                    f"sources.{source_id}",
                    f"defined in both {found[source_id][0]} and {file}: give each its own id",
                )
            found[source_id] = (file, settings)
    return found


def _read_file(
    file: Path,
    substitute: Callable[[Any], Any],
    error: ErrorFactory,
    problem_of: Callable[[Any], tuple[str | None, str]],
) -> dict[str, dict[str, Any]]:
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(None, f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(None, f"{file}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(None, f"{file} is not valid YAML{where}: {problem}") from None
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
        raise error(None, f"{file} must be a YAML mapping with a `sources:` mapping of sources")
    document = substitute(document)
    try:
        _SourcesFile.model_validate(document)
    except ValidationError as exc:
        # The first problem, a typo before the "missing" it usually also causes.
        problems = sorted(
            exc.errors(include_url=False), key=lambda p: p["type"] != "extra_forbidden"
        )
        key, problem = problem_of(problems[0])
        raise error(None, f"{file}: {key}: {problem}" if key else f"{file}: {problem}") from None
    return {
        str(source_id): _relative_to(file.parent, settings)
        for source_id, settings in document["sources"].items()
    }


def _relative_to(directory: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with its relative file paths made relative to ``directory``."""
    out = dict(settings)
    for key in _PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            out[key] = str(directory / value)
    return out
