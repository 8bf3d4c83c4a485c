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
if clusterctl zone sign --help >/dev/null 2>&1; then
  clusterctl zone sign "$ZONE"
else
  echo "example-zone: this build has no 'clusterctl zone sign' yet; $ZONE stays unsigned"
fi
clusterctl zone show "$ZONE"
