"""Golden files of every generator, and the real parsers: ``squid -k parse`` and ``nft -c -f``.

The expected output is ``golden/<path>.ref`` beside this file; on a mismatch the output is written
next to it as ``.actual`` (compare with ``diff``, and copy it over the ``.ref`` when the change is meant).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from akm.policy.build import render, write_tree
from akm.policy.generators import GENERATORS, Options

GOLDEN = Path(__file__).parent / "golden"


def _differs(path: str, content: str) -> bool:
    ref = GOLDEN / f"{path}.ref"
    actual = GOLDEN / f"{path}.actual"
    if ref.exists() and ref.read_text(encoding="utf-8") == content:
        actual.unlink(missing_ok=True)
        return False
    actual.parent.mkdir(parents=True, exist_ok=True)
    actual.write_text(content, encoding="utf-8")
    return True


@pytest.mark.parametrize("platform", sorted(GENERATORS))
def test_generator_matches_golden_files(compiled, platform):
    files = GENERATORS[platform](Options()).generate(compiled)
    assert files, f"{platform} produced no files"
    differing = [path for path, content in sorted(files.items()) if _differs(path, content)]
    assert not differing, f"output differs from the .ref files; see the .actual files of {differing}"
    expected = {p.relative_to(GOLDEN).as_posix()[:-4] for p in (GOLDEN / platform).rglob("*.ref")}
    assert set(files) == expected


def test_build_is_deterministic(compiled, tmp_path):
    first = render(compiled)
    second = render(compiled)
    assert first == second
    write_tree(first, tmp_path / "out")
    write_tree(second, tmp_path / "out")
    manifest = (tmp_path / "out" / "MANIFEST").read_text()
    assert "nftables/gw.nft" in manifest and "squid/acl/social.txt" in manifest


def test_expired_grant_is_left_out_and_a_later_build_drops_the_next(inventory):
    from datetime import timedelta

    from akm.policy.compile import compile_policy
    from akm.policy.load import load_policy

    from .conftest import AT, POLICY

    raw = load_policy(POLICY)
    now = render(compile_policy(raw, inventory, AT))
    later = render(compile_policy(raw, inventory, AT + timedelta(days=7)))
    assert "G-2026-003" not in now["squid/akm-access.conf"]
    assert "G-2026-020" in now["squid/akm-access.conf"]
    assert "G-2026-020" not in later["squid/akm-access.conf"]
    assert "grant_G_2026_031" in now["nftables/gw.nft"]


@pytest.mark.needs("squid")
def test_squid_parses_the_generated_configuration(inventory, compiled, tmp_path):
    out = tmp_path / "build"
    write_tree(render(compiled, ["squid"], Options(squid_dir=out / "squid")), out)
    result = subprocess.run(
        ["squid", "-k", "parse", "-f", str(out / "squid" / "squid.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FATAL" not in result.stderr and "WARNING" not in result.stderr, result.stderr[-2000:]
    assert "akm_cat_social" in result.stderr


@pytest.mark.needs("squid")
def test_squid_rejects_a_broken_configuration(tmp_path):
    """The validation the gateway role relies on really fails on a bad file."""
    broken = tmp_path / "squid.conf"
    broken.write_text("http_port 3128\nhttp_access allow no_such_acl\n")
    result = subprocess.run(["squid", "-k", "parse", "-f", str(broken)], capture_output=True, check=False)
    assert result.returncode != 0


@pytest.fixture
def netns():
    """A throwaway network namespace (never the host's ruleset), deleted afterwards."""
    name = f"pol-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.privileged
@pytest.mark.needs("ip", "nft")
def test_nftables_ruleset_loads_atomically_twice(compiled, tmp_path, netns):
    files = render(compiled, ["nftables"])
    ruleset = tmp_path / "gw.nft"
    ruleset.write_text(files["nftables/gw.nft"])
    check = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-c", "-f", str(ruleset)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    for _ in range(2):
        load = subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "-f", str(ruleset)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert load.returncode == 0, load.stderr
    listed = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "list", "set", "inet", "akm_policy", "grant_G_2026_031"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "198.18.40.20 timeout 50d12h" in listed
    chain = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "list", "chain", "inet", "akm_policy", "input"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "tcp dport 22 ip saddr @management accept" in chain


@pytest.mark.privileged
@pytest.mark.needs("ip", "nft")
def test_nft_check_rejects_a_broken_ruleset(tmp_path, netns):
    ruleset = tmp_path / "bad.nft"
    ruleset.write_text("table inet akm_policy {\n\tchain input { type filter hook input; policy maybe; }\n}\n")
    result = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-c", "-f", str(ruleset)], capture_output=True, check=False
    )
    assert result.returncode != 0
