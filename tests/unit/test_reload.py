"""Reloading the source set (issue 18): what a reload plans, what it applies to a running
daemon, and what it refuses while the running set keeps going."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from forwarder.config.loader import load_config
from forwarder.config.reload import SourceSpec, plan_reload, watched_files_digest
from forwarder.daemon import Daemon
from forwarder.observability.metrics import Metrics

UNREACHABLE = "http://127.0.0.1:9"


def _source(source_id: str, token: Path, **settings: object) -> str:
    extra = "".join(f", {key}: {value}" for key, value in settings.items())
    return (
        f"  {source_id}: {{type: calendly, organization: "
        f"https://api.calendly.com/organizations/{source_id.upper()},\n"
        f'         token_file: {token}, base_url: "{UNREACHABLE}"{extra}}}\n'
    )


class Setup:
    """A config file of Calendly sources (at a closed port) that a test rewrites."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.token = tmp_path / "token"
        self.token.write_text("t")
        self.path = tmp_path / "config.yaml"

    def write(self, sources: str, sink: str = "out.ndjson", extra: str = "") -> Path:
        self.path.write_text(
            f"""
state_dir: {self.tmp_path / "state"}
sources:
{sources}sinks:
  out: {{type: file, path: {self.tmp_path / sink}}}
metrics: {{enabled: false}}
{extra}"""
        )
        return self.path


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


@contextlib.asynccontextmanager
async def _running(daemon: Daemon) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    await daemon.started.wait()
    try:
        yield
    finally:
        stop.set()
        await task


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _open_ids(daemon: Daemon) -> list[str]:
    return sorted(source.id for source in daemon.sources)


def _info(metrics: Metrics) -> set[tuple[str, str]]:
    return {
        (sample.labels["source"], sample.labels["tenant"])
        for family in metrics.registry.collect()
        if family.name == "forwarder_source_info"
        for sample in family.samples
    }


def _series_of(metrics: Metrics, source_id: str) -> list[str]:
    return [
        sample.name
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.labels.get("source") == source_id
    ]


# -- the plan ---------------------------------------------------------------------------------


def test_plan_sorts_sources_into_added_removed_changed_and_unchanged(setup: Setup) -> None:
    old = load_config(setup.write(_source("a", setup.token) + _source("b", setup.token)))
    new = load_config(
        setup.write(
            _source("a", setup.token) + _source("c", setup.token),
            sink="other.ndjson",
        )
    )
    running = {source_id: SourceSpec.of(old.sources[source_id]) for source_id in old.sources}
    wanted = {source_id: SourceSpec.of(new.sources[source_id]) for source_id in new.sources}
    plan = plan_reload(running, wanted, old, new)
    assert (plan.added, plan.removed, plan.changed, plan.unchanged) == (
        ("c",),
        ("b",),
        (),
        ("a",),
    )
    assert plan.restart_needed == ("sinks",)

    # A new tenant label, or a token rotated in its file, is a change of the source.
    retagged = load_config(setup.write(_source("a", setup.token, tenant="acme")))
    plan = plan_reload(
        {"a": SourceSpec.of(old.sources["a"])},
        {"a": SourceSpec.of(retagged.sources["a"])},
        old,
        retagged,
    )
    assert plan.changed == ("a",)
    before = SourceSpec.of(old.sources["a"])
    setup.token.write_text("rotated")
    after = SourceSpec.of(old.sources["a"])
    assert before != after
    assert plan_reload({"a": before}, {"a": after}, old, old).changed == ("a",)
    assert plan_reload({"a": after}, {"a": after}, old, old).unchanged == ("a",)


def test_watched_digest_follows_the_files_a_reload_reads(setup: Setup) -> None:
    tenants = setup.tmp_path / "sources.d"
    tenants.mkdir()
    (tenants / "acme.yaml").write_text("sources:\n" + _source("acme", setup.token))
    path = setup.write(_source("a", setup.token), extra=f"sources_dir: {tenants}\n")
    config = load_config(path)
    first = watched_files_digest(path, config)
    assert watched_files_digest(path, config) == first
    (tenants / "globex.yaml").write_text("sources:\n" + _source("globex", setup.token))
    second = watched_files_digest(path, config)
    assert second != first
    (tenants / ".hidden.yaml").write_text("not read")
    (tenants / "notes.txt").write_text("not read")
    assert watched_files_digest(path, config) == second
    setup.token.write_text("rotated")
    third = watched_files_digest(path, config)
    assert third != second
    path.write_text(path.read_text() + "\n# a comment\n")
    assert watched_files_digest(path, config) != third


