"""Parsing YAML text (knowledge files, hospital overrides, uploaded inputs).

libyaml's C parser when PyYAML was built with it, as the wheels are: about ten times faster
than the pure-Python parser on the large knowledge files that every command and the server
load at start. Both are the *safe* loader (plain data, never Python objects) and raise
``yaml.YAMLError`` on malformed text.
"""

from __future__ import annotations

from typing import Any

import yaml

Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str | bytes) -> Any:
    """The data in ``text`` (``None`` for an empty document)."""
    return yaml.load(text, Loader=Loader)
