#!/usr/bin/env bash
# One command for a new user on Debian 12: installs what is missing, builds everything, runs the test suite.
# Tests that need ../shared/data skip when it is absent, and fail instead when QPRUNER_REQUIRE_DATA=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${QPRUNER_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh" -DQPRUNER_BUILD_GUI=ON -DQPRUNER_BUILD_TESTS=ON
# Independent references, pinned, installed into the build directory only (never globally), in one npm call (a
# second `npm install --prefix` would prune the first one's packages):
#   @huggingface/tokenizers  Hugging Face's own tokenizers (JavaScript) for test_tokenizer_reference
#   node-llama-cpp           real llama.cpp (prebuilt CPU binaries, no CUDA/Vulkan variants) for test_families
HF_TOKENIZERS_VERSION=0.2.0
NODE_LLAMA_CPP_VERSION=3.21.1
NPM_DIR="$BUILD/npm/node_modules"
if [ ! -d "$NPM_DIR/@huggingface/tokenizers" ] || [ ! -f "$NPM_DIR/node-llama-cpp/dist/index.js" ] ||
   [ ! -d "$NPM_DIR/@node-llama-cpp/linux-x64" ]; then
  if command -v npm >/dev/null 2>&1; then
    NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-save --no-audit --no-fund --omit=optional --prefix "$BUILD/npm" \
      "@huggingface/tokenizers@$HF_TOKENIZERS_VERSION" "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" \
      "@node-llama-cpp/linux-x64@$NODE_LLAMA_CPP_VERSION" ||
      echo "run-tests: npm install failed: test_tokenizer_reference and test_families will skip (or fail with QPRUNER_REQUIRE_DATA=1)"
  else
    echo "run-tests: npm not found: test_tokenizer_reference and test_families will skip (or fail with QPRUNER_REQUIRE_DATA=1)"
  fi
fi
cd "$BUILD"
QT_QPA_PLATFORM=offscreen ctest --output-on-failure --timeout 900 -j "${QPRUNER_TEST_JOBS:-1}"
