"""The secrets the ansible-vault file must hold: one list (``policies/secrets.yml``) and its check.

Each entry names a vault variable (or, for the network devices, the inventory field that names one per
device), its shape, whether the playbooks can do without it, and who reads it: the playbook, the role,
the duty. :func:`missing` compares a decrypted vault with the list for one inventory; :func:`fill` makes
the secrets a vault lacks (``akm vault init``), and the lab makes its run-time vault with the same
function (:func:`akm.lab.lab.lab_secrets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from akm.errors import Error
from akm.i18n import _
from akm.listfile import load_list

DEFAULT_FILE = Path("policies/secrets.yml")
MIN_LENGTH = 16
DEVICE_USER = "akm"
"""The user name of a device login :func:`fill` makes; the IT specialist creates it on the device."""

VarName = Annotated[str, Field(pattern=r"^vault_[a-z0-9_]+$")]


class SecretsError(Error):
    """The list of secrets has problems, or the vault lacks some of them."""


class Reader(BaseModel):
    """Who needs a secret: the playbook whose run needs it, the role and the duty that read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    playbook: Annotated[str, Field(pattern=r"^playbooks/[a-z0-9_-]+\.yml$")]
    role: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] | None = None
    duty: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")] | None = None


class Secret(BaseModel):
    """One secret of the vault (see the head of ``policies/secrets.yml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: VarName | None = None
    names_from: Literal["net.credentials"] | None = None
    shape: Literal["text", "login", "per_person"]
    required: bool = True
    readers: list[Reader] = Field(min_length=1)
    description: Annotated[str, Field(min_length=1)]
    description_en: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _one_name(self) -> Self:
        if (self.name is None) == (self.names_from is None):
            raise ValueError(_("write either name or names_from"))
        return self

    def names(self, inventory) -> list[str]:
        """The vault variables of this entry for *inventory*."""
        if self.name is not None:
            return [self.name]
        return sorted({a.net.credentials for a in inventory.assets if a.net is not None and a.status == "in_use"})

    def fits(self, value, inventory) -> bool:
        """Whether *value* has this secret's shape."""
        if self.shape == "text":
            return isinstance(value, str) and len(value) >= MIN_LENGTH
        if self.shape == "login":
            return isinstance(value, dict) and bool(value.get("username")) and bool(value.get("password"))
        return isinstance(value, dict) and all(
            login in inventory.people and isinstance(text, str) and text for login, text in value.items()
        )


def load(path: Path = DEFAULT_FILE) -> list[Secret]:
    """Read the list at *path*; raise :class:`SecretsError` with every problem."""
    items, problems = load_list(Path(path), "secrets", Secret)
    seen: dict[str, int] = {}
    for item in items:
        key = item.record.name or item.record.names_from
        if key in seen:
            problems.append(
                item.problem(
                    "secrets",
                    "name",
                    "secrets.duplicate",
                    _("{name} is listed twice (first as item {first})").format(name=key, first=seen[key]),
                    _("keep one entry and list every reader in it"),
                )
            )
        seen[key] = item.index
    if problems:
        raise SecretsError(problems)
    return [item.record for item in items]


@dataclass(frozen=True)
class Missing:
    """A secret the vault lacks, or holds in the wrong shape."""

    name: str
    secret: Secret
    wrong_shape: bool

    def playbooks(self) -> list[str]:
        return sorted({r.playbook for r in self.secret.readers})

    def readers(self) -> list[str]:
        return sorted({r.role for r in self.secret.readers if r.role} | {r.duty for r in self.secret.readers if r.duty})


def missing(secrets: list[Secret], variables: dict, inventory) -> list[Missing]:
    """The secrets of *secrets* that *variables* (a decrypted vault) lacks or holds in the wrong shape."""
    found = []
    for secret in secrets:
        for name in secret.names(inventory):
            if name not in variables:
                found.append(Missing(name, secret, False))
            elif not secret.fits(variables[name], inventory):
                found.append(Missing(name, secret, True))
    return found


def _made(shape: str, people) -> object:
    """A random value of *shape*: text, a device login, or a text per person of *people*."""
    if shape == "text":
        return token_urlsafe(24)
    if shape == "login":
        return {"username": DEVICE_USER, "password": token_urlsafe(24)}
    return {login: token_urlsafe(16) for login in sorted(people)}


def fill(secrets: list[Secret], variables: dict, inventory) -> dict:
    """The secrets of *secrets* (for *inventory*) that the decrypted vault *variables* lacks, made with
    random values of their shape. A value the vault holds is never replaced, even of the wrong shape
    (:func:`missing` reports it); a mapping per person only gains the people of the inventory it lacks."""
    added: dict = {}
    for secret in secrets:
        for name in secret.names(inventory):
            if name not in variables:
                added[name] = _made(secret.shape, inventory.people)
            elif secret.shape == "per_person" and isinstance(variables[name], dict):
                lacking = set(inventory.people) - set(variables[name])
                if lacking:
                    added[name] = dict(variables[name]) | _made("per_person", lacking)
    return added
