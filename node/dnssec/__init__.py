"""Pure DNSSEC core: algorithms, keys, KEK wrapping, fast RRset signing, NSEC/NSEC3, DS.

No I/O here (STYLE R1): no asyncio, grpc, etcd, store or server imports. The
service layer (`node/signing/`) feeds zone snapshots in and takes signed
node maps out.
"""
