"""Whether this process may run a thread SCHED_FIFO (node/serving/realtime.py), asked of the kernel.

Root is not enough: a container's root has no CAP_SYS_NICE by default (Docker,
Kubernetes), and with CONFIG_RT_GROUP_SCHED a cgroup without real-time runtime
refuses the class to root as well; RLIMIT_RTPRIO alone grants it. So a test
asks: one thread of its own is put in the class and back at once.
"""

from __future__ import annotations

import threading

from node.serving import realtime


def realtime_granted() -> bool:
    """True if the kernel gives a thread of this process the serving workers' real-time class."""
    granted: list[bool] = []

    def probe() -> None:
        granted.append(realtime._fifo())
        realtime._normal()

    t = threading.Thread(target=probe, name="rt-probe")
    t.start()
    t.join(30)
    return granted == [True]
