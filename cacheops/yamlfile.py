"""Load a YAML file into a pydantic model, with errors that name the file, the line and the field.

Shared by every file a user writes by hand (labelled sets, playbooks): one line says what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def load_yaml_model(path: str | Path, model: type[Model], error: type[ConfigError] = ConfigError) -> Model:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise error(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [p for p in first["loc"]]
        line = line_of(node, loc)
        where = f":{line}" if line else ""
        field = ".".join(str(p) for p in loc) or "(top level)"
        raise error(f"{path}{where}: {field}: {first['msg']}") from None


def line_of(node, loc: list) -> int | None:
    """1-based line of the YAML node at a pydantic error location (the deepest node that exists).

    A tagged union adds its tag to the location (caches.0.langchain_exact.prefix): a mapping key
    that is not in the file is skipped, not the end of the walk."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if nxt is None and isinstance(part, str):
                continue
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line