# -- a running daemon -------------------------------------------------------------------------


async def test_reload_adds_removes_and_restarts_sources(setup: Setup) -> None:
    path = setup.write(_source("a", setup.token) + _source("b", setup.token))
    metrics = Metrics()
    daemon = Daemon(load_config(path), metrics=metrics, config_path=path)
    async with _running(daemon):
        first_a = daemon.source_set.active["a"].source
        setup.write(_source("a", setup.token, page_size=20) + _source("c", setup.token))
        with capture_logs() as logs:
            assert await daemon.reload("test") is True
            await _until(lambda: _open_ids(daemon) == ["a", "c"], "b retired, a restarted")
            await _until(lambda: daemon.source_set.active["a"].runner is not None, "new a")
        applied = next(log for log in logs if log["event"] == "reload_applied")
        assert (applied["added"], applied["removed"], applied["changed"]) == (["c"], ["b"], ["a"])
        stopped = sorted(log["source"] for log in logs if log["event"] == "source_stopped")
        assert stopped == ["a", "b"]
        assert daemon.source_set.active["a"].source is not first_a
        assert sorted(runner.source.id for runner in daemon.runners) == ["a", "c"]
        assert _info(metrics) == {("a", "a"), ("c", "c")}
        assert _series_of(metrics, "b") == []
        assert metrics.registry.get_sample_value("forwarder_shard_sources") == 2
        assert (
            metrics.registry.get_sample_value(
                "forwarder_config_reloads_total", {"result": "applied"}
            )
            == 1
        )

        # Nothing changed: nothing is touched.
        untouched = {key: entry.source for key, entry in daemon.source_set.active.items()}
        with capture_logs() as logs:
            assert await daemon.reload("test") is True
        assert {key: e.source for key, e in daemon.source_set.active.items()} == untouched
        assert not [log for log in logs if log["event"] in ("source_stopped", "source_resumed")]


@pytest.mark.parametrize(
    ("breakage", "named"),
    [
        ("sources:\n  a: [not, a, mapping\n", "is not valid YAML"),
        ("unknown_section: 1\n", "unknown_section: unknown key"),
        ("missing_token", "sources.c.token_file: cannot read secret file"),
        ("require_state", "source 'c' has no committed state"),
    ],
)
async def test_a_refused_reload_leaves_the_running_set_untouched(
    setup: Setup, breakage: str, named: str
) -> None:
    path = setup.write(_source("a", setup.token) + _source("b", setup.token))
    metrics = Metrics()
    daemon = Daemon(load_config(path), metrics=metrics, config_path=path)
    async with _running(daemon):
        running = {key: entry.source for key, entry in daemon.source_set.active.items()}
        good = _source("a", setup.token, page_size=20) + _source("b", setup.token)
        if breakage == "missing_token":
            setup.write(good + _source("c", setup.tmp_path / "no-such-token"))
        elif breakage == "require_state":
            setup.write(good + _source("c", setup.token, require_state="true"))
        elif breakage.startswith("sources:"):
            path.write_text(breakage)
        else:
            setup.write(good, extra=breakage)
        with capture_logs() as logs:
            assert await daemon.reload("test") is False
        refused = next(log for log in logs if log["event"] == "reload_refused")
        assert any(named in problem for problem in refused["problems"]), refused
        assert not [log for log in logs if log["event"] in ("source_stopped", "source_resumed")]
        assert {key: e.source for key, e in daemon.source_set.active.items()} == running
        assert _open_ids(daemon) == ["a", "b"]
        assert _info(metrics) == {("a", "a"), ("b", "b")}
        assert _series_of(metrics, "c") == []
        sample = metrics.registry.get_sample_value
        assert sample("forwarder_config_last_reload_successful") == 0
        assert sample("forwarder_config_reloads_total", {"result": "refused"}) == 1

        # Mended: the next reload applies (a restarts with its new page size).
        setup.write(_source("a", setup.token, page_size=20) + _source("b", setup.token))
        assert await daemon.reload("test") is True
        assert sample("forwarder_config_last_reload_successful") == 1
        await _until(lambda: daemon.source_set.active["a"].runner is not None, "new a")
        assert daemon.source_set.active["a"].source is not running["a"]
        assert daemon.source_set.active["b"].source is running["b"]


