#!/usr/bin/env bash
# System packages the processors need, from Debian: exiftool (metadata library of record) and
# vipsthumbnail (the benchmark's baseline). Installs only what is missing.
# With --test, also Chromium: the browser test renders the API docs page (`make test` passes it).
set -euo pipefail
missing=()
if [ "${1:-}" = --test ]; then command -v chromium >/dev/null || missing+=(chromium); fi
command -v exiftool >/dev/null || missing+=(libimage-exiftool-perl)
command -v vipsthumbnail >/dev/null || missing+=(libvips-tools)
# HEIC: the pyvips wheel's libheif lacks an HEVC decoder; Debian's libheif (with libde265) has one.
ldconfig -p | grep -q 'libheif.so.1 ' || missing+=(libheif1)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "system-deps: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2; exit 1
  fi
  echo "system-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
