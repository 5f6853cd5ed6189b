"""Domain-adaptive continued pretraining of a text encoder on the catalog's own text.

``mlm`` continues masked-language-model training of a BERT-style encoder (the default
all-MiniLM-L6-v2) and saves a sentence-transformers folder that ``--encoder`` accepts: the
original folder's pooling and normalisation modules with the adapted transformer weights.
``clm`` continues causal-LM training of a decoder model and saves it with its tokenizer.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from anyrec.errors import ConfigError
from anyrec.lm.encoder import DEFAULT_ENCODER, resolve_encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """Continued pretraining.

    Attributes:
        model: encoder name or folder to start from.
        objective: ``mlm`` (masked LM, encoders) or ``clm`` (causal LM, decoders).
        epochs, lr, batch_size, max_length: optimisation over the catalog texts.
        mask_prob: share of tokens masked for ``mlm``.
        seed: seeds masking, shuffling and dropout.
        threads: torch CPU threads (0 = torch's default).
        max_minutes: time budget (0 = none).
    """

    model: str = DEFAULT_ENCODER
    objective: str = "mlm"
    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 128
    mask_prob: float = 0.15
    seed: int = 0
    threads: int = 0
    max_minutes: float = 0.0


def pretrain(texts: list[str], out: str | Path, config: PretrainConfig = PretrainConfig(),
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Continue pretraining on ``texts``; writes the adapted model to ``out`` and returns a report."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
    )

    if config.objective not in ("mlm", "clm"):
        raise ConfigError(f"objective must be 'mlm' or 'clm', got {config.objective!r}")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ConfigError("no catalog text to pretrain on (every item text is empty)")
    src = Path(resolve_encoder(config.model))
    if not src.exists():
        raise ConfigError(f"pretraining needs a local model folder; {config.model!r} resolved to {src}")
    torch.manual_seed(config.seed)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    tok = AutoTokenizer.from_pretrained(src)
    if config.objective == "mlm":
        model = AutoModelForMaskedLM.from_pretrained(src)
        if not getattr(model.config, "is_decoder", False) and tok.mask_token is None:
            raise ConfigError(f"{src}: the tokenizer has no mask token; use --objective clm for causal models")
    else:
        model = AutoModelForCausalLM.from_pretrained(src)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
    collate = DataCollatorForLanguageModeling(tok, mlm=config.objective == "mlm", mlm_probability=config.mask_prob)
    enc = tok(texts, truncation=True, max_length=config.max_length)
    examples = [{"input_ids": ids} for ids in enc["input_ids"]]
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total = steps_per_epoch * config.epochs
    t0, step, losses = time.perf_counter(), 0, []
    model.train()
    for epoch in range(config.epochs):
        perm = torch.randperm(len(examples), generator=gen).tolist()
        epoch_loss = 0.0
        for b in range(0, len(perm), config.batch_size):
            batch = collate([examples[i] for i in perm[b : b + config.batch_size]])
            loss = model(**batch).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch_loss += float(loss.detach())
            step += 1
            if progress:
                progress(
                    f"pretrain {config.objective} (epoch {epoch + 1}, loss {float(loss.detach()):.3f})", step, total
                )
            if config.max_minutes and (time.perf_counter() - t0) / 60 > config.max_minutes:
                break
        losses.append(epoch_loss / steps_per_epoch)
        log.info("pretrain epoch %d: loss %.4f", epoch, losses[-1])
        if config.max_minutes and (time.perf_counter() - t0) / 60 > config.max_minutes:
            break
    out = Path(out)
    _save(model, tok, src, out, config.objective)
    report = {
        "config": asdict(config),
        "source": str(src),
        "texts": len(examples),
        "steps": step,
        "epoch_losses": [round(x, 4) for x in losses],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "anyrec_pretrain.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _save(model: Any, tok: Any, src: Path, out: Path, objective: str) -> None:
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty; choose a new folder")
    if objective == "mlm" and (src / "modules.json").exists():
        # Keep the sentence-transformers modules (pooling, normalisation); replace the transformer.
        shutil.copytree(src, out, dirs_exist_ok=True)
        base = getattr(model, model.base_model_prefix)
        base.save_pretrained(out)
    else:
        model.save_pretrained(out)
    tok.save_pretrained(out)
