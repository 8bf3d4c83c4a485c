"""Shared test helpers: a real etcd process (`etcd.py`) and condition waits (`wait.py`)."""
