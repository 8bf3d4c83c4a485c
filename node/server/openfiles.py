"""The open-files limit a node needs for its TCP connection cap (moved out of `listener.py`).

Raises the soft RLIMIT_NOFILE to hold the cap plus `FD_RESERVE`; where the
hard limit does not allow it, the cap is lowered to what fits, with an event.
"""

from __future__ import annotations

import logging
import resource

from node.events import Event, emit

# descriptors besides DNS TCP connections: etcd and API connections, the metrics
# server, UDP sockets, logs, the signing workers' pipes
FD_RESERVE = 256


def fit_open_files(max_tcp: int) -> int:
    """Raise the soft open-files limit to hold `max_tcp` connections; returns the cap that fits.

    Without this, a node started with the common soft limit of 1,024 would fail
    `accept()` with EMFILE before reaching the default cap of 1,000 connections
    (and starve its own etcd and API connections).
    """
    needed = max_tcp + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return max_tcp
    limit = needed if hard == resource.RLIM_INFINITY or hard >= needed else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    except (ValueError, OSError):
        limit = soft
    if limit > soft:
        emit(Event.OPEN_FILES_RAISED, before=soft, after=limit)
    if limit >= needed:
        return max_tcp
    cap = max(limit - FD_RESERVE, limit // 2)
    emit(Event.OPEN_FILES_LOW, logging.WARNING, limit=limit, hard_limit=hard, needed=needed,
         max_tcp_connections=cap, configured=max_tcp)
    return cap
