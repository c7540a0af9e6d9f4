"""Squid: the web part of the policy — who may reach which sites, when — and the fair share of the link.

Files:

``squid/akm-access.conf``
    ACLs (sources from the inventory, one ``dstdomain`` file per category, schedules as ``time`` ACLs),
    ``http_access`` in the policy's decision order, and the delay pools of ``bandwidth:``.
``squid/acl/<category>.txt``
    One domain per line as ``.example.uz`` (the domain and its subdomains), already deduplicated and
    without subdomains of listed parents, so Squid loads a million entries without a warning per line.
``squid/squid.conf``
    The whole configuration the gateway role installs: port, the include above, the access log in the
    ``akm`` format the reports read (client address first, so each line maps to a host and a person
    through the inventory).
``squid/logrotate``
    Daily rotation of that log, kept ``settings.log_retention_days`` days (for /etc/logrotate.d).

Personal logins (``settings.staff_login: required``): Squid asks everyone on the staff's segments for a
login (basic authentication, checked by Debian's ``basic_ncsa_auth`` against the gateway's password
file, which the ``access_policy`` role writes from the vault as bcrypt hashes and which is never part
of a release), so the access log names the person. A decision for ``person:LOGIN`` holds there for that
login on any staff computer (``http_access ... akm_login_segments akm_user_LOGIN ...``); the person's
computers elsewhere keep it by address. A deny line never ends with a login ACL (``all`` closes it), so
a person denied a site gets 403, not a new login prompt. The readers' and other segments stay anonymous.

Fair sharing uses Squid delay pools (class 2, one pool per segment: an aggregate bucket for the segment
and one bucket per host). All web traffic of the LAN passes through Squid because the gateway drops
direct egress, so the pools shape what the readers and staff actually use.
"""

from __future__ import annotations

from akm.policy.compile import CompiledPolicy, Decision
from akm.policy.generators.base import Generator, net_text, policy_path, safe_name

SQUID_DAYS = {"mon": "M", "tue": "T", "wed": "W", "thu": "H", "fri": "F", "sat": "A", "sun": "S"}
# Squid's native ``squid`` format written out, so an upgrade cannot change it under the reports: SARG and
# ``akm report`` (akm.report.squidlog) read exactly this.
LOG_FORMAT = "%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt"
LOGIN_HELPER = "/usr/lib/squid/basic_ncsa_auth"
"""Debian's helper (package squid) that checks a login against an htpasswd-style file (bcrypt via crypt(3))."""
LOGIN_SEGMENTS = "akm_login_segments"


