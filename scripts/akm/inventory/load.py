"""Read an inventory directory into a validated :class:`Inventory`.

An inventory is a directory of YAML files (or a single file). Each file holds any of the sections
``centre``, ``departments``, ``rooms``, ``segments``, ``people``, ``data_classes``, ``assets``,
``host_keys`` and, in the lab inventory only, ``lab``; list sections from several files are joined in
file-name order. The file ``akm.yml`` (the Ansible inventory plugin's configuration) and
``group_vars/``, ``host_vars/`` are not inventory data and are skipped.

Loading reports every problem of every file, then raises :class:`InventoryError` if any is an error.

Each file :func:`akm.yamlsource.load_plain` vouches for is read the fast way, as plain data; any other
file is read the located way (:func:`akm.yamlsource.load_yaml`), which is the reference and says what
a file means. The sections are validated in batches (those of a file read the fast way as soon as each
piece of it is read, :func:`_take`) and cross-checked. Where a problem is found in data
read the fast way, only the item or section it is in is read again located
(:class:`akm.yamlsource.Locator`), so every problem keeps its exact file, line and field, and one
mistake in a large file costs a few lines more, not the file read again. The YAML mappings with line
numbers that :meth:`Inventory.source_of` returns are read on first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, get_args

from pydantic import TypeAdapter, ValidationError

from akm.errors import Error, Problem
from akm.i18n import _
from akm.inventory import checks
from akm.inventory.errors_map import problems_from, problems_of
from akm.inventory.model import (
    SECTIONS,
    SINGLE_SECTIONS,
    Asset,
    Centre,
    DataClass,
    Department,
    HostKeys,
    Lab,
    Person,
    Record,
    Room,
    Segment,
)
from akm.yamlsource import Deferred, LocatedDict, display_path, gc_paused, load_yaml, read_sections, yaml_files

PLUGIN_FILES = frozenset({"akm.yml", "akm.yaml"})
ID_FIELDS = {"assets": "hostname"}
"""The field other records name a record of a section by, where it is not ``id``: a host's keys name the
asset by its hostname. The cross-checks do not report a name again that is written but invalid."""
SKIPPED_DIRS = frozenset({"group_vars", "host_vars"})


class InventoryError(Error):
    """The inventory has problems; ``problems`` lists each with file, line and field."""


class LocatedSources(Mapping):
    """The YAML mapping of each asset by inventory number, with its lines, read on first use.

    The fast way of loading keeps no line numbers; a later check that wants to point at an asset's line
    (:meth:`Inventory.source_of`) makes the files be read once more, the located way.
    """

    def __init__(self, files: list[Path], sources: dict[str, LocatedDict] | None = None) -> None:
        self._files = files
        self._sources = sources

    def _load(self) -> dict[str, LocatedDict]:
        if self._sources is None:
            sources: dict[str, LocatedDict] = {}
            for path in self._files:
                data, _problems = load_yaml(path)
                assets = data.get("assets") if isinstance(data, dict) else None
                for item in assets if isinstance(assets, list) else []:
                    if isinstance(item, dict) and isinstance(item.get("inventory_no"), str):
                        sources.setdefault(item["inventory_no"], item)
            self._sources = sources
        return self._sources

    def __getitem__(self, key: str) -> LocatedDict:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


@dataclass
class Inventory:
    """The validated inventory: the one source of truth about the centre's equipment and people."""

    root: Path
    centre: Centre
    departments: dict[str, Department]
    rooms: dict[str, Room]
    segments: dict[str, Segment]
    people: dict[str, Person]
    data_classes: dict[str, DataClass]
    assets: list[Asset]
    host_keys: dict[str, HostKeys] = field(default_factory=dict)
    lab: Lab | None = None
    warnings: list[Problem] = field(default_factory=list)
    sources: Mapping[str, LocatedDict] = field(default_factory=dict, repr=False)

    def asset(self, name: str) -> Asset:
        """Return the asset whose hostname or inventory number is *name* (``KeyError`` if none)."""
        for asset in self.assets:
            if name in (asset.hostname, asset.inventory_no):
                return asset
        raise KeyError(name)

    def people_with(self, duty: str) -> list[Person]:
        """Return the people whose duties include *duty*, in inventory order."""
        return [person for person in self.people.values() if duty in person.duties]

    @property
    def director(self) -> Person:
        """The director of the centre, whose approval gates restricted access."""
        return self.people_with("director")[0]

    def source_of(self, asset: Asset) -> LocatedDict:
        """Return the YAML mapping the asset was read from (for file and line in later checks)."""
        return self.sources[asset.inventory_no]


