"""YAML files read with their line numbers, so every problem can say where it is.

Mappings load as :class:`LocatedDict` and sequences as :class:`LocatedList`: ordinary ``dict`` and
``list`` objects that also know their file, their own line and the line of each key or item, and the
text written for a value YAML read as something else than text (``no`` for False). The C parser of
libyaml does the reading; the containers are built from its events, one at a time (:class:`_Reader`),
with PyYAML's resolver and constructors deciding what a plain value is. This located reading is the
reference: what a file means is what :func:`load_yaml` says it means. It refuses what nobody means:
aliases standing for more than :data:`ALIAS_LIMIT` values (alias bombs), and whole numbers that YAML 1.1
reads in octal (``010`` is 8) or base 60 (``18:00`` is 1080).

Problems found while reading (syntax errors, duplicate keys, a file that is not a mapping) are returned,
not raised, so that a check can report the problems of every file at once.

Turning each of libyaml's events into Python objects in Python makes the located reading slow on large
files (seconds for the 50,000-asset inventory). :func:`load_plain` is the fast way for a file that is
correct: a C extension (``akm/_yamlplain.c``) runs libyaml's parser once and builds plain dicts, lists
and values straight from its events, without lines, resolving plain values as YAML 1.1 does (the
common forms in C, the rare ones by the same PyYAML resolver and constructors as the located reading).
It vouches that the data equals what :func:`load_yaml` would return and that it would find no problem:
anything only the located reading decides (a syntax error, a tag, an anchor or alias, a merge or
duplicate key, a key that is not text, a second document, a file that is not a mapping) makes it return
``None`` at once, and the caller reads the file with :func:`load_yaml`. A whole number written in octal
or base 60 is kept as the text written and reported, as the located reading does.
"""

from __future__ import annotations

import datetime
import gc
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from sys import intern
from typing import Any

import yaml

from akm import _yamlplain
from akm.errors import Problem
from akm.i18n import _, format_number

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml is part of Debian's and PyPI's PyYAML builds
    _BaseLoader = yaml.SafeLoader


class LocatedDict(dict):
    """A mapping that remembers where it and each of its keys were written.

    ``written`` keeps, for the few values YAML read as something else than text in a form of its own
    (``no``, ``0x1F``, ``~``), the text as it stands in the file, so that a message can quote it; it is
    ``None`` when there is none.
    """

    __slots__ = ("file", "line", "lines", "written")

    def __init__(self, file: str = "", line: int | None = None) -> None:
        super().__init__()
        self.file = file
        self.line = line
        self.lines: dict[Any, int] = {}
        self.written: dict[Any, str] | None = None


class LocatedList(list):
    """A sequence that remembers where it and each of its items were written (``written`` as above)."""

    __slots__ = ("file", "line", "lines", "written")

    def __init__(self, file: str = "", line: int | None = None) -> None:
        super().__init__()
        self.file = file
        self.line = line
        self.lines: list[int] = []
        self.written: dict[int, str] | None = None


ALIAS_LIMIT = 100_000
"""How many values the aliases (``*name``) of one file may stand for in all, each counted as often as it
is repeated: an alias of a list of ten short texts counts eleven, and a text counts once more for every
:data:`TEXT_WEIGHT` characters. A file past it is refused, so an alias bomb (billion laughs: nine lists
of nine aliases stand for 10⁹ values; or one long text repeated by alias) is stopped after a few thousand
events, before anything is built from it."""
TEXT_WEIGHT = 100

_TAG = "tag:yaml.org,2002:"
_MAPPING_TAGS = (None, "!", _TAG + "map")
_SEQUENCE_TAGS = (None, "!", _TAG + "seq")
_RESOLVERS: dict[Any, list[tuple[str, re.Pattern]]] = _BaseLoader.yaml_implicit_resolvers
_RESOLVED_FIRST = frozenset(_RESOLVERS)
# A resolver for any first character (none by default) would make every text a candidate.
_RESOLVED_ANY = None in _RESOLVERS
# YAML 1.1 reads a plain whole number with a leading zero as octal (010 is 8), and one with colons in
# base 60 (18:00 is 1080).
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
_CACHE_SIZE = 10_000
_NO_KEY, _SKIP, _MERGE, _OPEN = object(), object(), object(), object()


