"""Engines are pure: they never import adapters (DESIGN.md §1, STYLE.md habit 2)."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "medbrain"
ENGINES = (
    "imaging",
    "rx",
    "qc",
    "notes",
    "alerts",
    "rare",
    "triage",
    "ops",
    "insurance",
    "radiology",
    "core",
    "knowledge",
)
ADAPTERS = ("medbrain.api", "medbrain.cli", "medbrain.store", "medbrain.interop", "medbrain.demo")
FORBIDDEN_MODULES = ("fastapi", "sqlalchemy", "starlette", "uvicorn", "typer")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_imports_no_adapter(engine: str) -> None:
    offenders = []
    for path in sorted((SRC / engine).rglob("*.py")):
        for name in _imports(path):
            if name.startswith(ADAPTERS) or name.split(".")[0] in FORBIDDEN_MODULES:
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert offenders == []
