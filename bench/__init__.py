"""Benchmarks: throughput and memory side by side with Knot DNS, cluster convergence.

Run from the repository root as modules (`python -m bench.qps`, ...); see
`bench/README.md`. Nothing in `node/` imports this package.
"""
