"""The rx engine stays pure: no adapters, no web, no database, no environment, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

RX = Path(__file__).resolve().parents[3] / "src" / "medbrain" / "rx"
FORBIDDEN = (
    "medbrain.api",
    "medbrain.cli",
    "medbrain.store",
    "medbrain.interop",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "typer",
    "os",
    "time",
    "random",
    "requests",
    "httpx",
)


def test_rx_engine_imports_nothing_impure() -> None:
    offenders = []
    for path in sorted(RX.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                    offenders.append(f"{path.name} imports {name}")
            if isinstance(node, ast.Attribute) and node.attr in ("now", "today", "environ"):
                offenders.append(f"{path.name} uses .{node.attr}")
    assert offenders == []
