"""Personal proxy logins for the staff (``settings.staff_login: required``).

The checks of the setting, where a person's web decision holds (:meth:`CompiledPolicy.web_reach`), how
``akm policy query`` and ``akm policy diff`` read it (a person's login on any staff computer), the
gateway's password file as the ``access_policy`` role renders it (bcrypt hashes that Debian's
``basic_ncsa_auth`` accepts, no clear password), and the generated Squid configuration run by a real
Squid on the loopback: a staff request without a login is asked for one (407), the person with the grant
gets the site (200) and another person is denied it (403); a reader stays anonymous, and the access log
names the person for the staff and nobody for the reader; and for every request the real Squid is
asked, the policy's own answer (:func:`akm.policy.evaluate.decide`) is the same.
"""

from __future__ import annotations

import http.server
import importlib.util
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from ipaddress import IPv4Network
from pathlib import Path

import jinja2
import pytest

from akm import i18n
from akm.inventory import load_inventory
from akm.policy.build import render
from akm.policy.cli import main
from akm.policy.compile import compile_policy
from akm.policy.diff import compare, render_text
from akm.policy.evaluate import decide
from akm.policy.generators import Options
from akm.policy.load import load_policy

from .conftest import AT, INVENTORY, POLICY, ROOT

HELPER = Path("/usr/lib/squid/basic_ncsa_auth")
PASSWORDS = {"n.rahimova": "granted-person-pw-1", "r.yusupova": "other-person-pw-22"}
STAFF, READER = "127.0.0.1", "127.0.0.2"
"""the loopback addresses that stand for the staff's and the readers' segments in the running Squid"""


def _policy(tmp_path: Path, login: str = "required", always: bool = False) -> Path:
    """A copy of the test policy with *login* as ``staff_login``; *always* drops the staff rule's schedule,
    so what Squid decides does not depend on the time of day."""
    copy = tmp_path / "policy"
    shutil.copytree(POLICY, copy)
    shutil.copytree(POLICY.parent / "lists", tmp_path / "lists")
    settings = copy / "settings.yml"
    settings.write_text(settings.read_text().replace("staff_login: required", f"staff_login: {login}"))
    if always:
        rules = copy / "rules.yml"
        text = rules.read_text()
        rule = text.index("id: staff-work-hours")
        when = text.index("    when: opening_hours\n", rule)
        rules.write_text(text[:when] + text[when + len("    when: opening_hours\n") :])
    return copy


def _compile(policy: Path, inventory):
    return compile_policy(load_policy(policy), inventory, AT)


def test_a_persons_web_decision_follows_the_login_on_the_staff_segments(compiled):
    assert compiled.settings.staff_login == "required"
    assert [str(n) for n in compiled.login_networks] == ["198.18.20.0/24"]
    # n.rahimova's only computer is on the staff segment: her grant is her login there, no address.
    assert compiled.web_reach("person:n.rahimova") == ((), "n.rahimova")
    # Hosts, departments and segments stay decided by address.
    nets, login = compiled.web_reach("host:zal-01")
    assert login is None and [str(n) for n in nets] == ["198.18.30.20/32"]


def test_anonymous_staff_are_decided_by_address(tmp_path, inventory):
    compiled = _compile(_policy(tmp_path, "anonymous"), inventory)
    assert compiled.errors == [] and compiled.login_networks == ()
    assert [str(n) for n in compiled.web_reach("person:n.rahimova")[0]] == ["198.18.20.12/32"]
    assert compiled.web_reach("person:n.rahimova")[1] is None
    files = render(compiled, ["squid", "nftables"])
    assert "auth_param" not in files["squid/squid.conf"] and "proxy_auth" not in files["squid/akm-access.conf"]
    assert '"stf0"' in next(line for line in files["nftables/gw.nft"].splitlines() if "redirect to" in line)


def test_with_logins_the_staff_leg_is_not_intercepted(compiled):
    files = render(compiled, ["nftables"])
    (redirect,) = [line for line in files["nftables/gw.nft"].splitlines() if "redirect to" in line]
    assert '"stf0"' not in redirect and '"rdr0"' in redirect
    # Their direct web is then dropped like every other direct egress.
    assert 'ip saddr @lan ip daddr != @lan drop comment "direct egress bypasses the proxy"' in files["nftables/gw.nft"]


