"""The image builder's base answers read from the base image: `BaseImage`, `BaseAnswers`.

Worker-side, used by `node.image.overlay.ImageBuilder` (issue 10, memory). Once a
zone's full image is written, the builder's compile of it (the base, which each
next version evolves) needs, of its eager answers, only which keys exist: an
overlay writes a tombstone for a key the base had and a version dropped
(`CompiledZone.touched`: `IN_BASE` or None). A dict of every answer key to
`IN_BASE` was a bytes object and a dict entry per answer (~12 MiB of the
100k-name zone); the image's hash table has the same keys, and the builder maps
the image file anyway (its pages are the serving workers' too). `BaseAnswers` is
`CompiledZone.answers` for the base: the entries the evolves since the base
rendered, the keys they dropped, and for any other key a probe of the image's
hash table (`BaseImage.answer`: crc32 tag, linear probing, one comparison of the
record's key, as `ZoneImage` reads it; docs/image-format.md).
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import dns.name

from node.image import layout as L
from node.server.answer import Types, name_wire
from node.server.proofs import is_hashed_owner
from node.server.render import Entry

IN_BASE: Any = ()  # an answer key's value while its entry is the base image's (falsy)

_ANSWER = bytes((L.KIND_ANSWER,))
_NODE = bytes((L.KIND_NODE,))
_UNPACK = L.SLOT.unpack_from
_MISSING: Any = object()


class BaseImage:
    """A full image's hash table, read for which records it has (file mapped or bytes)."""

    __slots__ = ("_buf", "_hash", "_mask", "_mm", "nodes_and_answers")

    def __init__(self, buf: bytes | mmap.mmap, mm: mmap.mmap | None = None) -> None:
        fields = L.read_header(buf)
        if fields[2] & L.F_OVERLAY:
            raise ValueError("an overlay is no base image")
        self._buf = buf
        self._mm = mm
        self._hash, self._mask = fields[6], fields[7] - 1
        self.nodes_and_answers: int = fields[18]  # records in the hash table

    @classmethod
    def open(cls, path: Path) -> BaseImage:
        """Map the image file read-only (the mapping outlives a later unlink of the file)."""
        with path.open("rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return cls(mm, mm)
        except BaseException:
            mm.close()
            raise

    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()

    def _find(self, hkey: bytes, kind: bytes) -> int:
        """The offset just past the key of `hkey`'s record of `kind` (exact: the stored key
        is compared, not only its tag); -1 if the image has none."""
        buf = self._buf
        t = L.tag(hkey)
        mask = self._mask
        i = t & mask
        base = self._hash
        want = hkey + kind
        n = len(want) + 2
        while True:
            st, off = _UNPACK(buf, base + (i << 3))
            if st == t and buf[off + 2 : off + n] == want:
                return off + n
            if not st:
                return -1
            i = (i + 1) & mask

    def answer(self, hkey: bytes) -> bool:
        """True if the image has an answer record for `hkey` (owner wire + QTYPE)."""
        return self._find(hkey, _ANSWER) >= 0

    def name(self, owner: bytes) -> bool:
        """True if the image's node for `owner` owns RRsets (`N_NAME`)."""
        at = self._find(owner + b"\x00\x00", _NODE)
        return at >= 0 and bool(self._buf[at] & L.N_NAME)

    def answer_keys(self) -> Iterator[bytes]:
        """Every answer record's key (O(image): tests and debugging only)."""
        buf = self._buf
        for i in range(self._mask + 1):
            st, off = _UNPACK(buf, self._hash + (i << 3))
            if st:
                (n,) = L.REC_HEAD.unpack_from(buf, off)
                if buf[off + 2 + n] == L.KIND_ANSWER:
                    yield bytes(buf[off + 2 : off + 2 + n])


class BaseAnswers(MutableMapping[bytes, Entry]):
    """`CompiledZone.answers` of the builder's base: key (owner + QTYPE + class) -> entry,
    `IN_BASE` for an answer the base image holds and no evolve since has re-rendered."""

    __slots__ = ("_count", "_gone", "_image", "_own")

    def __init__(self, image: BaseImage, count: int) -> None:
        self._image = image
        self._count = count  # answer records in the image
        self._own: dict[bytes, Entry] = {}  # rendered since the base
        self._gone: set[bytes] = set()  # base keys an evolve dropped (unless in _own again)

    def _based(self, key: bytes) -> bool:
        return key not in self._gone and self._image.answer(key[:-2])

    def __contains__(self, key: object) -> bool:
        return key in self._own or (isinstance(key, bytes) and self._based(key))

    def get(self, key: bytes, default: Any = None) -> Any:
        entry = self._own.get(key, _MISSING)
        if entry is not _MISSING:
            return entry
        return IN_BASE if self._based(key) else default

    def __getitem__(self, key: bytes) -> Entry:
        entry = self.get(key, _MISSING)
        if entry is _MISSING:
            raise KeyError(key)
        return entry  # type: ignore[no-any-return]

    def __setitem__(self, key: bytes, entry: Entry) -> None:
        self._own[key] = entry

    def pop(self, key: bytes, default: Any = _MISSING) -> Any:
        entry = self._own.pop(key, _MISSING)
        if entry is _MISSING and self._based(key):
            entry = IN_BASE
        if entry is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        if self._image.answer(key[:-2]):
            self._gone.add(key)
        return entry

    def __delitem__(self, key: bytes) -> None:
        self.pop(key)

    def __len__(self) -> int:
        answer = self._image.answer
        shadowed = {k for k in self._own if answer(k[:-2])}  # counted in _count already
        return len(self._own) + self._count - len(self._gone | shadowed)

    def __iter__(self) -> Iterator[bytes]:
        """Every key (O(image): tests and debugging only)."""
        yield from self._own
        for hkey in self._image.answer_keys():
            key = hkey + b"\x00\x01"
            if key not in self._own and key not in self._gone:
                yield key


class BaseNames(MutableMapping[bytes, Types]):
    """`CompiledZone.names` of the builder's base: owner wire name -> its RRsets (the
    snapshot's), without a bytes key and a dict entry per name (~11 MiB at 100k names).

    The names the evolves since the base set or dropped are kept here (`_own`, in the
    order they were set, as a dict of the names had them; dropped ones in `_absent`),
    and so are the base's names read since (`_read`) and names known absent: a read
    costs once per base. Any other name is as the base image has it (a node record with
    `N_NAME`), with the RRsets of `nodes`, the version the builder evolves (set by
    `ImageBuilder` after each evolve): a name no version since the base changed has the
    same RRsets in every one. Iterating (and `under`) walks `nodes`, whose unchanged
    owners keep their order from version to version (`LayeredNodes`, dict updates): the
    base's names in that order, then the names set since, as a dict of the names had
    them."""

    __slots__ = ("_absent", "_count", "_image", "_last", "_own", "_read", "_sets", "nodes",
                 "signed")

    def __init__(self, image: BaseImage, nodes: Mapping[dns.name.Name, Types], signed: bool,
                 count: int) -> None:
        self._image = image
        self.nodes = nodes
        self.signed = signed
        self._count = count  # names now
        self._own: dict[bytes, Types] = {}  # set by an evolve since the base
        self._read: dict[bytes, Types] = {}  # the base's, read since (unchanged)
        self._absent: set[bytes] = set()  # dropped since the base, or read and not there
        self._sets = 0  # names set or dropped since the base
        # the last `under`: its tops, `_sets` then, its names (the overlay asks again for
        # the names below the cuts its evolve asked for: one walk of the zone, not two)
        self._last: tuple[frozenset[bytes], int, list[bytes]] | None = None

    def _lookup(self, owner: bytes) -> Types | None:
        types = self._own.get(owner) or self._read.get(owner)
        if types is not None or owner in self._absent:
            return types
        if self._image.name(owner):
            types = self.nodes.get(_name(owner))
            if types:
                self._read[owner] = types
                return types
        self._absent.add(owner)
        return None

    def get(self, owner: bytes, default: Any = None) -> Any:
        types = self._lookup(owner)
        return default if types is None else types

    def __contains__(self, owner: object) -> bool:
        return isinstance(owner, bytes) and self._lookup(owner) is not None

    def __getitem__(self, owner: bytes) -> Types:
        types = self._lookup(owner)
        if types is None:
            raise KeyError(owner)
        return types

    def __setitem__(self, owner: bytes, types: Types) -> None:
        if self._lookup(owner) is None:
            self._count += 1
            self._absent.discard(owner)
        self._read.pop(owner, None)
        self._own[owner] = types
        self._sets += 1

    def __delitem__(self, owner: bytes) -> None:
        if self._lookup(owner) is None:
            raise KeyError(owner)
        self._own.pop(owner, None)
        self._read.pop(owner, None)
        self._absent.add(owner)
        self._count -= 1
        self._sets += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[bytes]:
        """Every name (O(zone)): the base's, then those set since."""
        own, absent = self._own, self._absent
        signed = self.signed
        for name, types in self.nodes.items():
            if types and not (signed and is_hashed_owner(types)):
                owner = name_wire(name)
                if owner not in own and owner not in absent:
                    yield owner
        yield from own

    def under(self, tops: Iterable[bytes]) -> list[bytes]:
        """The names at or below one of `tops` (wire names), in iteration order: a label
        comparison per name of `nodes` instead of its wire form (O(zone) still)."""
        tops = frozenset(tops)
        last, self._last = self._last, None
        if last is not None and last[0] == tops and last[1] == self._sets:
            return list(last[2])  # nothing set or dropped since: the same names
        want = [(len(top), top[0], len(top[0]), top) for top in map(_labels, tops)]
        own, absent, signed, nodes = self._own, self._absent, self.signed, self.nodes
        out = []
        for name in nodes:  # the keys: C-level, no RRsets looked at but those below
            labels = name.labels
            depth = len(labels)
            for k, first, size, top in want:
                if depth >= k:
                    label = labels[-k]  # the label at the top's depth: most differ in length
                    if len(label) == size and (label == first or label.lower() == first) and (
                            tuple(x.lower() for x in labels[-k:]) == top):
                        break
            else:
                continue
            types = nodes[name]
            if types and not (signed and is_hashed_owner(types)):
                owner = name_wire(name)
                if owner not in own and owner not in absent:
                    out.append(owner)
        out.extend(owner for owner in own if any(_within(owner, top) for top in tops))
        self._last = (tops, self._sets, out)
        return list(out)


def _within(name: bytes, top: bytes) -> bool:
    """`name` is `top` or below it (lowercased wire names)."""
    while len(name) > len(top):
        name = name[name[0] + 1 :]
    return name == top


def _labels(wire: bytes) -> tuple[bytes, ...]:
    """The labels of a wire name, the root's empty one last (`Name.labels`)."""
    labels = []
    i = 0
    n = wire[0]
    while n:
        labels.append(wire[i + 1 : i + 1 + n])
        i += n + 1
        n = wire[i]
    labels.append(b"")
    return tuple(labels)


def _name(wire: bytes) -> dns.name.Name:
    """The `Name` of a lowercased wire name."""
    return dns.name.Name(_labels(wire))
