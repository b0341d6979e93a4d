#!/usr/bin/env sh
# Install the Debian packages the project needs (as root), or stop at once naming the command.
# Usage: tools/system-packages.sh PACKAGE:COMMAND ...   (COMMAND proves the package is there)
set -eu
missing=""
for pair in "$@"; do
    pkg=${pair%%:*}
    cmd=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing system package(s):$missing" >&2
    echo "run:   sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing system package(s):$missing"
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
}
