#!/usr/bin/env bash
# Runs the end-to-end demo against a throwaway registry; installs what it needs on Debian first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
exec npx tsx scripts/demo.ts