class _Refused(Exception):
    """Stops the reading of a file that must not be read any further (an alias bomb)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Frame:
    """A mapping or sequence being read: its container, the key whose value comes next, its size."""

    __slots__ = ("anchor", "container", "is_map", "key", "key_line", "merges", "size")

    def __init__(self, container: LocatedDict | LocatedList, anchor: str | None) -> None:
        self.container = container
        self.is_map = type(container) is LocatedDict
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.size = 1
        self.merges: list[LocatedDict] = []


class _Reader:
    """Build located containers straight from libyaml's parser events.

    PyYAML's own way composes a graph of nodes for the whole file before it builds one object; on a
    50 MB inventory the graph alone takes more than a gigabyte. Here each event becomes its value at
    once and only the open containers are held. Plain scalars are resolved and constructed by PyYAML's
    resolver and constructors, so a value means what it means to PyYAML. Where this reading differs, on
    purpose: aliases count towards :data:`ALIAS_LIMIT`; a merge key (``<<``) gives way to the keys
    written beside it; a whole number written in octal or base 60 is reported and kept as the text
    written; a collection with a tag other than map and seq is a syntax error.
    """

    def __init__(self, text: str, name: str) -> None:
        self.loader = _BaseLoader(text)
        self.name = name
        self.problems: list[Problem] = []
        self.anchors: dict[str, Any] = {}
        self.aliased = 0
        self.cache: dict[str, tuple[Any, str | None, str | None]] = {}

    def read(self) -> Any:
        """Return the data of the file's one document (``None`` for an empty file)."""
        loader = self.loader
        loader.get_event()
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()
        data = self._document()
        loader.get_event()
        if not loader.check_event(yaml.StreamEndEvent):
            raise yaml.composer.ComposerError(None, None, "but found another document", loader.get_event().start_mark)
        return data

    def _document(self) -> Any:
        stack: list[_Frame] = []
        get = self.loader.get_event
        scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
        mapping_start, sequence_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
        # Most scalars are text no resolver looks at (pc-001, in_use): they skip the call to _scalar.
        resolved_first = frozenset() if _RESOLVED_ANY else _RESOLVED_FIRST
        while True:
            event = get()
            kind = type(event)
            written = None
            if kind is scalar_event:
                line = event.start_mark.line + 1
                value = event.value
                if event.tag is not None or (event.implicit[0] and (_RESOLVED_ANY or value[:1] in resolved_first)):
                    value, written, surprise = self._scalar(event)
                    if surprise is not None:
                        self._surprise(surprise, value, written, line, stack)
                        value, written = written, None
                size = 1 + len(event.value) // TEXT_WEIGHT
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, size, written)
            elif kind is mapping_start or kind is sequence_start:
                if event.tag not in (_MAPPING_TAGS if kind is mapping_start else _SEQUENCE_TAGS):
                    raise yaml.constructor.ConstructorError(
                        None, None, f"could not determine a constructor for the tag {event.tag!r}", event.start_mark
                    )
                line = event.start_mark.line + 1
                container = LocatedDict(self.name, line) if kind is mapping_start else LocatedList(self.name, line)
                if event.anchor is not None:
                    self.anchors[event.anchor] = _OPEN
                stack.append(_Frame(container, event.anchor))
                continue
            elif kind is alias_event:
                line = event.start_mark.line + 1
                value, size, written = self._alias(event, line, stack)
            else:
                frame = stack.pop()
                value, size, line = frame.container, frame.size, frame.container.line
                if frame.merges:
                    _merge(value, frame.merges)
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (value, size, None)
            if not stack:
                return value
            top = stack[-1]
            key = top.key
            # The usual cases, a new text key and a value under it, are done here rather than in _add.
            if top.is_map and written is None and type(key) is str:
                top.size += size
                top.container[key] = value
                top.container.lines[key] = top.key_line
                top.key = _NO_KEY
            elif key is _NO_KEY and type(value) is str and top.is_map and value not in top.container:
                top.size += size
                top.key = intern(value)  # the same few keys in every record: one string each, not millions
                top.key_line = line
            else:
                self._add(top, value, line, size, written)

    def _add(self, frame: _Frame, value: Any, line: int, size: int, written: str | None) -> None:
        """Put *value* (from *line*, standing for *size* values) into the open container of *frame*."""
        frame.size += size
        container = frame.container
        if not frame.is_map:
            if written is not None:
                if container.written is None:
                    container.written = {}
                container.written[len(container)] = written
            container.append(value)
            container.lines.append(line)
            return
        key = frame.key
        if key is _NO_KEY:
            frame.key = self._key(container, value, line)
            frame.key_line = line
            return
        frame.key = _NO_KEY
        if key is _SKIP:
            return
        if key is _MERGE:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(source, LocatedDict) for source in sources):
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "expected a mapping or list of mappings for merging",
                    self.loader.peek_event().start_mark,
                )
            frame.merges.extend(sources)
            return
        container[key] = value
        container.lines[key] = frame.key_line
        if written is not None:
            if container.written is None:
                container.written = {}
            container.written[key] = written

    def _key(self, container: LocatedDict, key: Any, line: int) -> Any:
        """Return what the value after *key* is to be stored under, or a marker to skip or merge it."""
        if key is _MERGE:
            return _MERGE
        if not isinstance(key, str | int):
            self.problems.append(
                Problem(
                    self.name,
                    line,
                    str(key),
                    "yaml.bad-key",
                    _("a key must be a plain word"),
                    _("write the key as text, e.g. hostname:"),
                )
            )
            return _SKIP
        if key in container:
            self.problems.append(
                Problem(
                    self.name,
                    line,
                    str(key),
                    "yaml.duplicate-key",
                    _("the key {key!r} is written twice in the same block (first on line {first})").format(
                        key=key, first=container.lines[key]
                    ),
                    _("keep one of the two lines"),
                )
            )
            return _SKIP
        return key

    def _scalar(self, event: yaml.ScalarEvent) -> tuple[Any, str | None, str | None]:
        """Return the value of a scalar, its text if YAML made something else of it (``no`` → False), and
        ``"octal"`` or ``"base60"`` if it is a number written in a form nobody means."""
        value = event.value
        tag = event.tag
        if tag is not None and tag != "!":
            node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, event.style)
            try:
                return self.loader.construct_object(node), None, None
            except (ValueError, TypeError) as exc:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{value!r} cannot be read as {tag}", event.start_mark
                ) from exc
        if not event.implicit[0] or not (_RESOLVED_ANY or value[:1] in _RESOLVED_FIRST):
            return value, None, None
        found = self.cache.get(value)
        if found is None:
            found = _resolve(self.loader, value, event.start_mark, event.end_mark)
            if len(self.cache) < _CACHE_SIZE:
                self.cache[value] = found
        return found

    def _alias(self, event: yaml.AliasEvent, line: int, stack: list[_Frame]) -> tuple[Any, int, str | None]:
        found = self.anchors.get(event.anchor)
        if found is None:
            raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}", event.start_mark)
        if found is _OPEN:
            raise yaml.composer.ComposerError(
                None, None, f"found the alias {event.anchor!r} inside its own anchor", event.start_mark
            )
        self.aliased += found[1]
        if self.aliased > ALIAS_LIMIT:
            raise _Refused(
                Problem(
                    self.name,
                    line,
                    _path(stack),
                    "yaml.alias-limit",
                    _(
                        "the aliases (*name) in this file stand for more than {limit} values, as in an alias bomb; "
                        "the file is not read any further"
                    ).format(limit=format_number(ALIAS_LIMIT)),
                    _("write the values out, or repeat fewer of them by alias"),
                )
            )
        return found

    def _surprise(self, kind: str, value: Any, written: str, line: int, stack: list[_Frame]) -> None:
        self.problems.append(_surprise(self.name, kind, value, written, line, _path(stack)))


