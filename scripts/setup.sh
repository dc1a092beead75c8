#!/usr/bin/env bash
# Install what building and testing dsabi needs on Debian / Ubuntu, skipping what is present.
# Uses sudo when not run as root. CUDA is optional: when /usr/local/cuda exists, the CUDA backend is
# built too; the toolkit itself is not an apt package here and is never installed by this script.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git binutils
  libcjson-dev libgloo-dev libaio-dev libdlpack-dev
  swig python3-dev python3-numpy python3-pytest python3-torch
  default-jdk-headless junit4 golang-go
  abigail-tools clang libclang-rt-14-dev
  openssh-server openssh-client
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
# openssh-server is for tests/dist/ssh.sh, which starts its own sshd inside network namespaces: the
# package must not start the system's sshd on port 22 (a CI job would leave it running), so service
# starts are denied during the install by a policy-rc.d (invoke-rc.d and deb-systemd-invoke obey it),
# removed afterwards. Where systemd runs, the package still enables ssh.service for the next boot.
policy=/usr/sbin/policy-rc.d
if [[ " ${missing[*]} " == *" openssh-server "* ]] && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# scripts/setup.sh: no service starts while it installs packages\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap "$sudo rm -f $policy" EXIT
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