def inventory_files(path: Path) -> list[Path]:
    """Return the data files of the inventory at *path* (a directory, its akm.yml, or one file).

    Raises :class:`InventoryError` if a folder of the inventory cannot be read.
    """
    if path.is_file() and path.name in PLUGIN_FILES:
        path = path.parent
    if path.is_file():
        return [path]
    found, problems = yaml_files(path, "inventory")
    if problems:
        raise InventoryError(problems)
    files = []
    for candidate in found:
        relative = candidate.relative_to(path)
        if relative.parts[0] in SKIPPED_DIRS or relative.as_posix() in PLUGIN_FILES:
            continue
        files.append(candidate)
    return files


def _validate(model: type, item: Any, section: str, where: tuple[str, int | None], problems: list[Problem]):
    if not isinstance(item, dict):
        problems.append(
            Problem(
                where[0],
                where[1],
                section,
                "inventory.item-not-a-mapping",
                _("each item must be a block of fields, not {value!r}").format(value=item),
                _("write field: value lines under the '- '"),
            )
        )
        return None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        problems.extend(problems_from(exc, item, section))
        return None


def _validate_section(section: str, entries: list, problems: list[Problem]) -> list:
    """Validate the items of a section: the ``(record, item)`` of each valid one, in order.

    *entries* are ``(item, file, line)`` as :func:`akm.yamlsource.read_sections` gives them; an item the
    reading already validated (:func:`_take`) is its record. They are validated in batches, each several
    times faster than its items one at a time, and each let go of (in *entries*, in place) once its
    records are made, so that the mappings and the records of a large inventory are never all held at
    once. Only a batch with errors is looked at item by item: the item of each error is located (read
    again from its file if it was read the fast way) to report it, and the valid items of the batch
    validated once more alone. An item read the fast way is paired with its
    :class:`~akm.yamlsource.Deferred`, which a cross-check that reports it locates.
    """
    adapter = _ADAPTERS[section]
    pairs: list[tuple[Any, Any]] = []
    for start in range(0, len(entries), _BATCH):
        batch = entries[start : start + _BATCH]
        entries[start : start + _BATCH] = [None] * len(batch)
        made: list[tuple[Any, Any] | None] = [None] * len(batch)
        items, origins, places = [], [], []
        for place, (item, file, line) in enumerate(batch):
            if isinstance(item, Record):
                made[place] = (item, line)
            elif isinstance(item, dict):
                items.append(item)
                origins.append(line)
                places.append(place)
            else:
                where = (file, line.located(item)[1] if type(line) is Deferred else line)
                _validate(SECTIONS[section], item, section, where, problems)
        try:
            records = adapter.validate_python(items)
        except ValidationError as exc:
            errors: dict[int, list[dict[str, Any]]] = {}
            for error in exc.errors(include_url=False):
                errors.setdefault(error["loc"][0], []).append({**error, "loc": error["loc"][1:]})
            for index, found in sorted(errors.items()):
                origin = origins[index]
                item = origin.located(items[index])[0] if type(origin) is Deferred else items[index]
                problems.extend(problems_of(found, item, section))
            keep = [index for index in range(len(items)) if index not in errors]
            items, origins = [items[index] for index in keep], [origins[index] for index in keep]
            places = [places[index] for index in keep]
            records = adapter.validate_python(items)
        for record, item, origin, place in zip(_slim(records), items, origins, places, strict=True):
            made[place] = (record, origin if type(origin) is Deferred else item)
        pairs.extend(pair for pair in made if pair is not None)
    return pairs


def _take(section: str, entries: list) -> list:
    """The entries of a section read the fast way, each batch of valid items made into their records as
    soon as it is read (the records stand in the place of the items); a batch with an error is kept as
    read, for :func:`_validate_section` to report."""
    adapter = _ADAPTERS[section]
    taken = []
    for start in range(0, len(entries), _BATCH):
        batch = entries[start : start + _BATCH]
        try:
            records = adapter.validate_python([item for item, _file, _line in batch])
        except ValidationError:
            taken.extend(batch)
            continue
        taken.extend((record, file, line) for record, (_item, file, line) in zip(_slim(records), batch, strict=True))
    return taken


def _slim(records: list) -> list:
    """*records*, each sharing with the others one set of the fields that were written.

    pydantic gives each record (and each record in it) a set of its own of the fields written, about
    a kilobyte per asset; records written alike share one, since the set is never changed after.
    """
    shared: dict[frozenset, set] = {}
    for record in records:
        _share_fields(record, shared)
    return records


def _share_fields(record: Record, shared: dict[frozenset, set]) -> None:
    written = record.__pydantic_fields_set__
    object.__setattr__(record, "__pydantic_fields_set__", shared.setdefault(frozenset(written), written))
    for name in _nested(type(record)):
        value = getattr(record, name)
        if type(value) is list:
            for inner in value:
                _share_fields(inner, shared)
        elif value is not None:
            _share_fields(value, shared)


@cache
def _nested(model: type[Record]) -> tuple[str, ...]:
    """The fields of *model* that hold a record or a list of records."""

    def holds(kind: Any) -> bool:
        return (isinstance(kind, type) and issubclass(kind, Record)) or any(map(holds, get_args(kind)))

    return tuple(name for name, info in model.model_fields.items() if holds(info.annotation))


