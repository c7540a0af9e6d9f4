"""Edit a YAML file that people write, in place: one field or one list item, and nothing else.

The tools that write into the repository's YAML (``akm policy approve`` its signature, ``akm inventory
hostkeys --write`` the host keys) change only the lines of what they write: comments, quoting, blank
lines and the order of everything else stay as they are, so ``git diff`` shows exactly what was added.
Where a mapping, a field or a list begins and ends comes from the YAML parser's positions
(:func:`compose`); the new lines are written at the indentation the file already uses. The caller reads
the new text back before :func:`replace` puts it in place of the file in one rename.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml is part of Debian's and PyPI's PyYAML builds
    _Loader = yaml.SafeLoader


def compose(text: str) -> yaml.Node | None:
    """The YAML node tree of *text*, with the position of every node (``yaml.YAMLError`` if unreadable)."""
    return yaml.compose(text, Loader=_Loader)


def load(text: str):
    """The data of *text*, read as :func:`compose` reads it (to read written text back)."""
    return yaml.load(text, Loader=_Loader)


def section(root: yaml.Node | None, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The key and value nodes of the top-level section *name* of a file's *root*, if it has one."""
    if not isinstance(root, yaml.MappingNode):
        return None
    return next(((key, value) for key, value in root.value if key.value == name), None)


def field(item: yaml.MappingNode, name: str) -> yaml.Node | None:
    """The value node of the field *name* of the mapping *item*, if it has one."""
    return next((value for key, value in item.value if key.value == name), None)


def plain(text: str) -> str:
    """*text* as a YAML scalar: plain when YAML reads it back as the same text, else quoted."""
    return text if load(f"x: {text}") == {"x": text} else json.dumps(text)


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _last_content_line(lines: list[str], end: yaml.Mark) -> int:
    """The last line before the parser's *end* mark that holds something other than blanks and comments."""
    number = end.line if lines[end.line : end.line + 1] and lines[end.line][: end.column].strip() else end.line - 1
    while number > 0 and (not lines[number].strip() or lines[number].lstrip().startswith("#")):
        number -= 1
    return number


def _insert_after(lines: list[str], number: int, new: list[str], newline: str) -> None:
    """Put *new* (lines without their ends) after line *number* (0-based; -1: at the top)."""
    if number >= 0 and not lines[number].endswith(("\n", "\r")):
        lines[number] += newline
    lines[number + 1 : number + 1] = [line + newline for line in new]


def set_field(text: str, item: yaml.MappingNode, name: str, body: list[str]) -> tuple[str, int]:
    """Return *text* with the field *name* of the block mapping *item* written as ``name:`` and *body*
    under it, and the (1-based) line of ``name:``.

    *body* is the field's lines, indented relative to the mapping's own fields (``"  by: x"``,
    ``"  - key"``). An existing field is replaced line for line, from its key to its value's last line;
    a new one is added after the mapping's last line. The caller makes sure *item* is in block style.
    """
    newline = _newline(text)
    lines = text.splitlines(keepends=True)
    column = item.start_mark.column
    indent = " " * column
    old = next(((key, value) for key, value in item.value if key.value == name), None)
    block_body = [f"{indent}{line}" for line in body]
    if old is not None:
        start = old[0].start_mark.line
        stop = _last_content_line(lines, old[1].end_mark) + 1
        lines[start:stop] = [line + newline for line in [f"{lines[start][:column]}{name}:", *block_body]]
        return "".join(lines), start + 1
    last = _last_content_line(lines, item.end_mark)
    _insert_after(lines, last, [f"{indent}{name}:", *block_body], newline)
    return "".join(lines), last + 2


def append_item(text: str, name: str, item: list[str]) -> tuple[str, int]:
    """Return *text* with *item* added at the end of the top-level list section *name* (the section is
    added at the end of the file if there is none), and the (1-based) line of the new item's ``- ``.

    *item* is the item's lines, the first one after ``- ``, the others indented relative to it. The new
    item gets the indentation of the section's items; a section written in flow style (``[...]``) raises
    ``ValueError``.
    """
    newline = _newline(text)
    lines = text.splitlines(keepends=True)
    found = section(compose(text), name)
    if found is not None and isinstance(found[1], yaml.SequenceNode) and found[1].value:
        if found[1].flow_style:
            raise ValueError(name)
        column = found[1].start_mark.column
        last = _last_content_line(lines, found[1].end_mark)
        new = [f"{' ' * column}- {item[0]}", *(f"{' ' * (column + 2)}{line}" for line in item[1:])]
        _insert_after(lines, last, new, newline)
        return "".join(lines), last + 2
    new = [f"  - {item[0]}", *(f"    {line}" for line in item[1:])]
    if found is None:
        last = len(lines) - 1
        _insert_after(lines, last, [f"{name}:", *new], newline)
        return "".join(lines), last + 3
    key, value = found
    if not (isinstance(value, yaml.ScalarNode) and value.value in ("", "~", "null")) and not isinstance(
        value, yaml.SequenceNode
    ):
        raise ValueError(name)
    start = key.start_mark.line
    stop = _last_content_line(lines, value.end_mark) + 1 if value.end_mark.line > start else start + 1
    lines[start:stop] = [line + newline for line in [f"{name}:", *new]]
    return "".join(lines), start + 2


def replace(path: Path, text: str) -> None:
    """Replace *path* with *text* in one rename, keeping its permissions (a new file gets the umask's)."""
    temporary = path.with_name(f".{path.name}.akm-new")
    try:
        temporary.write_text(text, encoding="utf-8", newline="")
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
