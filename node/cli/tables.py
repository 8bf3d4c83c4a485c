"""The tables `clusterctl` prints without `--json`: zones, records, nodes, keys.

Columns are left-aligned and separated by two spaces (`table`); the JSON
shapes they are drawn from are `node.cli.output`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dns.rdatatype
import dns.rrset

from node.cli.output import zone_dict
from node.nodes.membership import NodeInfo
from node.zones.repository import ZoneInfo

# --- rendering -------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def zone_table(infos: Sequence[ZoneInfo]) -> str:
    rows = [
        (
            i.config.name.to_text(),
            i.config.kind,
            i.serial,
            i.generation,
            ",".join(i.config.allow_transfer) or "-",
        )
        for i in infos
    ]
    return table(("ZONE", "KIND", "SERIAL", "GENERATION", "ALLOW-TRANSFER"), rows)


def zone_details(info: ZoneInfo) -> str:
    d = zone_dict(info)
    rows = [
        ("name", d["name"]),
        ("serial", d["serial"]),
        ("generation", d["generation"]),
        ("rrsets", "-" if d["rrset_count"] is None else d["rrset_count"]),
        ("allow-transfer", ", ".join(d["allow_transfer"]) or "-"),
        ("allow-transfer-key", ", ".join(d["allow_transfer_keys"]) or "-"),
        ("allow-update", ", ".join(d["allow_update"]) or "-"),
        ("notify", ", ".join(d["notify"]) or "-"),
        ("dynamic-update", d["dynamic_update"]),
        ("update-policy", "; ".join(d["update_policy"]) or "default (grant * zonesub ANY)"),
        ("kind", d["kind"]),
        ("require-tls-transfer", "yes" if d["require_tls_transfer"] else "no"),
    ]
    if info.progress:
        rows.append(("progress", info.progress))
    if info.config.secondary:
        rows += [("primaries", ", ".join(d["primaries"])), ("tsig-key", d["tsig_key"] or "-")]
    if info.config.file_backed:
        rows += [("owner", d["owner"]), ("file", d["path"])]
    width = max(len(k) for k, _ in rows)
    text = "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in rows)
    if info.config.secondary or info.config.file_backed:
        transfers = [(t.node, "-" if t.serial is None else t.serial, t.primary or "-",
                      t.method or "-", t.at or "-", "yes" if t.serving else "no", t.error or "-")
                     for t in info.transfers]
        text += "\n\n" + table(("NODE", "SERIAL", "PRIMARY", "VIA", "AT", "SERVING", "ERROR"),
                                transfers)
    return text


def record_table(rrsets: Sequence[dns.rrset.RRset]) -> str:
    rows = [
        (r.name.to_text(), r.ttl, dns.rdatatype.to_text(r.rdtype), text)
        for r in rrsets
        for text in sorted(rd.to_text() for rd in r)
    ]
    return table(("OWNER", "TTL", "TYPE", "RDATA"), rows)


def node_table(nodes: Sequence[NodeInfo]) -> str:
    rows = [
        (
            n.id,
            n.role,
            "yes" if n.alive else "no",
            "yes" if n.ready else "no",
            ",".join(n.dns_addresses) or "-",
            n.api_address or "-",
            n.version or "-",
            ", ".join(f"{z}={s}" for z, s in n.served_serials) or "-",
        )
        for n in nodes
    ]
    headers = ("ID", "ROLE", "ALIVE", "READY", "DNS", "API", "VERSION", "SERVED")
    problems = [f"{n.id}: {zone}: {reason}" for n in nodes for zone, reason in n.problems]
    problems += [f"{n.id}: {n.lease_lost}" for n in nodes if n.lease_lost]
    return table(headers, rows) + ("\n\nProblems:\n  " + "\n  ".join(problems)
                                   if problems else "")


def key_table(keys: Sequence[dict[str, Any]]) -> str:
    """Keys as `key_dict` gives them, one row each."""
    rows = [
        (k["tag"], k["algorithm"], k["role"].upper(), k["state"], k["created"] or "-",
         k.get("published") or "-", k.get("active") or "-", k.get("retired") or "-",
         "yes" if k["private_key_replicated"] else "no (Key Master's key store)",
         k["key_id"])
        for k in keys
    ]
    return table(("TAG", "ALGORITHM", "ROLE", "STATE", "CREATED", "PUBLISHED", "ACTIVE",
                  "RETIRED", "PRIVATE KEY REPLICATED", "KEY ID"), rows)
