"""`dns-node health`: probe the local node's gRPC health service (Kubernetes exec probes,
Docker HEALTHCHECK, compose `service_healthy`).

Reads the same configuration as the node (TOML + `DNSNODE_*`; `node_id` not
required), connects to `api.listen` (0.0.0.0 -> 127.0.0.1, :: -> ::1), with
TLS and the node's own certificate as client certificate when `api.ca_file`
is set, and asks `grpc.health.v1.Health/Check` for `readiness` (default) or
`liveness`. Exit 0 serving, 1 not serving or unreachable (one line on
stderr), 2 configuration or usage error. No etcd.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dns-node health")
    parser.add_argument("--config", "-c", help="the node's TOML configuration file")
    parser.add_argument("--service", choices=["liveness", "readiness"], default="readiness")
    parser.add_argument("--timeout", type=float, default=3.0)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    from node.config import ConfigError, load_config, split_host_port

    env = dict(os.environ)
    env.setdefault("DNSNODE_NODE_ID", "health-probe")
    try:
        config = load_config(args.config, env=env)
    except ConfigError as exc:
        sys.stderr.write(f"dns-node health: configuration error: {exc}\n")
        return 2
    host, port = split_host_port(config.api.listen, "api.listen")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    api = config.api
    if api.ca_file:
        creds = grpc.ssl_channel_credentials(
            root_certificates=Path(api.ca_file).read_bytes(),
            private_key=Path(api.key_file).read_bytes(),
            certificate_chain=Path(api.cert_file).read_bytes())
        channel = grpc.secure_channel(target, creds)
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
        except grpc.RpcError as exc:
            sys.stderr.write(f"dns-node health: {target} {args.service}: "
                             f"{exc.code().name}: {exc.details()}\n")
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    if resp.status != health_pb2.HealthCheckResponse.SERVING:
        sys.stderr.write(f"dns-node health: {target} {args.service}: {status}\n")
        return 1
    return 0