def _surprise(name: str, kind: str, value: Any, written: str, line: int, path: str) -> Problem:
    """The problem of a whole number *written* in octal or base 60 (*kind*), which YAML 1.1 made *value*."""
    if kind == "octal":
        decimal = str(int(written.replace("_", ""), 10))
        if decimal == str(value):
            message = _(
                "{written} has a leading zero, so YAML 1.1 reads it as an octal number (010 would be 8, not 10)"
            ).format(written=written)
        else:
            message = _(
                "{written} is read by YAML 1.1 as the octal number {value} (because of the leading zero), not {decimal}"
            ).format(written=written, value=value, decimal=decimal)
        hint = _(
            'write "{written}" in quotes if it is text (a serial number, a code), or {decimal} '
            "without the leading zero if it is a number"
        ).format(written=written, decimal=decimal)
        code = "yaml.octal-number"
    else:
        message = _("{written} is read by YAML 1.1 as the base-60 number {value}, not as a time or text").format(
            written=written, value=value
        )
        hint = _('write it in quotes: "{written}"').format(written=written)
        code = "yaml.base60-number"
    return Problem(name, line, path, code, message, hint)


_SURPRISES = frozenset({"yaml.octal-number", "yaml.base60-number"})


def _resolve(loader: Any, text: str, start: Any = None, end: Any = None) -> tuple[Any, str | None, str | None]:
    """The value of the plain scalar *text* (at the marks *start* and *end*), as PyYAML's resolver and
    constructors of *loader* make it, its text if YAML made something else of it, and ``"octal"`` or
    ``"base60"`` if it is a number written in a form nobody means."""
    tag = loader.resolve(yaml.ScalarNode, text, (True, False))
    if tag == _TAG + "str":
        return text, None, None
    if tag == _TAG + "merge":
        return _MERGE, None, None
    node = yaml.ScalarNode(tag, text, start, end)
    constructor = loader.yaml_constructors.get(tag, loader.yaml_constructors[None])
    try:
        value = constructor(loader, node)
    except ValueError:
        # An impossible date (2024-13-01) stays text, so the schema can say which field is wrong.
        return text, None, None
    if isinstance(value, int) and not isinstance(value, bool) and _OCTAL.fullmatch(text):
        return value, text, "octal"
    if isinstance(value, int | float) and not isinstance(value, bool) and ":" in text:
        return value, text, "base60"
    return value, None if text == _canonical(value) else text, None


