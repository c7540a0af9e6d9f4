"""YAML files read with their line numbers, so every problem can say where it is.

Mappings load as :class:`LocatedDict` and sequences as :class:`LocatedList`: ordinary ``dict`` and
``list`` objects that also know their file, their own line and the line of each key or item. The C
parser of libyaml does the reading (the 50,000-asset inventory is read in about a second); only the
construction of containers is ours.

Problems found while reading (syntax errors, duplicate keys, a file that is not a mapping) are returned,
not raised, so that a check can report the problems of every file at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from akm.errors import Problem
from akm.i18n import _

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml is part of Debian's and PyPI's PyYAML builds
    _BaseLoader = yaml.SafeLoader


class LocatedDict(dict):
    """A mapping that remembers where it and each of its keys were written."""

    __slots__ = ("file", "line", "lines")

    def __init__(self, file: str = "", line: int | None = None) -> None:
        super().__init__()
        self.file = file
        self.line = line
        self.lines: dict[Any, int] = {}


class LocatedList(list):
    """A sequence that remembers where it and each of its items were written."""

    __slots__ = ("file", "line", "lines")

    def __init__(self, file: str = "", line: int | None = None) -> None:
        super().__init__()
        self.file = file
        self.line = line
        self.lines: list[int] = []


class _Loader(_BaseLoader):
    def __init__(self, stream: Any, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.problems: list[Problem] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode):
    data = LocatedDict(loader.file, node.start_mark.line + 1)
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str | int):
            loader.problems.append(
                Problem(
                    loader.file,
                    line,
                    str(key),
                    "yaml.bad-key",
                    _("a key must be a plain word"),
                    _("write the key as text, e.g. hostname:"),
                )
            )
            continue
        if key in data:
            loader.problems.append(
                Problem(
                    loader.file,
                    line,
                    str(key),
                    "yaml.duplicate-key",
                    _("the key {key!r} is written twice in the same block (first on line {first})").format(
                        key=key, first=data.lines[key]
                    ),
                    _("keep one of the two lines"),
                )
            )
            continue
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = line


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode):
    data = LocatedList(loader.file, node.start_mark.line + 1)
    yield data
    for item_node in node.value:
        data.append(loader.construct_object(item_node, deep=True))
        data.lines.append(item_node.start_mark.line + 1)


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode):
    """Read a date; an impossible one (2024-13-01) stays text so the schema can report it."""
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def display_path(path: Path) -> str:
    """Return *path* relative to the working directory when it is below it, for short messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """Read one YAML file and return its data (located containers) and the problems found.

    The data is ``None`` when the file cannot be read or parsed; the problems then say why.
    """
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            Problem(
                name,
                None,
                "",
                "yaml.encoding",
                _("the file is not UTF-8 text (byte {offset})").format(offset=exc.start),
                _("save the file as UTF-8"),
            )
        ]
    except OSError as exc:
        return None, [
            Problem(
                name,
                None,
                "",
                "yaml.unreadable",
                _("the file cannot be read: {reason}").format(reason=exc.strerror),
                _("check that the file exists and is readable"),
            )
        ]
    loader = _Loader(text, name)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        return None, [
            Problem(
                name,
                line,
                "",
                "yaml.syntax",
                _("YAML syntax error: {problem}").format(problem=exc.problem or exc.context),
                _("check indentation, colons and quotes near this line"),
            )
        ]
    except yaml.YAMLError as exc:
        return None, [
            Problem(
                name,
                None,
                "",
                "yaml.syntax",
                _("YAML syntax error: {problem}").format(problem=exc),
                _("check indentation, colons and quotes"),
            )
        ]
    finally:
        loader.dispose()
    return data, loader.problems
