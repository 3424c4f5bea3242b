#!/usr/bin/env bash
# Validates docker-compose.yml with a real Compose implementation (no Docker engine needed for `config`).
# Uses `docker compose` or `docker-compose` when present; installs Debian's docker-compose otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
if docker compose version >/dev/null 2>&1; then
  exec docker compose config -q
fi
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's docker-compose to validate docker-compose.yml ..."
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  else
    echo "docker-compose is missing and cannot be installed here (need root and apt-get)" >&2
    exit 1
  fi
fi
docker-compose config -q
echo "docker-compose.yml is valid"
