#!/usr/bin/env bash
# One command for a new user on Debian 12: installs what is missing, builds, and starts QPruner Studio.
#   scripts/run-app.sh [MODEL] [qpruner-studio options]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh" -DQPRUNER_BUILD_GUI=ON
exec "${QPRUNER_BUILD_DIR:-$ROOT/build}/app/qpruner-studio" "$@"
