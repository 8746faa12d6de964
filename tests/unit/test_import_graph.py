"""The import graph of the product's packages, read with `ast`: no cycle, and the arrows of the layers
(`workers → pipelines → shared`, `scheduler → shared`, `intake → shared`, nothing in `shared` imports the
others), and inside `pipelines/`: no stage folder imports another, and what lies below the stage folders
(`stage.py`, `outputs.py`, `attendance/`, `monthend/`, `mail/`) imports none."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "pipelines", "workers", "scheduler", "cli", "web", "bench", "intake")
# What each layer may import from the product (besides itself).
ALLOWED = {"shared": set(), "pipelines": {"shared"}, "scheduler": {"shared"}, "workers": {"pipelines", "shared"},
           "intake": {"shared"}}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts and "versions" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The product modules `path` imports anywhere in it (also inside functions and TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
                break
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back() -> None:
    """No cycle in the import graph of the product's packages."""
    assert _cycles(_graph()) == []


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_one_way(layer: str) -> None:
    """A layer imports only the layers below it."""
    wrong = {f"{module} → {target}" for module, targets in _graph().items() if module.split(".")[0] == layer
             for target in targets if target.split(".")[0] not in {layer, *ALLOWED[layer]}}
    assert wrong == set()


# Modules of pipelines/ above the stage folders: they list stages or plan across them.
ABOVE_STAGES = {"pipelines.registry", "pipelines.replay", "pipelines.plans"}


def _stage_folders() -> set[str]:
    """The stage folders: the packages of pipelines/ that declare a stage (`<folder>/stage.py`)."""
    return {f"pipelines.{path.parent.name}" for path in (ROOT / "pipelines").glob("*/stage.py")}


def _folder_of(module: str, folders: set[str]) -> str | None:
    return next((f for f in folders if module == f or module.startswith(f + ".")), None)


def _stage_breaches(graph: dict[str, set[str]], folders: set[str]) -> set[str]:
    """Imports from a stage folder into another, or from below the stage folders into one."""
    wrong = set()
    for module, targets in graph.items():
        if module.split(".")[0] != "pipelines" or module in ABOVE_STAGES:
            continue
        own = _folder_of(module, folders)
        wrong |= {f"{module} → {t}" for t in targets
                  if (_folder_of(t, folders) or own) != own or t in ABOVE_STAGES}
    return wrong


def test_stage_folders_import_no_other_stage() -> None:
    """What a stage needs of another it reads through a declared output (`pipelines.outputs`), not its code."""
    folders = _stage_folders()
    assert {"pipelines.extract", "pipelines.merge", "pipelines.notify", "pipelines.export"} <= folders
    assert _stage_breaches(_graph(), folders) == set()


@pytest.mark.parametrize(("graph", "expected"), [
    # notify importing merge's code: one stage folder into another
    ({"pipelines.notify.stage": {"pipelines.merge.stage"}}, {"pipelines.notify.stage → pipelines.merge.stage"}),
    # the shared mail service importing the notify stage: below the stage folders into one
    ({"pipelines.mail.outbox": {"pipelines.notify.stage"}}, {"pipelines.mail.outbox → pipelines.notify.stage"}),
    # a stage reading another's declared output, the registry listing stages: allowed
    ({"pipelines.notify.stage": {"pipelines.outputs", "pipelines.notify.send"},
      "pipelines.registry": {"pipelines.merge.stage", "pipelines.notify.stage"}}, set()),
    # a stage importing the registry (above it)
    ({"pipelines.merge.days": {"pipelines.registry"}}, {"pipelines.merge.days → pipelines.registry"}),
])
def test_the_stage_rule_finds_a_breach(graph: dict[str, set[str]], expected: set[str]) -> None:
    assert _stage_breaches(graph, {"pipelines.merge", "pipelines.notify"}) == expected


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check would see a cycle of two modules (and not a chain)."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


@pytest.mark.parametrize("layer", ["shared", "pipelines", "intake"])
def test_no_celery_below_the_workers(layer: str) -> None:
    """Stages and shared code never import Celery (the task shells in `workers/` do)."""
    wrong = []
    for path in (ROOT / layer).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            wrong += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "celery"]
    assert wrong == []
