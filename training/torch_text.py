"""`torch-text`: a fastText-style classifier in PyTorch: hashed character n-grams and words, averaged by an
EmbeddingBag, into a linear layer; early stopping on the validation loss.

Hashing (CRC-32, stable across processes, unlike Python's `hash`) needs no vocabulary, so Devanagari,
Bengali or Tamil text gets features as readily as English. Weights are saved with safetensors.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "buckets": 2**18,
    "dim": 64,
    "char_ngram_min": 2,
    "char_ngram_max": 4,
    "epochs": 30,
    "patience": 3,
    "learning_rate": 0.05,
    "batch_size": 64,
    "seed": 42,
}
WEIGHTS, CONFIG = "model.safetensors", "torch_text.json"


def features(text: str, config: dict[str, Any]) -> list[int]:
    """Bucket ids of the words and the character n-grams of ` word ` (fastText's boundary marks)."""
    buckets, low, high = int(config["buckets"]), int(config["char_ngram_min"]), int(config["char_ngram_max"])
    ids = []
    for word in text.lower().split():
        ids.append(zlib.crc32(b"w:" + word.encode()) % buckets)
        marked = f" {word} "
        for n in range(low, high + 1):
            ids.extend(zlib.crc32(marked[i : i + n].encode()) % buckets for i in range(len(marked) - n + 1))
    return ids or [0]


class _Model:
    """Builds the torch module lazily, so that importing this file does not import torch."""

    @staticmethod
    def build(config: dict[str, Any], classes: int):
        import torch

        class FastText(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embedding = torch.nn.EmbeddingBag(int(config["buckets"]), int(config["dim"]), mode="mean")
                self.output = torch.nn.Linear(int(config["dim"]), classes)

            def forward(self, ids, offsets):
                return self.output(self.embedding(ids, offsets))

        return FastText()


def _batch(texts: list[str], config: dict[str, Any]):
    import torch

    rows = [features(t, config) for t in texts]
    offsets = torch.tensor([0] + [len(r) for r in rows[:-1]]).cumsum(0)
    return torch.tensor([i for r in rows for i in r]), offsets


class TextClassifier:
    def __init__(self, module, config: dict[str, Any], labels: list[str]):
        self.module, self.config, self.labels = module, config, labels


FEATURES = ["text"]


def seed_torch(seed: int) -> None:
    """Seed torch and fix its threads at the instance's CPUs (SM_NUM_CPUS): left alone, MKL picks its thread count
    by the machine's load (mkl_dynamic, which only set_num_threads turns off), a sum split another way gives other
    bits, and the same training on a busy machine made other weights: another registry version. MKL's
    conditional bitwise reproducibility (MKL_CBWR, read when MKL first runs) also keeps its results from
    depending on how the process's arrays happen to be aligned in memory: once in a loaded full test run, two
    trainings in two processes still differed in their weights' last bits."""
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(int(os.environ.get("SM_NUM_CPUS") or os.cpu_count() or 1))


def fit(features, labels: list[str], hyperparameters: dict[str, Any], validation=None) -> TextClassifier:
    """`features` is a frame with a `text` column; `validation`, when given, is (features, labels)."""
    import torch

    texts = features["text"].tolist()
    config = {**DEFAULTS, **hyperparameters}
    seed_torch(int(config["seed"]))
    torch.use_deterministic_algorithms(True)
    classes = sorted(set(labels))
    index = {label: i for i, label in enumerate(classes)}
    module = _Model.build(config, len(classes))
    # fused: one vectorized kernel per step. The unfused step (sqrt, divide, add in turn) gave, in about one
    # process in eight, other bits for the half of the embedding that OpenMP's second thread updated: the same
    # training became another registry version. Measured: 7 of 74 processes differed unfused, 0 of 40 fused.
    optimizer = torch.optim.Adam(module.parameters(), lr=float(config["learning_rate"]), fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    targets = torch.tensor([index[label] for label in labels])
    held_out = (validation[0]["text"].tolist(), list(validation[1])) if validation is not None else (texts, labels)
    held_ids, held_offsets = _batch(held_out[0], config)
    held_targets = torch.tensor([index.get(label, 0) for label in held_out[1]])
    best, best_state, waited = float("inf"), None, 0
    generator = torch.Generator().manual_seed(int(config["seed"]))
    size = int(config["batch_size"])
    for epoch in range(int(config["epochs"])):
        module.train()
        order = torch.randperm(len(texts), generator=generator)
        for start in range(0, len(texts), size):
            batch = order[start : start + size]
            ids, offsets = _batch([texts[i] for i in batch], config)
            optimizer.zero_grad()
            loss_fn(module(ids, offsets), targets[batch]).backward()
            optimizer.step()
        module.eval()
        with torch.no_grad():
            loss = float(loss_fn(module(held_ids, held_offsets), held_targets))
        print(f"epoch {epoch + 1}/{config['epochs']}: validation loss {loss:.4f}", flush=True)
        if loss < best - 1e-4:
            best, waited = loss, 0
            best_state = {k: v.clone() for k, v in module.state_dict().items()}
        else:
            waited += 1
            if waited >= int(config["patience"]):
                print(f"early stop after epoch {epoch + 1}: validation loss {best:.4f}")
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    return TextClassifier(module, config, classes)


def classes(model: TextClassifier) -> list[str]:
    return model.labels


def predict_proba(model: TextClassifier, features):
    import torch

    texts = features["text"].tolist()
    model.module.eval()
    with torch.no_grad():
        ids, offsets = _batch(texts, model.config)
        return torch.softmax(model.module(ids, offsets), dim=1).numpy()


def save(model: TextClassifier, model_dir: Path) -> None:
    from safetensors.torch import save_file

    save_file(model.module.state_dict(), str(model_dir / WEIGHTS))
    (model_dir / CONFIG).write_text(json.dumps({"config": model.config, "labels": model.labels}, indent=2))


def load(model_dir: Path) -> TextClassifier:
    from safetensors.torch import load_file

    saved = json.loads((model_dir / CONFIG).read_text())
    module = _Model.build(saved["config"], len(saved["labels"]))
    module.load_state_dict(load_file(str(model_dir / WEIGHTS)))
    return TextClassifier(module, saved["config"], saved["labels"])
