"""The house rules of the package layout, read from the source with ast (every import, at any depth).

- no import circle among m3cls modules (a package's ``__init__`` importing its own submodules is fine: that is
  how a package exposes them, and the lazy ``m3cls.__getattr__`` does it inside a function; an import under
  ``if TYPE_CHECKING:`` is for type hints only and never runs);
- ``inference`` and ``backends`` never reach ``training``, directly or through other modules;
- nothing outside ``cli`` imports ``m3cls.cli`` (``m3cls.__main__``, the ``python -m m3cls`` entry, is the CLI);
- no command module imports another cli module's private (``_underscore``) names.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "m3cls"
CLI = f"{PACKAGE}.cli"
ENTRY_POINTS = {f"{PACKAGE}.__main__"}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: set[str] = field(default_factory=set)  # m3cls modules this one imports
    private: list[str] = field(default_factory=list)  # "_name from m3cls.cli.x" reached into from here


def _name_of(path: Path, src: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _known(name: str, modules: dict) -> str | None:
    """The m3cls module a dotted name lands in (the longest known prefix), or None outside m3cls."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _base(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (imports for type hints never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _read(module: Module, modules: dict) -> None:
    aliases: dict[str, str] = {}  # local name -> cli module it is bound to
    tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, modules)
                if target:
                    module.imports.add(target)
                    if alias.asname and target.startswith(CLI + "."):
                        aliases[alias.asname] = target
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in modules else _known(base, modules)
                if not target:
                    continue
                module.imports.add(target)
                if target == submodule and target.startswith(CLI + "."):
                    aliases[alias.asname or alias.name] = target
                elif alias.name.startswith("_") and not alias.name.startswith("__") \
                        and target.startswith(CLI + ".") and target != module.name:
                    module.private.append(f"{alias.name} from {target}")
    for node in ast.walk(tree):  # common._helper through a module imported by name
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and node.attr.startswith("_") and not node.attr.startswith("__") \
                and aliases[node.value.id] != module.name:
            module.private.append(f"{node.attr} from {aliases[node.value.id]}")


def load(src: Path = SRC) -> dict[str, Module]:
    modules = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        name, is_package = _name_of(path, src)
        modules[name] = Module(name, path, is_package)
    for module in modules.values():
        _read(module, modules)
    return modules


def edges(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Who imports whom, without a package ``__init__`` importing its own submodules, nor self-imports."""
    graph = {}
    for name, module in modules.items():
        own = name + "." if module.is_package else None
        graph[name] = {t for t in module.imports if t != name and not (own and t.startswith(own))}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module ``start`` imports directly or through others, each with the module that imports it."""
    seen, todo = {start: ""}, [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen[nxt] = node
                todo.append(nxt)
    return seen


def _chain(seen: dict[str, str], end: str) -> str:
    chain = [end]
    while seen[chain[-1]]:
        chain.append(seen[chain[-1]])
    return " -> ".join(reversed(chain))


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    found = load()
    assert {f"{PACKAGE}.inference", f"{PACKAGE}.backends", f"{PACKAGE}.training.run", CLI} <= set(found)
    return found


def test_no_import_circle(modules):
    cycle = find_cycle(edges(modules))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("consumer", ["inference", "backends"])
def test_inference_never_reaches_training(modules, consumer):
    seen = reachable(edges(modules), f"{PACKAGE}.{consumer}")
    bad = sorted(n for n in seen if n == f"{PACKAGE}.training" or n.startswith(f"{PACKAGE}.training."))
    assert not bad, "; ".join(_chain(seen, n) for n in bad)


def test_nothing_outside_cli_imports_cli(modules):
    bad = [f"{m.name} imports {t}" for m in modules.values()
           if not (m.name == CLI or m.name.startswith(CLI + ".") or m.name in ENTRY_POINTS)
           for t in sorted(m.imports) if t == CLI or t.startswith(CLI + ".")]
    assert not bad, "; ".join(bad)


def test_no_command_module_takes_another_ones_private_names(modules):
    bad = [f"{m.name} imports {p}" for m in modules.values() if m.name.startswith(CLI + ".") for p in m.private]
    assert not bad, "; ".join(bad)


def test_the_rules_see_imports_inside_functions(tmp_path):
    # the checker itself: a circle made by an import inside a function, and a private cli name, are found
    pkg = tmp_path / PACKAGE
    (pkg / "cli").mkdir(parents=True)
    for name, text in {"__init__.py": "from . import a\n", "a.py": "import m3cls.b\n",
                       "b.py": "def f():\n    from .a import x\n", "cli/__init__.py": "",
                       "cli/common.py": "def _helper(): pass\n",
                       "cli/run.py": "from . import common\nfrom .common import _helper\ncommon._helper()\n"}.items():
        (pkg / name).write_text(text)
    found = load(tmp_path)
    assert find_cycle(edges(found)) == ["m3cls.a", "m3cls.b", "m3cls.a"]
    assert found["m3cls.cli.run"].private == ["_helper from m3cls.cli.common"] * 2
    assert "m3cls.a" not in edges(found)["m3cls"]  # a package exposing its own submodule is no circle
