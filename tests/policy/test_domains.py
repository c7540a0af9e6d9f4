"""Domain lists: normalised, deduplicated, subdomains of listed parents dropped, in Squid's order."""

from __future__ import annotations

from akm.policy.compile import collapse_domains, is_domain, normalise_domain


def test_collapse_drops_duplicates_and_covered_subdomains():
    names = ["a.com", "x-a.com", "www.a.com", "b.x-a.com", "a.com", "zz.org", "a.zz.org", "org.uk", "co.org.uk"]
    assert collapse_domains(names) == ("zz.org", "org.uk", "a.com", "x-a.com")


def test_collapse_keeps_siblings_whose_text_starts_like_a_parent():
    assert collapse_domains(["x.com", "ax.com", "a.x.com"]) == ("x.com", "ax.com")


def test_order_is_by_reversed_text_as_squid_compares():
    kept = collapse_domains(["b.uz", "a.com", "c.net", "aa.uz"])
    assert list(kept) == sorted(kept, key=lambda d: d[::-1])


def test_normalise_and_validate():
    assert normalise_domain(" *.Example.UZ. ") == "example.uz"
    assert normalise_domain(".kun.uz") == "kun.uz"
    assert is_domain("xn--80ak6aa92e.uz")
    assert not is_domain("198.18.0.1")
    assert not is_domain("a..b")
    assert not is_domain("-a.uz") and not is_domain("a-.uz")


def test_list_file_fast_and_slow_paths_agree(tmp_path, inventory):
    from akm.policy.compile import compile_policy
    from akm.policy.load import load_policy

    from .conftest import AT

    (tmp_path / "big.txt").write_text("# comment\n\n*.Games.example\n  play.games.example  # covered\nfoo.uz.\n")
    (tmp_path / "p.yml").write_text("categories:\n  - {id: big, name: Katta, name_en: Big, lists: [big.txt]}\n")
    policy = compile_policy(load_policy(tmp_path / "p.yml"), inventory, AT)
    assert policy.categories["big"].domains == ("games.example", "foo.uz")
    (tmp_path / "big.txt").write_text("games.example\n198.18.0.1\n")
    policy = compile_policy(load_policy(tmp_path / "p.yml"), inventory, AT)
    assert [(p.code, p.line) for p in policy.errors] == [("policy.address-in-policy", 2)]
