#!/usr/bin/env bash
# Installs the Debian 12 packages QPruner Studio builds and tests against.
# Idempotent: packages already present are skipped; nothing is installed when all are there.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config ccache
  qt6-base-dev qt6-svg-dev libqt6sql6-sqlite libqcustomplot-dev
  libtorch-dev libopenblas0-openmp
  nlohmann-json3-dev libsqlite3-dev libicu-dev libpq-dev
  postgresql slurmctld slurmd slurm-client munge
  xvfb xauth
  desktop-file-utils appstream
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
