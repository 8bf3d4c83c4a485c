#!/bin/sh
# compose's one-shot `example-zone`: create $ZONE from $ZONE_FILE through the node
# API at $CLUSTERCTL_ENDPOINT (if it does not exist yet), then sign it. With
# $RO_TRANSFER_KEY, make that TSIG transfer key and allow transfers signed with it,
# which the read-only node uses ([readonly] transfer_key), whatever its address.
set -eu
: "${ZONE:?zone name}" "${ZONE_FILE:?master file}"
if clusterctl zone show "$ZONE" >/dev/null 2>&1; then
  echo "example-zone: $ZONE exists"
else
  clusterctl zone create "$ZONE" --file "$ZONE_FILE"
fi
if clusterctl --json zone dnssec "$ZONE" | grep -q '"signed": true'; then
  echo "example-zone: $ZONE is signed already"
else
  clusterctl zone sign "$ZONE"
fi
if [ -n "${RO_TRANSFER_KEY:-}" ]; then
  clusterctl tsig show "$RO_TRANSFER_KEY" >/dev/null 2>&1 \
    || clusterctl tsig add "$RO_TRANSFER_KEY" --use transfer >/dev/null
  clusterctl zone update "$ZONE" --allow-transfer-key "$RO_TRANSFER_KEY" >/dev/null
fi
clusterctl zone show "$ZONE"
