"""``akm policy approve GRANT-ID``: the director, or an allowed deputy, signs a grant.

The key decides who signs: the person of the inventory whose ``signing_key`` is the public half of
``--key``. Only a grant that is otherwise valid is signed (a signature on a grant that names an unknown
category would have to be made again once it is corrected), and only by an approver of the policy.

The signature (:mod:`akm.policy.signatures`) is written into the grant's own file as its ``approval``
block, in place: an earlier ``approval`` block is replaced line for line, or a new one is added after
the grant's last line; nothing else in the file changes (comments, quoting and order stay as they are).
Where the grant and its block begin and end comes from the YAML parser's positions. The new text is read
back and must give the same grant with the new approval before it replaces the file, in one rename.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from akm import yamledit
from akm.i18n import _
from akm.policy import signatures
from akm.policy.compile import CompiledPolicy
from akm.policy.load import Located, PolicyError
from akm.policy.model import Approval, Grant
from akm.sshsig import PublicKey, SshSigError, public_key_of, read_signature, sign, verify


@dataclass(frozen=True)
class Approved:
    """What ``approve`` did: which grant, signed by whom with which key, written where."""

    grant: str
    by: str
    key: PublicKey
    file: str
    line: int


def _lines_of(node: Any) -> set[int]:
    """Every line a located YAML mapping or list (and what it holds) was written on."""
    found = {getattr(node, "line", None)}
    lines = getattr(node, "lines", None)
    if isinstance(lines, dict):
        found.update(lines.values())
        children = node.values()
    elif isinstance(lines, list):
        found.update(lines)
        children = node
    else:
        return found - {None}
    for child in children:
        found |= _lines_of(child)
    return found - {None}


def _grant_errors(compiled: CompiledPolicy, located: Located) -> list:
    """The errors of the grant at *located* that a new approval does not settle."""
    lines = _lines_of(located.item)
    return [
        p
        for p in compiled.errors
        if p.file == located.file and p.line in lines and p.code not in signatures.APPROVAL_CODES
    ]


def _refuse(code: str, message: str, hint: str, file: str, line: int | None = None, field: str = "") -> PolicyError:
    return PolicyError.one(code, message, hint, file=file, line=line, field=field)


def _find_grant(text: str, grant_id: str) -> yaml.MappingNode | None:
    found = yamledit.section(yamledit.compose(text), "grants")
    if found is None or not isinstance(found[1], yaml.SequenceNode):
        return None
    for item in found[1].value:
        if isinstance(item, yaml.MappingNode) and getattr(yamledit.field(item, "id"), "value", None) == grant_id:
            return item
    return None


def rewrite(text: str, grant_id: str, approval: Approval, file: str) -> tuple[str, int]:
    """Return *text* with the grant *grant_id* carrying *approval*, and the line of its ``approval:``."""
    item = _find_grant(text, grant_id)
    if item is None:
        raise _refuse(
            "policy.unknown-grant",
            _("there is no grant {id} in this file").format(id=grant_id),
            _("check the grant's id"),
            file,
        )
    if item.flow_style:
        raise _refuse(
            "policy.approve-flow-grant",
            _("grant {id} is written in braces on one line; the approval is written as a block under it").format(
                id=grant_id
            ),
            _("write the grant with one field per line (docs/access-policy.md), then approve it again"),
            file,
            item.start_mark.line + 1,
            "approval",
        )
    body = [
        f"  by: {yamledit.plain(approval.by)}",
        f"  date: {approval.approved_on.isoformat()}",
        "  signature: |",
        *(f"    {line}" for line in (approval.signature or "").strip().splitlines()),
    ]
    return yamledit.set_field(text, item, "approval", body)


def _read_back(text: str, grant_id: str, file: str) -> Grant:
    try:
        data = yamledit.load(text)
        item = next(g for g in data["grants"] if isinstance(g, dict) and g.get("id") == grant_id)
        return Grant.model_validate(item)
    except (yaml.YAMLError, ValueError, StopIteration) as exc:  # pydantic's ValidationError is a ValueError
        raise _refuse(
            "policy.approve-write",
            _("the file would not read back as the same grant: {reason}").format(reason=exc),
            _("write the grant with one field per line (docs/access-policy.md), then approve it again"),
            file,
        ) from exc


def approve(compiled: CompiledPolicy, grant_id: str, key: Path, day: date) -> Approved:
    """Sign the grant *grant_id* of *compiled* with *key* as of *day* and write the approval into its file.

    Raises :class:`PolicyError` (or :class:`akm.sshsig.SshSigError`) without touching any file when the
    grant, the key or the signer is not right.
    """
    located = next((g for g in compiled.raw.grants if g.record.id == grant_id), None)
    if located is None:
        known = ", ".join(sorted(g.record.id for g in compiled.raw.grants)) or "-"
        raise _refuse(
            "policy.unknown-grant",
            _("there is no valid grant {id} in the policy").format(id=grant_id),
            _("use one of: {choices}; akm policy check shows grants that are not valid").format(choices=known),
            str(compiled.raw.root),
            field="GRANT-ID",
        )
    grant: Grant = located.record
    errors = _grant_errors(compiled, located)
    if grant.expires_on <= day:
        raise _refuse(
            "policy.grant-dates",
            _("the grant expires ({expires}) before or on the day it was approved ({approved})").format(
                expires=grant.expires_on, approved=day
            ),
            _("expires_on must be after the approval's date"),
            located.file,
            located.line("expires_on"),
            "expires_on",
        )
    if errors:
        head = _refuse(
            "policy.approve-invalid-grant",
            _("grant {id} has errors; it is not signed").format(id=grant_id),
            _("correct them, then approve it"),
            located.file,
            located.line("id"),
            "id",
        )
        raise PolicyError(head.problems + errors)
    public = public_key_of(key)
    inventory = compiled.inventory
    owners = {k.blob: login for login, k in signatures.signing_keys(inventory).items()}
    by = owners.get(public.blob)
    if by is None:
        raise _refuse(
            "policy.key-not-in-inventory",
            _("the key {fingerprint} is no one's signing_key in the inventory").format(fingerprint=public.fingerprint),
            _("sign with your own key (--key), or have your public key added to your entry in people:"),
            str(key),
            field="--key",
        )
    if by not in compiled.approvers:
        director = inventory.director.id
        raise _refuse(
            "policy.not-an-approver",
            _("{login} may not approve access grants").format(login=by),
            _("the director ({director}) or a deputy listed in settings.approvers must approve").format(
                director=director
            ),
            str(key),
            field="--key",
        )
    if grant.who == f"person:{by}":
        raise _refuse(
            "policy.self-approved",
            _("{login} approved a grant for themselves").format(login=by),
            _("another approver must approve it"),
            str(key),
            field="--key",
        )
    message = signatures.content(grant, inventory.centre.domain, by, day)
    armoured = sign(message, key, signatures.NAMESPACE)
    if read_signature(armoured).public_key != public.blob or not verify(
        [(message, armoured, by)], {by: public}, signatures.NAMESPACE
    ):
        raise SshSigError.one(
            "sshsig.key-mismatch",
            _("the signature was not made with the public key beside the key file"),
            _("the .pub file next to the key belongs to another key: give the right pair with --key"),
            file=str(key),
            field="--key",
        )
    approval = Approval.model_validate({"by": by, "date": day, "signature": armoured})
    path = Path(located.file)
    text = path.read_text(encoding="utf-8")
    new_text, line = rewrite(text, grant_id, approval, located.file)
    if _read_back(new_text, grant_id, located.file) != grant.model_copy(update={"approval": approval}):
        raise _refuse(
            "policy.approve-write",
            _("the file would not read back as the same grant with the new approval"),
            _("write the grant with one field per line (docs/access-policy.md), then approve it again"),
            located.file,
            located.line("id"),
            "id",
        )
    yamledit.replace(path, new_text)
    return Approved(grant_id, by, public, located.file, line)
