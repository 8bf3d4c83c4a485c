"""Zones: pure values (`model`), etcd-backed changes (`repository`), watch-fed replicas."""
