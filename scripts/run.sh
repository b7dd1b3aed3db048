#!/usr/bin/env bash
# The run command: builds the engine and starts a demo cell on loopback (one
# domain, two users), printing the credentials and the commands to send and
# read a message. Installs swaks for the printed commands.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swaks >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq swaks >/dev/null
fi
swift build -c release --static-swift-stdlib --product postcell-engine 2>&1 | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }
exec "$(swift build -c release --static-swift-stdlib --show-bin-path)/postcell-engine" demo "$@"
