"""File-backed zones: a master file on one node, its only primary and fixed Key Master."""
