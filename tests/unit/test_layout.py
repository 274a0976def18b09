"""The tree reads as the data flow: imports between the runtime's packages point one way
(worker -> api -> stages -> ingest/identity/profile/publish -> shared types), with no
cycle, and the runtime never imports the tooling (cdp_tools) except where the CLI loads
it lazily for a tooling command."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "pipeline"
# A unit (a subpackage or a top-level module of pipeline) may import its own layer or lower.
LAYERS = {
    "worker": 5,
    "cli": 6,
    "__main__": 6,
    "api": 4,
    "stages": 3,
    "publish": 2,
    "profile": 2,
    "identity": 2,
    "ingest": 2,
}
SHARED = 1  # model, records, settings, metrics, retry, topics, kafka, timefmt, ...


def _unit(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The modules ``path`` imports, relative imports made absolute: ``from ..stages import
    x`` counts as ``pipeline.stages`` and ``pipeline.stages.x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = path.relative_to(ROOT).parts[:-1]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, *(node.module or "").split("."))).strip(".")
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in RUNTIME.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        unit = _unit(".".join(rel.parts))
        targets = {
            _unit(m)
            for m in _imports(path, top_level_only=False)
            if m.startswith("pipeline.") and m.split(".")[1] not in ("schemas",)
        }
        targets = {t for t in targets if (RUNTIME / t).is_dir() or (RUNTIME / f"{t}.py").exists()}
        edges.setdefault(unit, set()).update(targets - {unit})
    return edges


def test_imports_between_units_point_down_the_data_flow() -> None:
    edges = _graph()
    # The walk sees the tree: the worker wires the stages, the stages use the layers below.
    assert {"stages", "api"} <= edges["worker"] and {"identity", "ingest"} <= edges["stages"]
    wrong = [
        f"{unit} -> {target}"
        for unit, targets in edges.items()
        for target in targets
        if LAYERS.get(target, SHARED) > LAYERS.get(unit, SHARED)
    ]
    assert wrong == []


def test_no_cycle_between_units() -> None:
    edges = _graph()
    done: set[str] = set()

    def visit(unit: str, path: tuple[str, ...]) -> None:
        assert unit not in path, " -> ".join((*path, unit))
        if unit not in done:
            for target in sorted(edges.get(unit, ())):
                visit(target, (*path, unit))
            done.add(unit)

    for unit in sorted(edges):
        visit(unit, ())


def test_the_runtime_never_imports_the_tooling_at_module_level() -> None:
    for path in RUNTIME.rglob("*.py"):
        top = _imports(path, top_level_only=True)
        assert not any(m.split(".")[0] == "cdp_tools" for m in top), path
        if path.name != "cli.py":  # the CLI loads tooling commands lazily
            anywhere = _imports(path, top_level_only=False)
            assert not any(m.split(".")[0] == "cdp_tools" for m in anywhere), path


def test_the_wheel_lists_every_package_of_the_tree() -> None:
    """Found from outside: `cdp bench quality` imported cdp_tools.quality, which the wheel
    left out, so the installed command failed where the checkout's ran (CONTRACT 1)."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in (RUNTIME, ROOT / "cdp_tools")
        for init in top.rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
