"""YAML files read with their line numbers, so every problem can say where it is.

Mappings load as :class:`LocatedDict` and sequences as :class:`LocatedList`: ordinary ``dict`` and
``list`` objects that also know their file, their own line and the line of each key or item. The C
parser of libyaml does the reading; the construction of containers is ours. This located reading is
the reference: what a file means is what :func:`load_yaml` says it means.

Problems found while reading (syntax errors, duplicate keys, a file that is not a mapping) are returned,
not raised, so that a check can report the problems of every file at once.

Building a Python object per node makes the located reading slow on large files (about ten seconds for
the 50,000-asset inventory). :func:`load_plain` is the fast way for a file that is correct: it reads the
file with yaml-rs (a Rust parser, ten times faster) and returns plain dicts and lists, but only when it
can vouch that they equal what :func:`load_yaml` would return and that it would find no problem;
otherwise it returns ``None`` and the caller reads the file with :func:`load_yaml`. yaml-rs follows
YAML 1.2 and libyaml YAML 1.1, so they disagree on some plain scalars (``yes``, ``012``, ``1:30``) and
could on rare syntax; :func:`load_plain` vouches only when:

* the text is in a small subset of YAML where both parsers agree: no tabs, carriage returns,
  backslashes or non-printable characters, no tags, anchors, aliases, merge keys, directives, block
  scalars, complex keys or second documents, no quoted text that looks like a date (yaml-rs reads
  '2024-01-10' as a date), and no plain number written with a leading zero or ``_``;
* libyaml itself accepts the text (its C parser run without building objects) and produces exactly as
  many events as the data yaml-rs returned implies;
* every key is text, and every text value is one that libyaml's resolver would also read as text if it
  were written plain (so ``yes``, ``1:30`` or ``2024-13-01`` send the file to the located reading), and
  every other value is a whole number, a boolean, a null or a date — the kinds on which both agree.
"""

from __future__ import annotations

import datetime
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
import yaml_rs

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


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large tree of acyclic objects is built.

    Reading and validating a large inventory creates millions of objects; each creation counts towards
    the collector's next pass, and full passes over the growing heap take more time than the reading
    itself. Nothing built here holds a reference cycle, so nothing is left for the collector to find.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
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


