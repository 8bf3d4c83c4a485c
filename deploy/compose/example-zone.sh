#!/bin/sh
# compose's one-shot `example-zone`: create $ZONE from $ZONE_FILE through the node
# API at $CLUSTERCTL_ENDPOINT (if it does not exist yet), then sign it.
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
clusterctl zone show "$ZONE"