def _canonical(value: Any) -> str | None:
    """The text YAML itself would write for *value*, when it has one a person would write the same way."""
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is datetime.date:
        return value.isoformat()
    return None


def _merge(container: LocatedDict, sources: list[LocatedDict]) -> None:
    """Add the keys of the merged mappings that *container* does not have; the first source wins."""
    for source in sources:
        for key, value in source.items():
            if key not in container:
                container[key] = value
                container.lines[key] = source.lines[key]
                if source.written and key in source.written:
                    if container.written is None:
                        container.written = {}
                    container.written[key] = source.written[key]


def _path(stack: list[_Frame]) -> str:
    """The field being read, from the top of the file: ``segments[0].vlan``."""
    path = ""
    for frame in stack:
        if not frame.is_map:
            path += f"[{len(frame.container)}]"
        elif frame.key is _NO_KEY or frame.key is _SKIP or frame.key is _MERGE:
            break
        else:
            path += f".{frame.key}" if path else str(frame.key)
    return path


def yaml_files(folder: Path, area: str) -> tuple[list[Path], list[Problem]]:
    """Every ``.yml`` and ``.yaml`` file below *folder* in path order, and a problem (code
    ``AREA.unreadable-folder``) for each folder below it that cannot be listed.

    A folder the user may not read would otherwise look empty, and the files in it would be missing
    from a check that then says "valid". Links to folders are not followed.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except OSError as exc:
            problems.append(
                Problem(
                    display_path(current),
                    None,
                    "",
                    f"{area}.unreadable-folder",
                    _("the folder cannot be read: {reason}").format(reason=exc.strerror),
                    _("let the user who runs the check read it (chmod a+rX), or move it out"),
                )
            )
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            elif entry.name.endswith((".yml", ".yaml")) and entry.is_file():
                files.append(Path(entry.path))
    return sorted(files), sorted(problems)


def display_path(path: Path) -> str:
    """Return *path* relative to the working directory when it is below it, for short messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large tree of acyclic objects is built.

    Reading and validating a large inventory creates millions of objects; each creation counts towards
    the collector's next pass, and full passes over the growing heap take more time than the reading
    itself. Nothing built here holds a reference cycle, so nothing is left for the collector to find.

    The objects made meanwhile are then moved to the oldest generation (frozen and thawed at once, which
    costs nothing): left in the youngest, the first collection after the pause would walk all of them,
    for over a second after a large inventory.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def load_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """Read one YAML file and return its data (located containers) and the problems found.

    The data is ``None`` when the file cannot be read or parsed; the problems then say why.
    """
    with gc_paused():
        return _load_located(path)


def _load_located(path: Path) -> tuple[Any, list[Problem]]:
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
    return _read_located(text, name)


