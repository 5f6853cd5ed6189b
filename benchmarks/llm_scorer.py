"""A generative LM scores a candidate list in one forward pass (LlamaRec's verbaliser).

The prompt holds the user's recent history titles and the candidates labelled ``A``, ``B``, …;
the score of a candidate is the next-token logit of its label. Optional LoRA fine-tuning
(``peft``) teaches the model to put the true next item's label first. The offline default is
SmolLM2-135M-Instruct; a bigger model plugs in by name or folder (``generator``).
"""

from __future__ import annotations

import logging
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from anyrec.data.dataset import Catalog
from anyrec.errors import ConfigError
from generator import CausalLM, GeneratorConfig  # beside this script

log = logging.getLogger(__name__)

LABELS = string.ascii_uppercase


@dataclass(frozen=True)
class LLMScorerConfig:
    """Attributes:
        generator: causal LM name or folder (``smollm2`` = the offline SmolLM2-135M-Instruct).
        history: most recent history titles in the prompt.
        title_chars: titles are cut to this many characters.
        batch_size: prompts per forward pass.
        threads, device: as for the generator.
        lora_rank: > 0 fine-tunes LoRA adapters of this rank (``finetune``); 0 uses the model as it is.
    """

    generator: str = "smollm2"
    history: int = 10
    title_chars: int = 60
    batch_size: int = 4
    threads: int = 0
    device: str = "cpu"
    lora_rank: int = 8
    lora_alpha: int = 16
    lr: float = 2e-4


class LLMScorer:
    """Scores ``candidates`` for a history: ``score(histories, candidates) -> (users, n)``."""

    def __init__(self, catalog: Catalog, config: LLMScorerConfig | None = None, lm: CausalLM | None = None) -> None:
        self.catalog = catalog
        self.config = config or LLMScorerConfig()
        self.lm = lm or CausalLM(
            GeneratorConfig(model=self.config.generator, threads=self.config.threads, device=self.config.device)
        )

    def _title(self, i: int) -> str:
        t = self.catalog.title(int(i))
        n = self.config.title_chars
        return t if len(t) <= n else t[: n - 1] + "…"

    def prompt(self, history: Sequence[int] | np.ndarray, candidates: Sequence[int] | np.ndarray) -> str:
        if len(candidates) > len(LABELS):
            raise ConfigError(f"at most {len(LABELS)} candidates per list, got {len(candidates)}")
        recent = list(history)[-self.config.history :]
        lines = ["Items a user chose recently, oldest first:"]
        lines += [f"- {self._title(h)}" for h in recent] or ["- (none)"]
        lines += ["", "Candidates:"]
        lines += [f"{LABELS[j]}. {self._title(c)}" for j, c in enumerate(candidates)]
        lines += ["", "Which candidate will the user choose next? Answer with its letter only."]
        return "\n".join(lines)

    def score(
        self, histories: Sequence[np.ndarray], candidates: np.ndarray, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Label logits ``(users, n)``: higher is more likely next."""
        labels = list(LABELS[: candidates.shape[1]])
        out = np.zeros(candidates.shape, dtype=np.float64)
        bs = self.config.batch_size
        for s in range(0, len(candidates), bs):
            prompts = [self.prompt(h, c) for h, c in zip(histories[s : s + bs], candidates[s : s + bs])]
            out[s : s + bs] = self.lm.label_scores(prompts, labels, batch_size=bs)
            if progress is not None:
                progress(len(prompts))
        return out

    def finetune(
        self,
        histories: Sequence[np.ndarray],
        candidates: np.ndarray,
        answers: np.ndarray,
        epochs: int = 1,
        max_minutes: float = 0.0,
        seed: int = 0,
    ) -> dict[str, Any]:
        """LoRA fine-tuning: cross-entropy over the label logits, the answer's label the target.

        ``answers[u]`` is the position of the true item in ``candidates[u]``. Only the adapters
        train (``q_proj``/``v_proj`` for Llama-style models); the base weights stay frozen.
        """
        import torch
        from peft import LoraConfig, get_peft_model

        c = self.config
        lm = self.lm.load()
        model = get_peft_model(
            lm.model,
            LoraConfig(
                r=c.lora_rank,
                lora_alpha=c.lora_alpha,
                lora_dropout=0.0,
                target_modules=["q_proj", "v_proj"],
                task_type="CAUSAL_LM",
            ),
        )
        lm.model = model
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=c.lr)
        labels = list(LABELS[: candidates.shape[1]])
        rng = np.random.default_rng(seed)
        t0, losses, steps = time.perf_counter(), [], 0
        out_of_time = False
        for _ in range(epochs):
            perm = rng.permutation(len(candidates))
            for s in range(0, len(candidates), c.batch_size):
                idx = perm[s : s + c.batch_size]
                prompts = [self.prompt(histories[i], candidates[i]) for i in idx]
                logits = lm.label_logits(prompts, labels, grad=True)  # (batch, labels)
                loss = torch.nn.functional.cross_entropy(
                    logits.float(), torch.as_tensor(answers[idx], device=logits.device)
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                steps += 1
                out_of_time = bool(max_minutes) and time.perf_counter() - t0 > 60 * max_minutes
                if out_of_time:
                    break
            if out_of_time:
                break
        model.eval()
        return {
            "steps": steps,
            "first_loss": losses[0] if losses else None,
            "last_loss": float(np.mean(losses[-20:])) if losses else None,
            "seconds": round(time.perf_counter() - t0, 1),
        }
