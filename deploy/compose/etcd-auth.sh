#!/bin/sh
# dnscluster-etcd-auth: turn etcd authentication on, with the users the nodes need.
# Idempotent: safe to run again (it resets the node users' passwords to the files'
# contents, so it also rotates them). Used by compose (service etcd-auth), by the
# Kubernetes Job etcd-auth (the image has it as /usr/local/bin/dnscluster-etcd-auth)
# and by tests/deploy.
#
# Environment:
#   ETCDCTL_ENDPOINTS          etcd client URLs, comma-separated (read by etcdctl)
#   ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY   TLS to etcd (optional, read by etcdctl)
#   ETCD_ROOT_PASSWORD_FILE    password of etcd's `root` user (created if missing)
#   ETCD_NODE_USER             writable nodes' user (default dnscluster)
#   ETCD_NODE_PASSWORD_FILE    its password
#   ETCD_RO_USER               read-only nodes' user (default dnscluster-ro)
#   ETCD_RO_PASSWORD_FILE      its password; unset: no read-only user is made
#   DNSCLUSTER_PREFIX          key prefix (default /dnscluster/v1/)
#   WAIT_SECONDS               how long to wait for etcd to answer (default 120)
#
# Roles: `dnscluster-writable` reads and writes everything under the prefix;
# `dnscluster-readonly` reads zones/ and tsig/transfer/, writes only nodes/, alive/
# and transfers/ (never secrets/, where the private keys are, nor tsig/update/:
# DESIGN.md, read-only nodes). Check with `etcdctl --user dnscluster-ro get --prefix
# /dnscluster/v1/secrets/`: "permission denied".
set -eu

: "${ETCD_ROOT_PASSWORD_FILE:?path of the root password file}"
: "${ETCD_NODE_PASSWORD_FILE:?path of the node user password file}"
node_user=${ETCD_NODE_USER:-dnscluster}
ro_user=${ETCD_RO_USER:-dnscluster-ro}
prefix=${DNSCLUSTER_PREFIX:-/dnscluster/v1/}
wait_seconds=${WAIT_SECONDS:-120}
root_pw=$(cat "$ETCD_ROOT_PASSWORD_FILE")
node_pw=$(cat "$ETCD_NODE_PASSWORD_FILE")
unset ETCDCTL_USER ETCDCTL_PASSWORD

say() { echo "dnscluster-etcd-auth: $*"; }

# etcdctl reads a password up to the first blank: refuse what it would cut.
for pw in "$root_pw" "$node_pw"; do
  case "$pw" in
    ''|*[[:space:]]*) say "a password file is empty or has blanks inside (use hex)" >&2; exit 2 ;;
  esac
done

# Wait for etcd (a quorum) with a deadline.
deadline=$(( $(date +%s) + wait_seconds ))
until etcdctl --dial-timeout=2s --command-timeout=3s endpoint status >/dev/null 2>&1 \
      || etcdctl --dial-timeout=2s --command-timeout=3s --user "root:$root_pw" \
           endpoint status >/dev/null 2>&1; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    say "etcd at ${ETCDCTL_ENDPOINTS:-127.0.0.1:2379} did not answer within ${wait_seconds}s" >&2
    exit 1
  fi
  sleep 2
done

# Auth already on? Then every call needs root's credentials.
if etcdctl user list >/dev/null 2>&1; then
  auth_on=no
  ctl() { etcdctl "$@"; }
else
  auth_on=yes
  ctl() { etcdctl --user "root:$root_pw" "$@"; }
  ctl user list >/dev/null || { say "auth is on and root's password is not accepted" >&2; exit 1; }
fi

ensure_user() {  # name password
  # a `user get` that fails for a moment (a member catching up) must not end in
  # "user name already exists": an add that fails falls back to setting the password
  if ! ctl user get "$1" >/dev/null 2>&1 \
      && printf '%s\n' "$2" | ctl user add "$1" --interactive=false >/dev/null 2>&1; then
    say "user $1 created"
  else
    printf '%s\n' "$2" | ctl user passwd "$1" --interactive=false >/dev/null
  fi
}

ensure_role() {  # name
  ctl role get "$1" >/dev/null 2>&1 || { ctl role add "$1" >/dev/null; say "role $1 created"; }
}

ensure_user root "$root_pw"
ctl user grant-role root root >/dev/null 2>&1 || true

ensure_role dnscluster-writable
ctl role grant-permission dnscluster-writable --prefix=true readwrite "$prefix" >/dev/null
ensure_user "$node_user" "$node_pw"
ctl user grant-role "$node_user" dnscluster-writable >/dev/null

ensure_role dnscluster-readonly
ctl role grant-permission dnscluster-readonly --prefix=true read "${prefix}zones/" >/dev/null
ctl role grant-permission dnscluster-readonly --prefix=true readwrite "${prefix}nodes/" >/dev/null
ctl role grant-permission dnscluster-readonly --prefix=true readwrite "${prefix}alive/" >/dev/null
# its own status for secondary zones of outside primaries (clusterctl zone show)
ctl role grant-permission dnscluster-readonly --prefix=true readwrite "${prefix}transfers/" >/dev/null
# TSIG transfer keys only (read-only nodes sign their own transfers); never tsig/update/
ctl role grant-permission dnscluster-readonly --prefix=true read "${prefix}tsig/transfer/" >/dev/null
if [ -n "${ETCD_RO_PASSWORD_FILE:-}" ]; then
  ensure_user "$ro_user" "$(cat "$ETCD_RO_PASSWORD_FILE")"
  ctl user grant-role "$ro_user" dnscluster-readonly >/dev/null
fi

if [ "$auth_on" = no ]; then
  ctl auth enable >/dev/null
  say "authentication enabled"
fi
say "ready: user $node_user may use $prefix only${ETCD_RO_PASSWORD_FILE:+; $ro_user is read-only}"
