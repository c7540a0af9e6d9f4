"""Check a policy against the inventory and resolve it into the one ordered rule list the generators use.

The checks: every name refers to the inventory or to the policy's own categories, services and
schedules; no address is typed in the policy; each grant is signed by the director or by a deputy the
policy allows, with the key the inventory records for them (:mod:`akm.policy.signatures`), and its dates
make sense; grants that have expired at the moment of the check are dropped (warning) and grants
expiring within ``expiry_warning_days`` are listed; a rule that can never
take effect because earlier rules cover it is an error when they decide the other way (a conflict) and a
warning when they decide the same way (redundant).

The order in which a request is decided, for the web (through the proxy) and for internal services:

1. active grants, in file order (allow only);
2. the policy's ``rules``, in file order; the first rule that matches decides;
3. ``default:restricted`` — ``settings.restricted`` may not reach ``settings.restricted_categories``;
4. ``default:internet`` — every other web request gets ``settings.default_internet``;
   internal services are denied by default (``default:services``).

With ``settings.staff_login: required`` the segments of purpose ``staff`` log in to the proxy
(:attr:`CompiledPolicy.login_networks`): a web decision for ``person:LOGIN`` then holds for that login on
any of them, and by address only on the person's computers elsewhere; internal services stay decided by
address.

The moment of the check is a parameter (``--at``); the system clock is read only when none is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from ipaddress import IPv4Address, IPv4Network, collapse_addresses, ip_address
from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args
from zoneinfo import ZoneInfo

from akm.errors import Problem
from akm.i18n import _
from akm.inventory.ansible import smb_pulls as inventory_smb_pulls
from akm.inventory.model import Profile
from akm.names import MAX_LABEL, explain_foreign, explain_long, long_label
from akm.policy import signatures
from akm.policy.load import Located, RawPolicy
from akm.policy.model import DAYS, Schedule, Settings
from akm.yamlsource import display_path

CLIENT_KINDS = frozenset({"workstation", "laptop"})
NETWORK_KINDS = frozenset({"router", "switch", "access_point"})
PROFILES = frozenset(get_args(Profile))
WEB_PORTS = ((80, 80), (443, 443))
# A list file is first read in one sweep of the C regex engine (blank and comment lines match with an
# empty name); only a file with a doubtful line is read line by line, to say which line is wrong.
_LIST_LINE = re.compile(r"^[ \t]*(?:(?:\*?\.)?([a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9])?)\.?[ \t]*)?(?:#.*)?$", re.M)
_DOMAIN_CHARS = re.compile(r"^[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9])?$")
_PORT = re.compile(r"^(tcp|udp)/([0-9]+)(?:-([0-9]+))?$")

Networks = tuple[IPv4Network, ...]


def _is_address(text: str) -> bool:
    try:
        ip_address(text.split("/", 1)[0])
    except ValueError:
        return False
    return True


def is_domain(text: str) -> bool:
    """True for a lowercase DNS name (letters, digits, ``_``, ``-``; no empty or dash-edged label) that
    is not an IPv4 address. Written to be cheap: list files hold a million lines."""
    return (
        _DOMAIN_CHARS.match(text) is not None
        and ".." not in text
        and ".-" not in text
        and "-." not in text
        and not (text[-1].isdigit() and _is_address(text))
        and (len(text) <= MAX_LABEL or long_label(text) is None)
    )


def why_not_domain(text: str) -> tuple[str, str]:
    """Message and hint for *text*, which :func:`is_domain` refused: a look-alike letter, a long label, or
    simply not a name."""
    foreign = explain_foreign(text)
    if foreign is not None:
        return foreign
    hint = _("write a domain like example.uz; it also covers its subdomains")
    return explain_long(text) or _("{value!r} is not a domain name").format(value=text), hint


def normalise_domain(text: str) -> str:
    """Return *text* as a bare lowercase domain: ``*.x.uz``, ``.x.uz`` and ``x.uz.`` all become ``x.uz``."""
    text = text.strip().lower()
    if text.startswith("*."):
        text = text[2:]
    return text.strip(".")


def collapse_domains(domains: Iterable[str]) -> tuple[str, ...]:
    """Sort *domains* and drop every one that a parent domain in the list already covers.

    A domain matches itself and its subdomains, so ``m.youtube.com`` adds nothing when ``youtube.com``
    is listed. Squid's ``dstdomain`` refuses such overlaps with a warning per line; removing them here
    keeps the list short and the parse quiet.

    The result is sorted by the reversed text (``zu.elpmaxe``): Squid keeps ``dstdomain`` entries in a
    splay tree ordered by comparing names from their last character, so feeding them in that order makes
    each insert cheap. Measured with a million domains (bench/policy.py): about 1 s to parse instead of
    13 s for the same names in another order.
    """
    reversed_sorted = sorted(domain[::-1] for domain in domains)
    kept: list[str] = []
    # One pass: a kept ancestor of a name is a text prefix of it, and no name sorted between the two can
    # be kept without being its ancestor too, so the top of this stack is the only candidate to test.
    stack: list[str] = []
    previous = None
    for name in reversed_sorted:
        if name == previous:
            continue
        previous = name
        while stack and not name.startswith(stack[-1]):
            stack.pop()
        if stack and name.startswith(stack[-1] + "."):
            continue
        kept.append(name)
        stack.append(name)
    return tuple(name[::-1] for name in kept)


def parse_port(text: str) -> tuple[str, int, int]:
    """Return ``(protocol, first, last)`` of a port written like ``tcp/445`` or ``udp/6000-6100``."""
    match = _PORT.match(text)
    assert match is not None
    first = int(match.group(2))
    last = int(match.group(3) or first)
    return match.group(1), first, last


@dataclass(frozen=True)
class Decision:
    """One rule of the resolved policy, in the order it is evaluated."""

    id: str
    kind: str
    action: str
    who: tuple[str, ...]
    what: tuple[str, ...]
    when: str | None
    file: str
    line: int | None
    expires: datetime | None = None

    @property
    def label(self) -> str:
        """``grant G-1``, ``rule staff-web`` or ``default:restricted`` — how messages name the rule."""
        if self.kind == "default":
            return self.id
        return f"{self.kind} {self.id}"


@dataclass(frozen=True)
class CompiledCategory:
    id: str
    name: str
    name_en: str
    domains: tuple[str, ...]


@dataclass(frozen=True)
class CompiledService:
    id: str
    name: str
    name_en: str
    hosts: Networks
    ports: tuple[tuple[str, int, int], ...]


@dataclass
class CompiledPolicy:
    """The policy resolved against the inventory at one moment: what every generator reads."""

    inventory: Any
    raw: RawPolicy
    at: datetime
    settings: Settings
    zone: ZoneInfo
    selectors: dict[str, Networks]
    categories: dict[str, CompiledCategory]
    services: dict[str, CompiledService]
    schedules: dict[str, Schedule]
    decisions: list[Decision]
    lan: Networks
    management: Networks
    admins: Networks
    """the addresses a Linux host accepts SSH from (:mod:`akm.policy.generators.hosts`): every address of
    the hosts with the ``management`` profile, the IT staff's workstations and, in the lab, the control
    node; never a whole segment, as a kiosk may have a leg on the management segment too"""
    direct_egress: list[tuple[Networks, tuple[tuple[str, int, int], ...], str]]
    bandwidth: list[tuple[str, Networks, float, float | None]]
    link_mbit: float | None
    active_grants: list[Located] = field(default_factory=list)
    expired_grants: list[Located] = field(default_factory=list)
    expiring_grants: list[Located] = field(default_factory=list)
    approvers: frozenset[str] = frozenset()
    """the logins whose signed approval of a grant is accepted: the director and the allowed deputies"""
    login_networks: Networks = ()
    """the segments whose users log in to the proxy (``settings.staff_login: required``); empty otherwise"""
    smb_pulls: tuple[Networks, Networks] = ((), ())
    """the backup machines' addresses and the addresses they pull the Windows PCs' shares from over SMB
    (:func:`smb_pulls`); empty when the inventory places no data in a share"""
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]

    def assets_with(self, profile: str = "", platform: str = "") -> list:
        """In-use assets of the inventory with *profile* or with the netmiko *platform*, by hostname."""
        found = []
        for asset in self.inventory.assets:
            if asset.status != "in_use":
                continue
            if (profile and profile in asset.profiles) or (
                platform and asset.net is not None and asset.net.platform == platform
            ):
                found.append(asset)
        return sorted(found, key=lambda a: a.hostname)

    def networks(self, selectors: Iterable[str]) -> Networks:
        """The collapsed union of the addresses of *selectors*."""
        nets: list[IPv4Network] = []
        for selector in selectors:
            nets.extend(self.selectors.get(selector, ()))
        return tuple(collapse_addresses(nets))

    def web_reach(self, selector: str) -> tuple[Networks, str | None]:
        """Where a web decision for *selector* holds: the addresses it is decided by, and the login it is
        decided by on :attr:`login_networks` (``None``: by address only).

        A person with logins required is their login on the login segments, plus by address their
        computers outside them; every other selector is its addresses."""
        nets = self.selectors.get(selector, ())
        kind, _sep, name = selector.partition(":")
        if kind != "person" or not self.login_networks:
            return nets, None
        return tuple(n for n in nets if not covers(self.login_networks, (n,))), name

    def grant_expiry(self, grant: Any) -> datetime:
        """The moment a grant stops: the start of its ``expires_on`` day in the centre's time zone."""
        return datetime.combine(grant.expires_on, time(0, 0), tzinfo=self.zone)


