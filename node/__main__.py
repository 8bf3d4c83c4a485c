"""`dns-node --config FILE` / `python -m node`: parse arguments, load the config, run the daemon."""

from __future__ import annotations

import argparse
import os
import sys

from node.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else argv
    # full zone images are rendered by a forked child (node/image/forked.py) that never
    # uses grpc: grpc's fork handlers (they pause its threads around each fork) stay off
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    if argv[:1] == ["health"]:
        from node.probe import main as health_main

        return health_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="dns-node", description="dnscluster DNS node",
        epilog="dns-node health [--config FILE] [--service liveness|readiness]: probe a "
               "running node through its gRPC health service (exit 0 serving, 1 not, 2 usage)")
    parser.add_argument("--config", "-c", help="TOML configuration file (env DNSNODE_* overrides)")
    parser.add_argument("--check", action="store_true", help="check the configuration and exit")
    args = parser.parse_args(argv)
    from node.config import load_config
    from node.nodes.advertise import advertised

    try:
        config = load_config(args.config)
        # a wildcard listen address needs an address to advertise (this host's, or
        # dns.advertise): checked here, where the host is the one the node runs on
        advertised(config.dns.listen, config.dns.advertise)
        advertised(config.dns.tls_listen, config.dns.advertise, "dns.tls_listen")
    except ConfigError as exc:
        sys.stderr.write(f"dns-node: configuration error: {exc}\n")
        return 2
    if args.check:
        sys.stderr.write("dns-node: configuration OK\n")
        return 0
    if from_command_line:  # not for a caller's own argv (it would run its command line)
        from node.malloc import use_jemalloc

        use_jemalloc()  # the control process: may exec it again (same pid) with jemalloc
    from node.daemon import run, setup_logging

    setup_logging(config.log.level)
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
