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


MAX_BYTES = 32 * 1024 * 1024  # a playbook or labelled set of tens of thousands of prompts is a few MB
MAX_DEPTH = 64  # nesting levels; the files cacheops reads need fewer than ten
MAX_NODES = 2_000_000  # nodes after aliases are expanded (an alias bomb expands to billions)
# libyaml's parser when PyYAML was built with it (about ten times faster), the same safe constructors
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path, error: type[ConfigError] = ConfigError) -> tuple[object, yaml.Node | None]:
    """(data, node tree) of a YAML file a person wrote, refusing quickly what would hang or exhaust
    memory: a huge file, deep nesting (PyYAML recurses per level), aliases that expand beyond
    reason. Tags that construct objects are refused by the safe loader. Errors name file:line."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise error(
                f"{path}: {size / 2**20:.0f} MB is too large for a YAML file cacheops reads "
                f"(at most {MAX_BYTES // 2**20} MB)"
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    try:
        _check_shape(text, path, error)
        node = yaml.compose(text, Loader=Loader)
        data = yaml.load(text, Loader=Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
            tag = problem.rsplit("tag ", 1)[-1]
            raise error(f"{path}{where}: the tag {tag} is not allowed (cacheops builds no objects from YAML)") from None
        raise error(f"{path}{where}: not valid YAML ({problem})") from None
    return data, node


def _check_shape(text: str, path: Path, error: type[ConfigError]) -> None:
    """One pass over the parser's events (iterative, so deep nesting cannot overflow the stack):
    the nesting depth, and the node count with every alias expanded."""
    sizes: dict[str, int] = {}  # anchor -> expanded node count of the anchored node
    stack: list[list] = [[None, 0]]  # open collections: [anchor, expanded nodes so far]
    for event in yaml.parse(text, Loader=Loader):
        line = event.start_mark.line + 1
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            stack.append([event.anchor, 1])
            if len(stack) - 1 > MAX_DEPTH:
                raise error(f"{path}:{line}: nested more than {MAX_DEPTH} levels deep")
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, count = stack.pop()
            if anchor:
                sizes[anchor] = count
        elif isinstance(event, yaml.ScalarEvent):
            count = 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            count = sizes.get(event.anchor, 1)
        else:
            continue
        stack[-1][1] += count
        if stack[-1][1] > MAX_NODES:
            raise error(
                f"{path}:{line}: aliases expand to more than {MAX_NODES:,} values (an alias bomb?); "
                "write the values out"
            )


def load_yaml_model(path: str | Path, model: type[Model], error: type[ConfigError] = ConfigError) -> Model:
    path = Path(path)
    data, node = read_yaml(path, error)
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
