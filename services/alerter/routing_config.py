"""Loading the routing rules from YAML. A bad file fails at start-up with the file name and the line.

Every mapping and list keeps the line it started on, so a validation error located at
``routes[2].match.tier[0]`` is reported at the line of the deepest node of that path that exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from services.alerter.routing import RoutingRules

DEFAULT_RULES_PATH = Path(__file__).with_name("routing.yaml")


class RoutingConfigError(ValueError):
    """The routing rules file cannot be used; the message names the file and the line."""


class _LineDict(dict[Any, Any]):
    line = 0


class _LineList(list[Any]):
    line = 0


class _LineLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    out = _LineDict(loader.construct_mapping(node, deep=True))
    out.line = node.start_mark.line + 1
    return out


def _sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_sequence(node, deep=True))
    out.line = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def parse_rules(text: str, source: str = "<rules>") -> RoutingRules:
    try:
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader that keeps line numbers
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise RoutingConfigError(f"{source}:{line}: not valid YAML: {exc.problem}") from exc
    if not isinstance(data, dict):
        raise RoutingConfigError(f"{source}:1: the rules file must be a mapping with routes and default")
    try:
        return RoutingRules.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        line = _line_of(data, first["loc"])
        raise RoutingConfigError(f"{source}:{line}: {where}: {first['msg']}") from exc


def load_rules(path: Path | None) -> RoutingRules:
    path = path or DEFAULT_RULES_PATH
    try:
        text = path.read_text()
    except OSError as exc:
        raise RoutingConfigError(f"{path}: cannot read the routing rules: {exc.strerror}") from exc
    return parse_rules(text, str(path))


def _line_of(data: Any, loc: tuple[int | str, ...]) -> int:
    line = getattr(data, "line", 1)
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        line = getattr(node, "line", line)
    return int(line)
