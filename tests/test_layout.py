"""The house rules of the package layout, read from the source with ast (every import, at any depth).

- no import circle among m3cls modules (a package's ``__init__`` importing its own submodules is fine: that is
  how a package exposes them, and the lazy ``m3cls.__getattr__`` does it inside a function; an import under
  ``if TYPE_CHECKING:`` is for type hints only and never runs);
- the folders stand in one direction (``RANKS``): a module imports only from its own folder or from folders ranked
  below it, at any depth (``m3cls.__main__`` counts as the CLI); so inference never reaches training, and nothing
  outside ``cli`` imports ``m3cls.cli``;
- no torch or transformers under ``data/``, ``tasks/``, ``metrics/`` or ``reports/``;
- ``argparse``, ``print`` and ``sys.exit`` only under ``cli/``;
- no comparison of a task's name (``task == "multi_label"``, ``in ("regression", ...)``, a match case, or a
  table keyed by task names) outside ``tasks/``: code asks the task's :class:`~m3cls.tasks.Task` instead;
- at most 8 modules directly in ``src/m3cls``;
- no command module imports another cli module's private (``_underscore``) names.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from m3cls.tasks import TASKS as TASK_NAMES

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
    external: dict[str, int] = field(default_factory=dict)  # other top-level packages imported -> first line
    cli_only: list[str] = field(default_factory=list)  # "print at line N", "sys.exit at line N", "argparse ..."
    task_names: list[int] = field(default_factory=list)  # lines comparing a task's name


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
                module.external.setdefault(alias.name.split(".")[0], node.lineno)
                target = _known(alias.name, modules)
                if target:
                    module.imports.add(target)
                    if alias.asname and target.startswith(CLI + "."):
                        aliases[alias.asname] = target
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, node)
            if not node.level:
                module.external.setdefault(base.split(".")[0], node.lineno)
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
    _read_cli_only(module, tree)
    _read_task_names(module, tree)
    for node in ast.walk(tree):  # common._helper through a module imported by name
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and node.attr.startswith("_") and not node.attr.startswith("__") \
                and aliases[node.value.id] != module.name:
            module.private.append(f"{node.attr} from {aliases[node.value.id]}")


def _read_cli_only(module: Module, tree: ast.AST) -> None:
    """The uses of what only the CLI may use: argparse, print and sys.exit (also as ``exit``/``quit``)."""
    if "argparse" in module.external:
        module.cli_only.append(f"argparse at line {module.external['argparse']}")
    for node in _runtime_nodes(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("print", "exit", "quit"):
            module.cli_only.append(f"{func.id} at line {node.lineno}")
        elif isinstance(func, ast.Attribute) and func.attr == "exit" and getattr(func.value, "id", "") == "sys":
            module.cli_only.append(f"sys.exit at line {node.lineno}")


def _is_task_name(node) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in TASK_NAMES
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(_is_task_name(e) for e in node.elts)


def _read_task_names(module: Module, tree: ast.AST) -> None:
    """Lines that compare a task's name, match on it, or key a table by it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(map(_is_task_name, [node.left, *node.comparators])) \
                or isinstance(node, ast.MatchValue) and _is_task_name(node.value) \
                or isinstance(node, ast.Dict) and any(k is not None and _is_task_name(k) for k in node.keys):
            module.task_names.append(node.lineno)


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


#: the folders of src/m3cls from the bottom up; a module imports from its own folder or from lower ranks only
RANKS = {"base": 0, "metrics": 1, "reports": 2, "tasks": 3, "data": 4, "model": 5, "inference": 6, "export": 6,
         "probe": 7, "evaluation": 8, "training": 9, "serving": 9, "cli": 10}
#: folders that stay free of torch and transformers (so inspect, --help and the reports load fast)
LIGHT = ("data", "tasks", "metrics", "reports")
MAX_TOP_MODULES = 8


def folder_of(name: str) -> str:
    """The folder a module lives in: the first part below m3cls, "base" for the modules at the top."""
    parts = name.split(".")
    if name in ENTRY_POINTS:
        return "cli"
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANKS) else "base"


def against_direction(modules: dict[str, Module]) -> list[str]:
    """Every import that points up the ranks (or into a folder that has no rank)."""
    bad = []
    for name, targets in edges(modules).items():
        here = folder_of(name)
        for target in sorted(targets):
            there = folder_of(target)
            if there != here and RANKS.get(there, 99) >= RANKS.get(here, -1):
                bad.append(f"{name} ({here}) imports {target} ({there})")
    return bad


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    found = load()
    assert {f"{PACKAGE}.inference.classifier", f"{PACKAGE}.model.backends", f"{PACKAGE}.training.run", CLI} \
        <= set(found)
    return found


def test_every_folder_has_a_rank(modules):
    assert {folder_of(name) for name in modules} <= set(RANKS)


def test_imports_follow_the_direction_of_the_folders(modules):
    bad = against_direction(modules)
    assert not bad, "; ".join(bad)


@pytest.mark.parametrize("folder", LIGHT)
def test_no_torch_or_transformers_in_light_folders(modules, folder):
    bad = [f"{m.name} imports {pkg} (line {line})" for m in modules.values() if folder_of(m.name) == folder
           for pkg, line in m.external.items() if pkg in ("torch", "transformers")]
    assert not bad, "; ".join(bad)


def test_only_the_cli_prints_exits_or_parses_flags(modules):
    bad = [f"{m.name}: {use}" for m in modules.values() if folder_of(m.name) != "cli" for use in m.cli_only]
    assert not bad, "; ".join(bad)


def test_no_task_name_compared_outside_tasks(modules):
    bad = [f"{m.name} line {line}" for m in modules.values() if folder_of(m.name) != "tasks"
           for line in m.task_names]
    assert not bad, "ask the Task (m3cls.tasks.get_task) instead of comparing its name: " + "; ".join(bad)


def test_few_modules_at_the_top():
    top = sorted(p.name for p in (SRC / PACKAGE).glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_no_import_circle(modules):
    cycle = find_cycle(edges(modules))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("consumer", ["inference.classifier", "model.backends"])
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


def test_the_rules_see_direction_torch_and_cli_only_uses(tmp_path):
    # the checker itself, on planted violations inside functions: an import up the ranks, torch in data/,
    # print and sys.exit outside cli/
    pkg = tmp_path / PACKAGE
    for folder in ("data", "model", "cli"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "read.py").write_text("def f():\n    import torch.nn\n    from ..model import load\n")
    (pkg / "model" / "load.py").write_text("import sys\ndef g():\n    print(1)\n    sys.exit(2)\n")
    (pkg / "cli" / "run.py").write_text("import argparse\nfrom ..model import load\nprint(2)\n"
                                        "x = {'regression': 1}\nif x == 'multi_label' or x in ('a', 'single_label'):\n"
                                        "    pass\nmatch x:\n    case 'regression':\n        pass\n")
    found = load(tmp_path)
    assert against_direction(found) == ["m3cls.data.read (data) imports m3cls.model.load (model)"]
    assert found["m3cls.data.read"].external == {"torch": 2}
    assert sorted(found["m3cls.model.load"].cli_only) == ["print at line 3", "sys.exit at line 4"]
    assert sorted(found["m3cls.cli.run"].cli_only) == ["argparse at line 1", "print at line 3"]
    assert sorted(found["m3cls.cli.run"].task_names) == [4, 5, 5, 8]
    assert found["m3cls.model.load"].task_names == []
