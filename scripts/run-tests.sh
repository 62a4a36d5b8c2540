#!/usr/bin/env bash
# One command for a new user on Debian 12: installs what is missing, builds everything, runs the test suite.
# Tests that need ../shared/data skip when it is absent, and fail instead when QPRUNER_REQUIRE_DATA=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${QPRUNER_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh" -DQPRUNER_BUILD_GUI=ON -DQPRUNER_BUILD_TESTS=ON
# Hugging Face's own tokenizers (JavaScript) for test_tokenizer_reference, pinned, into the build directory only.
HF_TOKENIZERS_VERSION=0.2.0
if [ ! -d "$BUILD/npm/node_modules/@huggingface/tokenizers" ]; then
  if command -v npm >/dev/null 2>&1; then
    npm install --no-save --no-audit --no-fund --prefix "$BUILD/npm" "@huggingface/tokenizers@$HF_TOKENIZERS_VERSION" ||
      echo "run-tests: npm install of @huggingface/tokenizers failed: test_tokenizer_reference will skip (or fail with QPRUNER_REQUIRE_DATA=1)"
  else
    echo "run-tests: npm not found: test_tokenizer_reference will skip (or fail with QPRUNER_REQUIRE_DATA=1)"
  fi
fi
cd "$BUILD"
QT_QPA_PLATFORM=offscreen ctest --output-on-failure --timeout 900 -j "${QPRUNER_TEST_JOBS:-1}"
