"""Run wrk against a URL and read its figures."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class WrkResult:
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    socket_errors: int
    window_requests: int | None = None  # responses completed within the run's window


@dataclass(frozen=True)
class Window:
    """A span of a wrk run in time.monotonic() seconds (CLOCK_MONOTONIC, shared by every
    process): the responses completed within it are counted apart."""

    start: float
    end: float


THREADS = 2
# wrk gives up on a response after this long and leaves it out of the latencies; logins
# on a busy 2-core machine take over wrk's default of 2 s.
TIMEOUT_SECONDS = 10
_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")

# Counts responses by status, so a benchmark can tell 200s from 401s from 429s, and those
# completed within the window (%(window_start)f, %(window_end)f; negative: no window). Each
# wrk thread runs this script in its own Lua state; `done` runs in the main one.
_STATUS_LUA = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local timespec = ffi.new("bench_timespec")
local function monotonic()
  ffi.C.clock_gettime(1, timespec)  -- CLOCK_MONOTONIC, as Python's time.monotonic()
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end
local window_start, window_end = %(window_start)f, %(window_end)f
counts, in_window = {}, 0
function count(status)
  counts[status] = (counts[status] or 0) + 1
  if window_start >= 0 then
    local now = monotonic()
    if now >= window_start and now < window_end then in_window = in_window + 1 end
  end
end
response = function(status, headers, body) count(status) end
local threads = {}
setup = function(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
done = function(summary, latency, requests)
  local total, window = {}, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do total[status] = (total[status] or 0) + n end
    window = window + thread:get("in_window")
  end
  for status, n in pairs(total) do io.write(string.format("status %%d %%d\\n", status, n)) end
  if window_start >= 0 then io.write(string.format("window %%d\\n", window)) end
end
"""

# Refresh tokens rotate and a superseded one is refused after REFRESH_REUSE_GRACE, so
# each request presents a token never presented before: each thread starts from its share
# of pre-issued tokens and every 200 hands back the token for the next request. A
# connection sends its next request only after its response, so the pool never runs dry.
_REFRESH_CHAIN_LUA = """
wrk.method = "POST"
local tokens = {%(tokens)s}
local pool, last = {}, nil
init = function(args)
  for i = id + 1, #tokens, %(threads)d do pool[#pool + 1] = tokens[i] end
end
request = function()
  -- A lost chain (a non-200, a timeout) reuses the newest token: counted as its status.
  local token = table.remove(pool) or last or "no-token-left"
  return wrk.format(nil, nil, {Authorization = "Bearer " .. token})
end
response = function(status, headers, body)
  count(status)
  local token = body:match('"refresh_token"%%s*:%%s*"([^"]+)"')
  if token then
    pool[#pool + 1] = token
    last = token
  end
end
"""


def refresh_chain_lua(tokens: list[str]) -> str:
    """The wrk script that chains rotating refresh tokens, one pool per thread.

    wrk calls `request` once on its first thread before the run (to check the script),
    so give it `connections + THREADS` tokens: one per connection and a spare per thread.
    """
    for token in tokens:
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"not a JWT: {token[:20]!r}...")
    quoted = ", ".join(f'"{token}"' for token in tokens)
    return _REFRESH_CHAIN_LUA % {"tokens": quoted, "threads": THREADS}


def _ms(value: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def run_wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    lua: str = "",
) -> WrkResult:
    """Drive `url` with wrk (THREADS threads) and return throughput, latency and statuses.

    `lua` is more wrk script, run after the status counting (it may call `count(status)`
    from its own `response`).
    """
    return WrkRun(
        url, seconds=seconds, connections=connections, headers=headers, body=body, lua=lua
    ).result()


class WrkRun:
    """wrk running in the background, so the caller can act during the run."""

    def __init__(
        self,
        url: str,
        *,
        seconds: int,
        connections: int,
        headers: dict[str, str] | None = None,
        body: str | None = None,
        lua: str = "",
        window: Window | None = None,
    ) -> None:
        edges = (window.start, window.end) if window else (-1.0, -1.0)
        script = _STATUS_LUA % {"window_start": edges[0], "window_end": edges[1]} + lua
        if body is not None:
            script = f"wrk.method = 'POST'\nwrk.body = [[{body}]]\n" + script
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
            file.write(script)
        self._script = Path(file.name)
        command = [
            "wrk",
            f"-t{THREADS}",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={TIMEOUT_SECONDS}s",
            "--latency",
            "-s",
            file.name,
        ]
        for name, value in (headers or {}).items():
            command += ["-H", f"{name}: {value}"]
        self._process = subprocess.Popen(
            [*command, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def result(self) -> WrkResult:
        """Wait for wrk to finish; its figures."""
        try:
            output, errors = self._process.communicate()
        finally:
            self._script.unlink()
        if self._process.returncode != 0:
            raise SystemExit(f"wrk failed ({self._process.returncode}): {errors}")
        return parse_wrk_output(output)


def parse_wrk_output(output: str) -> WrkResult:
    """The figures of wrk's --latency report and of the status-counting script's lines."""

    def find(pattern: str) -> str:
        match = re.search(pattern, output, re.M)
        if match is None:
            raise ValueError(f"wrk printed no {pattern!r}:\n{output}")
        return match.group(1)

    statuses = {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", output, re.M)}
    errors = re.search(r"Socket errors: (.*)", output)
    window = re.search(r"^window (\d+)$", output, re.M)
    return WrkResult(
        requests=int(find(r"(\d+) requests in")),
        requests_per_s=float(find(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)")),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)")),
        statuses=dict(sorted(statuses.items())),
        socket_errors=sum(int(n) for n in re.findall(r"\d+", errors.group(1))) if errors else 0,
        window_requests=int(window.group(1)) if window else None,
    )
