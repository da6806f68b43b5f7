#!/usr/bin/env bash
# The whole of what weightlog does today, on one machine, in a scratch directory:
# a development hotkey, a new log, a batch of events, an inclusion proof checked offline
# against the validator's SS58 address, and a full verification of the log; then a
# synthetic affine validator's log (gen-log) audited by `replay verify`, which recomputes
# every weight decision and re-runs every SAT evaluation.
# Usage: scripts/quickstart.sh [DIR]   (default: a fresh temporary directory)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin weightlog
bin=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/weightlog
wallet=(--wallet.path "$work/wallets" --wallet.name quickstart --wallet.hotkey validator)
step() { printf '\n$ weightlog %s\n' "$*"; "$bin" "$@"; }

[ -f "$work/wallets/quickstart/hotkeys/validator" ] || step keys dev "${wallet[@]}"
signer=$("$bin" keys show "${wallet[@]}")
rm -f "$work/log.redb"
step init "$work/log.redb" --netuid 7 --profile custom "${wallet[@]}"
step append "$work/log.redb" --jsonl "$root/examples/events.jsonl" "${wallet[@]}"
step inspect "$work/log.redb"
step cat "$work/log.redb" --from 0 --to 4
step checkpoint "$work/log.redb"
step prove inclusion "$work/log.redb" 5 --out "$work/proof-5.json"
step verify-proof "$work/proof-5.json" --signer "$signer"
step verify "$work/log.redb"
rm -f "$work/affine.redb"
step gen-log "$work/affine.redb" --events 5000 --profile affine --seed 1
step replay verify "$work/affine.redb" --re-evaluate
printf '\nquickstart files are in %s\n' "$work"