def _read_located(text: str, name: str) -> tuple[Any, list[Problem]]:
    """:func:`load_yaml` of *text*, read from the file *name*."""
    reader = _Reader(text, name)
    try:
        data = reader.read()
    except _Refused as exc:
        return None, [*reader.problems, exc.problem]
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
        reader.loader.dispose()
    return data, reader.problems


_RUN = 4096
"""How many items of a top-level list :func:`load_plain` reads before it gives them to *take*."""
# The YAML 1.1 resolvers that the fast way (akm._yamlplain) decides itself, by the first character of a
# plain value; with any other, or another first character, every file is read located.
_KNOWN_RESOLVERS = {
    "bool": "yYnNtTfFoO",
    "float": "-+0123456789.",
    "int": "-+0123456789",
    "merge": "<",
    "null": ["~", "n", "N", ""],
    "timestamp": "0123456789",
    "value": "=",
    "yaml": "!&*",
}
_RESOLVERS_KNOWN = {(first, tag) for first, rules in _RESOLVERS.items() for tag, _regexp in rules} == {
    (first, _TAG + name) for name, firsts in _KNOWN_RESOLVERS.items() for first in firsts
}
_RESOLVING = _BaseLoader("")


def _plain_scalar(text: str) -> Any:
    """The value of the plain scalar *text* as the located reading makes it, for the fast way: a tuple
    of the value YAML made and ``"octal"`` or ``"base60"`` for a number written in a form nobody means
    (the located reading keeps the text and reports it); this function itself if the file is to be read
    located (a merge key)."""
    value, _written, surprise = _resolve(_RESOLVING, text)
    if value is _MERGE:
        return _plain_scalar
    return (value, surprise) if surprise is not None else value


def load_plain(path: Path, take: Take | None = None, problems: list[Problem] | None = None) -> Any:
    """Return the data of *path* as plain dicts and lists, or ``None`` when the file must be read located.

    The data equals what :func:`load_yaml` returns (without lines), and :func:`load_yaml` would find no
    problem in the file but, when a list *problems* is given, the whole numbers written in octal or base
    60 (kept as the text written, as the located reading keeps them), which are then added to it in the
    located reading's words. libyaml's parser is run once, by :mod:`akm._yamlplain`, which builds the
    values from its events and declines at once whatever else only the located reading decides (a syntax
    error, a tag, an anchor or alias, a merge or duplicate key, a key that is not text, a second document,
    a file that is not a mapping). Plain values are resolved as YAML 1.1 does, the rare forms by
    :func:`_resolve` itself. ``None`` says nothing about the file being wrong, only that the located
    reading must decide.

    *take*, if given, is called with each run of items of a top-level list as soon as they are read
    (the section's name, the index of the first of them in the section, and the items) and returns what
    stands for them in the data, one for each (for the inventory, the validated records): the items of a
    large file are then never all held at once. What it returned is thrown away if the file is declined.
    """
    if not _RESOLVERS_KNOWN:
        return None
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    notes: list | None = [] if problems is not None else None
    with gc_paused():
        try:
            data = _yamlplain.read(raw, take or _kept, _RUN, _plain_scalar, notes)
        except Exception:  # any failure of the fast way only means "read it located"
            return None
    if data is not None and notes:
        name = display_path(path)
        problems.extend(_surprise(name, kind, value, written, line, at) for kind, value, written, line, at in notes)
    return data


Take = Callable[[str, int, list], list]


def _kept(_section: str, _start: int, items: list) -> list:
    return items


# A key at the margin, as the sections of a vouched file are written; and the start of a block item.
_KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*):(?=[ \t\n]|$)", re.MULTILINE)
_BLANK_LINES = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\n)*")
_ITEM_START = re.compile(r"( *)-(?=[ \n]|$)")