# Printable ASCII but the backslash, and the new line: the characters of the subset that need no look.
_PLAIN_ASCII = bytes([10, *range(0x20, 0x5C), *range(0x5D, 0x7F)])
# What remains must be non-ASCII text that libyaml finds printable and does not count as a line break
# (U+0085, U+2028, U+2029) or a byte-order mark.
_OUTSIDE_CHAR = re.compile("[^\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
# Each rule is looked for by its characters first (a quick search), and only then by its pattern.
_OUTSIDE_RULES: list[tuple[tuple[str, ...], re.Pattern]] = [
    # an indicator that starts a token: tag, anchor, alias, block scalar, complex key, directive, reserved
    (tuple("!&*|>?%@`"), re.compile(r"(?:^|[\s\[\]{},])[!&*|>?%@`]", re.MULTILINE)),
    # a merge key
    (("<",), re.compile("<<")),
    # a quoted key glued to its value (JSON style), which YAML 1.1 does not have
    (('":', "':"), re.compile(r"[\"']:(?=\S)")),
]
_DOCUMENT_MARK = re.compile(r"\n(?:---|\.\.\.)(?=\s|$)")
# A plain number with a leading zero or underscore: 012 is 10 in YAML 1.1 and 12 in YAML 1.2. Looked for
# only in files where yaml-rs read a whole number, since it is a slow search.
_ODD_NUMBER = re.compile(r"[\s\[{,][-+]?(?:0[0-9A-Za-z_]|_)")
_ODD_NUMBER_FIRST = re.compile(r"[-+]?(?:0[0-9A-Za-z_]|_)")
# yaml-rs reads a date even from quoted text ('2024-01-10'), which libyaml keeps as text. With digits
# made 0 and quotes made ", such a scalar starts with "0000-.
_QUOTED_DATE = bytes.maketrans(b"123456789'", b'000000000"')
_RESOLVERS: dict[Any, list[tuple[str, re.Pattern]]] = _BaseLoader.yaml_implicit_resolvers
_RESOLVED_FIRST = frozenset(_RESOLVERS)
# A resolver for any first character (none by default) would make every text a candidate: decline all.
_RESOLVED_ANY = None in _RESOLVERS
# Every pattern of the resolver. Trying each on every candidate, whatever its first character, can only
# find more values that are not text, never fewer: it errs on the side of the located reading.
_RESOLVER_PATTERNS = tuple({id(regexp): regexp for rules in _RESOLVERS.values() for _tag, regexp in rules}.values())
_VOUCHED_SCALARS = frozenset({bool, type(None), datetime.date})


def _in_subset(raw: bytes, text: str) -> bool:
    """Whether *text* (UTF-8 *raw*) stays inside the subset of YAML where yaml-rs and libyaml agree."""
    rest = raw.translate(None, _PLAIN_ASCII)
    if rest and (rest.isascii() or _OUTSIDE_CHAR.search(rest.decode("utf-8"))):
        return False
    for needles, pattern in _OUTSIDE_RULES:
        if any(needle in text for needle in needles) and pattern.search(text):
            return False
    return not _second_document(text) and b'"0000-' not in raw.translate(_QUOTED_DATE)


def _second_document(text: str) -> bool:
    """Whether *text* has a document marker (``---`` or ``...``) other than one ``---`` that opens it,
    after nothing but comments and blank lines."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        line = text[start:end].strip()
        if line and not line.startswith("#"):
            break
        start = end + 1
    if text.startswith("---", start) and text[start + 3 : start + 4] in ("", " ", "\n"):
        start += 3
    return ("\n---" in text or "\n..." in text) and _DOCUMENT_MARK.search(text, start) is not None


def _odd_number(text: str) -> bool:
    """Whether *text* may hold a plain number that YAML 1.1 and 1.2 read differently (012, 0o12, _1)."""
    return bool(_ODD_NUMBER_FIRST.match(text) or _ODD_NUMBER.search(text))


def _read_as_text(values: list[str]) -> bool:
    """Whether libyaml's resolver reads each of *values*, written plain, as text (no bool, number, date,
    null)."""
    return not any(any(map(regexp.match, values)) for regexp in _RESOLVER_PATTERNS)


def _events(data: Any) -> tuple[int, bool] | None:
    """Return how many parser events *data* comes from and whether it holds a whole number, or ``None``
    if a value cannot be vouched for.

    A document is 4 events (stream and document, start and end); a scalar 1; a mapping or sequence 2
    plus its items, and a mapping 1 more per key.
    """
    numbers = False
    nodes = 1
    containers = 1
    keys: set = set()
    texts: list[str] = []
    pending = [data]
    add_text, push, first, scalars = texts.append, pending.append, _RESOLVED_FIRST, _VOUCHED_SCALARS
    while pending:
        container = pending.pop()
        if type(container) is dict:
            keys.update(container)
            nodes += 2 * len(container)
            values = container.values()
        else:
            nodes += len(container)
            values = container
        for value in values:
            kind = type(value)
            if kind is str:
                if value[:1] in first:
                    add_text(value)
            elif kind is dict or kind is list:
                push(value)
                containers += 1
            elif kind is int:
                numbers = True
            elif kind not in scalars:
                return None
    if not all(type(key) is str for key in keys) or not _read_as_text([*keys, *texts]):
        return None
    return 4 + nodes + containers, numbers


def load_plain(path: Path) -> Any:
    """Return the data of *path* as plain dicts and lists, or ``None`` when the file must be read located.

    The data equals what :func:`load_yaml` returns (without lines), and :func:`load_yaml` would find no
    problem in the file; see the module's docstring for how this is made sure. ``None`` says nothing
    about the file being wrong, only that the located reading must decide.
    """
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if _RESOLVED_ANY or not _in_subset(raw, text):
        return None
    with gc_paused():
        try:
            data = yaml_rs.loads(text, parse_datetime=True, duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error)
        except Exception:  # any failure of the fast parser only means "read it located"
            return None
        if type(data) is not dict:
            return None
        counted = _events(data)
        if counted is None:
            return None
        expected, numbers = counted
        if numbers and _odd_number(text):
            return None
        parser = yaml._yaml.CParser(raw)
        try:
            found = parser.raw_parse()
        except yaml.YAMLError:
            return None
        finally:
            parser.dispose()
    return data if found == expected else None


def read_sections(
    files: list[Path], lists: tuple[str, ...], singles: tuple[str, ...], area: str, example: str
) -> tuple[dict[str, list[tuple[Any, str, int]]], dict[str, Any], list[Problem]]:
    """Read YAML files made of named sections, as the inventory and the access policy are.

    List sections (*lists*) are joined across files as ``(item, file, line)`` in file order; a single
    section (*singles*) may be written in one file only. Problem codes start with *area* (``inventory``,
    ``policy``) and hints name *example*, a section of that area. Returns the lists, the singles and
    every problem found.
    """
    joined: dict[str, list[tuple[Any, str, int]]] = {name: [] for name in lists}
    found_singles: dict[str, Any] = {}
    problems: list[Problem] = []
    known = ", ".join([*singles, *lists])
    for path in files:
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
