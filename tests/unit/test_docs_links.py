"""The user documentation stays navigable, complete and right: every relative link and
anchor in README.md and docs/*.md resolves, docs/operations.md covers every metric the
daemon defines and every alert rule it ships, and every config example in docs/ passes
the config schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from forwarder.config.loader import ConfigError, parse_config
from forwarder.observability.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
OPERATIONS = DOCS / "operations.md"
METRICS_SOURCE = REPO / "forwarder" / "observability" / "metrics.py"
RULES = REPO / "deploy" / "prometheus" / "rules.yaml"

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target); the target ends at the first space or ')'.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ID = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link texts kept, markup and punctuation dropped,
    lower case, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a link may name in ``path``: heading slugs (repeats get -1, -2, ...)
    and explicit ``<a id="...">`` targets."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ID.findall(line))
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        seen = counts.get(base, 0)
        counts[base] = seen + 1
        found.add(base if seen == 0 else f"{base}-{seen}")
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link outside code."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            yield number, match.group(1)


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # external: not checked offline
        file_part, _, anchor = target.partition("#")
        where = f"{path.relative_to(REPO)}:{number}: {target}"
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{where}: no such file")
            continue
        if anchor:
            if resolved.suffix != ".md":
                problems.append(f"{where}: anchor into a file that is not Markdown")
            elif anchor not in anchors(resolved):
                problems.append(f"{where}: no heading or anchor #{anchor}")
    return problems


def test_the_docs_exist() -> None:
    names = {path.name for path in markdown_files()}
    for required in (
        "README.md",
        "getting-started.md",
        "configuration.md",
        "deploying.md",
        "operations.md",
        "delivery.md",
        "schema.md",
        "development.md",
    ):
        assert required in names


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: path.name)
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_every_doc_is_reachable_from_the_readme() -> None:
    """A page nobody links to is a page nobody reads: each one is linked from the README
    or from a page the README links to."""
    reached: set[Path] = set()
    todo = [REPO / "README.md"]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        for _, target in links(page):
            file_part = target.partition("#")[0]
            if file_part and not SCHEME.match(target) and file_part.endswith(".md"):
                todo.append((page.parent / file_part).resolve())
    assert {path.resolve() for path in markdown_files()} - reached == set()


def test_the_link_checker_catches_broken_links(tmp_path: Path, monkeypatch) -> None:
    """The checks above can fail: a missing file, a missing anchor and a missing anchor in
    another page are each reported; code spans and blocks are not links."""
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    (tmp_path / "other.md").write_text("# Other page\n\n## Rotating `SIGHUP` files\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Same name\n\n## Same name\n\n"
        "[ok](other.md#rotating-sighup-files) [ok](#same-name-1) [ok](#title)\n"
        "[gone](missing.md) [bad](#nowhere) [bad](other.md#rotating)\n"
        "`[not a link](nothing.md)`\n\n```\n[in a block](nothing.md)\n```\n"
    )
    problems = broken_links(page)
    assert [problem.split(": ", 1)[1] for problem in problems] == [
        "missing.md: no such file",
        "#nowhere: no heading or anchor #nowhere",
        "other.md#rotating: no heading or anchor #rotating",
    ]


def metric_names() -> set[str]:
    """Every metric family the daemon registers, and every ``forwarder_*`` name written
    in metrics.py (families built at scrape time only appear once a source is watched)."""
    names = {family.name for family in Metrics().registry.collect()}
    names.update(re.findall(r"\"(forwarder_[a-z0-9_]+)\"", METRICS_SOURCE.read_text()))
    return names


def mentioned(name: str, text: str) -> bool:
    # Counters are exposed with _total, Info with _info; the name must not merely be the
    # start of a longer one (forwarder_source_requests vs ..._requests_in_flight).
    return re.search(rf"(?<![\w]){re.escape(name)}(?:_total|_info)?(?![\w])", text) is not None


def test_operations_documents_every_metric() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    names = metric_names()
    assert len(names) > 40  # the set is real, not empty by a broken regex
    assert sorted(name for name in names if not mentioned(name, text)) == []


def test_metric_check_can_fail() -> None:
    assert not mentioned("forwarder_source_requests", "`forwarder_source_requests_in_flight`")
    assert mentioned("forwarder_source_requests", "`forwarder_source_requests_total{purpose}`")
    assert mentioned("forwarder_build", "`forwarder_build_info`")


def alert_names() -> list[str]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [
        rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule
    ]


def test_operations_has_a_section_for_every_alert() -> None:
    """Each alert has its own heading (its meaning and what to do), so an alert's
    runbook link can be operations.md#<alert name in lower case>."""
    names = alert_names()
    assert len(names) >= 10
    sections = anchors(OPERATIONS)
    assert [name for name in names if name.lower() not in sections] == []


YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)
# What a partial example (a `sinks:` or `sources:` block alone) is completed with.
MINIMAL_CONFIG = {
    "state_dir": "/var/lib/forwarder",
    "sources": {
        "calendly": {
            "type": "calendly",
            "organization": "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA",
            "token_file": "/run/secrets/calendly-token",
        }
    },
    "sinks": {"events_file": {"type": "file", "path": "/var/lib/forwarder/events.ndjson"}},
}


# Keys of Helm values and Kubernetes pod fragments, never of a daemon config.
CHART_OR_KUBERNETES_KEYS = {
    "secretMounts",
    "config",
    "networkPolicy",
    "replicaCount",
    "sharding",
    "volumes",
    "volumeMounts",
}


def config_examples() -> list[tuple[str, dict]]:
    """Every YAML block of docs/*.md that is (part of) a daemon config; the Helm values
    and Kubernetes blocks (lists of sources and sinks, chart keys) are left to the
    chart's tests."""
    examples = []
    for path in sorted(DOCS.glob("*.md")):
        for number, match in enumerate(YAML_BLOCK.finditer(path.read_text(encoding="utf-8"))):
            document = yaml.safe_load(match.group(1))
            assert isinstance(document, dict), f"{path.name} YAML block {number}"
            helm = CHART_OR_KUBERNETES_KEYS & document.keys() or isinstance(
                document.get("sinks"), list
            )
            if not helm:
                examples.append((f"{path.name}#{number}", document))
    return examples


@pytest.mark.parametrize(
    "example", [pytest.param(example, id=where) for where, example in config_examples()]
)
def test_config_examples_in_the_docs_pass_the_schema(example: dict) -> None:
    config = {**MINIMAL_CONFIG, **example}
    try:
        parse_config(yaml.safe_dump(config), environ={})
    except ConfigError as error:
        pytest.fail(str(error))


def test_config_example_check_can_fail() -> None:
    with pytest.raises(ConfigError, match="page_size"):
        parse_config(
            yaml.safe_dump(
                {
                    **MINIMAL_CONFIG,
                    "sources": {"c": {**MINIMAL_CONFIG["sources"]["calendly"], "page_size": 5000}},
                }
            ),
            environ={},
        )