def test_a_person_without_a_computer_may_have_a_web_grant_when_the_staff_log_in(tmp_path, signing):
    """bad/33: m.ergasheva has only a reader's kiosk, so without logins her grant can be enforced nowhere;
    with logins it holds wherever she logs in on a staff computer."""
    case = tmp_path / "33.yml"
    text = (Path(__file__).parent / "bad" / "33-grant-no-hosts.yml").read_text()
    case.write_text(text.replace("settings:\n", "settings:\n  staff_login: required\n", 1))
    signing.resolve(case)
    compiled = compile_policy(load_policy(case), signing.inventory, AT)
    assert [p.code for p in compiled.errors] == []
    assert compiled.web_reach("person:m.ergasheva") == ((), "m.ergasheva")
    assert (
        "http_access allow akm_login_segments akm_user_m.ergasheva akm_cat_social"
        in render(compiled, ["squid"])["squid/akm-access.conf"].splitlines()
    )


def test_logins_required_without_a_staff_segment_is_an_error(tmp_path):
    inventory_dir = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory_dir)
    centre = inventory_dir / "centre.yml"
    centre.write_text(centre.read_text().replace("purpose: staff,", "purpose: readers,"))
    policy = _policy(tmp_path)
    compiled = _compile(policy, load_inventory(inventory_dir, today=AT.date()))
    problems = [(p.code, p.line, p.field) for p in compiled.errors if p.code == "policy.staff-login-no-segment"]
    settings = (policy / "settings.yml").read_text().splitlines()
    assert problems == [
        ("policy.staff-login-no-segment", settings.index("  staff_login: required") + 1, "settings.staff_login")
    ]


def _query(capsys, policy: Path, *args: str) -> tuple[int, list[str]]:
    code = main(["--lang", "en", "policy", "query", "-i", str(INVENTORY), "-p", str(policy), *args])
    return code, capsys.readouterr().out.splitlines()


def test_query_answers_for_a_login_per_staff_computer_where_the_computers_differ(tmp_path, capsys):
    """A host rule on one staff computer decides for whoever logs in there; a person's grant, decided
    first, follows the person to every staff computer, that one included."""
    policy = _policy(tmp_path)
    rules = policy / "rules.yml"
    rules.write_text(
        rules.read_text().replace(
            "rules:\n", "rules:\n  - id: ict-pc-no-social\n    who: [host:akt-01]\n    deny: [category:social]\n", 1
        )
    )
    code, lines = _query(capsys, policy, "--at", "2026-11-25T19:00", "m.ergasheva", "facebook.com")
    assert code == 3
    assert [line.split(" (")[0] for line in lines[1:]] == [
        "m.ergasheva logged in on akt-01: denied — rule ict-pc-no-social",
        "m.ergasheva logged in on bibl-01, direktor-01, zal-mudir-01: allowed — default:internet",
    ]
    code, lines = _query(capsys, policy, "--at", "2026-11-25T19:00", "n.rahimova", "facebook.com")
    assert code == 0
    assert lines[1].startswith("n.rahimova logged in on any staff computer: allowed — grant G-2026-014")
    code, lines = _query(capsys, policy, "--at", "2026-11-25T19:00", "akt-01", "facebook.com", "--as", "n.rahimova")
    assert (code, lines[1].split(" (")[0]) == (0, "akt-01, logged in as n.rahimova: allowed — grant G-2026-014")


def test_without_logins_a_person_is_their_computers(tmp_path, capsys):
    code, lines = _query(
        capsys, _policy(tmp_path, "anonymous"), "--at", "2026-11-25T12:00", "n.rahimova", "facebook.com"
    )
    assert code == 0 and lines[1].startswith("bibl-01: allowed — grant G-2026-014")
    code, lines = _query(capsys, _policy(tmp_path / "2", "anonymous"), "--at", "2026-11-25T12:00", "akt-01", "kun.uz")
    assert code == 0 and lines[1].startswith("akt-01: allowed — default:internet")


def _diff(old: Path, new: Path, inventory) -> dict[str, list[str]]:
    """The sentences of ``akm policy diff`` from the policy *old* to *new*, in each language."""
    before, after = _compile(old, inventory), _compile(new, inventory)
    assert before.errors == [] and after.errors == []
    result = compare(before, after)
    sentences = {}
    for language in ("en", "uz"):
        i18n.setup(language)
        sentences[language] = render_text(result, inventory)
    i18n.setup("en")
    return sentences


