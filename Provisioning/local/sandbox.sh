#!/usr/bin/env bash
# Runs one cell's engine in a bubblewrap sandbox under the cell's own uid
# (the line LocalProvisioner uses, docs/PROVISIONING.md, without its cgroups).
# Usage: sandbox.sh CELL_UID CELL_GID DATA_DIR ENGINE_BINARY [engine args...]
# The data directory must be owned by CELL_UID; the engine sees it as /data.
# No --die-with-parent: a cell keeps running when whatever started it exits.
set -euo pipefail
uid=$1 gid=$2 data=$3 engine=$4
shift 4
# The Swift runtime of a dynamically linked engine, read-only at its own path.
runtime=()
while read -r dir; do
  [ -n "$dir" ] && runtime+=(--ro-bind "$dir" "$dir")
done < <(ldd "$engine" | awk '$2 == "=>" && $3 ~ /^\// { sub("/[^/]*$", "", $3); print $3 }' \
           | grep -Ev '^/(usr|lib|lib64|lib32|libx32)(/|$)' | sort -u)
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups \
  bwrap --unshare-all --unshare-user --disable-userns \
        --new-session --cap-drop ALL --hostname cell \
        --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
        --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin \
        "${runtime[@]}" \
        --ro-bind "$engine" /engine \
        --proc /proc --dev /dev --bind "$data" /data --chdir /data \
        --clearenv --remount-ro / /engine "${@:-serve}" --config /data/cell.json
