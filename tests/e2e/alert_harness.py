"""Alerts tested against a real daemon: its scraped series, replayed as Prometheus would
store them through ``promtool test rules`` with the shipped rules file."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yaml"
# The labels Prometheus adds to every scraped sample (the rules assume job="forwarder").
SCRAPE_LABELS = {"job": "forwarder", "instance": "f:9108"}

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET (an HTTP error status too)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def samples(text: str) -> Samples:
    """Every sample of an exposition: name -> sorted labels -> value."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


def series(name: str, labels: tuple[tuple[str, str], ...] = ()) -> str:
    """What Prometheus stores for a scraped sample: its labels plus job and instance."""
    scraped = dict(labels) | SCRAPE_LABELS
    inner = ", ".join(f'{key}="{value}"' for key, value in sorted(scraped.items()))
    return f"{name}{{{inner}}}"


def annotation(alert: str, name: str, **labels: str) -> str:
    """An annotation of ``alert`` in the rules file, with ``{{ $labels.x }}`` filled in."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rule = next(r for g in groups for r in g["rules"] if r.get("alert") == alert)
    text = str(rule["annotations"][name])
    for label, value in labels.items():
        text = text.replace(f"{{{{ $labels.{label} }}}}", value)
    return text


def promtool_test(
    directory: Path, tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[bytes]:
    """Run ``tests`` (promtool's test groups) against the shipped rules."""
    test_file = directory / "scraped.test.yaml"
    # promtool reads YAML; JSON is YAML.
    test_file.write_text(
        json.dumps({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests})
    )
    return subprocess.run(
        ["promtool", "test", "rules", str(test_file)], capture_output=True, timeout=60
    )
