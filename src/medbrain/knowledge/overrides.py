"""How a hospital's override file is merged into shipped knowledge (one rule for every engine)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from medbrain.core import yamlio
from medbrain.core.errors import KnowledgeError


def _is_rows(value: Any, key: str) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(row, dict) and key in row for row in value)
    )


def deep_merge(base: Any, override: Any, key: str = "id") -> Any:
    """Merge ``override`` into ``base`` without mutating either.

    Mappings merge key by key; lists of rows carrying ``key`` merge row by row (same id:
    deep-merged; new id: appended; ``enabled: false``: dropped); anything else is replaced.
    """
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for name, value in override.items():
            out[name] = deep_merge(base[name], value, key) if name in base else value
        return out
    if _is_rows(base, key) and isinstance(override, list):
        rows: dict[str, Any] = {str(row[key]): row for row in base}
        order = [str(row[key]) for row in base]
        for row in override:
            if not isinstance(row, dict) or key not in row:
                raise KnowledgeError(f"override row {row!r} has no {key}")
            rid = str(row[key])
            if rid in rows:
                rows[rid] = deep_merge(rows[rid], row, key)
            else:
                rows[rid] = row
                order.append(rid)
        return [rows[rid] for rid in order if rows[rid].get("enabled", True) is not False]
    return override


def read_hospital_file(path: Path) -> dict[str, Any] | None:
    """A hospital's YAML override file as a mapping; ``None`` when the file does not exist.

    Re-read only when the file changes (keyed by its modification time), so an edited file
    takes effect without a restart and an unchanged one costs a ``stat``.
    """
    if not path.is_file():
        return None
    return _read_yaml_mapping(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=32)
def _read_yaml_mapping(path: Path, _mtime_ns: int) -> dict[str, Any] | None:
    try:
        document = yamlio.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"{path}: cannot read the hospital's override file: {exc}") from None
    if document is not None and not isinstance(document, dict):
        raise KnowledgeError(f"{path}: top level must be a mapping")
    return document
