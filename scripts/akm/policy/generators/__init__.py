"""The generators of the access policy, one per platform, in an explicit registry."""

from __future__ import annotations

from akm.policy.generators.base import Generator, Options
from akm.policy.generators.hosts import HostFirewallGenerator
from akm.policy.generators.ios import IosGenerator
from akm.policy.generators.kea import KeaGenerator
from akm.policy.generators.nftables import NftablesGenerator
from akm.policy.generators.routeros import RouterosGenerator
from akm.policy.generators.squid import SquidGenerator
from akm.policy.generators.unbound import UnboundGenerator
from akm.policy.generators.wpad import WpadGenerator

GENERATORS: dict[str, type[Generator]] = {
    generator.name: generator
    for generator in (
        SquidGenerator,
        NftablesGenerator,
        HostFirewallGenerator,
        KeaGenerator,
        UnboundGenerator,
        WpadGenerator,
        RouterosGenerator,
        IosGenerator,
    )
}

__all__ = ["GENERATORS", "Generator", "Options"]
