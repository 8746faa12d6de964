"""The import graph of the product's packages, read with `ast`: no cycle, and the arrows of the layers
(`cli, web → operations → workers → pipelines → shared`, `scheduler → shared`, `intake → shared`, nothing in
`shared` imports the others; a layer may use any layer below it, but `cli` and `web` never `workers`: the
operator services launch work for them), `web` reads no raw table, no cycle between the sub-packages of
`shared/`, and inside `pipelines/`: no stage folder imports another, and what lies below the stage folders
(`stage.py`, `outputs.py`, `attendance/`, `monthend/`, `mail/`) imports none; no string in `shared/` names a
registered stage, its shard kinds or its own planners' shards (a stage is declared in its folder only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "pipelines", "workers", "operations", "scheduler", "cli", "web", "bench", "intake")
# What each layer may import from the product (besides itself).
ALLOWED = {"shared": set(), "pipelines": {"shared"}, "scheduler": {"shared"}, "workers": {"pipelines", "shared"},
           "operations": {"workers", "pipelines", "shared"},
           # the command starts the console, the intake and the scheduler (their processes' entry points)
           "cli": {"operations", "pipelines", "shared", "web", "intake", "scheduler"},
           "web": {"operations", "pipelines", "shared"}, "intake": {"shared"}}
RAW_TABLES = "shared.database.tables"


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
    assert _wrong_arrows(_graph(), layer) == set()


# Modules of pipelines/ above the stage folders: they list stages or plan across them.
ABOVE_STAGES = {"pipelines.registry", "pipelines.replay", "pipelines.plans", "pipelines.trace"}


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


def _wrong_arrows(graph: dict[str, set[str]], layer: str) -> set[str]:
    return {f"{module} → {target}" for module, targets in graph.items() if module.split(".")[0] == layer
            for target in targets if target.split(".")[0] not in {layer, *ALLOWED[layer]}}


def test_the_arrow_check_finds_a_wrong_arrow() -> None:
    """The console launching work itself (web → workers) breaks an arrow; web → operations does not."""
    graph = {"web.actions": {"workers.canvas", "operations.executions"}, "operations.executions": {"workers.canvas"}}
    expected = ({"web.actions → workers.canvas"}, set())
    assert (_wrong_arrows(graph, "web"), _wrong_arrows(graph, "operations")) == expected


def test_the_console_reads_no_raw_table() -> None:
    """`web/` reads through `operations/` or `shared/records`, never the tables."""
    assert {m for m, targets in _graph().items() if m.split(".")[0] == "web" and RAW_TABLES in targets} == set()


def _shared_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph of `shared/`'s sub-packages (`shared.config`, `shared.records`, …; a module at its top is one)."""
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module.split(".")[0] != "shared" or module == "shared":
            continue
        own = ".".join(module.split(".")[:2])
        packages.setdefault(own, set()).update(
            ".".join(t.split(".")[:2]) for t in targets if t.split(".")[0] == "shared" and not t.startswith(own))
    return packages


def test_no_cycle_between_the_sub_packages_of_shared() -> None:
    assert _cycles(_shared_packages(_graph())) == []


def test_the_shared_check_sees_a_package_cycle() -> None:
    """config.settings → observability and observability.tracing → config: a cycle of two sub-packages."""
    graph = {"shared.config.settings": {"shared.observability.redaction"},
             "shared.observability.tracing": {"shared.config.settings"}, "shared.records.queries": set()}
    assert _cycles(_shared_packages(graph)) == [["shared.config", "shared.observability"]]


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


# The schema names tables (one is `absences`, like extract's absences shard): it is the database's, not a stage's.
SCHEMA = ("shared/database/tables.py", "shared/database/migrations/")


def _stage_words() -> set[str]:
    """What only a stage's declaration may say: its name, its shard kinds' prefixes and names, its planners'
    shard names beyond the control steps shared/ knows."""
    from pipelines.registry import STAGES
    from shared.records.shards import ShardKind

    words: set[str] = set()
    for stage in STAGES:
        words |= {stage.name, *(p for p in stage.plan_shards if p not in set(ShardKind))}
        words |= {k.prefix or k.name for k in stage.shard_kinds if k.prefix or k.name}
    return words


def _naming(source: str, words: set[str]) -> list[tuple[int, str]]:
    """The string constants in `source` equal to one of `words` (line, string)."""
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words]


def test_shared_names_no_stage() -> None:
    """shared/ (coalescing, shard names, records, events) holds no string naming a registered stage, a kind of
    its shards or its own planner: each is said by the stage's declaration, which shared/ gets from outside."""
    words = _stage_words()
    assert {"extract", "merge", "notify", "export", "punches:", "absences", "@plan-days"} <= words
    found = [f"{path.relative_to(ROOT)}:{line}: {value!r}" for path in sorted((ROOT / "shared").rglob("*.py"))
             if not str(path.relative_to(ROOT)).startswith(SCHEMA)
             for line, value in _naming(path.read_text(), words)]
    assert found == []


@pytest.mark.parametrize(("source", "found"), [
    ('shaped["merge"]["windows"] = [window]', [(1, "merge")]),  # the coalescing of before
    ("PUNCHES = 'punches:'", [(1, "punches:")]),  # a stage's shard kind in shared/
    ('"""merge the windows"""\nKIND = "punches"', []),  # prose, and the event kind `punches`: not a stage's name
])
def test_the_stage_name_check_finds_a_stage_named(source: str, found: list[tuple[int, str]]) -> None:
    assert _naming(source, _stage_words()) == found