async def test_a_source_removed_and_added_again_waits_for_its_old_instance(
    setup: Setup,
) -> None:
    path = setup.write(_source("a", setup.token) + _source("b", setup.token))
    daemon = Daemon(load_config(path), metrics=Metrics(), config_path=path)
    async with _running(daemon):
        first_b = daemon.source_set.active["b"].source
        setup.write(_source("a", setup.token))
        assert await daemon.reload("test")
        setup.write(_source("a", setup.token) + _source("b", setup.token))
        assert await daemon.reload("test")
        await _until(lambda: daemon.source_set.active["b"].runner is not None, "b again")
        assert daemon.source_set.active["b"].source is not first_b
        assert [runner.source.id for runner in daemon.runners].count("b") == 1
    assert daemon.sources == []  # every instance closed at the stop


async def test_other_sections_wait_for_a_restart(setup: Setup) -> None:
    path = setup.write(_source("a", setup.token))
    daemon = Daemon(load_config(path), metrics=Metrics(), config_path=path)
    async with _running(daemon):
        setup.write(_source("a", setup.token), sink="elsewhere.ndjson")
        with capture_logs() as logs:
            assert await daemon.reload("test") is True
        warning = next(log for log in logs if log["event"] == "reload_restart_needed")
        assert warning["sections"] == ["sinks"]
        assert [sink.id for sink in daemon.sinks] == ["out"]

        # The Google project budgets are applied by a reload, not left for a restart.
        quota = "google_quota: {max_requests_per_minute: 50, projects: {p1: 7}}\n"
        setup.write(_source("a", setup.token), extra=quota)
        with capture_logs() as logs:
            assert await daemon.reload("test") is True
        assert not [log for log in logs if log["event"] == "reload_restart_needed"]
        share = daemon.project_budgets.join("p1", "probe")
        project = daemon.project_budgets.project("p1")
        assert project is not None and project.per_minute == 7
        share.leave()


async def test_reload_respects_the_shard(setup: Setup) -> None:
    from forwarder.shard import owner

    ids = [f"s{index}" for index in range(12)]
    shard = "shard: {count: 3, index: 1}\n"
    path = setup.write("".join(_source(i, setup.token) for i in ids[:6]), extra=shard)
    daemon = Daemon(load_config(path), metrics=Metrics(), config_path=path)
    async with _running(daemon):
        setup.write("".join(_source(i, setup.token) for i in ids), extra=shard)
        assert await daemon.reload("test")
        assert sorted(daemon.source_set.active) == sorted(i for i in ids if owner(i, 3) == 1)


async def test_a_changed_source_that_cannot_start_is_shown_and_tried_again(setup: Setup) -> None:
    # `a` never committed (its API is unreachable); a reload gives it require_state: its
    # old instance stops, the new one finds no state and cannot start. It is a problem in
    # /readyz and out of the set, so the next reload (require_state gone) starts it.
    path = setup.write(_source("a", setup.token) + _source("b", setup.token))
    metrics = Metrics()
    daemon = Daemon(load_config(path), metrics=metrics, config_path=path)
    async with _running(daemon):
        setup.write(_source("a", setup.token, require_state="true") + _source("b", setup.token))
        with capture_logs() as logs:
            assert await daemon.reload("test") is True
            await _until(lambda: "a" in daemon.source_set.start_failures, "a refused")
        failed = next(log for log in logs if log["event"] == "source_start_failed")
        assert "has no committed state" in failed["error"]
        assert sorted(daemon.source_set.active) == ["b"]
        assert _open_ids(daemon) == ["b"]
        assert _series_of(metrics, "a") == []
        ready, detail = daemon.readiness()
        assert not ready
        assert any(problem.startswith("source a: cannot start:") for problem in detail["problems"])

        setup.write(_source("a", setup.token) + _source("b", setup.token))
        with capture_logs() as logs:
            assert await daemon.reload("test") is True
        assert next(log for log in logs if log["event"] == "reload_applied")["added"] == ["a"]
        assert daemon.source_set.start_failures == {}
        assert sorted(daemon.source_set.active) == ["a", "b"]