class Locator:
    """The way back from the plain data of a file :func:`load_plain` vouched for to the lines it was read
    from, taken only when a problem is to be reported.

    The text of one section (from its line at the margin to the next section's) or of one item of a list
    section (from its ``-`` to the next ``-`` at the same indentation) is read the located way alone and
    its lines moved to where the text stands in the file, so that a mistake in a 50 MB file costs the
    reading of a few lines, not of the file. The cut is trusted only if the sections found at the margin
    are the file's sections in their order, the items found are as many as the data has, and the piece
    reads without a problem as one section or one item; otherwise the whole file is read located, once.
    """

    def __init__(self, path: Path, sizes: dict[str, int | None]) -> None:
        """*sizes*: the file's sections in order, each with its number of items (``None``: not a list)."""
        self.path = path
        self.name = display_path(path)
        self.sizes = sizes
        self._text: str | None = None
        self._spans: dict[str, tuple[int, int]] | None = None
        self._items: dict[str, list[tuple[int, int]] | None] = {}
        self._whole: Any = None

    def section(self, key: str, plain: Any) -> Any:
        """The located value of the section *key*, whose plain value is *plain*."""
        span = self._span(key)
        if span is not None:
            start, end = span
            value = self._piece(self._text[start:end], key, self._text.count("\n", 0, start))
            if value is not _NO_KEY and value == plain:
                return value
        return self._read_whole()[key]

    def item(self, key: str, index: int, plain: Any = _NO_KEY) -> tuple[Any, int]:
        """The located item *index* of the list section *key*, and its line; *plain* is its plain value
        when it is still at hand."""
        starts = self._starts(key)
        if starts is not None:
            offset, line = starts[index]
            end = starts[index + 1][0] if index + 1 < len(starts) else self._spans[key][1]
            value = self._piece(f"{key}:\n{self._text[offset:end]}", key, line - 2)
            if type(value) is LocatedList and len(value) == 1 and (plain is _NO_KEY or value[0] == plain):
                return value[0], value.lines[0]
        whole = self._read_whole()[key]
        return whole[index], whole.lines[index]

    def _span(self, key: str) -> tuple[int, int] | None:
        if self._spans is None:
            self._text = text = self.path.read_text(encoding="utf-8")
            found = list(_KEY_LINE.finditer(text))
            ends = [match.start() for match in found[1:]] + [len(text)]
            self._spans = {}
            if [match.group(1) for match in found] == list(self.sizes):
                self._spans = {match.group(1): (match.start(), end) for match, end in zip(found, ends, strict=True)}
        return self._spans.get(key)

    def _starts(self, key: str) -> list[tuple[int, int]] | None:
        """Where each item of the section *key* starts: offset and line; ``None`` if they cannot be told."""
        if key not in self._items:
            self._items[key] = None
            span = self._span(key)
            text = self._text
            if span is None:
                return None
            start, end = span
            line_end = text.find("\n", start, end)
            if line_end == -1 or text[start:line_end].split(":", 1)[1].strip()[:1] not in ("", "#"):
                return None
            first = _ITEM_START.match(text, _BLANK_LINES.match(text, line_end + 1).end(), end)
            if first is None:
                return None
            pattern = re.compile("^" + first.group(1) + r"-(?=[ \n]|$)", re.MULTILINE)
            offsets = [match.start() for match in pattern.finditer(text, first.start(), end)]
            if len(offsets) != self.sizes[key]:
                return None
            line = text.count("\n", 0, start) + 1
            starts = []
            previous = start
            for offset in offsets:
                line += text.count("\n", previous, offset)
                starts.append((offset, line))
                previous = offset
            self._items[key] = starts
        return self._items[key]

    def _piece(self, text: str, key: str, offset: int) -> Any:
        """The located value of the one section *key* that *text* holds, its lines moved down by *offset*;
        ``_NO_KEY`` if *text* is not such a piece."""
        data, problems = _read_located(text, self.name)
        if any(p.code not in _SURPRISES for p in problems) or type(data) is not LocatedDict or list(data) != [key]:
            return _NO_KEY
        value = data[key]
        _shift(value, offset)
        return value

    def _read_whole(self) -> Any:
        if self._whole is None:
            self._whole, _problems = load_yaml(self.path)
        return self._whole


def _shift(value: Any, offset: int) -> None:
    """Move the lines of the located containers in *value* down by *offset* (a vouched file has no alias,
    so no container is met twice)."""
    pending = [value]
    while pending:
        node = pending.pop()
        if type(node) is LocatedDict:
            node.line += offset
            node.lines = {key: line + offset for key, line in node.lines.items()}
            pending.extend(node.values())
        elif type(node) is LocatedList:
            node.line += offset
            node.lines = [line + offset for line in node.lines]
            pending.extend(node)