def covers(outer: Networks, inner: Networks) -> bool:
    """True when every address of *inner* is inside *outer*."""
    return all(any(net.subnet_of(big) for big in outer) for net in inner)


def overlaps(a: Networks, b: Networks) -> bool:
    return any(x.overlaps(y) for x in a for y in b)


class _Checker:
    """Collects the problems of one compile; a helper object so each check stays a short method."""

    def __init__(self, raw: RawPolicy, inventory: Any, at: datetime) -> None:
        self.raw = raw
        self.inv = inventory
        self.at = at
        self.problems: list[Problem] = list(raw.problems)
        self.selectors: dict[str, Networks] = {}
        self.login_networks: Networks = ()

    def add(
        self,
        located: Located,
        path: tuple,
        code: str,
        message: str,
        hint: str,
        severity: str = "error",
        section: str = "",
        index: int | None = None,
    ) -> None:
        field_ = section + (f"[{index}]" if index is not None else "")
        for key in path:
            field_ += f"[{key}]" if isinstance(key, int) else (f".{key}" if field_ else str(key))
        self.problems.append(Problem(located.file, located.line(*path), field_, code, message, hint, severity))

    # --- selectors ---------------------------------------------------------------------------------

    def _client_networks(self, assets: Iterable[Any]) -> Networks:
        nets = []
        for asset in assets:
            if asset.status != "in_use":
                continue
            for interface in asset.interfaces:
                segment = self.inv.segments.get(interface.segment)
                if interface.ip is None or segment is None or segment.purpose in {"wan", "management"}:
                    continue
                nets.append(IPv4Network(interface.ip))
        return tuple(collapse_addresses(nets))

    def resolve(self, selector: str, located: Located, path: tuple, section: str, index: int) -> Networks | None:
        """Return the addresses of *selector*, or report why it names nothing and return ``None``."""
        if selector in self.selectors:
            return self.selectors[selector]
        kind, _sep, name = selector.partition(":")
        inv = self.inv
        nets: Networks | None = None
        if kind != "all" and _is_address(name):
            self.add(
                located,
                path,
                "policy.address-in-policy",
                _("{value!r} is an address; the policy names things, the inventory holds addresses").format(value=name),
                _("use the inventory's name, e.g. host:oqish-zali-01 or segment:readers"),
                section=section,
                index=index,
            )
            return None
        if kind == "all":
            nets = tuple(collapse_addresses(s.subnet for s in inv.segments.values() if s.purpose != "wan"))
        elif kind == "segment":
            if name in inv.segments:
                nets = (inv.segments[name].subnet,)
            else:
                self._unknown(located, path, section, index, "segment", name, inv.segments)
                return None
        elif kind == "department":
            if name not in inv.departments:
                self._unknown(located, path, section, index, "department", name, inv.departments)
                return None
            nets = self._client_networks(a for a in inv.assets if a.department == name and a.kind not in NETWORK_KINDS)
        elif kind == "profile":
            if name not in PROFILES:
                self._unknown(located, path, section, index, "profile", name, PROFILES)
                return None
            nets = self._client_networks(a for a in inv.assets if name in a.profiles)
        elif kind == "person":
            if name not in inv.people:
                self._unknown(located, path, section, index, "person", name, inv.people)
                return None
            nets = self._client_networks(
                a for a in inv.assets if a.responsible == name and a.kind in CLIENT_KINDS and "reader" not in a.profiles
            )
        elif kind == "host":
            try:
                asset = inv.asset(name)
            except KeyError:
                self._unknown(located, path, section, index, "host", name, {a.hostname: a for a in inv.assets})
                return None
            nets = self._client_networks([asset])
            if asset.status != "in_use":
                self.add(
                    located,
                    path,
                    "policy.host-not-in-use",
                    _("host {name!r} is {status} in the inventory; it gets no access").format(
                        name=name, status=asset.status
                    ),
                    _("remove it from the policy, or correct its status in the inventory"),
                    severity="warning",
                    section=section,
                    index=index,
                )
        assert nets is not None
        if not nets and section == "rules" and not (kind == "person" and self.login_networks):
            self.add(
                located,
                path,
                "policy.selects-nothing",
                _("{value!r} selects no in-use host with an address; the rule does nothing for it").format(
                    value=selector
                ),
                _("check the name, or add the hosts to the inventory"),
                severity="warning",
                section=section,
                index=index,
            )
        self.selectors[selector] = nets
        return nets

    def _unknown(
        self,
        located: Located,
        path: tuple,
        section: str,
        index: int,
        kind: str,
        name: str,
        known: Iterable[str],
    ) -> None:
        names = sorted(known)
        shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
        self.add(
            located,
            path,
            f"policy.unknown-{kind}",
            _("there is no {kind} {name!r} in the inventory").format(kind=kind, name=name),
            _("use one of: {choices}").format(choices=shown),
            section=section,
            index=index,
        )

    def _unknown_policy(
        self,
        located: Located,
        path: tuple,
        section: str,
        index: int | None,
        kind: str,
        name: str,
        known: Iterable[str],
    ) -> None:
        names = sorted(known)
        self.add(
            located,
            path,
            f"policy.unknown-{kind}",
            _("there is no {kind} {name!r} in the policy").format(kind=kind, name=name),
            _("use one of: {choices}").format(choices=", ".join(names) or "-"),
            section=section,
            index=index,
        )


