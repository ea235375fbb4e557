"""Write the README's configuration table from the settings table (api/config/settings_table.py).

    python -m scripts.readme_settings

tests/unit/test_settings_table.py fails while the README's table differs from it.
"""

from __future__ import annotations

from pathlib import Path

from api.config.settings_table import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
HEADER = "| variable | default | meaning |"


def table_span(readme: str) -> tuple[int, int]:
    """Where the configuration table is in `readme`: the header line to its last row.

    Raises:
        ValueError: the README has no configuration table.
    """
    start = readme.index(HEADER + "\n")
    end = start
    for line in readme[start:].splitlines(keepends=True):
        if not line.startswith("|"):
            break
        end += len(line)
    return start, end


def readme_table(readme: str) -> str:
    """The configuration table as the README has it."""
    start, end = table_span(readme)
    return readme[start:end]


def rewrite(readme_path: Path = README) -> bool:
    """Rewrite the configuration table of `readme_path`, leaving the rest as it is.

    Returns whether the file changed.
    """
    readme = readme_path.read_text()
    start, end = table_span(readme)
    table = markdown_table()
    if readme[start:end] == table:
        return False
    readme_path.write_text(readme[:start] + table + readme[end:])
    return True


def main() -> None:
    """Rewrite README.md's configuration table and say whether it changed."""
    changed = rewrite()
    print(f"{README.name}: configuration table {'rewritten' if changed else 'up to date'}")


if __name__ == "__main__":
    main()
