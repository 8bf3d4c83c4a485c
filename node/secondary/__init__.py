"""Secondary zones of outside primaries: transfer in (AXFR, then IXFR), timers, NOTIFY, status."""
