"""The schema of the access policy (``policies/access/<inventory>/``).

A policy names things only by their inventory names: segments, departments, profiles, people and hosts
(``who``), and its own site categories, internal services and schedules (``what`` and ``when``). No
address is ever written in a policy; the generators read addresses from the inventory.

Selectors:

``all``
    every segment except the ``wan`` ones.
``segment:ID`` / ``department:ID`` / ``profile:NAME`` / ``person:LOGIN`` / ``host:HOSTNAME``
    a segment's whole subnet; the in-use hosts of a department or profile; the workstations a person
    is responsible for; one host.

Targets: ``internet`` (any web site through the proxy), ``category:ID`` (the sites of a category),
``service:ID`` (an internal service: hosts and ports).

Cross-record rules (references, approvals, expiry, shadowing) are in :mod:`akm.policy.compile`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
GrantId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")]
Login = Annotated[str, Field(pattern=r"^[a-z][a-z0-9._-]{0,31}$")]
Selector = Annotated[str, Field(pattern=r"^(all|(segment|department|profile|person|host):[a-z0-9][a-z0-9._-]{0,62})$")]
Target = Annotated[str, Field(pattern=r"^(internet|(category|service):[a-z][a-z0-9_-]{0,39})$")]
Port = Annotated[str, Field(pattern=r"^(tcp|udp)/[0-9]{1,5}(-[0-9]{1,5})?$")]
Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Text = Annotated[str, Field(min_length=1)]
DomainText = Annotated[str, Field(min_length=1, max_length=253)]

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DirectEgress(_Record):
    """Hosts that may reach the internet directly, bypassing the proxy, on the given ports only."""

    who: list[Selector] = Field(min_length=1)
    ports: list[Port] = Field(min_length=1)
    why: Text


class Settings(_Record):
    """Policy-wide settings.

    ``approvers`` are the people (besides the director, who always may) whose approval of a grant is
    accepted; each must hold the ``deputy_director`` duty in the inventory.

    ``staff_login``: ``anonymous`` (the default) decides the staff's web by the computer's address;
    ``required`` makes everyone on a segment of purpose ``staff`` log in to the proxy with their personal
    login (the vault's per-person secret), so a ``person:`` grant or rule follows its person to any staff
    computer and the access log names the person. Those segments then use the explicit proxy only: their
    web is never intercepted, as a proxy cannot ask intercepted traffic for a login.
    """

    approvers: list[Login] = []
    expiry_warning_days: Annotated[int, Field(ge=0, le=365)] = 14
    proxy_port: Annotated[int, Field(ge=1, le=65535)] = 3128
    intercept_port: Annotated[int, Field(ge=1, le=65535)] = 3129
    log_retention_days: Annotated[int, Field(ge=1, le=3650)] = 365
    default_internet: Literal["allow", "deny"] = "allow"
    restricted: list[Selector] = []
    restricted_categories: list[Identifier] = []
    direct_egress: list[DirectEgress] = []
    staff_login: Literal["anonymous", "required"] = "anonymous"


class Schedule(_Record):
    """Days of the week and a time of day (in the centre's time zone), e.g. the opening hours."""

    id: Identifier
    name: Text
    name_en: Text
    days: list[Day] = Field(min_length=1)
    from_: Clock = Field(alias="from")
    to: Clock


class Category(_Record):
    """A category of web sites: domains written here and/or list files of one domain per line.

    A domain matches itself and every subdomain. ``lab_sites: true`` adds the lab inventory's test
    sites of the same category, so the lab's domains are written only in the inventory.
    """

    id: Identifier
    name: Text
    name_en: Text
    domains: list[DomainText] = []
    lists: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+\.txt$")]] = []
    lab_sites: bool = False


class Service(_Record):
    """Internal data: the hosts (by name or profile) and the ports a service answers on."""

    id: Identifier
    name: Text
    name_en: Text
    hosts: list[Selector] = Field(min_length=1)
    ports: list[Port] = Field(min_length=1)


class Rule(_Record):
    """Allow or deny ``what`` to ``who`` (during ``when``); the first rule that matches decides."""

    id: Identifier
    who: list[Selector] = Field(min_length=1)
    allow: list[Target] = []
    deny: list[Target] = []
    when: Identifier | None = None
    note: str = ""


class Approval(_Record):
    """Who approved a grant, on which day, and their SSH signature of the grant's content.

    ``akm policy approve`` writes this block; :mod:`akm.policy.signatures` says what is signed and how
    it is checked. ``date`` is the YAML key (``on`` would be read as true by YAML 1.1).
    """

    by: Login
    approved_on: date = Field(alias="date")
    signature: Text | None = None


class Grant(_Record):
    """An exception to a restriction for a person, host or department, time-limited and signed by the
    director or an allowed deputy (``approval``; a grant without one is an error, not a default)."""

    id: GrantId
    who: Selector
    allow: list[Target] = Field(min_length=1)
    why: Text
    expires_on: date
    when: Identifier | None = None
    approval: Approval | None = None


class SegmentShare(_Record):
    """The cap of one segment's share of the internet link, and of each host in it."""

    segment: Identifier
    mbit: Annotated[float, Field(gt=0)]
    per_host_mbit: Annotated[float, Field(gt=0)] | None = None


class Bandwidth(_Record):
    """Fair sharing of the internet link: Squid delay pools, one per segment (docs/access-policy.md)."""

    link_mbit: Annotated[float, Field(gt=0)]
    segments: list[SegmentShare] = []


SECTIONS: dict[str, type[_Record]] = {
    "schedules": Schedule,
    "categories": Category,
    "services": Service,
    "rules": Rule,
    "grants": Grant,
}
SINGLE_SECTIONS: dict[str, type[_Record]] = {"settings": Settings, "bandwidth": Bandwidth}
