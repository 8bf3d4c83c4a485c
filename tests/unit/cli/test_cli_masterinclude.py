"""node/cli/masterinclude.py: clusterctl expands `$INCLUDE` and maps lines back to files."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from node.cli.masterinclude import expand
from node.cli.output import UsageError

ZONE = dns.name.from_text("mf.test.")


def test_include_is_inlined_with_its_origin_and_the_old_one_restored(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "a.zone").write_text("www A 192.0.2.1\n$ORIGIN deep\nx A 192.0.2.2\n")
    main = tmp_path / "main.zone"
    text = "$ORIGIN mf.test.\n$INCLUDE \"inc/a.zone\" sub ; c\nafter A 192.0.2.3\n"
    out = expand(str(main), text, ZONE)
    assert out.text.splitlines() == [
        "$ORIGIN mf.test.", "$ORIGIN sub.mf.test.", "www A 192.0.2.1", "$ORIGIN deep",
        "x A 192.0.2.2", "$ORIGIN mf.test.", "after A 192.0.2.3"]
    assert out.locate("zone text for mf.test. does not parse: line 5: bad") == (
        f"zone text for mf.test. does not parse: {tmp_path / 'inc' / 'a.zone'}:3: bad")
    assert out.locate("no line here") == "no line here"


def test_a_missing_or_looping_include_names_the_line(tmp_path: Path) -> None:
    main = tmp_path / "main.zone"
    with pytest.raises(UsageError, match=rf"{main}:2: \$INCLUDE nope.zone: cannot read"):
        expand(str(main), "; x\n$INCLUDE nope.zone\n", ZONE)
    main.write_text("$INCLUDE main.zone\n")
    with pytest.raises(UsageError, match="nested more than"):
        expand(str(main), main.read_text(), ZONE)
