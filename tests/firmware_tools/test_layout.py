"""firmware_tools keeps its three roles apart: imports point one way (studies -> pipeline ->
jobs), with no cycles; converter-venv jobs import only the stdlib at module level; the
runtime's tests import nothing from the studies; ``edge-screen-fw --help`` lists every command
once, in its group.

Imports are read from the source (``ast``), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from firmware_tools import cli

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "firmware_tools"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Absolute names of the modules ``path`` imports (``from .x import y``: ``pkg.x.y`` when
    ``y`` is a module, else ``pkg.x``)."""
    tree = ast.parse(path.read_text())
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                name = f"{base}.{alias.name}"
                is_module = (ROOT / name.replace(".", "/")).with_suffix(".py").exists()
                found.add(name if is_module or (ROOT / name.replace(".", "/")).is_dir() else base)
    return found


GRAPH = {
    _module(p): {m for m in _imports(p) if m.startswith("firmware_tools")}
    for p in sorted(PACKAGE.rglob("*.py"))
}


def _role(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else "top"


def test_every_module_belongs_to_a_role() -> None:
    roles = {_role(m) for m in GRAPH if m.count(".") >= 2}
    assert roles == {"pipeline", "jobs", "studies", "device", "evaluate"}
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top == {"__init__.py", "__main__.py", "cli.py"}  # cli spans all three roles


def test_there_are_no_import_cycles() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(GRAPH.get(module, ())):
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, module, dep]))
            if dep in GRAPH and dep not in state:
                visit(dep, [*path, module])
        state[module] = 2

    for module in GRAPH:
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("role,allowed", [
    ("jobs", {"jobs"}),
    ("pipeline", {"pipeline", "jobs"}),
    ("studies", {"studies", "pipeline", "jobs"}),
    ("device", {"device", "pipeline"}),
    ("evaluate", {"evaluate", "pipeline"}),
])
def test_imports_point_one_way(role: str, allowed: set[str]) -> None:
    for module, deps in GRAPH.items():
        if _role(module) == role:
            wrong = {d for d in deps if d != "firmware_tools" and _role(d) not in allowed}
            assert not wrong, f"{module} imports {sorted(wrong)}"


def test_jobs_import_only_the_stdlib_at_module_level() -> None:
    """The converter venv has another numpy and no edge_screen; the main env imports job modules
    by name (``pipeline.convert``), so neither side may pull the other's packages in."""
    for path in sorted((PACKAGE / "jobs").glob("*.py")):
        for name in _imports(path, top_level_only=True):
            top = name.split(".")[0]
            assert top == "firmware_tools" or top in sys.stdlib_module_names, (path.name, name)


def test_runtime_tests_and_benchmarks_import_nothing_from_the_studies() -> None:
    runtime = [*(ROOT / "tests").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    for path in sorted(runtime):
        studies = {m for m in _imports(path) if m.startswith("firmware_tools.studies")}
        assert not studies, f"{path.relative_to(ROOT)} imports {sorted(studies)}"


def test_help_lists_every_command_once_in_its_group(capsys: pytest.CaptureFixture[str]) -> None:
    commands = set(cli.parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    listed = [name for group in cli.GROUPS.values() for name in group]
    assert sorted(listed) == sorted(commands)
    assert {"setup", "fetch", "convert", "validate", "bundle", "build-default", "remeasure",
            "synth", "decision", "study", "keygen", "sign", "verify", "emulate",
            "wheelhouse", "hashlist", "evaluate", "eval-corpus"} == commands
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for title, group in cli.GROUPS.items():
        block = out[out.index(f"{title}:"):]
        assert all(f"\n  {name} " in block for name in group)


@pytest.mark.parametrize("name", sorted(cli.STUDIES))
def test_each_study_command_runs_its_module_main(name: str) -> None:
    module = PACKAGE / "studies" / f"{cli.STUDIES[name][0]}.py"
    tree = ast.parse(module.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
    assert 'if __name__ == "__main__":' in module.read_text()  # python -m works too
