#!/usr/bin/env bash
# Debian packages both commands need to build and run Postcell: the system
# libraries Package.swift links (zlib, libpwquality with cracklib's
# dictionary, libqrencode) and the cell sandbox (bubblewrap; setpriv is in util-linux).
# Sourced by scripts/up.sh and scripts/test.sh; needs root for apt.
postcell_need_apt=()
[ -f /usr/include/zlib.h ] || postcell_need_apt+=(zlib1g-dev)
[ -f /usr/include/pwquality.h ] || postcell_need_apt+=(libpwquality-dev)
[ -f /usr/include/qrencode.h ] || postcell_need_apt+=(libqrencode-dev)
[ -e /usr/share/dict/cracklib-small ] || [ -e /var/cache/cracklib/cracklib_dict.pwd ] || postcell_need_apt+=(cracklib-runtime)
command -v bwrap >/dev/null || postcell_need_apt+=(bubblewrap)
[ -f /usr/share/publicsuffix/public_suffix_list.dat ] || postcell_need_apt+=(publicsuffix)
command -v pkg-config >/dev/null || postcell_need_apt+=(pkg-config)
