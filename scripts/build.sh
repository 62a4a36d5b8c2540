#!/usr/bin/env bash
# Configures and builds QPruner Studio into build/ (Ninja, ccache when present).
#   scripts/build.sh [extra cmake -D options...]
# QPRUNER_BUILD_DIR overrides the build directory; QPRUNER_JOBS the parallel job count.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${QPRUNER_BUILD_DIR:-$ROOT/build}"
JOBS="${QPRUNER_JOBS:-$(nproc)}"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD" -j "$JOBS"