def load_inventory(path: Path | str, today: date | None = None) -> Inventory:
    """Read, validate and cross-check the inventory at *path*.

    *today* is the date that dates are checked against (purchases cannot be in the future); tests
    pass a fixed one. Raises :class:`InventoryError` listing every error found.
    """
    path = Path(path)
    if not path.exists():
        raise InventoryError.one(
            "inventory.not-found",
            _("the inventory does not exist"),
            _("give the directory of an inventory, e.g. inventory/production"),
            file=display_path(path),
        )
    files = inventory_files(path)
    root = path.parent if path.is_file() else path
    if not files:
        raise InventoryError.one(
            "inventory.no-files",
            _("the inventory has no YAML files"),
            _("add files such as centre.yml and assets.yml"),
            file=display_path(path),
        )
    with gc_paused():
        return _load(files, root, today or date.today())


_ADAPTERS = {section: TypeAdapter(list[model]) for section, model in SECTIONS.items()}
_BATCH = 4096


def read(files: list[Path], fast: bool = True) -> tuple[dict[str, list], dict[str, Any], list[Problem]]:
    """Read the sections of *files*: the list sections' ``(item, file, line)``, the single sections and
    the problems of the reading (the fast way for every file it vouches for, see
    :func:`akm.yamlsource.read_sections`)."""
    return read_sections(files, tuple(SECTIONS), tuple(SINGLE_SECTIONS), "inventory", "assets", fast=fast, take=_take)


def validate(
    lists: dict[str, list], singles: dict[str, Any], problems: list[Problem]
) -> tuple[dict[str, list], dict[str, Any]]:
    """Validate every section: the ``(record, item)`` pairs of each list section and the records of the
    single sections; the problems found are added to *problems*. The items of *lists* are let go of."""
    validated = {section: _validate_section(section, lists[section], problems) for section in SECTIONS}
    single_records: dict[str, Any] = {}
    for section, model in SINGLE_SECTIONS.items():
        if section in singles:
            item = singles[section]
            single_records[section] = _validate(
                model, item, section, (getattr(item, "file", ""), getattr(item, "line", None)), problems
            )
    return validated, single_records


def written_ids(lists: dict[str, list]) -> dict[str, set]:
    """The ids written in each section, valid or not (for the cross-checks)."""
    return {
        section: {_written_id(item, ID_FIELDS.get(section, "id")) for item, _file, _line in entries}
        for section, entries in lists.items()
    }


def _written_id(item: Any, name: str) -> Any:
    if isinstance(item, Record):
        return getattr(item, name, None)
    return item.get(name) if isinstance(item, dict) else None


def cross_check(
    validated: dict[str, list], single_records: dict[str, Any], singles: dict[str, Any], ids: dict, today: date
) -> list[Problem]:
    """Run the cross-record checks on what :func:`validate` made."""
    raw = {"lab_item": singles.get("lab"), "centre_item": singles.get("centre"), "written_ids": ids}
    return checks.run(validated, {**single_records, **raw}, today)


def _load(files: list[Path], root: Path, today: date, fast: bool = True) -> Inventory:
    """Read, validate and cross-check the inventory, locating every problem.

    Without *fast* every file is read the located way, record by record: the reference, which the tests
    compare the fast way with."""
    lists, singles, problems = read(files, fast)
    ids = written_ids(lists)
    validated, single_records = validate(lists, singles, problems)
    if "centre" not in singles:
        problems.append(
            Problem(
                display_path(root),
                None,
                "centre",
                "inventory.missing-centre",
                _("no file has the centre: section"),
                _("add centre: with name, name_en, short_name, city and domain"),
            )
        )
    problems.extend(cross_check(validated, single_records, singles, ids, today))
    errors = [p for p in problems if p.severity == "error"]
    if errors or single_records.get("centre") is None:
        raise InventoryError(errors)
    warnings = [p for p in problems if p.severity != "error"]
    sources = None if fast else {record.inventory_no: item for record, item in validated["assets"]}
    return _inventory(root, validated, single_records, warnings, LocatedSources(files, sources))


def _inventory(
    root: Path, validated: dict[str, list], single_records: dict[str, Any], warnings: list[Problem], sources
) -> Inventory:
    def by_id(section: str) -> dict[str, Any]:
        return {record.id: record for record, _item in validated[section]}

    segments = by_id("segments")
    for record, _item in validated["assets"]:
        record.set_address(segments)
    return Inventory(
        root=root,
        centre=single_records["centre"],
        departments=by_id("departments"),
        rooms=by_id("rooms"),
        segments=segments,
        people=by_id("people"),
        data_classes=by_id("data_classes"),
        assets=[record for record, _item in validated["assets"]],
        host_keys={record.host: record for record, _item in validated["host_keys"]},
        lab=single_records.get("lab"),
        warnings=warnings,
        sources=sources,
    )
