"""YAML loading that remembers where each value came from, so errors can name the file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from foundation.errors import PravahError
from foundation.typed import Loc


@dataclass
class YamlDoc:
    """A parsed YAML document and the line of every key and item in it."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest parent that has one."""
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def where(self, loc: Loc) -> str:
        """`file:line dotted.path` for messages."""
        line = self.line_of(loc)
        dotted = ".".join(str(part) for part in loc)
        place = f"{display_path(self.path)}:{line}" if line else display_path(self.path)
        return f"{place} {dotted}" if dotted else place


def display_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_yaml(path: Path) -> YamlDoc:
    """Parse a YAML file; a syntax error, a duplicate key or an unreadable file is a PravahError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PravahError(f"{display_path(path)}: file not found") from None
    except UnicodeDecodeError as exc:
        raise PravahError(f"{display_path(path)}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PravahError(f"{display_path(path)}: cannot read ({exc.strerror})") from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path) -> YamlDoc:
    loader = (yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)(text)  # libyaml: 3x faster
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise PravahError(f"{display_path(path)}{line}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise PravahError(f"{display_path(path)}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    doc = YamlDoc(path=path, data=data)
    if node is not None:
        _record_lines(doc, node, ())
    return doc


def _record_lines(doc: YamlDoc, node: yaml.Node, loc: Loc) -> None:
    doc.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise PravahError(
                    f"{display_path(doc.path)}:{line} {'.'.join(map(str, (*loc, key)))}: "
                    f"duplicate key '{key}' (first at line {seen[key]})"
                )
            seen[key] = line
            doc.lines[(*loc, key)] = line
            _record_lines(doc, value_node, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[(*loc, index)] = item.start_mark.line + 1
            _record_lines(doc, item, (*loc, index))
