"""The import graph of api/ and db/, read from the source with `ast` (no import runs).

`python -m tests.import_graph` prints its size, levels (the longest chain of imports),
cycles and imports inside functions; tests/unit/test_import_graph.py keeps its rules.
Imports under `if TYPE_CHECKING:` are annotations, not imports, and are left out.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "db")


@dataclass
class InnerImport:
    module: str
    line: int
    text: str
    explained: bool  # a comment on its line or the line above says why


@dataclass
class Graph:
    edges: dict[str, set[str]] = field(default_factory=dict)
    inner: list[InnerImport] = field(default_factory=list)

    def cycles(self) -> list[list[str]]:
        """Strongly connected groups of more than one module (Tarjan)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        found: list[list[str]] = []

        def visit(node: str) -> None:
            index[node] = low[node] = len(index)
            stack.append(node)
            for target in sorted(self.edges[node]):
                if target not in index:
                    visit(target)
                    low[node] = min(low[node], low[target])
                elif target in stack:
                    low[node] = min(low[node], index[target])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

        for node in sorted(self.edges):
            if node not in index:
                visit(node)
        return found

    def longest_chain(self) -> list[str]:
        """The longest chain of imports (the graph must be acyclic)."""
        memo: dict[str, list[str]] = {}

        def chain(node: str) -> list[str]:
            if node not in memo:
                below = [chain(target) for target in sorted(self.edges[node])]
                memo[node] = [node, *max(below, key=len, default=[])]
            return memo[node]

        return max((chain(node) for node in sorted(self.edges)), key=len)


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the packages by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def build(root: Path = ROOT, *, inner: bool = True) -> Graph:
    """The graph of the packages under `root`: top-level imports, and with `inner` those
    inside functions too (which are listed either way)."""
    files = module_files(root)
    graph = Graph({name: set() for name in files})
    for name, path in files.items():
        source = path.read_text()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        _walk(ast.parse(source), name, package, source.splitlines(), files, graph, inner, False)
    return graph


def _walk(
    node: ast.AST,
    module: str,
    package: str,
    lines: list[str],
    files: dict[str, Path],
    graph: Graph,
    inner: bool,
    in_function: bool,
) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            targets = {t for t in _targets(child, package, files) if t != module}
            if inner or not in_function:
                graph.edges[module] |= targets
            if in_function and targets:
                above = lines[child.lineno - 2] if child.lineno > 1 else ""
                explained = "#" in lines[child.lineno - 1] or above.strip().startswith("#")
                graph.inner.append(InnerImport(module, child.lineno, ast.unparse(child), explained))
        function = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        _walk(child, module, package, lines, files, graph, inner, function)


def _targets(node: ast.Import | ast.ImportFrom, package: str, files: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
    return {found for found in map(lambda n: _owner(n, files), names) if found}


def _owner(name: str, files: dict[str, Path]) -> str | None:
    while name and name not in files:
        name = name.rpartition(".")[0]
    return name or None


def main() -> None:
    graph = build()
    top_level = build(inner=False)
    print(f"modules {len(graph.edges)}, imports {sum(map(len, graph.edges.values()))}")
    print(f"cycles {len(graph.cycles())}: {graph.cycles()}")
    for name, measured in (("all imports", graph), ("top-level imports", top_level)):
        if not measured.cycles():
            chain = measured.longest_chain()
            print(f"levels ({name}) {len(chain)}: {' -> '.join(chain)}")
    print(f"imports inside functions {len(graph.inner)}")
    for inner in graph.inner:
        print(f"  {inner.module}:{inner.line} {inner.text} (explained: {inner.explained})")


if __name__ == "__main__":
    main()
