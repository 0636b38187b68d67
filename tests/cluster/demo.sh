#!/usr/bin/env bash
# make demo: for now (until the tobd node runtime lands) it generates a 4-node
# testnet under ./demo-net, checks every node's config and keys, and runs the
# consensus core of four nodes in the deterministic simulator with real
# cryptography (Ed25519 + threshold coin) and one Byzantine node.
set -euo pipefail
bin=${1:-build/bin}
dir=${DEMO_DIR:-demo-net}

echo "== tobctl testnet --nodes 4 --dir $dir"
"$bin/tobctl" testnet --nodes 4 --dir "$dir" --force
echo
echo "== files"
find "$dir" -type f -printf '%m %p\n' | sort -k2
echo
for i in 0 1 2 3; do
  echo "== tobd --config $dir/node$i/config.toml --check-config"
  "$bin/tobd" --config "$dir/node$i/config.toml" --check-config
done
echo
if [ -x "$bin/tobsim" ]; then
  echo "== tobsim: 4 nodes, 1 equivocating Byzantine node, real crypto, 10 seeds"
  "$bin/tobsim" --nodes 4 --faulty 1 --behaviour equivocate --crypto real \
    --seeds 1-10 --epochs 5 --txs 50 --json
fi
echo
echo "demo: done (the networked tobd runtime is the next step; see the issues)"
