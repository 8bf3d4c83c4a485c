"""dnscluster node: a multi-master authoritative DNS server whose only state is etcd.

Importing the package silences exactly one library warning, before anything
imports `dns.dnssec`: cryptography (>= 46) deprecates DSA, and dnspython's
DSA module touches the deprecated names when it is imported, so every
`clusterctl` command and every `dns-node` (and its spawned signing workers)
would print four `CryptographyDeprecationWarning`s. DSA is not among the
algorithms we sign or validate with (DESIGN.md), so the warning says nothing
to our users. Both entry points (`node.cli.main`, `node.__main__`) import
this package first. The filter names the warning's base class (`UserWarning`), not
cryptography's own: importing cryptography here would load it in every process that
imports the package, serving workers included, which never use it.
"""

import warnings

warnings.filterwarnings(
    "ignore",
    message=r"DSA is deprecated and support will be removed in a future release\.",
    category=UserWarning,  # cryptography.utils.CryptographyDeprecationWarning's base
)

__version__ = "0.1.0"
