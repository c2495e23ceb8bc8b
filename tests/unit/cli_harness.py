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
