"""Safe YAML loading that remembers where every key came from.

PyYAML's safe loader builds plain Python data but forgets positions and silently keeps the last
of two duplicate keys. This module composes the node tree first, records the line of every key
path, rejects duplicate keys, and only then constructs the data, so that later validation errors
can name the file, the line and the key path.

Booleans follow YAML 1.2: only ``true`` and ``false`` are booleans, so keys and values such as
``on``, ``off``, ``yes`` and ``no`` stay strings (YAML 1.1 would silently turn the ``on``/``off``
keys of an on/off workload into ``True``/``False``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import Problem, ScenarioError
from simulator.limits import FILE_SIZE, YAML_DEPTH, YAML_NODES

KeyPath = tuple[str | int, ...]

#: Nodes a document may expand to (aliases counted each time they are used): a guard against
#: "billion laughs" alias bombs.
MAX_NODES = int(YAML_NODES.limit)
#: Deepest nesting accepted.
MAX_DEPTH = int(YAML_DEPTH.limit)
#: Largest file (bytes) parsed: checked before reading, since composing takes time in
#: proportion to the text (about 1.5 us a byte with libyaml, 13 without: 0.18 s and 1.56 s
#: for a 119 kB file on the development machine).
MAX_BYTES = int(FILE_SIZE.limit)

_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (no tags, no code) with YAML 1.2 booleans (``true``/``false`` only)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

if getattr(yaml, "__with_libyaml__", False):
    class _FastLoader(yaml.CSafeLoader):
        """The same rules, composed by libyaml: about 8 times faster (0.18 s against 1.56 s
        for a 119 kB file), so the limits on what a file expands to are reached quickly."""

    _FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


def _compose(text: str) -> tuple[Any, yaml.Node | None]:
    """The loader and the composed node tree of ``text``: by libyaml when it is installed,
    falling back to the Python loader on any error, so that messages (and the documents
    accepted) are always the Python loader's."""
    if getattr(yaml, "__with_libyaml__", False):
        fast = _FastLoader(text)
        try:
            return fast, fast.get_single_node()
        except (yaml.YAMLError, RecursionError):
            fast.dispose()
    loader = _Loader(text)
    try:
        return loader, loader.get_single_node()
    except BaseException:
        loader.dispose()
        raise


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


