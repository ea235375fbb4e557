"""scripts/benchmarks/wrk.py: reading wrk's report, and the Lua that chains rotating
refresh tokens and counts responses within a window, run by the real wrk."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts.benchmarks.wrk import (
    THREADS,
    Window,
    WrkRun,
    _ms,
    parse_wrk_output,
    refresh_chain_lua,
    run_wrk,
)

# A report of wrk 4.1 with the lines the status-counting script adds.
REPORT = """Running 12s test @ http://127.0.0.1:8766/auth/refresh
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   129.99ms   40.11ms   1.02s    92.73%
    Req/Sec   106.00     18.17   150.00     78.95%
  Latency Distribution
     50%  129.99ms
     75%  150.38ms
     90%  190.59ms
     99%    1.02s
  2533 requests in 12.03s, 1.98MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    210.55
Transfer/sec:    168.24KB
status 200 2526
status 401 7
window 2101
"""


def test_parse_wrk_output_reads_every_figure() -> None:
    result = parse_wrk_output(REPORT)
    assert result.requests == 2533
    assert result.requests_per_s == 210.55
    assert result.p50_ms == pytest.approx(129.99)
    assert result.p99_ms == pytest.approx(1020.0)
    assert result.statuses == {200: 2526, 401: 7}
    assert result.socket_errors == 5
    assert result.window_requests == 2101


def test_parse_wrk_output_without_window_or_errors() -> None:
    plain = "\n".join(
        line for line in REPORT.splitlines() if not line.startswith(("window", "  Socket"))
    )
    result = parse_wrk_output(plain)
    assert result.window_requests is None
    assert result.socket_errors == 0


def test_parse_wrk_output_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk_output(REPORT.replace("Requests/sec", "Reqs"))


@pytest.mark.parametrize(
    ("text", "ms"), [("850.00us", 0.85), ("12.5ms", 12.5), ("1.02s", 1020.0), ("3s", 3000.0)]
)
def test_latency_units(text: str, ms: float) -> None:
    assert _ms(text) == pytest.approx(ms)


def test_refresh_chain_lua_embeds_the_tokens_and_refuses_anything_else() -> None:
    tokens = ["aaa.bbb.ccc", "ddd.eee-_.fff"]
    script = refresh_chain_lua(tokens)
    assert '{"aaa.bbb.ccc", "ddd.eee-_.fff"}' in script
    assert f"#tokens, {THREADS} do" in script
    for hostile in ['a"b', "a]]b", "a\nb", ""]:
        with pytest.raises(ValueError):
            refresh_chain_lua([hostile])


class RotatingTokens(BaseHTTPRequestHandler):
    """A refresh endpoint in miniature: each token is exchanged once for the next."""

    protocol_version = "HTTP/1.1"
    live: set[str]
    reused: list[str]
    issued = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.lock:
            fresh = token in self.live
            self.live.discard(token)
            if fresh:
                type(self).issued += 1
                new = f"t{type(self).issued}.x.y"
                self.live.add(new)
            else:
                self.reused.append(token)
        body = json.dumps({"refresh_token": new} if fresh else {"code": "reused"}).encode()
        self.send_response(200 if fresh else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    """Says nothing when wrk drops its connections at the end of a run."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def rotating_server() -> Iterator[tuple[str, type[RotatingTokens]]]:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (scripts/bench installs it)")
    handler = type("Handler", (RotatingTokens,), {"live": set(), "reused": [], "issued": 0})
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/auth/refresh", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_refresh_chain_presents_every_token_once(
    rotating_server: tuple[str, type[RotatingTokens]],
) -> None:
    url, handler = rotating_server
    connections = 4
    tokens = [f"seed{i}.x.y" for i in range(connections + THREADS)]
    handler.live.update(tokens)
    result = run_wrk(url, seconds=1, connections=connections, lua=refresh_chain_lua(tokens))
    print(f"refreshes: {result.statuses}, tokens reused: {len(handler.reused)}")
    assert handler.reused == []
    assert set(result.statuses) == {200}
    assert result.statuses[200] == result.requests > connections


def test_window_counts_responses_completed_within_it(
    rotating_server: tuple[str, type[RotatingTokens]],
) -> None:
    url, handler = rotating_server
    tokens = [f"seed{i}.x.y" for i in range(2 + THREADS)]
    handler.live.update(tokens)
    lua = refresh_chain_lua(tokens)
    now = time.monotonic()
    # A window around the whole run counts every response; one in the past none.
    everything = WrkRun(url, seconds=1, connections=2, lua=lua, window=Window(now - 1, now + 60))
    result = everything.result()
    print(f"responses: {result.requests}, within the window: {result.window_requests}")
    assert result.window_requests == result.requests > 0

    handler.live.update(tokens := [f"again{i}.x.y" for i in range(2 + THREADS)])
    past = WrkRun(
        url, seconds=1, connections=2, lua=refresh_chain_lua(tokens), window=Window(0, now)
    )
    assert past.result().window_requests == 0
