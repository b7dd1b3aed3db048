#!/usr/bin/env bash
# The run command: installs what Postcell needs (Debian packages), builds,
# and runs the control plane with local cells on SQLite (`postcell up`),
# printing the panel URL and demo logins. State lives in ./state.
# Extra arguments go to `postcell up` (see `postcell up --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
if [ ${#postcell_need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${postcell_need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${postcell_need_apt[@]}" >/dev/null
fi
echo "== building"
swift build --product postcell-engine 2>&1 | { grep -vE '^\[[0-9]+/[0-9]+\] |unhandled; explicitly declare|CMakeLists.txt' || true; }
swift build --product postcell 2>&1 | { grep -vE '^\[[0-9]+/[0-9]+\] |unhandled; explicitly declare|CMakeLists.txt' || true; }
exec "$(swift build --show-bin-path)/postcell" up --state state "$@"
