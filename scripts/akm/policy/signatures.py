"""Signed approvals of access grants (Nizom F4: access is granted only in agreement with the director).

A grant is applied only when the director, or a deputy listed in ``settings.approvers``, has signed it
with the SSH key the inventory records for them (``people[].signing_key``). ``akm policy approve``
(:mod:`akm.policy.approve`) signs; :func:`check`, run by every compile (``check``, ``build``, the push),
verifies. The signature covers the grant's *content*: this JSON text, keys sorted, no spaces, UTF-8
characters as they are (no ``\\u`` escapes), one new line at the end::

    {"allow":["category:social","category:video"],"approved_by":"d.karimova","approved_on":"2026-09-01",
     "centre":"akm.lan","expires_on":"2027-08-31","format":"akm-grant/1","id":"G-2026-011",
     "when":null,"who":"person:z.ergasheva","why":"Ariza 2026-011: ..."}

``centre`` is the inventory's ``centre.domain``, so a grant signed for the lab (``lab.akm.lan``) does not
verify in production (``akm.lan``). The values are what YAML reads, so quoting or folding ``why``
differently, or listing ``allow`` in another order, changes nothing; any change of meaning breaks the
signature. The SSH namespace ``akm-grant`` keeps these signatures apart from any other use of the same
key (git commits, files).

Every grant is checked in the same run against one ``allowed_signers`` file made from the inventory's
approvers (:func:`akm.sshsig.verify`); before that, the form of each signature tells a key nobody has, a
key of someone else, or a signature made for something else from a grant changed after it was signed.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from akm.i18n import _
from akm.policy.model import Grant
from akm.sshsig import PublicKey, Signature, read_public_key, read_signature, verify

NAMESPACE = "akm-grant"
FORMAT = "akm-grant/1"
SECTION = "grants"
APPROVAL_CODES = frozenset(
    {
        "policy.grant-not-signed",
        "policy.unknown-approver",
        "policy.not-an-approver",
        "policy.self-approved",
        "policy.approver-no-key",
        "policy.signature-malformed",
        "policy.signature-namespace",
        "policy.signature-unknown-key",
        "policy.signature-wrong-signer",
        "policy.signature-copied",
        "policy.signature-mismatch",
        "policy.grant-dates",
        "policy.approved-in-future",
    }
)
"""Codes of the problems a grant's approval can have (the last two are its dates, checked by the
compile): a new approval settles them, so ``akm policy approve`` signs a grant that has only these."""


def content(grant: Grant, centre: str, approved_by: str, approved_on: date) -> bytes:
    """The bytes an approver signs for *grant* (see the module's docstring)."""
    fields = {
        "format": FORMAT,
        "centre": centre,
        "id": grant.id,
        "who": grant.who,
        "allow": sorted(grant.allow),
        "when": grant.when,
        "why": grant.why,
        "expires_on": grant.expires_on.isoformat(),
        "approved_by": approved_by,
        "approved_on": approved_on.isoformat(),
    }
    return (json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode()


def signing_keys(inventory: Any) -> dict[str, PublicKey]:
    """The signing key of every person of the inventory who has one, by login."""
    return {p.id: read_public_key(p.signing_key) for p in inventory.people.values() if p.signing_key}


def check(checker: Any, items: list, approvers: set[str]) -> set[int]:
    """Check the approval of every grant of *items* (located records); report each refusal on *checker*
    (:class:`akm.policy.compile._Checker`) and return the indexes of the grants that must not apply."""
    inventory = checker.inv
    keys = signing_keys(inventory)
    owners = {key.blob: login for login, key in keys.items()}
    director = inventory.director.id
    refused: set[int] = set()
    parsed: dict[int, Signature] = {}
    pending: list[tuple[int, Any, Signature]] = []

    def refuse(index: int, located: Any, path: tuple, code: str, message: str, hint: str) -> None:
        checker.add(located, path, code, message, hint, section=SECTION, index=index)
        refused.add(index)

    for index, located in enumerate(items):
        grant = located.record
        approval = grant.approval
        again = _("the approver signs it again: akm policy approve {id}").format(id=grant.id)
        if approval is None or approval.signature is None:
            refuse(
                index,
                located,
                ("approval",),
                "policy.grant-not-signed",
                _("grant {id} is not signed by the director or an allowed deputy").format(id=grant.id),
                _("the approver signs it: akm policy approve {id} (docs/access-policy.md)").format(id=grant.id),
            )
            continue
        by = approval.by
        where = ("approval", "by")
        if by not in inventory.people:
            refuse(
                index,
                located,
                where,
                "policy.unknown-approver",
                _("there is no person {login!r} in the inventory").format(login=by),
                _("write the login of the director ({director}) or of an allowed deputy").format(director=director),
            )
        elif by not in approvers:
            refuse(
                index,
                located,
                where,
                "policy.not-an-approver",
                _("{login} may not approve access grants").format(login=by),
                _("the director ({director}) or a deputy listed in settings.approvers must approve").format(
                    director=director
                ),
            )
        elif grant.who == f"person:{by}":
            refuse(
                index,
                located,
                where,
                "policy.self-approved",
                _("{login} approved a grant for themselves").format(login=by),
                _("another approver must approve it"),
            )
        elif by not in keys:
            refuse(
                index,
                located,
                where,
                "policy.approver-no-key",
                _("{login} has no signing_key in the inventory, so their signature cannot be checked").format(login=by),
                _("add the public line of their ed25519 key as signing_key: under their entry in people:"),
            )
        if index in refused:
            continue
        where = ("approval", "signature")
        try:
            signature = read_signature(approval.signature)
        except ValueError as exc:
            refuse(
                index,
                located,
                where,
                "policy.signature-malformed",
                _("the signature cannot be read: {reason}").format(reason=exc),
                again + " " + _("(never edit a signature by hand)"),
            )
            continue
        parsed[index] = signature
        owner = owners.get(signature.public_key)
        if signature.namespace != NAMESPACE:
            refuse(
                index,
                located,
                where,
                "policy.signature-namespace",
                _("the signature was made for {namespace!r}, not for an access grant ({expected})").format(
                    namespace=signature.namespace, expected=NAMESPACE
                ),
                again,
            )
        elif owner is None:
            refuse(
                index,
                located,
                where,
                "policy.signature-unknown-key",
                _("the signature was made with a key that is no one's signing_key in the inventory ({key})").format(
                    key=PublicKey(signature.public_key).fingerprint
                ),
                again,
            )
        elif owner != by:
            refuse(
                index,
                located,
                where,
                "policy.signature-wrong-signer",
                _("the signature was made with the key of {owner}, not of {login} (approval.by)").format(
                    owner=owner, login=by
                ),
                _("{login} signs it with their own key: akm policy approve {id} --key THEIR_KEY").format(
                    login=by, id=grant.id
                ),
            )
        else:
            pending.append((index, located, signature))

    centre = inventory.centre.domain
    signers = {login: key for login, key in keys.items() if login in approvers}
    results = verify(
        (
            (
                content(located.record, centre, located.record.approval.by, located.record.approval.approved_on),
                located.record.approval.signature,
                located.record.approval.by,
            )
            for _index, located, _signature in pending
        ),
        signers,
        NAMESPACE,
    )
    for (index, located, signature), valid in zip(pending, results, strict=True):
        if valid:
            continue
        grant = located.record
        source = next((j for j, other in parsed.items() if j != index and other.blob == signature.blob), None)
        if source is not None:
            original = items[source]
            refuse(
                index,
                located,
                ("approval", "signature"),
                "policy.signature-copied",
                _("this is the signature of grant {other} ({file}:{line}), copied: it does not sign {id}").format(
                    other=original.record.id, file=original.file, line=original.line("approval"), id=grant.id
                ),
                _("the approver signs this grant: akm policy approve {id}").format(id=grant.id),
            )
        else:
            refuse(
                index,
                located,
                ("approval", "signature"),
                "policy.signature-mismatch",
                _(
                    "grant {id} was changed after {login} signed it (or was signed for another centre): its who, "
                    "allow, when, why, expires_on or approval date differ from what was signed"
                ).format(id=grant.id, login=grant.approval.by),
                _("undo the change (git diff), or {login} signs the new text: akm policy approve {id}").format(
                    login=grant.approval.by, id=grant.id
                ),
            )
    return refused
