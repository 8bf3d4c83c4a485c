"""Debug-only memory breakdown of the control process, on SIGUSR2 (never on in production).

Owns the hook `bench.membreak` uses to say where the control process's heap
goes. Off unless the environment asks for it:

* `DNSCLUSTER_MEMDEBUG=PATH`: on SIGUSR2 the process writes to PATH (then
  renames PATH.tmp onto it) the live Python objects by type (count, shallow
  bytes, from `gc.get_objects()` and the objects they refer to), and, when
  tracing, the traced bytes grouped by owner module;
* `DNSCLUSTER_TRACEMALLOC=N`: `tracemalloc` is started with N frames at
  `install()`; each traced block is charged to the innermost frame in the
  project's own code (`node/...`), so dnspython objects built for the replica
  are charged to the replica's module, not to dnspython.

Last, the dump collects the cyclic garbage `gc.freeze()` kept (`frozen_garbage`: what
leaked because a zone-sized structure with a cycle was frozen, then dropped) and says
how much it was; this frees it, so a second dump no longer shows it.

Tracing slows the process several times over: a measurement only.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import tracemalloc
import types
from collections import Counter
from pathlib import Path
from types import FrameType

from node.malloc import trim

ENV_PATH = "DNSCLUSTER_MEMDEBUG"
ENV_TRACE = "DNSCLUSTER_TRACEMALLOC"
TOP = 60


def install() -> bool:
    """Install the SIGUSR2 hook if `DNSCLUSTER_MEMDEBUG` is set (main thread only)."""
    path = os.environ.get(ENV_PATH, "")
    if not path:
        return False
    frames = int(os.environ.get(ENV_TRACE, "0") or 0)
    if frames > 0 and not tracemalloc.is_tracing():
        tracemalloc.start(frames)

    def handler(signum: int, frame: FrameType | None) -> None:
        dump(Path(path))

    signal.signal(signal.SIGUSR2, handler)
    return True


def dump(path: Path) -> None:
    """Write the breakdown to `path` (atomically)."""
    lines = [f"# pymalloc: {pymalloc()}", f"# jemalloc: {jemalloc()}",
             f"# jemalloc heap profile: {jemalloc_profile(path.with_name(path.name + '.heap'))}",
             f"# RSS {_rss() / 2**20:.1f} MiB; after malloc_trim: "
             f"{_rss() / 2**20 if trim() else float('nan'):.1f} MiB; "
             f"frozen objects {gc.get_freeze_count()}"]
    if tracemalloc.is_tracing():
        total, groups = by_owner()
        lines.append(f"# traced: {total / 2**20:.1f} MiB, by owner (innermost node/ frame)")
        modules: dict[str, list[int]] = {}
        for owner, size, n in groups:
            m = modules.setdefault(owner.rsplit(":", 1)[0], [0, 0])
            m[0] += size
            m[1] += n
        lines += [f"{v[0] / 2**20:9.1f} {v[1]:>10}  {m}"
                  for m, v in sorted(modules.items(), key=lambda kv: -kv[1][0])[:TOP]]
        lines.append("# traced, by owner line")
        lines += [f"{size / 2**20:9.1f} {n:>10}  {owner}" for owner, size, n in groups[:TOP]]
    lines.append("# reachable from each owner (shared objects charged to the first): MiB, objects")
    try:
        lines += [f"{size / 2**20:9.1f} {n:>10}  {label}" for label, size, n in by_root()]
    except Exception as exc:  # a debug aid: never fail the dump for it
        lines.append(f"(by owner failed: {exc!r})")
    lines.append("# large containers not reached from the owners: shallow MiB, length, type, "
                 "held by (referrers, 3 levels)")
    try:
        lines += outside_roots()
    except Exception as exc:  # a debug aid: never fail the dump for it
        lines.append(f"(outside the owners failed: {exc!r})")
    finally:
        _LAST_SEEN.clear()  # ~600k ids at 30k names: not counted by `by_type` below
    lines.append("# objects by type: count, shallow MiB (gc-tracked and what they refer to)")
    try:
        lines += [f"{n:>10} {size / 2**20:9.1f}  {name}" for name, n, size in by_type()[:TOP]]
    except Exception as exc:  # a debug aid: never fail the dump for it
        lines.append(f"(by type failed: {exc!r})")
    lines.append(f"# frozen garbage: {frozen_garbage()}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def frozen_garbage() -> str:
    """Collect what `gc.freeze()` (node/gcwatch.py) kept from the collector: cyclic garbage
    among the frozen objects, which no later collection frees (a leak); then freeze again.
    Says how many objects that was and the RSS it gave back (after `malloc_trim`)."""
    before = _rss()
    # without the collector's callbacks: gcwatch freezes every object after a long full
    # collection (this one is), gc.garbage's too, and the second would then free nothing
    callbacks = gc.callbacks[:]
    gc.callbacks.clear()
    gc.unfreeze()
    flags = gc.get_debug()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)  # the garbage is listed in gc.garbage, not freed yet
        found = gc.collect()
        kinds = Counter(_kind(o) for o in gc.garbage)
        gc.garbage.clear()
        gc.set_debug(flags)
        gc.collect()  # now freed
    finally:
        gc.set_debug(flags)
        gc.freeze()
        gc.callbacks[:] = callbacks
    trim()
    top = ", ".join(f"{n} {k}" for k, n in kinds.most_common(12))
    return f"{found} unreachable objects in frozen cycles; RSS {before / 2**20:.1f} -> " \
           f"{_rss() / 2**20:.1f} MiB once collected; {top}"


def _kind(obj: object) -> str:
    t = type(obj)
    name = f"{getattr(t, '__module__', '?')}.{t.__qualname__}"
    if isinstance(obj, types.FrameType):
        name += f"({obj.f_code.co_filename.rsplit('/', 2)[-1]}:{obj.f_code.co_name})"
    elif isinstance(obj, types.FunctionType | types.CodeType):
        name += f"({getattr(obj, '__qualname__', getattr(obj, 'co_name', '?'))})"
    return name


def pymalloc() -> str:
    """The totals of `sys._debugmallocstats()` (it writes to the C stderr: captured)."""
    import tempfile
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    keep = ("# arenas allocated current", "# arenas highwater", "# bytes in allocated blocks",
            "# bytes in available blocks", "unused pools", "bytes lost to")
    return "; ".join(" ".join(ln.split()) for ln in text.splitlines()
                     if any(k in ln for k in keep))


def jemalloc() -> str:
    """jemalloc's own totals (`stats.*`, MiB) when the process runs on it: what the
    allocator handed out, C allocations (grpc, OpenSSL, ...) included, which tracemalloc
    does not see; "-" on another allocator."""
    import ctypes
    try:
        mallctl = ctypes.CDLL(None).mallctl
    except AttributeError:
        return "-"
    mallctl.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                        ctypes.c_void_p, ctypes.c_size_t]
    epoch = ctypes.c_uint64(1)
    size = ctypes.c_size_t(8)
    mallctl(b"epoch", ctypes.byref(epoch), ctypes.byref(size), ctypes.byref(epoch), 8)
    out = []
    # tcache: regions the threads' caches hold (active, not allocated); all arenas (4096)
    for name in ("allocated", "active", "metadata", "resident", "mapped", "retained",
                 "arenas.4096.tcache_bytes"):
        value = ctypes.c_size_t(0)
        size = ctypes.c_size_t(ctypes.sizeof(value))
        if mallctl(f"stats.{name}".encode(), ctypes.byref(value), ctypes.byref(size), None, 0):
            continue
        out.append(f"{name.rsplit('.', 1)[-1]} {value.value / 2**20:.1f}")
    return ", ".join(out)


def jemalloc_profile(path: Path) -> str:
    """Write jemalloc's heap profile (the sampled live allocations by C stack, for
    `jeprof`) to `path` when the process runs with `MALLOC_CONF=prof:true` (set by whoever
    starts the node: `malloc.jemalloc_env` leaves a given MALLOC_CONF alone); else "-"."""
    import ctypes
    try:
        mallctl = ctypes.CDLL(None).mallctl
    except AttributeError:
        return "-"
    on = ctypes.c_bool(False)
    size = ctypes.c_size_t(ctypes.sizeof(on))
    if mallctl(b"opt.prof", ctypes.byref(on), ctypes.byref(size), None, 0) or not on.value:
        return "-"
    name = ctypes.c_char_p(str(path).encode())
    if mallctl(b"prof.dump", None, None, ctypes.byref(name), ctypes.sizeof(name)):
        return "failed"
    return str(path)


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def by_type() -> list[tuple[str, int, int]]:
    """(type name, count, shallow bytes) of the live objects, largest first: the gc-tracked
    ones and the untracked ones they refer to (bytes, str, int), each counted once."""
    seen: set[int] = set()
    count: Counter[str] = Counter()
    size: Counter[str] = Counter()
    frozen = gc.get_freeze_count()
    gc.unfreeze()  # frozen objects are not listed by get_objects(); freeze them again below
    try:
        objects = gc.get_objects()
    finally:
        if frozen:
            gc.freeze()
    for obj in objects:
        for o in (obj, *gc.get_referents(obj)):
            if id(o) in seen:
                continue
            seen.add(id(o))
            t = type(o)
            name = f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t.__name__)}"
            count[name] += 1
            size[name] += sys.getsizeof(o, 0)
    return sorted(((n, count[n], size[n]) for n in count), key=lambda t: -t[2])


# the owners of zone-sized state in the control process, in the order they are charged
ROOTS = ("Replica", "ZoneSigner", "SigningManager", "ImageBuilder", "ImagePublisher",
         "Journals", "MirroredTable", "ZoneTable", "ZoneRepository")
_STOP = (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType,
         type, types.FrameType, types.CodeType, types.CoroutineType)
_STOP_MODULES = ("asyncio", "uvloop", "grpc", "concurrent", "threading", "logging",
                 "multiprocessing", "prometheus_client", "node.store", "_asyncio")


_LAST_SEEN: set[int] = set()  # ids `by_root` reached, for `outside_roots`
BIG = 5000  # items: a zone-sized container


def outside_roots(top: int = 12) -> list[str]:
    """The largest containers of `BIG` items or more that `by_root` did not reach (what its
    walk misses: held by closures, tasks, futures, the store's or a pool's objects), each
    with who holds it, three referrers deep."""
    seen = _LAST_SEEN
    frozen = gc.get_freeze_count()
    gc.unfreeze()  # until the holders are found: get_referrers skips the frozen objects too
    try:
        objects = gc.get_objects()
        big: list[object] = []
        listed: set[int] = {id(seen), id(objects)}
        for obj in objects:  # and what they refer to: a dict of atomic items is not tracked
            for o in (obj, *gc.get_referents(obj)):
                if isinstance(o, dict | list | set | frozenset | tuple) and len(o) >= BIG \
                        and id(o) not in seen and id(o) not in listed:
                    listed.add(id(o))
                    big.append(o)
        del objects
        big.sort(key=sys.getsizeof, reverse=True)
        out = []
        skip = {id(big), id(out)}
        for o in big[:top]:
            out.append(f"{sys.getsizeof(o) / 2**20:9.1f} {len(o):>10}  {_kind(o)}  held by "  # type: ignore[arg-type]
                       f"{_holders(o, 3, skip)}")
    finally:
        if frozen:
            gc.freeze()
    return out


def _holders(obj: object, depth: int, skip: set[int]) -> str:
    if depth == 0:
        return "..."
    found = gc.get_referrers(obj)
    skip = skip | {id(obj), id(found)}
    refs = []
    for r in found:
        if id(r) not in skip and not isinstance(r, types.FrameType | types.GeneratorType):
            refs.append(r)
            if len(refs) == 3:
                break
    del found
    if not refs:
        return "(nothing gc sees)"
    skip = skip | {id(refs)} | {id(r) for r in refs}
    parts = []
    for r in refs:
        parts.append(f"{_kind(r)}[{_holders(r, depth - 1, skip)}]")
    return "; ".join(parts)


def by_root() -> list[tuple[str, int, int]]:
    """(owner, shallow bytes, objects) of everything reachable from each instance of `ROOTS`
    (not through functions, modules, classes, event loops, clients or pools)."""
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    try:
        objects = gc.get_objects()
    finally:
        if frozen:
            gc.freeze()
    found: dict[str, list[object]] = {}
    for obj in objects:
        name = type(obj).__name__
        if name in ROOTS and not isinstance(obj, type):
            found.setdefault(name, []).append(obj)
    del objects
    seen: set[int] = set()
    out = []
    for label in ROOTS:
        size = n = 0
        stack = list(found.get(label, ()))
        for o in stack:
            seen.discard(id(o))  # a root reached from an earlier one is still its own
        while stack:
            o = stack.pop()
            if id(o) in seen or isinstance(o, _STOP):
                continue
            if type(o).__module__.startswith(_STOP_MODULES) and type(o).__name__ not in ROOTS:
                continue
            seen.add(id(o))
            size += sys.getsizeof(o, 0)
            n += 1
            stack.extend(gc.get_referents(o))
        out.append((f"{label} x{len(found.get(label, ()))}", size, n))
    _LAST_SEEN.clear()
    _LAST_SEEN.update(seen)
    return out


def by_owner() -> tuple[int, list[tuple[str, int, int]]]:
    """Traced bytes grouped by the innermost frame in the project's code ("file:function")."""
    snap = tracemalloc.take_snapshot()
    size: Counter[str] = Counter()
    count: Counter[str] = Counter()
    total = 0
    for stat in snap.statistics("traceback"):
        owner = _owner(stat.traceback)
        size[owner] += stat.size
        count[owner] += stat.count
        total += stat.size
    return total, sorted(((o, size[o], count[o]) for o in size), key=lambda t: -t[1])


def _owner(tb: tracemalloc.Traceback) -> str:
    for fr in reversed(tb):  # most recent first (a Traceback is oldest first)
        i = fr.filename.rfind("/node/")
        if i >= 0 and "/site-packages/" not in fr.filename:
            return f"{fr.filename[i + 1:]}:{fr.lineno}"
    fr = tb[-1]
    return f"(outside node) {'/'.join(fr.filename.rsplit('/', 2)[-2:])}:{fr.lineno}"
