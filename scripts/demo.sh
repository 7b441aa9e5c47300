#!/usr/bin/env bash
# Runs the end-to-end demo against a throwaway registry; installs what it needs on Debian first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)

if ((${#missing[@]} > 0)); then
  if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "demo: ${missing[*]} not installed, and installing needs root or sudo" >&2
    echo "demo: run as root: apt-get update && apt-get install -y docker-registry skopeo" >&2
    exit 1
  fi
  echo "demo: installing docker-registry and skopeo (missing: ${missing[*]})"
  "${as_root[@]}" apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y docker-registry skopeo
fi

if [[ ! -d node_modules ]]; then
  echo "demo: installing npm dependencies"
  npm ci
fi

exec npx tsx scripts/demo.ts
