"""The tree is what docs/architecture.md says it is: the packages and their modules, and who
may import whom (no package imports one above or beside it; no import circle; no import
inside a function outside the CLI)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
OURS = ("protocol", "wallet", "node", "tui")
LAZY_OK = {"node/app/cli.py"}  # loads a command's modules when it runs (torv rpc starts fast)


def _table() -> dict[str, tuple[set[str], set[str]]]:
    """package -> (modules, may import), from the doc's table."""
    section = DOC.read_text().split("## The tree", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        names = [re.findall(r"`([^`]+)`", c) for c in cells]
        out[names[0][0]] = (set(names[2]), set(names[3]))
    return out


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "node" and len(parts) > 1 else parts[0]


def _modules() -> dict[str, Path]:
    out = {}
    for top in OURS:
        for path in (ROOT / top).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            if rel.name == "__init__":
                continue
            out[".".join(rel.parts)] = path
    return out


def _imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) of every runtime import of ours."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    in_function = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                   for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")[:-node.level] if node.level else []
            names = [".".join(base + ([node.module] if node.module else []))]
        else:
            continue
        out += [(n, node.lineno, id(node) in in_function) for n in names
                if n.split(".")[0] in OURS]
    return out


def test_the_doc_lists_every_package_and_module_there_is() -> None:
    table = _table()
    found: dict[str, set[str]] = {}
    for module in _modules():
        found.setdefault(_package_of(module), set()).add(module.rsplit(".", 1)[1])
    assert set(table) == set(found), "packages in the doc vs in the tree"
    for package, (listed, _) in table.items():
        assert listed == found[package], f"{package}: doc lists {sorted(listed - found[package])}" \
            f" that do not exist; the tree has {sorted(found[package] - listed)} it does not list"


def test_no_package_imports_one_it_may_not() -> None:
    table = _table()
    wrong = []
    for module, path in _modules().items():
        mine = _package_of(module)
        for target, line, _ in _imports(module, path):
            theirs = _package_of(target)
            if theirs != mine and theirs not in table[mine][1]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} {mine} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_hides_inside_a_function() -> None:
    hidden = [f"{path.relative_to(ROOT)}:{line} imports {target}"
              for module, path in _modules().items()
              if str(path.relative_to(ROOT)) not in LAZY_OK
              for target, line, inside in _imports(module, path) if inside]
    assert not hidden, "\n".join(hidden)


def test_there_is_no_import_circle() -> None:
    graph: dict[str, set[str]] = {}
    modules = _modules()
    for module, path in modules.items():
        for target, _, _ in _imports(module, path):
            while target not in modules and "." in target:  # `from pkg import name`
                target = target.rsplit(".", 1)[0]
            if target in modules and target != module:
                graph.setdefault(module, set()).add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m)
