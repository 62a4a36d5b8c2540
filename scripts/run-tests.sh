#!/usr/bin/env bash
# One command for a new user on Debian 12: installs what is missing, builds everything, runs the test suite.
# Tests that need ../shared/data skip when it is absent, and fail instead when QPRUNER_REQUIRE_DATA=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${QPRUNER_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh" -DQPRUNER_BUILD_GUI=ON -DQPRUNER_BUILD_TESTS=ON
cd "$BUILD"
QT_QPA_PLATFORM=offscreen ctest --output-on-failure --timeout 900 -j "${QPRUNER_TEST_JOBS:-1}"
