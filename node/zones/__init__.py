"""Zones: pure values (`model`), etcd-backed changes (`repository`), watch-fed copies (`replica`)."""
