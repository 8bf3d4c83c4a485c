"""Per-node online signing of every signed zone (stagger, refresh, signed-serial reporting)."""