def _check_unique(checker: _Checker, section: str, items: list[Located]) -> list[Located]:
    seen: dict[str, Located] = {}
    kept = []
    for index, located in enumerate(items):
        ident = located.record.id
        if ident in seen:
            checker.add(
                located,
                ("id",),
                "policy.duplicate-id",
                _("the id {id!r} is used twice in {section} (first at {file}:{line})").format(
                    id=ident, section=section, file=seen[ident].file, line=seen[ident].line("id")
                ),
                _("give each item its own id"),
                section=section,
                index=index,
            )
            continue
        seen[ident] = located
        kept.append(located)
    return kept


def _read_list(checker: _Checker, located: Located, index: int, list_index: int, rel: str) -> list[str]:
    path = checker.raw.root / rel
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        checker.add(
            located,
            ("lists", list_index),
            "policy.list-missing",
            _("the list file {path!r} cannot be read").format(path=rel),
            _("write the path relative to the policy directory, e.g. ../lists/social.txt"),
            section="categories",
            index=index,
        )
        return []
    text = text.lower()
    found = _LIST_LINE.findall(text)
    if len(found) == text.count("\n") + 1 and not any(bad in text for bad in ("..", ".-", "-.")):
        names = [name for name in found if name]
        if not any(
            (name[-1].isdigit() and _is_address(name)) or (len(name) > MAX_LABEL and long_label(name)) for name in names
        ):
            return names
    domains = []
    append = domains.append
    file_name = display_path(path.resolve())
    for number, line in enumerate(text.splitlines(), start=1):
        if "#" in line:
            line = line.split("#", 1)[0]
        entry = line.strip()
        if not entry:
            continue
        if entry[0] in "*." or entry[-1] == ".":
            entry = normalise_domain(entry)
        if entry and is_domain(entry):
            append(entry)
            continue
        code = "policy.address-in-policy" if _is_address(entry) else "policy.bad-domain"
        checker.problems.append(
            Problem(
                file_name,
                number,
                f"categories[{index}].lists[{list_index}]",
                code,
                why_not_domain(line.strip())[0],
                _("write one domain per line, e.g. example.uz; a domain also covers its subdomains"),
            )
        )
    return domains


