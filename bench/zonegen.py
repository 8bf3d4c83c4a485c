"""Synthetic benchmark zones: an N-name master file and a dnsperf query file drawn from it.

The zone has, per generated name, a mix close to a hosting zone: mostly A,
some A+AAAA, AAAA only, MX, TXT, a few CNAMEs (to names in the zone) and
delegations (NS with glue below the cut). Generation is deterministic for a
given seed. The query file has one `name type` line per query: existing names
with their types (CNAME owners asked for A, delegations asked below the cut,
which gives referrals) and about `nx_ratio` of names that do not exist.

    python -m bench.zonegen --names 100000 --out /tmp/bench   # bench.test.zone, bench.test.queries
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ZONE = "bench.test."
DEFAULT_NAMES = 100_000

# (kind, weight): the share of generated names of each kind.
KINDS: tuple[tuple[str, int], ...] = (
    ("a", 55),
    ("a_aaaa", 20),
    ("aaaa", 10),
    ("mx", 6),
    ("txt", 6),
    ("cname", 2),
    ("delegation", 1),
)


@dataclass(frozen=True, slots=True)
class GeneratedZone:
    """What `generate` wrote: paths and counts (RRsets include the apex ones)."""

    origin: str
    zone_file: Path
    query_file: Path
    names: int
    rrsets: int
    records: int
    queries: int


def _ipv4(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _ipv6(i: int) -> str:
    return f"2001:db8:{(i >> 16) & 0xFFFF:x}:{i & 0xFFFF:x}::1"


def apex_lines(origin: str) -> list[str]:
    """The zone's apex (serial 1) and the hosts it names: a valid zone on its own."""
    return [
        f"$ORIGIN {origin}",
        "$TTL 3600",
        f"@ IN SOA ns1.{origin} hostmaster.{origin} 1 7200 3600 604800 300",
        "@ IN NS ns1",
        "@ IN NS ns2",
        "@ IN MX 10 mail",
        '@ IN TXT "v=spf1 -all"',
        "ns1 IN A 192.0.2.1",
        "ns2 IN A 192.0.2.2",
        "mail IN A 192.0.2.25",
    ]


def generate(
    out_dir: Path,
    names: int = DEFAULT_NAMES,
    origin: str = DEFAULT_ZONE,
    queries: int | None = None,
    nx_ratio: float = 0.10,
    seed: int = 1,
) -> GeneratedZone:
    """Write `<origin>zone` and `<origin>queries` into `out_dir`; return what was written."""
    if names < 10:
        raise ValueError("--names must be at least 10")
    if not origin.endswith("."):
        origin += "."
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    zone_file = out_dir / f"{origin}zone"
    query_file = out_dir / f"{origin}queries"
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    lines = apex_lines(origin)
    rrsets = 7  # SOA, NS, MX, TXT at the apex; A of ns1, ns2 and mail
    records = len(lines) - 2
    pool: list[tuple[str, str]] = [("ns1", "A"), ("mail", "A"), ("@", "MX"), ("@", "SOA")]
    plain: list[str] = []
    for i in range(names):
        kind = rng.choices(kinds, weights)[0]
        label = f"h{i:x}-{rng.randrange(36**3):03x}"
        if kind == "a":
            lines.append(f"{label} IN A {_ipv4(i)}")
            pool.append((label, "A"))
            plain.append(label)
            rrsets += 1
            records += 1
        elif kind == "a_aaaa":
            lines.append(f"{label} IN A {_ipv4(i)}")
            lines.append(f"{label} IN AAAA {_ipv6(i)}")
            pool += [(label, "A"), (label, "AAAA")]
            plain.append(label)
            rrsets += 2
            records += 2
        elif kind == "aaaa":
            lines.append(f"{label} IN AAAA {_ipv6(i)}")
            pool.append((label, "AAAA"))
            rrsets += 1
            records += 1
        elif kind == "mx":
            lines.append(f"{label} IN MX 10 mail")
            lines.append(f"{label} IN MX 20 mx2.{label}")
            lines.append(f"mx2.{label} IN A {_ipv4(i)}")
            pool += [(label, "MX"), (f"mx2.{label}", "A")]
            rrsets += 2
            records += 3
        elif kind == "txt":
            lines.append(f'{label} IN TXT "bench record {i}" "token={rng.getrandbits(64):016x}"')
            pool.append((label, "TXT"))
            rrsets += 1
            records += 1
        elif kind == "cname" and plain:
            lines.append(f"{label} IN CNAME {rng.choice(plain)}")
            pool.append((label, "A"))
            rrsets += 1
            records += 1
        else:  # delegation (or a CNAME before any target exists)
            lines.append(f"{label} IN NS ns.{label}")
            lines.append(f"{label} IN NS ns.example.net.")
            lines.append(f"ns.{label} IN A {_ipv4(i)}")
            pool.append((f"www.{label}", "A"))
            rrsets += 2  # NS at the cut, glue A
            records += 3
    zone_file.write_text("\n".join(lines) + "\n")
    total = queries if queries is not None else max(names, 1000)
    qlines: list[str] = []
    for _ in range(total):
        if rng.random() < nx_ratio:
            qlines.append(f"nx-{rng.getrandbits(40):x}.{origin} A")
        else:
            owner, rtype = rng.choice(pool)
            name = origin if owner == "@" else f"{owner}.{origin}"
            qlines.append(f"{name} {rtype}")
    query_file.write_text("\n".join(qlines) + "\n")
    return GeneratedZone(origin, zone_file, query_file, names, rrsets, records, total)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.zonegen", description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=DEFAULT_NAMES, help="generated names (100000)")
    p.add_argument("--zone", default=DEFAULT_ZONE, help="zone origin (bench.test.)")
    p.add_argument("--queries", type=int, default=None, help="query lines (default: --names)")
    p.add_argument("--nx-ratio", type=float, default=0.10, help="share of NXDOMAIN queries")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="output directory")
    args = p.parse_args(argv)
    try:
        z = generate(args.out, args.names, args.zone, args.queries, args.nx_ratio, args.seed)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"zonegen: {exc}\n")
        return 1
    sys.stdout.write(
        f"{z.zone_file}: {z.names} names, {z.rrsets} RRsets, {z.records} records\n"
        f"{z.query_file}: {z.queries} queries\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
