#!/usr/bin/env bash
# Put this checkout's `moat` and `containerd-shim-moat-v2` on the PATH (symlinks into
# /usr/local/bin, pointing at dist/), and moat's bash completion where bash-completion
# looks. Run by setup.sh after the build; safe to run again (the links are replaced, so a
# moved checkout is picked up). MOAT_BIN_DIR and MOAT_COMPLETION_DIR choose other places.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MOAT_BIN_DIR:-/usr/local/bin}
completions=${MOAT_COMPLETION_DIR:-/usr/share/bash-completion/completions}
for f in dist/src/cli/main.js dist/src/shim/main.js; do
  [ -f "$f" ] || { echo "install-links: $f is missing: run npm run build first" >&2; exit 1; }
  chmod +x "$f"
done
mkdir -p "$bin"
ln -sfn "$PWD/dist/src/cli/main.js" "$bin/moat"
ln -sfn "$PWD/dist/src/shim/main.js" "$bin/containerd-shim-moat-v2"
if [ -d "$completions" ] || [ -n "${MOAT_COMPLETION_DIR:-}" ]; then
  mkdir -p "$completions"
  tmp=$(mktemp "$completions/.moat.XXXXXX")
  node dist/src/cli/main.js completion bash >"$tmp"
  chmod 644 "$tmp"
  mv -f "$tmp" "$completions/moat"
fi
echo "setup: $bin/moat and $bin/containerd-shim-moat-v2 point at $PWD/dist" >&2