class _TooBigError(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


@dataclass
class _Walk:
    loader: yaml.SafeLoader
    smap: SourceMap
    problems: list[Problem]
    nodes: int = 0


def _key_of(key_node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    """The key as the data will hold it (``5`` is an int, ``~`` is None), for scalar keys."""
    if isinstance(key_node, yaml.ScalarNode):
        return loader.construct_object(key_node)
    return str(key_node.value)


def _expanded_size(root: yaml.Node) -> int:
    """Values the document expands to, counting every use of an alias, in time linear in
    the composed nodes (an aliased node's size is computed once): so an alias bomb is refused
    before anything walks or builds its expansion. Stops counting past :data:`MAX_NODES`."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH or key in active:  # too deep (or recursive): _walk reports it
            return 1
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k, depth + 1) + size(v, depth + 1)
                if total > MAX_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
                if total > MAX_NODES:
                    break
        active.discard(key)
        sizes[key] = total
        return total

    return size(root, 0)


def _too_many(line: int, count: float) -> Problem:
    return Problem(YAML_NODES.message("values the document expands to, counting every use "
                                      "of an alias (at least)", count), "", line)


def _walk(node: yaml.Node, path: KeyPath, w: _Walk) -> None:
    w.nodes += 1
    if w.nodes > MAX_NODES:
        raise _TooBigError(_too_many(node.start_mark.line + 1, w.nodes))
    if len(path) > MAX_DEPTH:
        raise _TooBigError(Problem(f"nested more than {MAX_DEPTH} levels deep (the "
                                   f"{YAML_DEPTH.name} limit); {YAML_DEPTH.advice}",
                                   ".".join(str(k) for k in path), node.start_mark.line + 1))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # "<<: *defaults": its keys belong to this mapping
                merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode)
                              else [value_node])
                continue
            key = _key_of(key_node, w.loader)
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if key in seen:
                w.problems.append(
                    Problem(
                        f"duplicate key {key!r} (first defined on line {seen[key]})",
                        ".".join(str(k) for k in child),
                        line,
                    )
                )
            seen[key] = line
            w.smap.lines.setdefault(child, line)
            _walk(value_node, child, w)
        for m in merged:  # explicit keys win, so their lines were recorded first
            if isinstance(m, yaml.MappingNode):
                _walk(m, path, w)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            w.smap.lines.setdefault(child, item.start_mark.line + 1)
            _walk(item, child, w)


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    """One line saying what is wrong, in the user's terms."""
    problem, context = exc.problem or "", exc.context or ""
    if "single document" in context:
        return "found a second YAML document ('---'); a scenario file holds exactly one"
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"YAML tag {name!r} is not allowed (scenarios are plain data: no tags, no code)"
    what = problem or context or "malformed YAML"
    if "'\\t'" in what:
        what += " (indent with spaces, not tabs)"
    cm, pm = exc.context_mark, exc.problem_mark
    if problem and context and cm is not None and pm is not None and cm.line != pm.line:
        what += f" ({context} started on line {cm.line + 1})"
    return what


def load_yaml_value(text: str) -> Any:
    """Parse a YAML value (as given to ``--set``) with the same rules as scenario files.

    Raises
    ------
    ValueError
        With a one-line reason when ``text`` is not valid YAML.
    """
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a control character: refused before parsing
        raise ValueError(_reader_message(exc)) from None
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        raise ValueError(_yaml_message(exc)) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ValueError(str(exc).splitlines()[0] if str(exc) else "malformed YAML") from None
    finally:
        loader.dispose()


def _reader_message(exc: yaml.reader.ReaderError) -> str:
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return (f"character {char!r} (U+{ord(char):04X}) is not allowed in YAML; remove it or "
            "write it as an escape inside double quotes")


def load_yaml_text(text: str, source: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document safely, returning the data and its source map.

    Raises
    ------
    ScenarioError
        On malformed YAML (with line and column), duplicate keys, more than one document, an
        empty document, or a document over the ``file_size`` or ``yaml_nodes`` limits
        (:mod:`simulator.limits`).
    """
    smap = SourceMap(source)
    if len(text) > MAX_BYTES:  # characters: at least as many bytes
        raise ScenarioError(source, [Problem(FILE_SIZE.message(
            "size of the file, checked before parsing", len(text)))])
    loader: Any = None
    try:
        loader, node = _compose(text)
        if node is None:
            raise ScenarioError(source, [Problem("the file is empty; expected a scenario mapping")])
        smap.lines[()] = node.start_mark.line + 1
        if (count := _expanded_size(node)) > MAX_NODES:
            raise _TooBigError(_too_many(node.start_mark.line + 1, count))
        problems: list[Problem] = []
        _walk(node, (), _Walk(loader, smap, problems))
        if problems:
            raise ScenarioError(source, problems)
        data = loader.construct_document(node)
    except _TooBigError as exc:
        raise ScenarioError(source, [exc.problem]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        column = f", column {mark.column + 1}" if mark is not None else ""
        what = _yaml_message(exc)
        raise ScenarioError(source, [Problem(f"invalid YAML{column}: {what}", "", line)]) from None
    except yaml.reader.ReaderError as exc:  # a control character: refused before parsing
        at = text.count("\n", 0, exc.position) + 1
        raise ScenarioError(source, [Problem(f"invalid YAML: {_reader_message(exc)}", "",
                                             at)]) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "malformed YAML"
        raise ScenarioError(source, [Problem(f"invalid YAML: {first}")]) from None
    except RecursionError:
        raise ScenarioError(source, [Problem("invalid YAML: nested too deeply")]) from None
    finally:
        if loader is not None:
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
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        if size > MAX_BYTES:  # before reading: a huge file is refused at once
            raise ScenarioError(source, [Problem(FILE_SIZE.message(
                "size of the file, checked before parsing", size))])
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
