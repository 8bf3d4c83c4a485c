"""Third-party DNSSEC judges for tests: ldns-verify-zone, dnssec-verify, delv."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dns.name
import dns.query
import dns.rdatatype
import dns.zone


def axfr_text(host: str, port: int, zone: str) -> str:
    z = dns.zone.from_xfr(dns.query.xfr(host, zone, port=port, timeout=20, relativize=False),
                          relativize=False)
    return z.to_text(relativize=False, want_origin=True)


def ldns_verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ldns-verify-zone", "-V", "2", str(path)], capture_output=True,
                          text=True, timeout=120)


def dnssec_verify(path: Path, zone: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["dnssec-verify", "-o", zone, str(path)], capture_output=True,
                          text=True, timeout=120)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def anchor_file(path: Path, zone: str, dnskeys: list[str]) -> Path:
    """A delv trust-anchors file with the zone's KSK DNSKEY records (flags 257)."""
    lines = []
    for text in dnskeys:
        flags, proto, alg, key = text.split(None, 3)
        lines.append(f'  {zone} static-key {flags} {proto} {alg} "{key.replace(" ", "")}";')
    path.write_text("trust-anchors {\n" + "\n".join(lines) + "\n};\n")
    return path


def delv(host: str, port: int, anchors: Path, zone: str, name: str, rdtype: str = "A"
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["delv", f"@{host}", "-p", str(port), "-a", str(anchors), f"+root={zone}", name, rdtype,
         "+nocomments"],
        capture_output=True, text=True, timeout=30)


def fully_validated(res: subprocess.CompletedProcess[str]) -> bool:
    """delv's verdict: "; fully validated" (a negative answer also exits non-zero, with
    "; negative response, fully validated")."""
    return "fully validated" in res.stdout and "resolution failed: broken" not in res.stdout


def signed_snapshot(text: str, origin: str, nsec3: bool, now: int) -> object:
    """`text` as a `ZoneSnapshot` signed by a fresh ECDSA KSK and ZSK (NSEC or NSEC3)."""
    import dataclasses
    from datetime import UTC, datetime

    from node.dnssec.denial import DenialParams
    from node.dnssec.keys import load_private_key, new_key
    from node.dnssec.signer import SigningKey
    from node.dnssec.zonesigner import SigningParams, ZoneSigner
    from node.zones.model import snapshot_from_text

    name = dns.name.from_text(origin)
    keys = []
    for role in ("ksk", "zsk"):
        key, pem = new_key(name, 13, role, now=datetime.fromtimestamp(now, UTC))  # type: ignore[arg-type]
        keys.append(SigningKey(key, load_private_key(pem)))
    signer = ZoneSigner(name, SigningParams(denial=DenialParams(nsec3=nsec3)), keys)
    plain = snapshot_from_text(text, name, allow_transfer=["127.0.0.1/32"])
    res = signer.sign(plain.nodes, None, now)
    return dataclasses.replace(plain, nodes=res.nodes, signed=True)
