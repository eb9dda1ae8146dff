#!/usr/bin/env bash
# Install everything moat and its tests need on a fresh Debian 12 machine (as root), then build.
# Safe to run again: apt and npm skip what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  busybox-static      # the built-in default image and test workloads
  skopeo umoci        # cross-check OCI layouts; push test images to the local registry
  docker-registry     # a real OCI registry on loopback for the tests
  apache2-utils       # htpasswd for the registry's basic-auth mode
  openssl             # the test token issuer's certificate
  qemu-system-x86     # the vm isolation's hypervisor
  passt               # the vm isolation's nat network (instead of QEMU's slirp)
  cpio zstd xz-utils  # guest image building, zstd test layers
  util-linux          # unshare, nsenter, setpriv
  gcc libc6-dev       # static C test programs and the ptrace floor for bench/
  runc crun hyperfine # bench baselines
  podman              # a real runc-contract caller for the OCI runtime CLI tests
  containerd          # containerd 1.6 (ctr, the CRI): the shim v2 tests start private ones
  erofs-utils         # mkfs.erofs: the vm guest image (Node and the agent)
  file
  libpython3.11-testsuite # python's regression tests, run natively and under the userkernel (scripts/python-tests.sh)
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The vm isolation's guest kernel comes from `apt-get download`, which needs package lists.
if [ ${#missing[@]} -gt 0 ] || ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
# moat and the shim on the PATH (the README's commands, containerd's runtime lookup), and
# moat's bash completion.
scripts/install-links.sh
# Guest kernel and image for the vm isolation, and the KVM probe (cached; fast when done).
node dist/src/cli/main.js setup >&2
echo "setup: done" >&2
