"""A large, valid inventory made up on the spot, for benchmarks and scale tests.

``write(directory, assets=50_000)`` writes one file of assets with every unique field distinct and
every address inside its segment, plus the centre, departments, people and segments they refer to.
The output depends only on the arguments.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

_HEADER = """---
centre: {name: Sintetik markaz, name_en: Synthetic centre, short_name: SYN, city: Xonobod, domain: syn.lan}
departments:
  - {id: akt, name: AKT, name_en: ICT}
rooms:
  - {id: xona-1, name: Xona, department: akt}
people:
  - {id: d.director, name: Director, position: Direktor, department: akt, duties: [director]}
  - {id: i.tech, name: Tech, position: Mutaxassis, department: akt, duties: [it_staff]}
"""


PER_SEGMENT = 250


def _subnets(assets: int) -> list[IPv4Network]:
    """One /24 per 250 assets: from 198.18.0.0/15 while it has enough (127,750 assets), else from 10.0.0.0/8."""
    segments = (assets + PER_SEGMENT - 1) // PER_SEGMENT
    base = IPv4Network("198.18.0.0/15" if segments < 512 else "10.0.0.0/8")
    return list(base.subnets(new_prefix=24))[1 : segments + 1]


def spare_address(assets: int) -> tuple[str, str]:
    """A segment and a free address in it, in the inventory of *assets* assets: for one more asset."""
    return "s0", str(_subnets(assets)[0][PER_SEGMENT + 2])


def write(directory: Path, assets: int = 50_000) -> Path:
    """Write a synthetic inventory of *assets* workstations into *directory* and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    per_segment = PER_SEGMENT
    subnets = _subnets(assets)
    lines = [_HEADER, "segments:\n"]
    for k, subnet in enumerate(subnets):
        lines.append(f"  - {{id: s{k}, name: S{k}, purpose: staff, subnet: {subnet}, gateway: {subnet[1]}}}\n")
    (directory / "centre.yml").write_text("".join(lines))
    out = ["---\nassets:\n"]
    for k in range(assets):
        segment, host = divmod(k, per_segment)
        ip = subnets[segment][host + 2]
        mac = ":".join(f"{b:02x}" for b in (2, 0, (k >> 24) & 255, (k >> 16) & 255, (k >> 8) & 255, k & 255))
        out.append(
            f"  - inventory_no: AKM-{k + 1:06d}\n"
            f"    hostname: pc-{k + 1:06d}\n"
            "    kind: workstation\n"
            "    model: Lenovo ThinkCentre neo 50s\n"
            f"    serial: SN-{k + 1:08d}\n"
            f'    interfaces:\n      - {{segment: s{segment}, ip: {ip}, mac: "{mac}"}}\n'
            "    department: akt\n    room: xona-1\n    responsible: i.tech\n"
            "    purchased: 2024-01-10\n    warranty_until: 2027-01-10\n"
            "    status: in_use\n    os: debian12\n    profiles: [staff]\n"
        )
    (directory / "assets.yml").write_text("".join(out))
    return directory
