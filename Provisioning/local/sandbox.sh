#!/usr/bin/env bash
# Runs one cell's engine in a bubblewrap sandbox under the cell's own uid.
# Usage: sandbox.sh CELL_UID CELL_GID DATA_DIR ENGINE_BINARY [engine args...]
# The data directory must be owned by CELL_UID; the engine sees it as /data.
set -euo pipefail
uid=$1 gid=$2 data=$3 engine=$4
shift 4
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups \
  bwrap --unshare-all --unshare-user --disable-userns \
        --die-with-parent --new-session --cap-drop ALL --hostname cell \
        --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
        --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin \
        --ro-bind "$engine" /engine \
        --proc /proc --dev /dev --bind "$data" /data --chdir /data \
        --clearenv --remount-ro / /engine "${@:-serve}" --config /data/cell.json
