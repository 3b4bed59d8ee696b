#!/usr/bin/env bash
# agentkernel mcp-server against the official MCP TypeScript SDK client.
# Usage: AK=/path/to/agentkernel tests/mcp/run.sh
set -euo pipefail
cd "$(dirname "$0")"
: "${AK:?set AK to the agentkernel binary}"
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP: MCP tests need node (and npm); node is not installed"
  exit 0
fi
if [ ! -d node_modules/@modelcontextprotocol/sdk ]; then
  npm install --no-audit --no-fund
fi
exec node mcp-test.mjs
