"""`tailnet-agent acl`: a least-privilege Tailscale policy file made from the topology.

Pure. Each service may be reached by its consumers only (its `consumers`, else every other
node): one grant per destination node and set of consumers, over the ports they use; the
nodes are `hosts` aliases (their ids) for their Tailscale IPs; a `tests` block asserts,
for each node, that it reaches what it consumes and is denied the ports it does not.

The format is Tailscale's tailnet policy file, in HuJSON (JSON with comments), as its
syntax reference documents it: https://tailscale.com/kb/1337/policy-syntax — `grants`
(preferred over `acls` there: "Prefer grants for access control policies") with `src`,
`dst` and `ip` ("tcp:5432"); `hosts` ("Define named aliases for devices and subnets");
`tests` with `src`, `accept` and `deny` ("host:port"), which Tailscale runs on every save
of the policy and refuses the policy when one fails. The text is strict JSON plus whole-
line `//` comments, so any JSON reader takes it once those lines are dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent.core.model import Topology
from agent.core.topology import consumers_of

__all__ = ["POLICY_SYNTAX_URL", "AclPolicy", "acl_policy", "render_hujson"]

POLICY_SYNTAX_URL = "https://tailscale.com/kb/1337/policy-syntax"


@dataclass(frozen=True, slots=True)
class AclPolicy:
    """The policy as a JSON-ready dict, and the comment for each grant (same order)."""

    policy: dict[str, Any]
    grant_comments: tuple[str, ...]


def acl_policy(topology: Topology) -> AclPolicy:
    """The least-privilege policy for `topology`."""
    hosts = {node.id: node.ip for node in topology.nodes}
    grants: list[dict[str, Any]] = []
    comments: list[str] = []
    for node in topology.nodes:
        by_consumers: dict[tuple[str, ...], list[tuple[str, int]]] = {}
        for service in node.services:
            consumers = consumers_of(topology, node, service)
            if consumers:
                by_consumers.setdefault(consumers, []).append((service.name, service.port))
        for consumers, services in by_consumers.items():
            grants.append(
                {
                    "src": list(consumers),
                    "dst": [node.id],
                    "ip": [f"tcp:{port}" for _, port in services],
                }
            )
            names = ", ".join(f"{name} {port}" for name, port in services)
            comments.append(f"{node.name}: {names} — for {', '.join(consumers)}")
    tests: list[dict[str, Any]] = []
    for source in topology.nodes:
        accept: list[str] = []
        deny: list[str] = []
        for node in topology.nodes:
            if node.id == source.id:
                continue  # a machine reaches itself whatever the policy says
            for service in node.services:
                target = f"{node.id}:{service.port}"
                (accept if source.id in consumers_of(topology, node, service) else deny).append(
                    target
                )
        if accept or deny:
            test: dict[str, Any] = {"src": source.id}
            if accept:
                test["accept"] = accept
            if deny:
                test["deny"] = deny
            tests.append(test)
    policy: dict[str, Any] = {"hosts": hosts, "grants": grants, "tests": tests}
    return AclPolicy(policy, tuple(comments))


def render_hujson(acl: AclPolicy, topology: Topology) -> str:
    """The policy file as HuJSON: the policy with comments on each section and grant."""
    policy = acl.policy
    out = [
        f"// A least-privilege Tailscale policy for the {topology.name} tailnet,",
        f"// made by `tailnet-agent acl` from {topology.source}.",
        "// Each service is reachable from its consumers only (`consumers` in the topology,",
        "// else every other node); Tailscale denies whatever no grant allows. Grants add up:",
        "// replace the default allow-all grant (or ACL), or it still lets everything through.",
        f"// Syntax: {POLICY_SYNTAX_URL} (grants, hosts, tests).",
        "{",
        "  // The nodes of the topology, by their Tailscale IPs.",
        '  "hosts": {',
    ]
    host_items = list(policy["hosts"].items())
    for i, (alias, ip) in enumerate(host_items):
        comma = "," if i < len(host_items) - 1 else ""
        out.append(f"    {json.dumps(alias)}: {json.dumps(ip)}{comma}")
    out += ["  },", '  "grants": [']
    grants = policy["grants"]
    for i, (grant, comment) in enumerate(zip(grants, acl.grant_comments, strict=True)):
        comma = "," if i < len(grants) - 1 else ""
        out.append(f"    // {comment}")
        out.append(f"    {json.dumps(grant, ensure_ascii=False)}{comma}")
    out += [
        "  ],",
        "  // Checked by Tailscale on every save: each node reaches what it uses, and no more.",
        '  "tests": [',
    ]
    tests = policy["tests"]
    for i, test in enumerate(tests):
        comma = "," if i < len(tests) - 1 else ""
        out.append(f"    {json.dumps(test, ensure_ascii=False)}{comma}")
    out += ["  ]", "}"]
    return "\n".join(out) + "\n"