def _check_categories(checker: _Checker, items: list[Located]) -> dict[str, CompiledCategory]:
    compiled = {}
    lab = getattr(checker.inv, "lab", None)
    for index, located in enumerate(items):
        category = located.record
        domains = []
        for position, value in enumerate(category.domains):
            domain = normalise_domain(value)
            if _is_address(domain):
                checker.add(
                    located,
                    ("domains", position),
                    "policy.address-in-policy",
                    _("{value!r} is an address; a category lists domain names").format(value=value),
                    _("write the site's domain name, e.g. example.uz"),
                    section="categories",
                    index=index,
                )
            elif not is_domain(domain):
                checker.add(
                    located,
                    ("domains", position),
                    "policy.bad-domain",
                    *why_not_domain(value),
                    section="categories",
                    index=index,
                )
            else:
                domains.append(domain)
        for position, rel in enumerate(category.lists):
            domains.extend(_read_list(checker, located, index, position, rel))
        if category.lab_sites:
            if lab is None:
                checker.add(
                    located,
                    ("lab_sites",),
                    "policy.lab-sites-outside-lab",
                    _("lab_sites is set but this inventory has no lab"),
                    _("remove lab_sites: it only applies to the lab inventory"),
                    section="categories",
                    index=index,
                )
            else:
                domains.extend(normalise_domain(s.domain) for s in lab.internet.sites if s.category == category.id)
        if not domains:
            checker.add(
                located,
                ("id",),
                "policy.empty-category",
                _("category {id!r} has no domains").format(id=category.id),
                _("add domains: or lists:, or remove the category"),
                severity="warning",
                section="categories",
                index=index,
            )
        compiled[category.id] = CompiledCategory(
            category.id, category.name, category.name_en, collapse_domains(domains)
        )
    return compiled


def _check_schedules(checker: _Checker, items: list[Located]) -> dict[str, Schedule]:
    for index, located in enumerate(items):
        schedule = located.record
        if schedule.from_ >= schedule.to:
            checker.add(
                located,
                ("to",),
                "policy.schedule-empty",
                _("the schedule ends ({to}) before it starts ({start})").format(to=schedule.to, start=schedule.from_),
                _('write from: earlier than to:, e.g. from: "09:00", to: "18:00"'),
                section="schedules",
                index=index,
            )
    return {located.record.id: located.record for located in items}


def _check_services(checker: _Checker, items: list[Located]) -> dict[str, CompiledService]:
    compiled = {}
    for index, located in enumerate(items):
        service = located.record
        before = len(checker.problems)
        nets: list[IPv4Network] = []
        for position, selector in enumerate(service.hosts):
            if not (selector.startswith("host:") or selector.startswith("profile:")):
                checker.add(
                    located,
                    ("hosts", position),
                    "policy.service-hosts",
                    _("a service runs on hosts: {value!r} is not a host or a profile").format(value=selector),
                    _("write host:HOSTNAME or profile:NAME, e.g. profile:file_server"),
                    section="services",
                    index=index,
                )
                continue
            found = checker.resolve(selector, located, ("hosts", position), "services", index)
            nets.extend(found or ())
        ports = []
        for position, text in enumerate(service.ports):
            proto, first, last = parse_port(text)
            if not 1 <= first <= last <= 65535:
                checker.add(
                    located,
                    ("ports", position),
                    "policy.bad-port",
                    _("{value!r} is not a port or a range of ports").format(value=text),
                    _("write tcp/445 or udp/6000-6100 with ports from 1 to 65535"),
                    section="services",
                    index=index,
                )
                continue
            ports.append((proto, first, last))
        if not nets:
            if len(checker.problems) == before:
                checker.add(
                    located,
                    ("hosts",),
                    "policy.service-no-hosts",
                    _("service {id!r} runs on no in-use host of the inventory").format(id=service.id),
                    _("name a host or profile that has in-use hosts with addresses"),
                    section="services",
                    index=index,
                )
            continue
        compiled[service.id] = CompiledService(
            service.id,
            service.name,
            service.name_en,
            tuple(collapse_addresses(nets)),
            tuple(sorted(set(ports))),
        )
    return compiled


