"""`RecordTuple`: a decoded RRset's records as a tuple, in place of dnspython's dict.

dnspython's `dns.set.Set` (an RRset's base) keeps its records in `self.items`, a
dict of record -> None: 224 octets even for the one record most RRsets of a zone
hold, 21 MiB of a 100k-name zone's replica (issue 10, memory). The replica's
RRsets are never changed once decoded (a snapshot is immutable), so `decode.py`
gives them this tuple subclass instead (48 octets for one record). Everything
`Set` and `Rdataset` read from `items` works, in C where the dict was: `len`,
iteration (in order), `in`, `itertools.islice` (indexing an RRset); `==` against
another `RecordTuple` or a dict, order ignored, as the dict's; `keys()` and
`items[record]` for `dict.update` (`Set.copy` makes a dict again, a copy may be
changed). A change to the RRset itself (`add`, `discard`, `clear`, ...) raises
instead of changing a published snapshot.

Only stdlib here: the signing pool's processes unpickle these.
"""

from __future__ import annotations


class RecordTuple(tuple):  # type: ignore[type-arg]
    """Distinct records in order; read as dnspython reads a `Set`'s `items` dict."""

    __slots__ = ()

    def keys(self) -> RecordTuple:
        return self

    def __getitem__(self, key: object) -> object:  # type: ignore[override]
        if isinstance(key, (int, slice)):  # a position, as a tuple (a record is neither)
            return tuple.__getitem__(self, key)
        if tuple.__contains__(self, key):
            return None  # a record's value in dnspython's dict
        raise KeyError(key)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordTuple):
            if len(self) == 1 == len(other):
                return tuple.__eq__(self, other)
            other = dict.fromkeys(other)
        if isinstance(other, dict):
            return len(self) == len(other) and all(rd in other for rd in self)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # as the dict it replaces

    def __repr__(self) -> str:
        return f"RecordTuple({tuple.__repr__(self)})"
