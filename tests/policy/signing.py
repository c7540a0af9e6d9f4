"""Signing in the tests: key pairs made with ssh-keygen in a temporary directory, a copy of the fixture
inventory whose approvers hold them, and the corpus's placeholder signatures replaced by real ones.

The repository keeps no private key. The fixture policy (``tests/policy/policy``) is signed with example
keys whose private halves were never kept (``python -m akm.devtools sign-examples``); a test that has to
sign uses :class:`Signing`, whose inventory gives the same people keys made for this run.

A corpus case (``tests/policy/bad/*.yml``) writes, where a real signature would stand::

    signature: "test-sign LOGIN"                        # LOGIN signs this grant as it is written
    signature: "test-sign LOGIN; before FIELD=VALUE"    # ... as it was before FIELD was edited
    signature: "test-sign LOGIN; namespace NAME"        # ... in another namespace than akm-grant
    signature: "test-sign LOGIN; centre DOMAIN"         # ... for another centre's policy
    signature: "test-sign LOGIN; grant ID"              # LOGIN's signature of grant ID, copied here

and :meth:`Signing.resolve` writes the signature in its place on the same line (a quoted one-line YAML
string), so every line number of the case stays what its ``.expected`` file says. LOGIN is anyone:
a login without a key in the inventory (``stranger``) gets a key of its own, which the inventory lacks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

from akm.inventory import load_inventory
from akm.policy import signatures
from akm.policy.load import load_policy
from akm.policy.model import Grant
from akm.sshsig import read_public_key, sign

PLACEHOLDER = "test-sign "
APPROVALS = (
    ("G-2026-014", "r.yusupova", "2026-09-01"),
    ("G-2026-020", "b.toshmatov", "2026-11-01"),
    ("G-2026-003", "r.yusupova", "2026-01-15"),
    ("G-2026-031", "b.toshmatov", "2026-07-01"),
)
"""Who signs each grant of the fixture policy, and on which day, when a test signs it with this run's keys."""


class Signing:
    """Keys made for this run (``keys/LOGIN``) and an inventory whose approvers hold them."""

    def __init__(self, root: Path, inventory_dir: Path, at: date) -> None:
        self.keys = root / "keys"
        self.keys.mkdir(parents=True)
        self.inventory_dir = root / "inventory"
        shutil.copytree(inventory_dir, self.inventory_dir)
        example = load_inventory(inventory_dir, today=at)
        for person in example.people.values():
            if person.signing_key:
                self._swap(person.signing_key, self.public(person.id))
        self.inventory = load_inventory(self.inventory_dir, today=at)

    def _swap(self, old: str, new: str) -> None:
        for path in self.inventory_dir.glob("*.yml"):
            text = path.read_text(encoding="utf-8")
            if old in text:
                path.write_text(text.replace(old, new), encoding="utf-8")

    def key(self, login: str) -> Path:
        """The private key of *login*, made on first use."""
        private = self.keys / login
        if not private.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{login} test key", "-f", str(private)],
                check=True,
            )
        return private

    def names(self) -> dict[str, str]:
        """``<key of LOGIN>`` for the fingerprint of each key made so far: a message that names a key made
        for this run is compared in that form."""
        return {read_public_key(self.public(p.stem)).fingerprint: f"<key of {p.stem}>" for p in self.keys.glob("*.pub")}

    def public(self, login: str) -> str:
        """The public key line of *login*'s key."""
        return self.key(login).with_name(login + ".pub").read_text(encoding="utf-8").strip()

    def resolve(self, case: Path) -> None:
        """Replace every ``test-sign`` placeholder of the policy file *case* by the signature it describes."""
        text = case.read_text(encoding="utf-8")
        if PLACEHOLDER not in text:
            return
        grants = {located.record.id: located.record for located in load_policy(case).grants}
        centre = self.inventory.centre.domain
        for grant in grants.values():
            placeholder = grant.approval.signature if grant.approval else None
            if not placeholder or not placeholder.startswith(PLACEHOLDER):
                continue
            login, *options = (part.strip() for part in placeholder[len(PLACEHOLDER) :].split(";"))
            settings = dict(option.split(" ", 1) for option in options)
            signed = grants[settings["grant"]] if "grant" in settings else grant
            if "before" in settings:
                field, value = settings["before"].split("=", 1)
                signed = Grant.model_validate({**grant.model_dump(by_alias=True), field: value})
            message = signatures.content(
                signed, settings.get("centre", centre), signed.approval.by, signed.approval.approved_on
            )
            armoured = sign(message, self.key(login), settings.get("namespace", signatures.NAMESPACE))
            text = text.replace(json.dumps(placeholder), json.dumps(armoured), 1)
        case.write_text(text, encoding="utf-8")
