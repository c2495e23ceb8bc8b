"""Twenty Calendly tenants in one ``forwarder run``, one of them failing: the setup shared
by ``test_tenant_isolation.py`` and ``bench/isolation.py`` (issue 18, isolation)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from e2e_harness import Simulators, free_port

TENANTS = [f"t{index:02d}" for index in range(20)]
FAILING = "t07"
MODES = ("unauthorized", "unavailable", "slow")
SLOW_SECONDS = 20.0


class BrokenApi:
    """A local HTTP server standing in for a tenant's API: every request is answered 503
    (``unavailable``, a storm) or only after ``SLOW_SECONDS`` (``slow``)."""

    def __init__(self, mode: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if mode == "slow":
                    time.sleep(SLOW_SECONDS)
                try:
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the client gave up (its request timeout)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_tenants_config(
    path: Path, simulators: Simulators, state: Path, failing: str | None, broken_url: str | None
) -> tuple[Path, int]:
    """A config with the 20 tenants (source id = tenant); ``failing`` gets a refused token
    (``broken_url`` None) or ``broken_url`` as its API. Returns the path and metrics port."""
    endpoints = simulators.endpoints
    bad_token = state.parent / "wrong-token"
    bad_token.write_text("not-the-token\n")
    bad_token.chmod(0o600)
    sources = []
    for tenant in TENANTS:
        base_url = endpoints["calendly_url"]
        token = endpoints["calendly_token_file"]
        extra = ""
        if tenant == failing:
            if broken_url is None:
                token = str(bad_token)
            else:
                base_url = broken_url
                # A slow API is a failure once a request outlives its timeout; two
                # attempts per poll so that the failure shows within seconds.
                extra = "    request_timeout: 2s\n    max_attempts: 2\n"
        sources.append(
            f"""  {tenant}:
    type: calendly
    tenant: {tenant}
    base_url: {base_url}
    organization: {endpoints["organization"]}
    token_file: {token}
    page_size: 100
    poll_interval: 1s
    initial_lookback: 2d
{extra}"""
        )
    port = free_port()
    path.write_text(
        f"""state_dir: {state}
sources:
{"".join(sources)}sinks:
  events: {{type: file, path: {state}/events.ndjson}}
metrics:
  listen: 127.0.0.1:{port}
  unready_after: 1s
pipeline:
  shutdown_grace: 20s
"""
    )
    return path, port