def test_diff_says_when_the_staff_start_to_log_in_and_where_a_grant_then_holds(tmp_path, inventory):
    """From anonymous to required: the person's grant held on her own computer and now holds on the other
    three staff computers too (during the opening hours, outside them the web is open anyway); nothing
    is said about the staff segment losing the web, the switch is one sentence of its own."""
    anonymous, required = _policy(tmp_path, "anonymous"), _policy(tmp_path / "2")
    said = _diff(anonymous, required, inventory)
    assert said["en"] == [
        "- Nodira Rahimova (n.rahimova), with their personal login on 3 of 4 staff computers, gains access to "
        "Social networks — during Opening hours",
        "- the staff now log in to the proxy with their personal login (settings.staff_login: required)",
        "- grant G-2026-003 has expired (2026-07-01) and is left out",
    ]
    assert said["uz"] == [
        "- 4 ta xodim kompyuteridan 3 tasida shaxsiy logini bilan kirgan Nodira Rahimova (n.rahimova) uchun "
        "kirish ochiladi: Ijtimoiy tarmoqlar — Ish vaqti davomida",
        "- xodimlar endi proksiga shaxsiy login bilan kiradi (settings.staff_login: required)",
        "- G-2026-003 ruxsatnomasining muddati 2026-07-01 da tugagan, u hisobga olinmaydi",
    ]
    back = _diff(required, anonymous, inventory)["en"]
    assert back[1] == "- the staff no longer log in to the proxy (settings.staff_login: anonymous)"


def test_diff_says_a_new_grant_follows_the_persons_login_to_any_staff_computer(tmp_path, inventory):
    without = _policy(tmp_path)
    grants = without / "grants.yml"
    text = grants.read_text()
    grants.write_text(text[: text.index("  - id: G-2026-014")] + text[text.index("  - id: G-2026-020") :])
    said = _diff(without, _policy(tmp_path / "2"), inventory)
    assert said["en"] == [
        "- Nodira Rahimova (n.rahimova), with their personal login on any staff computer, gains access to "
        "Social networks — during Opening hours",
        "- grant G-2026-003 has expired (2026-07-01) and is left out",
        "- grant G-2026-014 is new (until 2027-03-01); it follows n.rahimova's personal login to any staff computer",
    ]
    assert said["uz"][2] == (
        "- G-2026-014 ruxsatnomasi yangi, 2027-03-01 gacha amal qiladi; "
        "u istalgan xodim kompyuterida n.rahimova shaxsiy logini bilan amal qiladi"
    )


