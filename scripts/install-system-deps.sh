#!/usr/bin/env bash
# Installs the servers the tests start on loopback (Redis, PostgreSQL 15) from Debian's packages,
# only when they are missing. Needs root (CI runs as root) or passwordless sudo.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
    echo "error: missing ${need[*]} and not root; install them with apt-get" >&2; exit 1
  fi
fi
echo "installing from Debian: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
# Debian's postgresql package tries to start a cluster; in a container without an init system
# that fails harmlessly, and the tests start their own throwaway clusters anyway.
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
