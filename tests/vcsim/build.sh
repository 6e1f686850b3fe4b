#!/bin/sh
# Builds the vcsim launcher from Debian's govmomi (GOPATH mode, no network) and prints its path.
# Idempotent; concurrent runs are harmless: each builds to its own temp name and renames atomically.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/bin/vcsim-iaas"
mkdir -p "$here/bin"
if [ -x "$bin" ] && [ "$bin" -nt "$here/main.go" ]; then
    echo "$bin"
    exit 0
fi
gopath=$(mktemp -d)
tmp="$bin.$$.tmp"
trap 'rm -rf "$gopath" "$tmp"' EXIT
GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS= \
    go build -o "$tmp" "$here/main.go"
mv -f "$tmp" "$bin"
echo "$bin"
