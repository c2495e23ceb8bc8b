"""Whether the forwarder could write a path, found without writing anything: what
``check-config`` reports, and what ``run`` checks before it starts anything."""

from __future__ import annotations

import os
from pathlib import Path


def write_problem(path: Path, *, directory: bool) -> str | None:
    """Why the forwarder's user could not write ``path`` (a directory to create files in,
    or a file to open for writing), or ``None``. A missing path is judged by the nearest
    existing directory above it, where it would be created. ``os.access`` uses the real
    ids and sees read-only mounts and immutable files (even for root)."""
    path = Path(os.path.abspath(path))
    euid = os.geteuid()
    if os.path.lexists(path):
        if directory:
            if not os.path.isdir(path):
                return f"{path} is not a directory"
            if not os.access(path, os.W_OK | os.X_OK):
                return f"the directory {path} is not writable by uid {euid}"
            return None
        if os.path.isdir(path):
            return f"{path} is a directory, not a file"
        if not os.access(path, os.W_OK):
            return f"the file {path} is not writable by uid {euid}"
        return None
    for parent in path.parents:
        if not os.path.lexists(parent):
            continue
        if not os.path.isdir(parent):
            return f"{parent} (above {path}) is not a directory"
        if not os.access(parent, os.W_OK | os.X_OK):
            return (
                f"{path} does not exist and cannot be created: {parent} is not writable "
                f"by uid {euid}"
            )
        return None
    return None