class SquidGenerator(Generator):
    """Squid configuration: ACL files, ``http_access`` rules and delay pools."""

    name = "squid"
    description = "Squid proxy: ACL files, http_access, delay pools"

    def _src_acl(self, selector: str) -> str:
        return "akm_who_" + safe_name(selector.replace(":", "_"))

    def _decision_lines(self, policy: CompiledPolicy, decision: Decision, acls: dict[str, str]) -> list[str]:
        lines = []
        time_acl = ""
        if decision.when is not None:
            time_acl = " akm_time_" + safe_name(decision.when)
        for selector in decision.who:
            nets, login = policy.web_reach(selector)
            sources = []
            if nets:
                src = self._src_acl(selector)
                acls[src] = f"acl {src} src " + " ".join(net_text(n) for n in nets)
                sources.append(src)
            if login is not None:
                acls[f"akm_user_{login}"] = f"acl akm_user_{login} proxy_auth {login}"
                sources.append(f"{LOGIN_SEGMENTS} akm_user_{login}")
            for source in sources:
                for target in decision.what:
                    if target == "internet":
                        what = time_acl
                    elif target.startswith("category:"):
                        category = policy.categories.get(target[9:])
                        if category is None or not category.domains:
                            continue
                        what = f" akm_cat_{safe_name(category.id)}{time_acl}"
                    else:
                        continue
                    if not what and " akm_user_" in source and decision.action == "deny":
                        what = " all"
                    lines.append(f"http_access {decision.action} {source}{what}")
        if lines:
            note = f"# {decision.label}"
            if decision.expires is not None:
                note += f", until {decision.expires.date().isoformat()}"
            note += f" ({policy_path(decision.file)}:{decision.line})"
            lines.insert(0, note)
        return lines

    def _access(self, policy: CompiledPolicy) -> str:
        directory = self.options.squid_dir
        out = self.header(policy, "#", "Squid access rules")
        acls: dict[str, str] = {}
        rules: list[str] = []
        for decision in policy.decisions:
            rules.extend(self._decision_lines(policy, decision, acls))
        out += ["", "# Sites, one file per category."]
        for category in sorted(policy.categories.values(), key=lambda c: c.id):
            if category.domains:
                out.append(f'acl akm_cat_{safe_name(category.id)} dstdomain "{directory}/acl/{category.id}.txt"')
        out += ["", "# Schedules (the gateway's clock is in the centre's time zone)."]
        for schedule in sorted(policy.schedules.values(), key=lambda s: s.id):
            days = "".join(SQUID_DAYS[d] for d in sorted(schedule.days, key=list(SQUID_DAYS).index))
            to = "23:59" if schedule.to == "24:00" else schedule.to
            out.append(f"acl akm_time_{safe_name(schedule.id)} time {days} {schedule.from_}-{to}")
        out += ["", "# Who, from the inventory."]
        out += [acls[name] for name in sorted(acls)]
        login = []
        if policy.login_networks:
            out += [
                "",
                "# Staff log in with their personal login (settings.staff_login: required).",
                f"acl {LOGIN_SEGMENTS} src " + " ".join(net_text(n) for n in policy.login_networks),
                "acl akm_login proxy_auth REQUIRED",
            ]
            login = [
                "# The staff's segments: no request without a valid personal login (407 asks for it).",
                f"http_access deny {LOGIN_SEGMENTS} !akm_login",
            ]
        out += [
            "",
            "# Only web ports, and CONNECT only to 443.",
            "acl akm_web_ports port 80 443",
            "acl akm_tls_ports port 443",
            "acl akm_connect method CONNECT",
            "http_access deny !akm_web_ports",
            "http_access deny akm_connect !akm_tls_ports",
            *login,
            "",
            "# Decisions, first match wins: grants, rules, defaults.",
            *rules,
            "http_access deny all",
        ]
        out += self._delay_pools(policy)
        return "\n".join(out) + "\n"

    def _delay_pools(self, policy: CompiledPolicy) -> list[str]:
        if not policy.bandwidth:
            return []
        out = [
            "",
            f"# Fair sharing of the {policy.link_mbit:g} Mbit/s link: one class-2 delay pool per segment.",
        ]
        out.append(f"delay_pools {len(policy.bandwidth)}")
        for number, (segment, nets, mbit, per_host) in enumerate(policy.bandwidth, start=1):
            aggregate = int(mbit * 1_000_000 / 8)
            host = int(per_host * 1_000_000 / 8) if per_host is not None else -1
            acl = f"akm_pool_{safe_name(segment)}"
            out += [
                f"# segment {segment}: {mbit:g} Mbit/s" + (f", {per_host:g} per host" if per_host else ""),
                f"acl {acl} src " + " ".join(net_text(n) for n in nets),
                f"delay_class {number} 2",
                f"delay_parameters {number} {aggregate}/{aggregate} " + (f"{host}/{host}" if host > 0 else "-1/-1"),
                f"delay_access {number} allow {acl}",
                f"delay_access {number} deny all",
            ]
        return out

    def _squid_conf(self, policy: CompiledPolicy) -> str:
        log_dir = self.options.squid_log_dir
        out = self.header(policy, "#", "Squid configuration of the gateway")
        out += [
            "",
            f"http_port {policy.settings.proxy_port}",
            "# Web requests of clients without proxy settings, sent here by the gateway's nftables (port 80).",
            f"http_port {policy.settings.intercept_port} intercept",
            *self._login(policy),
            f"include {self.options.squid_dir}/akm-access.conf",
            "",
            f"# Access log for the reports, in Squid's native format; kept {policy.settings.log_retention_days} days.",
            f"logformat akm {LOG_FORMAT}",
            f"access_log daemon:{log_dir}/access.log logformat=akm",
            "logfile_rotate 0",
            "strip_query_terms on",
            "",
            "cache_mem 256 MB",
            "maximum_object_size 64 MB",
            "coredump_dir /var/spool/squid",
            "shutdown_lifetime 3 seconds",
        ]
        return "\n".join(out) + "\n"

    def _login(self, policy: CompiledPolicy) -> list[str]:
        if not policy.login_networks:
            return []
        return [
            "# Staff log in with their personal login; the gateway's password file holds bcrypt hashes only,",
            "# written from the vault by the access_policy role (never part of a release).",
            f"auth_param basic program {LOGIN_HELPER} {self.options.squid_password_file}",
            "auth_param basic children 5 startup=1 idle=1",
            f"auth_param basic realm {policy.inventory.centre.short_name} proksi / proxy",
            "auth_param basic credentialsttl 1 hour",
            "auth_param basic casesensitive on",
        ]

    def _logrotate(self, policy: CompiledPolicy) -> str:
        days = policy.settings.log_retention_days
        out = self.header(policy, "#", f"rotation of the access log, kept {days} days (settings.log_retention_days)")
        out += [
            f"{self.options.squid_log_dir}/access.log {{",
            "\tdaily",
            f"\trotate {days}",
            "\tcompress",
            "\tdelaycompress",
            "\tmissingok",
            "\tnotifempty",
            "\tdateext",
            "\tsharedscripts",
            "\tpostrotate",
            "\t\ttest ! -e /run/squid.pid || /usr/sbin/squid -k rotate",
            "\tendscript",
            "}",
        ]
        return "\n".join(out) + "\n"

    def generate(self, policy: CompiledPolicy) -> dict[str, str]:
        files = {
            "squid/akm-access.conf": self._access(policy),
            "squid/squid.conf": self._squid_conf(policy),
            "squid/logrotate": self._logrotate(policy),
        }
        for category in sorted(policy.categories.values(), key=lambda c: c.id):
            if category.domains:
                files[f"squid/acl/{category.id}.txt"] = "".join(f".{d}\n" for d in category.domains)
        return files
