"""Serving workers: processes that answer DNS from zone images while the control process works.

`supervisor.py` (control process side) starts, restarts and stops the workers and
answers what they hand over; `images.py` builds and delivers the zone images;
`worker.py` is the worker process; `channel.py` and `protocol.py` are the link
between them. docs/processes.md says which process owns what.
"""
