"""``akm policy approve``: an approver signs a grant in place; ``check`` and ``build`` (which the push runs)
refuse a grant whose signature does not match, naming its file, line and field. The keys are made for
the run (``signing.py``)."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from akm.policy import signatures
from akm.policy.model import Grant

from .conftest import HERE
from .signing import APPROVALS
from .test_cli import run

pytestmark = pytest.mark.needs("ssh-keygen")
APPROVAL_BLOCK = re.compile(r"^    approval:\n(?:      .*\n)+", re.M)


@pytest.fixture
def signed(tmp_path, signing, capsys) -> tuple[list[str], Path]:
    """The fixture policy, copied and signed with this run's keys: (``-i``/``-p`` arguments, grants file)."""
    policy = tmp_path / "policy"
    shutil.copytree(HERE / "policy", policy)
    shutil.copytree(HERE / "lists", tmp_path / "lists")
    where = ["-i", str(signing.inventory_dir), "-p", str(policy)]
    for grant, login, day in APPROVALS:
        code, _out, err = run(capsys, "approve", *where, "--at", day, "--key", str(signing.key(login)), grant)
        assert code == 0, err
    return where, policy / "grants.yml"


def test_approve_writes_only_the_approval_blocks_and_check_accepts_them(signed, capsys):
    where, grants = signed
    before = (HERE / "policy" / "grants.yml").read_text()
    after = grants.read_text()
    assert APPROVAL_BLOCK.sub("", after) == APPROVAL_BLOCK.sub("", before)
    assert after.count("-----BEGIN SSH SIGNATURE-----") == 4
    code, out, err = run(capsys, "check", *where, "--at", "2026-11-25T12:00")
    assert code == 0, err
    assert "5 rules, 3 active grants (1 expired)" in out


def test_signing_the_same_grant_again_writes_the_same_text(signed, signing, capsys):
    where, grants = signed
    before = grants.read_bytes()
    code, out, _err = run(
        capsys, "approve", *where, "--at", "2026-09-01", "--key", str(signing.key("r.yusupova")), "G-2026-014"
    )
    assert code == 0
    assert "G-2026-014 is signed by Rano Yusupova (r.yusupova)" in out
    assert grants.read_bytes() == before


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("allow: [category:social]", "allow: [category:social, category:video]"),
        ("who: host:zal-01", "who: host:zal-02"),
        ("expires_on: 2027-03-01", "expires_on: 2028-03-01"),
        ("social networks", "social networks and video"),
        ("      date: 2026-09-01", "      date: 2026-09-02"),
    ],
)
def test_a_grant_edited_after_signing_fails_check_and_build_writes_nothing(signed, capsys, tmp_path, old, new):
    where, grants = signed
    text = grants.read_text()
    assert text.count(old) == 1
    grants.write_text(text.replace(old, new))
    code, _out, err = run(capsys, "check", *where, "--at", "2026-11-25T12:00")
    assert code == 2
    changed = r"grants\.yml:\d+: grants\[[01]\]\.approval\.signature: grant G-2026-0(14|20) was changed after"
    assert re.search(changed, err)
    out = tmp_path / "out"
    code, _out, err = run(capsys, "build", *where, "--at", "2026-11-25T12:00", "--out", str(out))
    assert code == 2 and "was changed after" in err
    assert not out.exists()