def _check_targets(
    checker: _Checker,
    located: Located,
    field_: str,
    targets: list[str],
    section: str,
    index: int,
    categories: dict,
    services: dict,
) -> None:
    for position, target in enumerate(targets):
        kind, _sep, name = target.partition(":")
        if kind == "category" and name not in categories:
            checker._unknown_policy(located, (field_, position), section, index, "category", name, categories)
        elif kind == "service" and name not in services:
            checker._unknown_policy(located, (field_, position), section, index, "service", name, services)


def _check_when(checker: _Checker, located: Located, section: str, index: int, schedules: dict) -> bool:
    when = located.record.when
    if when is not None and when not in schedules:
        checker.add(
            located,
            ("when",),
            "policy.unknown-schedule",
            _("there is no schedule {name!r} in the policy").format(name=when),
            _("use one of: {choices}").format(choices=", ".join(sorted(schedules)) or "-"),
            section=section,
            index=index,
        )
        return False
    return True


def _check_settings(checker: _Checker, categories: dict) -> set[str]:
    located = checker.raw.settings
    settings: Settings = located.record
    approvers = set()
    if located.item is None:
        return {checker.inv.director.id}
    for position, login in enumerate(settings.approvers):
        person = checker.inv.people.get(login)
        if person is None:
            checker._unknown(located, ("approvers", position), "settings", None, "person", login, checker.inv.people)
        elif "deputy_director" not in person.duties and "director" not in person.duties:
            checker.add(
                located,
                ("approvers", position),
                "policy.approver-not-deputy",
                _("{name} ({login}) is not a deputy director in the inventory").format(name=person.name, login=login),
                _("only the director and the deputy directors may approve access grants"),
                section="settings",
            )
        else:
            approvers.add(login)
    if settings.intercept_port == settings.proxy_port:
        checker.add(
            located,
            ("intercept_port",),
            "policy.intercept-port-is-proxy-port",
            _("the intercept port {port} is the proxy port too").format(port=settings.intercept_port),
            _("give the intercepted web traffic its own port, e.g. {port}").format(port=settings.proxy_port + 1),
            section="settings",
        )
    if settings.staff_login == "required":
        staff = [s.subnet for s in checker.inv.segments.values() if s.purpose == "staff"]
        checker.login_networks = tuple(collapse_addresses(staff))
        if not staff:
            checker.add(
                located,
                ("staff_login",),
                "policy.staff-login-no-segment",
                _("staff_login is required but the inventory has no segment of purpose staff"),
                _("give the staff's segment purpose: staff in the inventory, or write staff_login: anonymous"),
                section="settings",
            )
    for position, selector in enumerate(settings.restricted):
        checker.resolve(selector, located, ("restricted", position), "settings", None)
    for position, name in enumerate(settings.restricted_categories):
        if name not in categories:
            checker._unknown_policy(
                located, ("restricted_categories", position), "settings", None, "category", name, categories
            )
    for number, egress in enumerate(settings.direct_egress):
        for position, selector in enumerate(egress.who):
            checker.resolve(selector, located, ("direct_egress", number, "who", position), "settings", None)
    approvers.add(checker.inv.director.id)
    return approvers