class Deferred:
    """Item *index* of the list section *key* of a vouched file, whose located twin is read on first use
    (:class:`Locator`); it stands for the item where a check names a file and a line."""

    __slots__ = ("index", "key", "locator")

    def __init__(self, locator: Locator, key: str, index: int) -> None:
        self.locator = locator
        self.key = key
        self.index = index

    def located(self, plain: Any = _NO_KEY) -> tuple[Any, int]:
        """The located item and its line (*plain*: its plain value, when still at hand)."""
        return self.locator.item(self.key, self.index, plain)


def located(item: Any) -> Any:
    """*item* itself, or the located twin of a :class:`Deferred` one."""
    return item.located()[0] if type(item) is Deferred else item


Entries = list[tuple[Any, str, Any]]


def read_sections(
    files: list[Path],
    lists: tuple[str, ...],
    singles: tuple[str, ...],
    area: str,
    example: str,
    fast: bool = False,
    take: Callable[[str, Entries], Entries] | None = None,
) -> tuple[dict[str, Entries], dict[str, Any], list[Problem]]:
    """Read YAML files made of named sections, as the inventory and the access policy are.

    List sections (*lists*) are joined across files as ``(item, file, line)`` in file order; a single
    section (*singles*) may be written in one file only. Problem codes start with *area* (``inventory``,
    ``policy``) and hints name *example*, a section of that area. Returns the lists, the singles and
    every problem found.

    With *fast*, a file :func:`load_plain` vouches for, whose sections are all known and of their kind,
    gives its list items as plain values, each with a :class:`Deferred` in place of its line; its single
    sections are read located all the same (they are small). *take* (a section's name and a run of its
    entries read the fast way, as soon as they are read) returns the entries that stand for them, one
    for each: the inventory validates them there, so that the plain items of a large file are let go of
    piece by piece.
    """
    joined: dict[str, Entries] = {name: [] for name in lists}
    found_singles: dict[str, Any] = {}
    problems: list[Problem] = []
    known = ", ".join([*singles, *lists])
    for path in files:
        locator = Locator(path, {})

        def entries(key: str, start: int, items: list, locator: Locator = locator) -> list:
            if key not in lists:
                return items
            made = [(item, locator.name, Deferred(locator, key, start + k)) for k, item in enumerate(items)]
            return take(key, made) if take else made

        surprises: list[Problem] = []
        plain = load_plain(path, entries, surprises) if fast else None
        if plain is not None and all(
            (key in lists and (value is None or type(value) is list)) or (key in singles and key not in found_singles)
            for key, value in plain.items()
        ):
            problems.extend(surprises)
            locator.sizes = {key: len(value) if type(value) is list else None for key, value in plain.items()}
            for key, value in plain.items():
                if key in singles:
                    found_singles[key] = locator.section(key, value)
                elif value is not None:
                    joined[key].extend(value)
            continue
        data, found = load_yaml(path)
        problems.extend(found)
        name = display_path(path)
        if data is None:
            if not found:
                problems.append(
                    Problem(
                        name,
                        None,
                        "",
                        f"{area}.empty-file",
                        _("the file is empty"),
                        _("add a section such as {example}: or delete the file").format(example=example),
                    )
                )
            continue
        if not isinstance(data, dict):
            problems.append(
                Problem(
                    name,
                    getattr(data, "line", 1),
                    "",
                    f"{area}.not-a-mapping",
                    _("the file must be a block of sections, not a list or a value"),
                    _("start the file with a section name, e.g. {example}:").format(example=example),
                )
            )
            continue
        for key, value in data.items():
            line = data.lines.get(key)
            if key in singles:
                if key in found_singles:
                    problems.append(
                        Problem(
                            name,
                            line,
                            key,
                            f"{area}.duplicate-section",
                            _("the section {section!r} is written in more than one file").format(section=key),
                            _("keep it in one file only"),
                        )
                    )
                else:
                    found_singles[key] = value
            elif key in lists:
                if value is None:
                    continue
                if not isinstance(value, list):
                    problems.append(
                        Problem(
                            name,
                            line,
                            key,
                            f"{area}.section-not-a-list",
                            _("the section {section!r} must be a list").format(section=key),
                            _("write each item on its own line starting with '- '"),
                        )
                    )
                    continue
                joined[key].extend((item, name, value.lines[k]) for k, item in enumerate(value))
            else:
                problems.append(
                    Problem(
                        name,
                        line,
                        str(key),
                        f"{area}.unknown-section",
                        _("unknown section {section!r}").format(section=key),
                        _("use one of: {sections}").format(sections=known),
                    )
                )
    return joined, found_singles, problems