def test_approve_adds_the_block_under_a_new_grant_and_keeps_what_surrounds_it(signed, signing, capsys):
    where, grants = signed
    text = grants.read_text()
    new = (
        "  - id: G-2026-050\n"
        "    who: host:zal-02\n"
        "    allow: [category:social]\n"
        '    why: "Request 2026-050"   # the club\'s page\n'
        "    expires_on: 2027-01-01\n"
        "\n"
        "# a comment after the last grant\n"
    )
    grants.write_text(text + new)
    code, out, err = run(
        capsys, "approve", *where, "--at", "2026-11-20", "--key", str(signing.key("b.toshmatov")), "G-2026-050"
    )
    assert code == 0, err
    written = grants.read_text()
    head, _sep, tail = written.partition("    expires_on: 2027-01-01\n")
    assert head + _sep == text + new.split("\n\n")[0].rsplit("\n", 1)[0] + "\n    expires_on: 2027-01-01\n"
    assert tail.startswith("    approval:\n      by: b.toshmatov\n      date: 2026-11-20\n      signature: |\n")
    assert tail.endswith("        -----END SSH SIGNATURE-----\n\n# a comment after the last grant\n")
    assert f"{grants}:{len(head.splitlines()) + 2}" in out
    assert run(capsys, "check", *where, "--at", "2026-11-25T12:00")[0] == 0


def _refusal(capsys, where, grants, *args) -> str:
    before = grants.read_bytes()
    code, _out, err = run(capsys, "approve", *where, "--at", "2026-11-20", *args)
    assert code == 2
    assert grants.read_bytes() == before, "a refused approval writes nothing"
    assert "Traceback" not in err
    return err


def test_approve_refuses_an_unknown_grant_a_stranger_and_an_expired_grant(signed, signing, capsys):
    where, grants = signed
    key = ["--key", str(signing.key("r.yusupova"))]
    assert "there is no valid grant G-2026-999 in the policy" in _refusal(capsys, where, grants, *key, "G-2026-999")
    stranger = _refusal(capsys, where, grants, "--key", str(signing.key("stranger")), "G-2026-014")
    assert f"{signing.key('stranger')}: --key: the key SHA256:" in stranger
    assert "is no one's signing_key in the inventory" in stranger
    expired = _refusal(capsys, where, grants, *key, "G-2026-003")
    assert "grants.yml:38: expires_on: the grant expires (2026-07-01) before or on the day it was approved" in expired


def test_approve_refuses_someone_the_policy_does_not_allow(signed, signing, capsys):
    where, grants = signed
    settings = grants.with_name("settings.yml")
    settings.write_text(settings.read_text().replace("approvers: [b.toshmatov]", "approvers: []"))
    err = _refusal(capsys, where, grants, "--key", str(signing.key("b.toshmatov")), "G-2026-020")
    assert "--key: b.toshmatov may not approve access grants" in err


def test_approve_refuses_a_grant_with_errors_and_one_written_on_one_line(signed, signing, capsys):
    where, grants = signed
    key = ["--key", str(signing.key("r.yusupova"))]
    text = grants.read_text()
    grants.write_text(
        text + "  - id: G-2026-060\n    who: host:zal-02\n    allow: [category:chess]\n    why: x\n"
        "    expires_on: 2027-01-01\n"
        "  - {id: G-2026-061, who: host:zal-02, allow: [category:social], why: y, expires_on: 2027-01-01}\n"
    )
    err = _refusal(capsys, where, grants, *key, "G-2026-060")
    assert "grants.yml:65: id: grant G-2026-060 has errors; it is not signed" in err
    assert "grants.yml:67: grants[4].allow[0]: there is no category 'chess' in the policy" in err
    err = _refusal(capsys, where, grants, *key, "G-2026-061")
    assert "grants.yml:70: approval: grant G-2026-061 is written in braces on one line" in err


def test_uzbek_messages_by_default(signed, capsys):
    where, grants = signed
    grants.write_text(grants.read_text().replace("expires_on: 2027-03-01", "expires_on: 2028-03-01"))
    from akm.policy.cli import main

    assert main(["policy", "check", *where, "--at", "2026-11-25T12:00"]) == 2
    err = capsys.readouterr().err
    assert "imzolagandan keyin oʻzgartirilgan" in err