def _check_grants(
    checker: _Checker,
    items: list[Located],
    approvers: set[str],
    categories: dict,
    services: dict,
    schedules: dict,
    zone: ZoneInfo,
) -> tuple[list, list, list]:
    active, expired, expiring = [], [], []
    warn_days = checker.raw.settings.record.expiry_warning_days
    today = checker.at.astimezone(zone).date()
    refused = signatures.check(checker, items, approvers)
    for index, located in enumerate(items):
        grant = located.record
        before = len(checker.problems)
        kind = grant.who.partition(":")[0]
        if kind not in {"person", "host", "department"}:
            checker.add(
                located,
                ("who",),
                "policy.grant-who",
                _("a grant is for one person, host or department, not {value!r}").format(value=grant.who),
                _("write who: person:LOGIN, host:HOSTNAME or department:ID; change a rule for groups"),
                section="grants",
                index=index,
            )
        else:
            nets = checker.resolve(grant.who, located, ("who",), "grants", index)
            by_login = kind == "person" and bool(checker.login_networks)
            web_only = not any(target.startswith("service:") for target in grant.allow)
            if nets is not None and not nets and not (by_login and web_only):
                checker.add(
                    located,
                    ("who",),
                    "policy.grant-no-hosts",
                    _("{value!r} has no in-use computer with an address in the inventory").format(value=grant.who),
                    _(
                        "an internal service is reached by address even with staff logins: give the person a "
                        "workstation (responsible:) in the inventory"
                    )
                    if by_login
                    else _(
                        "a grant is enforced by address: give the person a workstation (responsible:) in the "
                        "inventory, or make the staff log in to the proxy (settings.staff_login: required)"
                    ),
                    section="grants",
                    index=index,
                )
        _check_targets(checker, located, "allow", grant.allow, "grants", index, categories, services)
        _check_when(checker, located, "grants", index, schedules)
        approved_on = grant.approval.approved_on if grant.approval is not None else None
        if approved_on is not None and approved_on >= grant.expires_on:
            checker.add(
                located,
                ("expires_on",),
                "policy.grant-dates",
                _("the grant expires ({expires}) before or on the day it was approved ({approved})").format(
                    expires=grant.expires_on, approved=approved_on
                ),
                _("expires_on must be after the approval's date"),
                section="grants",
                index=index,
            )
        if approved_on is not None and approved_on > today:
            checker.add(
                located,
                ("approval", "date"),
                "policy.approved-in-future",
                _("the approval date {approved} is in the future").format(approved=approved_on),
                _("sign it again on the day of the approval: akm policy approve {id}").format(id=grant.id),
                section="grants",
                index=index,
            )
        if index in refused or any(p.severity == "error" for p in checker.problems[before:]):
            continue
        if grant.expires_on <= today:
            checker.add(
                located,
                ("expires_on",),
                "policy.grant-expired",
                _("grant {id} expired on {date}; it is left out of the build").format(
                    id=grant.id, date=grant.expires_on
                ),
                _("renew it with a new approval, or delete it"),
                severity="warning",
                section="grants",
                index=index,
            )
            expired.append(located)
            continue
        active.append(located)
        if grant.expires_on <= today + timedelta(days=warn_days):
            checker.add(
                located,
                ("expires_on",),
                "policy.grant-expiring",
                _("grant {id} expires on {date}, in {days} days").format(
                    id=grant.id, date=grant.expires_on, days=(grant.expires_on - today).days
                ),
                _("renew it before then if the access is still needed"),
                severity="warning",
                section="grants",
                index=index,
            )
            expiring.append(located)
    return active, expired, expiring


def _check_rules(
    checker: _Checker, items: list[Located], categories: dict, services: dict, schedules: dict
) -> list[Located]:
    good = []
    for index, located in enumerate(items):
        rule = located.record
        before = len(checker.problems)
        if bool(rule.allow) == bool(rule.deny):
            checker.add(
                located,
                ("id",),
                "policy.rule-action",
                _("rule {id} must have either allow: or deny:, not both and not neither").format(id=rule.id),
                _("split it into two rules, one allow: and one deny:"),
                section="rules",
                index=index,
            )
        for position, selector in enumerate(rule.who):
            checker.resolve(selector, located, ("who", position), "rules", index)
        field_ = "allow" if rule.allow else "deny"
        _check_targets(checker, located, field_, rule.allow or rule.deny, "rules", index, categories, services)
        _check_when(checker, located, "rules", index, schedules)
        if not any(p.severity == "error" for p in checker.problems[before:]):
            good.append(located)
    return good


def _target_covers(outer: str, inner: str) -> bool:
    return outer == inner or (outer == "internet" and inner.startswith("category:"))


def _check_shadowing(checker: _Checker, decisions: list[Decision], rules: dict[str, Located]) -> None:
    """Report rules that earlier rules (or grants) cover completely for every ``who`` and ``what``."""
    for position, later in enumerate(decisions):
        if later.kind != "rule":
            continue
        covering: list[Decision] = []
        fully = True
        for who in later.who:
            nets = checker.selectors.get(who, ())
            for what in later.what:
                cover = (
                    next(
                        (
                            earlier
                            for earlier in decisions[:position]
                            if earlier.kind == "rule"
                            and (earlier.when is None or earlier.when == later.when)
                            and any(_target_covers(t, what) for t in earlier.what)
                            and covers(checker_networks(checker, earlier.who), nets)
                        ),
                        None,
                    )
                    if nets
                    else None
                )
                if cover is None:
                    fully = False
                    break
                covering.append(cover)
            if not fully:
                break
        if not fully or not covering:
            continue
        located = rules[later.id]
        other = next((c for c in covering if c.action != later.action), None)
        if other is not None:
            checker.add(
                located,
                ("id",),
                "policy.shadowed-rule",
                _(
                    "rule {id} never takes effect: rule {other} (line {line}) already decides "
                    "{action} for the same hosts and sites"
                ).format(id=later.id, other=other.id, line=other.line, action=other.action),
                _("move rule {id} above rule {other}, or narrow rule {other}").format(id=later.id, other=other.id),
                section="rules",
                index=checker.raw.rules.index(located),
            )
        else:
            first = covering[0]
            checker.add(
                located,
                ("id",),
                "policy.redundant-rule",
                _("rule {id} repeats what rule {other} (line {line}) already decides").format(
                    id=later.id, other=first.id, line=first.line
                ),
                _("delete rule {id}").format(id=later.id),
                severity="warning",
                section="rules",
                index=checker.raw.rules.index(located),
            )


