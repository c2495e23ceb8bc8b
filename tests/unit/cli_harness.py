"""Runs the ``forwarder`` command as a user would: a subprocess of this interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=60,
    )


def calendly_config(tmp_path: Path, organizations: dict[str, str] | None = None) -> Path:
    """A config of Calendly sources (id -> organization id; default one source ``cal``)
    pointing at a closed port, a file sink and no metrics listener: for commands that
    read a config and the state without polling."""
    token = tmp_path / "token"
    token.write_text("t")
    sources = "".join(
        f"  {source_id}: {{type: calendly, organization: "
        f"https://api.calendly.com/organizations/{organization},\n"
        f'         token_file: {token}, base_url: "http://127.0.0.1:9"}}\n'
        for source_id, organization in (organizations or {"cal": "X"}).items()
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
state_dir: {tmp_path / "state"}
sources:
{sources}sinks:
  out: {{type: file, path: {tmp_path / "out.ndjson"}}}
metrics: {{enabled: false}}
"""
    )
    return path