def test_the_signed_content_is_the_documented_json():
    grant = Grant.model_validate(
        {
            "id": "G-1",
            "who": "person:z.ergasheva",
            "allow": ["category:video", "category:social"],
            "why": "Ariza: oʻquvchilar sahifasi",
            "expires_on": "2027-08-31",
        }
    )
    assert (
        signatures.content(grant, "akm.lan", "d.karimova", date(2026, 9, 1))
        == (
            '{"allow":["category:social","category:video"],"approved_by":"d.karimova","approved_on":"2026-09-01",'
            '"centre":"akm.lan","expires_on":"2027-08-31","format":"akm-grant/1","id":"G-1","when":null,'
            '"who":"person:z.ergasheva","why":"Ariza: oʻquvchilar sahifasi"}\n'
        ).encode()
    )


def test_sign_examples_renews_the_example_keys_and_every_signature(tmp_path):
    from akm.devtools import sign_examples
    from akm.inventory import load_inventory
    from akm.policy.compile import compile_policy
    from akm.policy.load import load_policy

    from .conftest import AT, INVENTORY

    inventory, policy, keys = tmp_path / "inventory", tmp_path / "policy", tmp_path / "keys"
    shutil.copytree(INVENTORY, inventory)
    shutil.copytree(HERE / "policy", policy)
    shutil.copytree(HERE / "lists", tmp_path / "lists")
    keys.mkdir()
    before = load_inventory(inventory, today=AT.date())
    done = sign_examples(((inventory, policy),), keys)
    assert [line.rsplit(": ", 1)[1] for line in done] == [f"{g} signed by {login}" for g, login, _day in APPROVALS]
    after = load_inventory(inventory, today=AT.date())
    for login in ("r.yusupova", "b.toshmatov"):
        assert after.people[login].signing_key != before.people[login].signing_key
        assert after.people[login].signing_key.endswith(" example key")
    compiled = compile_policy(load_policy(policy), after, AT)
    assert compiled.errors == []
    assert [(g.record.id, g.record.approval.by, str(g.record.approval.approved_on)) for g in compiled.raw.grants] == [
        (g, login, day) for g, login, day in APPROVALS
    ]
    centre = inventory / "centre.yml"
    key = after.people["r.yusupova"].signing_key
    centre.write_text(centre.read_text().replace(key, key.replace("example key", "r.yusupova@pc")))
    text = (policy / "grants.yml").read_text()
    assert sign_examples(((inventory, policy),), keys) == [f"{inventory}: left alone, not an example key: r.yusupova"]
    assert (policy / "grants.yml").read_text() == text


def test_the_public_half_comes_from_the_pub_file_or_from_the_private_key(tmp_path, signing):
    from akm.sshsig import SshSigError, public_key_of, read_public_key

    private = tmp_path / "id_ed25519"
    shutil.copy(signing.key("r.yusupova"), private)
    private.chmod(0o600)
    expected = read_public_key(signing.public("r.yusupova"))
    assert public_key_of(private).blob == expected.blob  # no .pub beside it: ssh-keygen -y derives it
    assert public_key_of(signing.key("r.yusupova").with_name("r.yusupova.pub")).blob == expected.blob
    for path, code in ((tmp_path / "missing", "sshsig.no-key"), (HERE / "policy" / "grants.yml", "sshsig.bad-key")):
        with pytest.raises(SshSigError) as caught:
            public_key_of(path)
        assert [(p.code, p.field) for p in caught.value.problems] == [(code, "--key")]


def test_verify_accepts_only_the_named_signer_in_the_namespace(signing):
    from akm.sshsig import read_public_key, sign, verify

    message = b"grant content\n"
    signature = sign(message, signing.key("r.yusupova"), "akm-grant")
    signers = {login: read_public_key(signing.public(login)) for login in ("r.yusupova", "b.toshmatov")}
    assert verify(
        [
            (message, signature, "r.yusupova"),
            (message, signature, "b.toshmatov"),
            (b"grant content, edited\n", signature, "r.yusupova"),
            (message, sign(message, signing.key("r.yusupova"), "git"), "r.yusupova"),
        ],
        signers,
        "akm-grant",
    ) == [True, False, False, False]