def _check_grant_needed(checker: _Checker, grants: list[Located], decisions: list[Decision]) -> None:
    denies = [d for d in decisions if d.action == "deny" and d.kind != "grant"]
    for located in grants:
        grant = located.record
        nets = checker.selectors.get(grant.who, ())
        if grant.who.startswith("person:"):
            nets = tuple(collapse_addresses((*nets, *checker.login_networks)))
        needed = False
        for target in grant.allow:
            if target.startswith("service:"):
                needed = True
                break
            for deny in denies:
                if not overlaps(nets, checker_networks(checker, deny.who)):
                    continue
                if any(_target_covers(target, t) or _target_covers(t, target) for t in deny.what):
                    needed = True
                    break
            if needed:
                break
        if not needed:
            checker.add(
                located,
                ("allow",),
                "policy.grant-not-needed",
                _("grant {id} allows what {who} already may reach without it").format(id=grant.id, who=grant.who),
                _("delete the grant, or check that the restriction it lifts is written"),
                severity="warning",
                section="grants",
                index=checker.raw.grants.index(located),
            )


def checker_networks(checker: _Checker, selectors: Iterable[str]) -> Networks:
    return tuple(collapse_addresses(n for s in selectors for n in checker.selectors.get(s, ())))


def _check_bandwidth(checker: _Checker) -> tuple[list, float | None]:
    located = checker.raw.bandwidth
    if located is None:
        return [], None
    shares = []
    total = 0.0
    seen: set[str] = set()
    for position, share in enumerate(located.record.segments):
        segment = checker.inv.segments.get(share.segment)
        if segment is None:
            checker._unknown(
                located,
                ("segments", position, "segment"),
                "bandwidth",
                None,
                "segment",
                share.segment,
                checker.inv.segments,
            )
            continue
        if segment.purpose == "wan" or share.segment in seen:
            checker.add(
                located,
                ("segments", position, "segment"),
                "policy.bandwidth-segment",
                _("segment {id!r} cannot have a share here (wan, or written twice)").format(id=share.segment),
                _("give each LAN segment at most one share"),
                section="bandwidth",
            )
            continue
        seen.add(share.segment)
        if share.per_host_mbit is not None and share.per_host_mbit > share.mbit:
            checker.add(
                located,
                ("segments", position, "per_host_mbit"),
                "policy.bandwidth-host",
                _("one host may use {host} Mbit/s but the whole segment only {seg}").format(
                    host=share.per_host_mbit, seg=share.mbit
                ),
                _("make per_host_mbit at most mbit"),
                section="bandwidth",
            )
            continue
        total += share.mbit
        shares.append((share.segment, (segment.subnet,), share.mbit, share.per_host_mbit))
    link = located.record.link_mbit
    if total > link:
        checker.add(
            located,
            ("link_mbit",),
            "policy.bandwidth-over-link",
            _("the segments' shares add up to {total} Mbit/s, more than the link's {link}").format(
                total=total, link=link
            ),
            _("lower the shares so that they fit in link_mbit"),
            section="bandwidth",
        )
    return shares, link


def alert_egress(inventory, management: Networks) -> list[tuple[Networks, tuple[tuple[str, int, int], ...], str]]:
    """The direct egress the management host's alerts need (issue 15): HTTPS to the Telegram Bot API
    and SMTP to the mail relay that ``centre.upstream`` names, for the hosts with the ``management``
    profile (*management*, their addresses). Written nowhere else: the management role sends to the same
    names. A firewall matches addresses, not names, and the Bot API's addresses are Telegram's to
    change, so the opening is the port to outside the LAN, from the management hosts only; the name is
    in the rule's comment."""
    upstream = inventory.centre.upstream
    if not management:
        return []
    egress = []
    if upstream.telegram:
        egress.append((management, (("tcp", 443, 443),), f"alerts: the Telegram Bot API {upstream.telegram}"))
    if upstream.mail_relay:
        relay = upstream.mail_relay
        egress.append((management, (("tcp", relay.port, relay.port),), f"alerts: the mail relay {relay.host}"))
    return egress


def smb_pulls(inventory, backup_machines: Networks) -> tuple[Networks, Networks]:
    """The SMB pulls of the Windows PCs' shares (issue 16) as a firewall sees them: the backup
    machines' addresses (*backup_machines*) and the addresses the shares answer at, read from the
    inventory's ``data[].smb`` exactly as the backup machine's pull list is
    (:func:`akm.inventory.ansible.smb_pulls`): the PC itself, or in the lab the machine standing in for
    it. Written nowhere else: the gateway forwards tcp/445 between them and a Linux host serving a share
    accepts it (:mod:`akm.policy.generators.hosts`)."""
    shares = [IPv4Network(pull["address"]) for pull in inventory_smb_pulls(inventory)]
    if not shares or not backup_machines:
        return (), ()
    return backup_machines, tuple(collapse_addresses(shares))


