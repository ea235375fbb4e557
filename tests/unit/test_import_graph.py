"""The import graph keeps its shape: no cycles, db/ below api/, routes above services,
no imports hidden inside functions without a comment saying why (tests/import_graph.py)."""

from __future__ import annotations

import pytest

from tests.import_graph import Graph, build


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build()


def test_no_module_imports_itself_through_others(graph: Graph) -> None:
    assert graph.cycles() == []


def test_db_never_imports_api(graph: Graph) -> None:
    leaks = {
        (module, target)
        for module, targets in graph.edges.items()
        if module.startswith("db")
        for target in targets
        if target == "api" or target.startswith("api.")
    }
    assert leaks == set()


def test_services_and_repositories_never_import_routes_or_the_edge_bridge(graph: Graph) -> None:
    above = {m for m in graph.edges if m.endswith(".routes") or m in ("api", "api.edge.bridge")}
    below = {m for m in graph.edges if m.endswith(".service") or m.startswith(("db", "api.domain"))}
    leaks = {(m, t) for m in below for t in graph.edges[m] if t in above}
    assert leaks == set()


def test_routes_and_schemas_never_import_the_orm_models(graph: Graph) -> None:
    # Services hand the routes plain views; a row reaching a response could leak a column.
    edge = {m for m in graph.edges if m.endswith((".routes", ".schemas")) or m == "api.schemas"}
    leaks = {(m, t) for m in edge for t in graph.edges[m] if t == "db.models"}
    assert leaks == set()


def test_every_import_inside_a_function_says_why(graph: Graph) -> None:
    unexplained = [f"{i.module}:{i.line} {i.text}" for i in graph.inner if not i.explained]
    assert unexplained == []
