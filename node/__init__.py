"""dnscluster node: a multi-master authoritative DNS server whose only state is etcd."""

__version__ = "0.1.0"