def compile_policy(
    raw: RawPolicy, inventory: Any, at: datetime | None = None, extra_selectors: Iterable[str] = ()
) -> CompiledPolicy:
    """Check *raw* against *inventory* at the moment *at* and resolve it; problems are on the result.

    *extra_selectors* are resolved too (``akm policy query`` asks about a name the policy may not use);
    their problems are located at the query's argument ``WHO`` (field ``who``).
    """
    zone = ZoneInfo(inventory.centre.timezone)
    at = at or datetime.now(zone)
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone)
    checker = _Checker(raw, inventory, at)
    categories = _check_categories(checker, _check_unique(checker, "categories", raw.categories))
    schedules = _check_schedules(checker, _check_unique(checker, "schedules", raw.schedules))
    services = _check_services(checker, _check_unique(checker, "services", raw.services))
    approvers = _check_settings(checker, categories)
    rules = _check_rules(checker, _check_unique(checker, "rules", raw.rules), categories, services, schedules)
    active, expired, expiring = _check_grants(
        checker,
        _check_unique(checker, "grants", raw.grants),
        approvers,
        categories,
        services,
        schedules,
        zone,
    )
    settings = raw.settings.record

    decisions: list[Decision] = []
    for located in active:
        grant = located.record
        decisions.append(
            Decision(
                grant.id,
                "grant",
                "allow",
                (grant.who,),
                tuple(grant.allow),
                grant.when,
                located.file,
                located.line(),
                datetime.combine(grant.expires_on, time(0, 0), tzinfo=zone),
            )
        )
    for located in rules:
        rule = located.record
        action = "allow" if rule.allow else "deny"
        decisions.append(
            Decision(
                rule.id,
                "rule",
                action,
                tuple(rule.who),
                tuple(rule.allow or rule.deny),
                rule.when,
                located.file,
                located.line(),
            )
        )
    settings_file = raw.settings.file
    if settings.restricted and settings.restricted_categories:
        decisions.append(
            Decision(
                "default:restricted",
                "default",
                "deny",
                tuple(settings.restricted),
                tuple(f"category:{c}" for c in settings.restricted_categories if c in categories),
                None,
                settings_file,
                raw.settings.line("restricted"),
            )
        )
    decisions.append(
        Decision(
            "default:internet",
            "default",
            settings.default_internet,
            ("all",),
            ("internet",),
            None,
            settings_file,
            raw.settings.line("default_internet"),
        )
    )
    checker.resolve("all", raw.settings, (), "settings", None)
    for selector in extra_selectors:
        checker.resolve(selector, Located(None, SimpleNamespace(file="WHO")), (), "who", None)
    _check_shadowing(checker, decisions, {located.record.id: located for located in rules})
    _check_grant_needed(checker, active, decisions)
    shares, link = _check_bandwidth(checker)

    lan = tuple(collapse_addresses(s.subnet for s in inventory.segments.values() if s.purpose not in {"wan"}))
    it_staff = [
        net
        for person in inventory.people_with("it_staff")
        for net in checker._client_networks(
            a for a in inventory.assets if a.responsible == person.id and a.kind in CLIENT_KINDS
        )
    ]
    management = [s.subnet for s in inventory.segments.values() if s.purpose == "management"] + it_staff
    admins = it_staff + [
        IPv4Network(interface.ip)
        for asset in inventory.assets
        if asset.status == "in_use" and "management" in asset.profiles
        for interface in asset.interfaces
        if interface.ip is not None and getattr(inventory.segments.get(interface.segment), "purpose", "wan") != "wan"
    ]
    lab = getattr(inventory, "lab", None)
    if lab is not None:
        admins.append(IPv4Network(lab.control.ip))
    egress = []
    for item in settings.direct_egress:
        nets = tuple(collapse_addresses(n for s in item.who for n in checker.selectors.get(s, ())))
        egress.append((nets, tuple(sorted({parse_port(p) for p in item.ports})), item.why))
    egress += alert_egress(
        inventory, checker._client_networks(a for a in inventory.assets if "management" in a.profiles)
    )
    backup_machines = checker._client_networks(a for a in inventory.assets if "backup_server" in a.profiles)
    return CompiledPolicy(
        inventory=inventory,
        raw=raw,
        at=at,
        settings=settings,
        zone=zone,
        selectors=checker.selectors,
        categories=categories,
        services=services,
        schedules=schedules,
        decisions=decisions,
        lan=lan,
        management=tuple(collapse_addresses(management)),
        admins=tuple(collapse_addresses(admins)),
        direct_egress=egress,
        bandwidth=shares,
        link_mbit=link,
        active_grants=active,
        expired_grants=expired,
        expiring_grants=expiring,
        approvers=frozenset(approvers),
        login_networks=checker.login_networks,
        smb_pulls=smb_pulls(inventory, backup_machines),
        problems=sorted(checker.problems),
    )


def schedule_matches(schedule: Schedule, moment: datetime, zone: ZoneInfo) -> bool:
    """True when *moment* falls inside *schedule* (days and time of day in the centre's zone)."""
    local = moment.astimezone(zone)
    if DAYS[local.weekday()] not in schedule.days:
        return False
    clock = local.strftime("%H:%M")
    return schedule.from_ <= clock < schedule.to


def policy_dir_for(inventory_path: Path) -> Path:
    """The policy that belongs to an inventory: ``policies/access/<inventory directory name>``, found
    beside the inventory's repository (``<repo>/inventory/<name>`` → ``<repo>/policies/access/<name>``),
    else relative to the working directory."""
    inventory_dir = inventory_path.resolve()
    if inventory_dir.is_file():
        inventory_dir = inventory_dir.parent
    beside = inventory_dir.parent.parent / "policies" / "access" / inventory_dir.name
    if beside.is_dir():
        return Path(display_path(beside))
    return Path("policies/access") / inventory_dir.name


__all__ = [
    "WEB_PORTS",
    "CompiledPolicy",
    "Decision",
    "IPv4Address",
    "compile_policy",
    "normalise_domain",
    "schedule_matches",
]
