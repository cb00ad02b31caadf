"""The house plan, checked: imports run one way (no circles), the platform libraries stay out
of the core, the environment is read in one place, and no module grows past 500 lines.

Read from the source with `ast`, so the checks see every import: at the top, inside functions
and under TYPE_CHECKING alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "recommender", "bench", "evaluation", "testkit")
MAX_LINES = 500
# (importer's package, package it must not import)
WRONG_WAY = {("recommender", "bot"), ("recommender", "bench"), ("recommender", "evaluation"),
             ("recommender", "testkit"), ("bot", "bench"), ("bot", "evaluation"), ("bot", "testkit"),
             ("evaluation", "bench")}
PLATFORM_LIBRARIES = ("slack_bolt", "slack_sdk", "discord", "sklearn")
ENV_READER = "bot/settings.py"   # the one module that reads the environment (and `.env`)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imported(name: str, path: Path) -> set[str]:
    """Every module `name` imports, as Python runs it: importing `a.b.c` first runs the
    `__init__` of `a` and `a.b` (unless the importer is inside them)."""
    out: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            while target and target != name and not (name + ".").startswith(target + "."):
                out.add(target)
                target = target.rpartition(".")[0]
    return out


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                found.append(sorted([v, *group]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


GRAPH = {name: imported(name, path) for name, path in MODULES.items()}


def test_the_imports_have_no_circles_and_run_one_way():
    assert len(GRAPH) > 50 and sum(map(len, GRAPH.values())) > 150   # the parser sees them
    assert circles(GRAPH) == []
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    wrong = sorted((a, b) for a, targets in GRAPH.items() for b in targets
                   if (a.split(".")[0], b.split(".")[0]) in WRONG_WAY)
    assert wrong == []


def test_the_core_knows_no_chat_platform_and_no_offline_evaluation():
    used = {}
    for name, path in MODULES.items():
        if name.split(".")[0] in ("recommender", "bot"):
            for node in ast.walk(ast.parse(path.read_text())):
                roots = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                for root in roots:
                    if root.split(".")[0] in PLATFORM_LIBRARIES:
                        used.setdefault(name, set()).add(root.split(".")[0])
    assert not any(name.startswith("recommender") for name in used), used
    assert not any("sklearn" in libs for libs in used.values()), used


def reads_environment(tree: ast.AST) -> bool:
    """`os.environ` / `os.getenv` anywhere, or an import of them or of `dotenv`."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "os" and node.attr in ("environ", "getenv", "environb")):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module == "dotenv" or (
                node.module == "os" and {a.name for a in node.names} & {"environ", "getenv"})):
            return True
    return False


@pytest.mark.parametrize("package", ["bot", "recommender"])
def test_only_the_settings_read_the_environment(package):
    readers = [path.relative_to(ROOT).as_posix() for path in sorted((ROOT / package).rglob("*.py"))
               if reads_environment(ast.parse(path.read_text()))]
    assert readers == ([ENV_READER] if package == "bot" else [])
    assert reads_environment(ast.parse("import os\nx = os.environ.get('A')"))


def test_no_module_is_over_500_lines():
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
             for path in MODULES.values()}
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}
