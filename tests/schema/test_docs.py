"""docs/schema.md is generated from the code's tables and must match them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from forwarder.schema.calendly_messages import ACTIVITY_TEMPLATES
from forwarder.schema.docs import REGENERATE, render_markdown
from forwarder.schema.field_reference import FIELDS
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "schema.md"


def test_docs_schema_md_is_up_to_date() -> None:
    rendered = render_markdown()
    assert DOCS.read_text(encoding="utf-8") == rendered, (
        f"docs/schema.md is out of date with forwarder/schema: regenerate it with `{REGENERATE}`"
    )


def test_module_prints_the_markdown() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "forwarder.schema.docs"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    assert result.stdout.decode("utf-8") == render_markdown()


def test_docs_cover_every_field_and_event() -> None:
    text = render_markdown()
    for field in FIELDS:
        assert f"| `{field.name}`" in text, field.name
    for name, spec in CALENDAR_EVENTS.items():
        assert f"| `{name}` |" in text and spec.message in text, name
    for (namespace, action), template in ACTIVITY_TEMPLATES.items():
        assert f"| `{namespace}` | `{action}` |" in text and template in text
    assert text.endswith("\n") and not text.endswith("\n\n")
