#!/usr/bin/env bash
# agentkernel serve against the published Node.js client (npm "agentkernel").
# Usage: AK=/path/to/agentkernel tests/api/run.sh
set -euo pipefail
cd "$(dirname "$0")"
: "${AK:?set AK to the agentkernel binary}"
if ! command -v node >/dev/null 2>&1; then
  echo "api tests need node (and npm): install them (apt-get install nodejs npm)" >&2
  exit 1
fi
if [ ! -d node_modules/agentkernel ]; then
  npm install --no-audit --no-fund
fi
exec node api-test.mjs
