"""A collection of the cyclic garbage collector may start at any allocation, so also while
a thread is in the middle of a metrics scrape. `node/gcwatch.py` counts every collection in
`dnscluster_gc_pause_seconds` from the collector's callback: the callback must never wait
for a lock the interrupted scrape holds (a thread that waits for itself never returns, and
the next collection in any other thread waits behind it: the node stops).

Run in a child process (a deadlock there must not hang the suite): a trace function starts
a young collection before every line of prometheus_client that the scrape runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, sys
from prometheus_client import CollectorRegistry, generate_latest
from node import gcwatch

registry = CollectorRegistry()
gcwatch.install(registry)
for generation in (0, 1, 2):
    gc.collect(generation)  # every generation has its series

def collect_at_every_line(frame, event, arg):
    if "prometheus_client" not in frame.f_code.co_filename:
        return None
    def line(frame, event, arg):
        if event == "line":
            gc.collect(0)  # what an allocation on this line may start
        return line
    return line

sys.settrace(collect_at_every_line)
text = generate_latest(registry).decode()
sys.settrace(None)
assert 'dnscluster_gc_pause_seconds_count{generation="0"}' in text, text
print("scraped")
"""


def test_a_collection_during_a_scrape_does_not_deadlock() -> None:
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError("a scrape interrupted by a collection never finished "
                             "(the GC callback waits for the metric lock the scrape holds)"
                             ) from None
    assert done.returncode == 0 and "scraped" in done.stdout, done.stderr[-2000:]
