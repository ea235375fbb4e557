"""scripts/bench's ratios, table and source trees, without running a benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.benchmarks.report import (
    TARGETS,
    Figures,
    current_over_baseline,
    markdown_table,
    per_round,
    rate_ratios,
    ratios,
    round_ratios,
    targets_table,
    verdict,
    verdicts,
)
from scripts.benchmarks.trees import Tree, database_name, with_database


def _figures(rate: float, cpu_ms: float, p99: float | None = 10.0) -> Figures:
    return Figures(
        requests_per_s=rate, p50_ms=p99, p99_ms=p99, worker_cpu_ms=cpu_ms, master_cpu_ms=0.0
    )


MACHINE = {
    "a": _figures(3000, 0.5),
    "seed-style": _figures(1400, 1.1),
    "fastapi-users": _figures(600, 2.5),
    "f": _figures(40, 25.0, p99=None),
}
CURRENT = {
    "b": _figures(6300, 0.3),
    "c": _figures(1500, 1.2),
    "d": _figures(38, 27.0),
    "r": _figures(600, 2.0),
}
BASELINE = {"b": _figures(3700, 0.47), "c": _figures(600, 3.0), "d": _figures(30, 33.0)}


def test_ratios_are_the_targets_terms() -> None:
    values = ratios({**MACHINE, **CURRENT})
    assert values == pytest.approx(
        {
            "b/a": 2.1,
            "c/a": 0.5,
            "c/seed-style": 1500 / 1400,
            "b/fastapi-users": 10.5,
            "c/fastapi-users": 2.5,
            "d/f": 0.95,
        }
    )
    lines = verdicts({**values, "c/a": 0.2})
    print("\n".join(lines))
    assert any("b/a" in line and line.endswith("ok") for line in lines)
    assert any("c/a" in line and line.endswith("MISSED") for line in lines)


def test_issue_21_targets_replace_b_over_a_and_keep_the_others() -> None:
    assert TARGETS == {
        "b/a": 2.0,
        "c/a": 0.5,
        "c/seed-style": 1.0,
        "b/fastapi-users": 1.0,
        "c/fastapi-users": 1.0,
        "d/f": 0.90,
        "e/d": 10.0,
        "b/a cached": 2.0,
        "c/a cached": 0.5,
    }


def test_the_cached_cases_are_held_to_the_hello_world_as_the_uncached_ones() -> None:
    ratios = rate_ratios({"a": 100.0, "b cached": 210.0, "c cached": 45.0, "b ES256": 90.0})
    assert ratios["b/a cached"] == 2.1
    assert ratios["c/a cached"] == 0.45
    assert verdict("b/a cached", ratios["b/a cached"]) == "ok"
    assert verdict("c/a cached", ratios["c/a cached"]) == "MISSED"
    # A key-pair row is reported, with no target of its own.
    assert ratios["b/a ES256"] == 0.9
    assert verdict("b/a ES256", 0.9) == ""


def test_each_rounds_ratios_pair_the_runs_of_that_round() -> None:
    rates = {
        "a": [1000.0, 2000.0, 1500.0],
        "b": [2100.0, 3000.0, 3000.0],
        "fastapi-users": [500.0, 3100.0],  # not measured in round 3
    }
    assert per_round(rates)[2] == {"a": 1500.0, "b": 3000.0}
    rounds = round_ratios(rates)
    print(rounds)
    assert rounds == [
        pytest.approx({"b/a": 2.1, "b/fastapi-users": 4.2}),
        pytest.approx({"b/a": 1.5, "b/fastapi-users": 3000 / 3100}),
        pytest.approx({"b/a": 2.0}),
    ]


def test_ahead_of_fastapi_users_means_ahead_in_every_round_not_in_the_median() -> None:
    rounds = [{"b/fastapi-users": 1.3}, {"b/fastapi-users": 0.9}, {"b/fastapi-users": 1.2}]
    (line,) = verdicts({"b/fastapi-users": 1.2}, rounds)
    print(line)
    assert "rounds 1.30 / 0.90 / 1.20" in line
    assert "(target > 1.0 in every round)" in line
    assert line.endswith("MISSED in round 2")
    # Level is not ahead; the other targets are met at their value.
    assert verdicts({"c/fastapi-users": 1.0}, [{"c/fastapi-users": 1.0}])[0].endswith(
        "MISSED in round 1"
    )
    assert verdicts({"c/seed-style": 1.0}, [{"c/seed-style": 0.9}])[0].endswith("ok")
    assert verdicts({"b/fastapi-users": 1.01})[0].endswith("ok")


def test_targets_table_has_a_column_per_round() -> None:
    rounds = [
        {"b/a": 2.1, "b/fastapi-users": 1.1},
        {"b/a": 1.9, "b/fastapi-users": 1.4},
        {"b/a": 2.2},
    ]
    table = targets_table({"b/a": 2.1, "b/fastapi-users": 1.25, "r/a": 0.3}, rounds)
    print(table)
    lines = table.splitlines()
    assert lines[0] == "| ratio | round 1 | round 2 | round 3 | median | target | verdict |"
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert lines[2:] == [
        "| b/a | 2.10 | 1.90 | 2.20 | 2.10 | >= 2.0 | ok |",
        "| b/fastapi-users | 1.10 | 1.40 | - | 1.25 | > 1.0 in every round | ok |",
    ]


def test_table_without_baseline_has_one_row_per_case() -> None:
    table = markdown_table(MACHINE, {"current": CURRENT}, {"current": "current abc1234"})
    print(table)
    lines = table.splitlines()
    assert lines[0] == "| case | req/s | p50 ms | p99 ms | worker CPU ms/request |"
    assert "| c GET /me | 1,500 | 10.00 | 10.00 | 1.200 |" in lines
    assert "| f argon2id verifications | 40 | - | - | 25.000 |" in lines
    assert len(lines) == 2 + len(MACHINE) + len(CURRENT)


def test_table_with_baseline_puts_both_trees_and_their_ratio_side_by_side() -> None:
    labels = {"baseline": "baseline 61fee7a", "current": "current abc1234"}
    table = markdown_table(MACHINE, {"baseline": BASELINE, "current": CURRENT}, labels)
    print(table)
    lines = table.splitlines()
    me = [line for line in lines if line.startswith("| c GET /me")]
    assert me == [
        "| c GET /me (baseline 61fee7a) | 600 | 10.00 | 10.00 | 3.000 |",
        "| c GET /me (current abc1234) | 1,500 | 10.00 | 10.00 | 1.200 |",
        "| c GET /me: current/baseline | 2.50x | 1.00x | 1.00x | 0.40x |",
    ]
    # A case only the current tree has gets no ratio row.
    assert [line for line in lines if line.startswith("| r ")] == [
        "| r POST /auth/refresh (current abc1234) | 600 | 10.00 | 10.00 | 2.000 |"
    ]
    assert current_over_baseline(CURRENT["d"], BASELINE["d"])["worker_cpu_ms"] == pytest.approx(
        27 / 33
    )


def test_baseline_database_is_named_after_the_benchs() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test?ssl=disable"
    assert database_name(url) == "test"
    assert with_database(url, "test_baseline") == (
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test_baseline?ssl=disable"
    )


def _tree(root: Path) -> Tree:
    return Tree("baseline", root, 1, "postgresql://postgres@127.0.0.1/unused", "bench")


def test_a_tree_imports_its_own_api_and_db(tmp_path: Path) -> None:
    for package in ("api", "db"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    _tree(tmp_path).check_imports_own_code()


def test_a_tree_whose_code_would_not_be_imported_is_refused(tmp_path: Path) -> None:
    # No api/ of its own: the venv's editable install of this checkout would answer.
    with pytest.raises(SystemExit, match="not the tree's own code"):
        _tree(tmp_path).check_imports_own_code()
