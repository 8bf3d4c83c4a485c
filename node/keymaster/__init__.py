"""The Key Master role: role record, pure decisions, fenced etcd actions, duties."""
