"""Code that runs in the node's worker processes: plain data in, plain data out."""