def _password_file(passwords: dict[str, str], domain: str) -> str:
    """The gateway's password file, rendered from the role's template as Ansible renders it."""
    spec = importlib.util.spec_from_file_location("akm_htpasswd", ROOT / "plugins" / "filter" / "htpasswd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    environment = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined)
    environment.filters["akm_htpasswd_bcrypt"] = module.akm_htpasswd_bcrypt
    template = (ROOT / "roles" / "access_policy" / "templates" / "squid-passwords.j2").read_text()
    return environment.from_string(template).render(
        access_policy_login_passwords=passwords, akm_centre={"domain": domain}
    )


@pytest.mark.needs("squid")
def test_the_password_file_holds_hashes_that_debians_helper_accepts(tmp_path):
    text = _password_file(PASSWORDS, "lab.akm.lan")
    assert text == _password_file(PASSWORDS, "lab.akm.lan"), "a converge would rewrite the file"
    assert [line.split(":")[0] for line in text.splitlines()] == sorted(PASSWORDS)
    assert all(password not in text for password in PASSWORDS.values())
    path = tmp_path / "passwords"
    path.write_text(text)
    asked = "".join(
        f"{login} {password}\n"
        for login, password in (
            ("n.rahimova", PASSWORDS["n.rahimova"]),
            ("n.rahimova", PASSWORDS["r.yusupova"]),
            ("r.yusupova", PASSWORDS["r.yusupova"]),
            ("z.nobody", PASSWORDS["r.yusupova"]),
        )
    )
    done = subprocess.run([HELPER, str(path)], input=asked, capture_output=True, text=True, timeout=30, check=True)
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["OK", "ERR", "OK", "ERR"]


class _Origin(http.server.BaseHTTPRequestHandler):
    """The web sites behind the proxy: every URL answers 200 with its host name."""

    def do_GET(self) -> None:
        body = f"site {self.headers.get('Host', '')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        """Quiet: the proxy's access log is what the test reads."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def squid(tmp_path, inventory):
    """A real Squid on the loopback running the generated configuration (staff rule without a schedule):
    the staff's segment is 127.0.0.1, the readers' 127.0.0.2, every site is a local origin server."""
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    # Squid drops to its own user when started as root: its files must be readable by that user.
    work = Path(tempfile.mkdtemp(prefix="akm-squid-login-"))
    work.chmod(0o777)
    compiled = _compile(_policy(tmp_path, always=True), inventory)
    assert compiled.errors == []
    options = Options(squid_dir=work / "squid", squid_log_dir=work, squid_password_file=work / "passwords")
    files = render(compiled, ["squid"], options)
    segments = {"198.18.20.0/24": STAFF, "198.18.30.0/24": READER}
    access = files["squid/akm-access.conf"]
    for subnet, address in segments.items():
        access = access.replace(subnet, address)
    port = _free_port()
    conf = (
        files["squid/squid.conf"]
        .replace(f"http_port {compiled.settings.proxy_port}\n", f"http_port 127.0.0.1:{port}\n")
        .replace(f"http_port {compiled.settings.intercept_port} intercept\n", "")
        .replace("access_log daemon:", "access_log stdio:")
    )
    conf += (
        f"pid_filename {work}/squid.pid\ncache_log {work}/cache.log\ncache deny all\n"
        f"cache_peer 127.0.0.1 parent {origin.server_address[1]} 0 no-query originserver name=sites\n"
        "never_direct allow all\nshutdown_lifetime 0 seconds\n"
    )
    for path, content in {**files, "squid/akm-access.conf": access, "squid/squid.conf": conf}.items():
        if path.startswith("squid/"):
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(content)
    (work / "passwords").write_text(_password_file(PASSWORDS, inventory.centre.domain))
    for path in work.rglob("*"):
        path.chmod(0o777 if path.is_dir() else 0o666)
    process = subprocess.Popen(
        ["squid", "-N", "-f", str(work / "squid" / "squid.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (work / "cache.log").read_text() if (work / "cache.log").exists() else ""
                    pytest.fail(f"Squid did not start: {process.stdout.read().decode()[-2000:]}{log[-2000:]}")
                time.sleep(0.2)
        yield port, work, compiled
    finally:
        process.terminate()
        process.wait(timeout=30)
        origin.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def _fetch(port: int, source: str, url: str, login: tuple[str, str] | None = None) -> int:
    """The status Squid answers *url* with, asked from the address *source*, with or without a login."""
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "--interface", source]
    command += ["--proxy", f"http://127.0.0.1:{port}"]
    if login is not None:
        command += ["--proxy-user", f"{login[0]}:{login[1]}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=60, check=False)
    return int(done.stdout or 0)


def _unused(compiled, segment: str) -> str:
    """An address of *segment* that no computer of the inventory has: Squid's loopback stands for it."""
    taken = {i.ip for a in compiled.inventory.assets for i in a.interfaces}
    return str(next(a for a in compiled.inventory.segments[segment].subnet.hosts() if a not in taken))


@pytest.mark.needs("squid", "curl")
def test_a_real_squid_asks_the_staff_for_a_login_and_lets_the_grant_follow_the_person(squid):
    port, work, compiled = squid
    granted = ("n.rahimova", PASSWORDS["n.rahimova"])
    other = ("r.yusupova", PASSWORDS["r.yusupova"])
    # From a staff computer that is not n.rahimova's (127.0.0.1 is none of the inventory's), and from a
    # reader's kiosk, which is never asked and where a login changes nothing.
    asked = [
        (STAFF, "facebook.com", None, 407),
        (STAFF, "facebook.com", granted, 200),
        (STAFF, "facebook.com", other, 403),
        (STAFF, "kun.uz", other, 200),
        (READER, "kun.uz", None, 200),
        (READER, "facebook.com", None, 403),
        (READER, "facebook.com", granted, 403),
    ]
    stands_for = {STAFF: _unused(compiled, "staff"), READER: _unused(compiled, "readers")}
    for source, site, login, status in asked:
        assert _fetch(port, source, f"http://{site}/", login) == status, (source, site, login)
        answer = decide(compiled, (IPv4Network(stands_for[source]),), f"site:{site}", AT, login[0] if login else None)
        said = 407 if answer.login_required else 200 if answer.action == "allow" else 403
        assert said == status, (source, site, login, answer)
    assert _fetch(port, STAFF, "http://facebook.com/", ("n.rahimova", "wrong-password")) == 407
    deadline = time.monotonic() + 30
    log = work / "access.log"
    while (not log.exists() or len(log.read_text().splitlines()) < 8) and time.monotonic() < deadline:
        time.sleep(0.2)
    fields = [line.split() for line in log.read_text().splitlines()]
    seen = {(f[2], f[3].split("/")[1], f[6], f[7]) for f in fields}
    assert (STAFF, "200", "http://facebook.com/", "n.rahimova") in seen
    assert (STAFF, "403", "http://facebook.com/", "r.yusupova") in seen
    assert (STAFF, "200", "http://kun.uz/", "r.yusupova") in seen
    assert {f[7] for f in fields if f[2] == READER} == {"-"}
