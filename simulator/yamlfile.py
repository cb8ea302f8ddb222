"""Safe YAML loading that remembers where every key came from.

PyYAML's safe loader builds plain Python data but forgets positions and silently keeps the last
of two duplicate keys. This module composes the node tree first, records the line of every key
path, rejects duplicate keys, and only then constructs the data, so that later validation errors
can name the file, the line and the key path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import Problem, ScenarioError

KeyPath = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Line numbers (1-based) of the key paths of one YAML document."""

    source: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """Return the line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


def _walk(node: yaml.Node, path: KeyPath, smap: SourceMap, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if key in seen:
                problems.append(
                    Problem(
                        f"duplicate key {key!r} (first defined on line {seen[key]})",
                        ".".join(str(k) for k in child),
                        line,
                    )
                )
            seen[key] = line
            smap.lines.setdefault(child, line)
            _walk(value_node, child, smap, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            smap.lines.setdefault(child, item.start_mark.line + 1)
            _walk(item, child, smap, problems)


def load_yaml_text(text: str, source: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document safely, returning the data and its source map.

    Raises
    ------
    ScenarioError
        On malformed YAML (with line and column), duplicate keys, more than one document, or
        an empty document.
    """
    smap = SourceMap(source)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError(source, [Problem("the file is empty; expected a scenario mapping")])
        smap.lines[()] = node.start_mark.line + 1
        problems: list[Problem] = []
        _walk(node, (), smap, problems)
        if problems:
            raise ScenarioError(source, problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        column = f", column {mark.column + 1}" if mark is not None else ""
        what = exc.problem or exc.context or "malformed YAML"
        raise ScenarioError(source, [Problem(f"invalid YAML{column}: {what}", "", line)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [Problem(f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return data, smap


def load_yaml_file(path: str | Path) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file; see :func:`load_yaml_text`.

    Raises
    ------
    ScenarioError
        When the file is missing, unreadable or not UTF-8, and for everything
        :func:`load_yaml_text` rejects.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(source, [Problem("no such file")]) from None
    except IsADirectoryError:
        raise ScenarioError(source, [Problem("is a directory, expected a YAML file")]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(source, [Problem(f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise ScenarioError(source, [Problem(f"cannot read: {exc.strerror}")]) from None
    return load_yaml_text(text, source)
