"""`trust-anchors export` BIND formats against BIND itself: `named-checkconf` accepts the
static (`static-ds`) and the RFC 5011 managed (`initial-key`, `initial-ds`) clauses,
including a stand-by key next to the active one (it checks syntax and base64, not
whether the keys are right: the Unbound test shows the anchors work)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import dns.name
import pytest

from node.cli.anchors import anchor_lines
from node.dnssec.keys import new_key

pytestmark = pytest.mark.skipif(shutil.which("named-checkconf") is None,
                                reason="named-checkconf (apt package bind9) is needed")

ZONE = dns.name.from_text("anchors.test.")


@pytest.mark.parametrize("fmt", ["bind", "bind-initial-key", "bind-initial-ds"])
@pytest.mark.parametrize("algorithm", [8, 13, 15])
def test_named_checkconf_accepts_the_clause(tmp_path: Path, fmt: str, algorithm: int) -> None:
    now = datetime.now(UTC)
    active, _ = new_key(ZONE, algorithm, "ksk", now=now)
    standby, _ = new_key(ZONE, algorithm, "ksk", now=now, state="published")
    conf = tmp_path / "named.conf"
    conf.write_text("\n".join(anchor_lines(ZONE, [active, standby], fmt)) + "\n")
    res = subprocess.run(["named-checkconf", str(conf)], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr + conf.read_text()
    if fmt == "bind-initial-key":  # a check of the test: named-checkconf reads the key
        conf.write_text(conf.read_text().replace(f' {algorithm} "', f' {algorithm} "!'))
        bad = subprocess.run(["named-checkconf", str(conf)], capture_output=True, text=True,
                             timeout=30)
        assert bad.returncode != 0 and "base64" in bad.stdout + bad.stderr
