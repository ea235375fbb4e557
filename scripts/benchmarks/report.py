"""Medians, ratios against targets, and the markdown table of scripts/bench."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from scripts.benchmarks.cpu import CpuPerRequest
from scripts.benchmarks.wrk import WrkResult

# Issue 9's targets, plus the rate limiter's (a limited login is answered before hashing).
TARGETS = {"b/a": 1.3, "c/a": 0.5, "d/f": 0.90, "e/d": 10.0}
TITLES = {
    "a": "a hello-world GET /healthz",
    "b": "b GET /auth/verify",
    "c": "c GET /me",
    "d": "d POST /auth/login",
    "r": "r POST /auth/refresh",
    "e": "e POST /auth/login, rate-limited",
    "f": "f argon2id verifications",
}


@dataclass(frozen=True)
class Run:
    """One measured wrk run of one case, with the CPU its server spent."""

    wrk: WrkResult
    cpu: CpuPerRequest


@dataclass(frozen=True)
class Figures:
    """Medians over the rounds of one case on one tree."""

    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    worker_cpu_ms: float
    master_cpu_ms: float | None


def medians(runs: list[Run]) -> Figures:
    """The median of each figure over the rounds."""
    return Figures(
        requests_per_s=statistics.median(r.wrk.requests_per_s for r in runs),
        p50_ms=statistics.median(r.wrk.p50_ms for r in runs),
        p99_ms=statistics.median(r.wrk.p99_ms for r in runs),
        worker_cpu_ms=statistics.median(r.cpu.worker_ms for r in runs),
        master_cpu_ms=statistics.median(r.cpu.master_ms for r in runs),
    )


def ratios(figures: dict[str, Figures]) -> dict[str, float]:
    """The throughput ratios the targets are stated in, from the cases present."""
    wanted = {"b/a": ("b", "a"), "c/a": ("c", "a"), "d/f": ("d", "f"), "e/d": ("e", "d")}
    # The key-pair rows ("b ES256", "d ES256", ...) against the same baselines.
    for case in figures:
        kind, _, algorithm = case.partition(" ")
        if algorithm and kind in ("b", "d"):
            wanted[f"{kind}/{'a' if kind == 'b' else 'f'} {algorithm}"] = (
                case,
                "a" if kind == "b" else "f",
            )
    return {
        name: figures[top].requests_per_s / figures[bottom].requests_per_s
        for name, (top, bottom) in wanted.items()
        if top in figures and bottom in figures
    }


def verdicts(values: dict[str, float]) -> list[str]:
    """One line per ratio: its value, its target and whether it is met."""
    lines = []
    for name, value in values.items():
        target = TARGETS.get(name)
        goal = "" if target is None else f"  (target >= {target}) "
        verdict = "" if target is None else ("ok" if value >= target else "MISSED")
        lines.append(f"  {name} = {value:6.2f}{goal}{verdict}")
    return lines


def title(case: str) -> str:
    """A case's row title; a key-pair case ("b ES256") names its algorithm."""
    kind, _, algorithm = case.partition(" ")
    return f"{TITLES[kind]}, {algorithm}" if algorithm else TITLES[case]


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _row(title: str, f: Figures) -> str:
    return (
        f"| {title} | {_cell(f.requests_per_s, 0)} | {_cell(f.p50_ms, 2)} | "
        f"{_cell(f.p99_ms, 2)} | {_cell(f.worker_cpu_ms, 3)} |"
    )


def current_over_baseline(current: Figures, baseline: Figures) -> dict[str, float]:
    """How the current tree compares with the baseline, figure by figure."""
    out = {
        "requests_per_s": current.requests_per_s / baseline.requests_per_s,
        "worker_cpu_ms": current.worker_cpu_ms / baseline.worker_cpu_ms,
    }
    if current.p50_ms and baseline.p50_ms:
        out["p50_ms"] = current.p50_ms / baseline.p50_ms
    if current.p99_ms and baseline.p99_ms:
        out["p99_ms"] = current.p99_ms / baseline.p99_ms
    return out


def markdown_table(
    machine: dict[str, Figures], trees: dict[str, dict[str, Figures]], labels: dict[str, str]
) -> str:
    """The table for a closing note: the machine's rows, then each API case per tree and,
    with a baseline, the ratio current/baseline."""
    lines = [
        "| case | req/s | p50 ms | p99 ms | worker CPU ms/request |",
        "|---|---|---|---|---|",
    ]
    lines += [_row(title(case), f) for case, f in machine.items()]
    present = {case for figures in trees.values() for case in figures}
    key_pair_cases = sorted(case for case in present if " " in case)
    cases = [case for case in TITLES if case in present] + key_pair_cases
    for case in cases:
        for name, figures in trees.items():
            if case in figures:
                suffix = f" ({labels[name]})" if len(trees) > 1 else ""
                lines.append(_row(title(case) + suffix, figures[case]))
        if "baseline" in trees and case in trees["baseline"] and case in trees["current"]:
            ratio = current_over_baseline(trees["current"][case], trees["baseline"][case])
            lines.append(
                f"| {title(case)}: current/baseline | {ratio['requests_per_s']:.2f}x | "
                f"{_ratio_cell(ratio.get('p50_ms'))} | {_ratio_cell(ratio.get('p99_ms'))} | "
                f"{ratio['worker_cpu_ms']:.2f}x |"
            )
    return "\n".join(lines)


def _ratio_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
