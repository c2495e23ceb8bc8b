"""The official OCSF 1.7.0 schema (bundled by pydantic-ocsf), resolved once per session."""

from __future__ import annotations

import pytest

from forwarder.schema.ocsf.validate import OcsfSchema, load_schema


@pytest.fixture(scope="session")
def ocsf_schema() -> OcsfSchema:
    return load_schema()
