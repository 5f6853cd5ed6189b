"""A sentence-transformers encoder run by ONNX Runtime, optionally with int8 weights.

The transformer of a sentence-transformers folder is exported once to ONNX (``torch.onnx``),
optionally quantised (``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations
quantised per batch at run time), and kept beside the embedding cache. Pooling (mean or CLS, as
the folder's ``1_Pooling/config.json`` says) and normalisation run in numpy, as the PyTorch
path does. Vectors differ slightly from PyTorch's (int8 more so), so the backend is part of the
cache identity; ``benchmarks/embed_speed.py --onnx`` measures speed and agreement.

Why not sentence-transformers' own ``backend="onnx"``: it needs ``optimum-onnx``, which pins
``transformers < 4.58`` and would downgrade the rest of the stack.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.errors import ConfigError

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")
# Bumped when the export recipe changes the numbers (2: eager-attention export, fused attention; tanh GELU in int8),
# so vectors of an older recipe are never served from the cache as this one's.
RECIPE = 2


def _pooling(folder: Path) -> str:
    cfg = folder / "1_Pooling" / "config.json"
    if not cfg.exists():
        return "mean"
    doc = json.loads(cfg.read_text())
    mode = doc.get("pooling_mode")  # sentence-transformers ≥ 5 writes one name; older folders, one flag per mode
    if mode == "mean" or doc.get("pooling_mode_mean_tokens"):
        return "mean"
    if mode == "cls" or doc.get("pooling_mode_cls_token"):
        return "cls"
    raise ConfigError(f"{cfg}: only mean or CLS pooling run on the ONNX backend")


def _fuse(folder: Path, plain: Path, fused: Path, approximate_gelu: bool = False) -> Path:
    """ONNX Runtime's transformer optimiser (fused attention, embedding LayerNorm, skip LayerNorm, GELU)
    for BERT-style models; ``approximate_gelu`` swaps the erf GELU for the tanh one (``FastGelu``).

    Measured on the benchmark's 3,267 texts (2 threads, batch 32): int8 without fused attention
    10.5 s; with it (eager-attention export, below) 8.4 s; with the tanh GELU as well 7.1 s;
    PyTorch 14.5 s."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(str(folder))
    if cfg.model_type not in ("bert", "roberta", "distilbert", "xlm-roberta", "mpnet"):
        return plain
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = "bert" if cfg.model_type in ("bert", "roberta", "xlm-roberta", "mpnet") else cfg.model_type
    options = FusionOptions(model_type)
    options.enable_gelu_approximation = approximate_gelu
    optimize_model(str(plain), model_type=model_type, num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size,
                   optimization_options=options).save_model_to_file(str(fused))
    return fused


def _load_eager(folder: Path) -> Any:
    """The transformer with the plain (eager) attention: the optimiser recognises its exported graph and
    fuses it into one ``Attention`` op, which it cannot do for the SDPA export (masks via Where/IsNaN)."""
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    except (TypeError, ValueError):  # an architecture without the switch
        return AutoModel.from_pretrained(str(folder)).eval()


def export_onnx(folder: Path, out: Path, quantize: bool) -> Path:
    """``out/model-fp32.onnx`` (fused where the optimiser knows the architecture) or ``model-int8.onnx``
    (fused with the tanh GELU, then int8) for the transformer in ``folder``; reused when present."""
    target = out / ("model-int8.onnx" if quantize else "model-fp32.onnx")
    if target.exists():
        return target
    import torch

    out.mkdir(parents=True, exist_ok=True)
    plain = out / "model.onnx"
    if not plain.exists():
        inner = _load_eager(folder)

        class Hidden(torch.nn.Module):  # keyword arguments: forward's positional order changes between versions
            def __init__(self) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        model = Hidden().eval()
        ids = torch.ones((2, 8), dtype=torch.int64)
        axes = {0: "batch", 1: "tokens"}
        with torch.no_grad():
            torch.onnx.export(
                model,
                (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                str(plain),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["hidden"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "hidden": axes},
                opset_version=17,
                dynamo=False,
            )
        log.info("exported %s to %s", folder, plain)
    if not quantize:
        return _fuse(folder, plain, target)
    fused = _fuse(folder, plain, out / "model-fast.onnx", approximate_gelu=True)
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales: per-tensor ones left a mean cosine of 0.965 to the PyTorch vectors, per channel 0.993.
    quantize_dynamic(
        str(fused),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )  # fused ops have no inferred types
    log.info("quantised %s to int8: %s", fused, target)
    return target


class OnnxBackend:
    """``encode(texts, batch_size, normalize) -> (n, dim)`` with ONNX Runtime on the CPU."""

    def __init__(self, folder: str, cache_dir: Path, quantize: bool, threads: int = 0, max_length: int = 0) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        path = Path(folder)
        if not (path / "config.json").exists():
            raise ConfigError(f"the ONNX backend needs a local model folder with config.json, got {folder!r}")
        self.pooling = _pooling(path)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        st_cfg = path / "sentence_bert_config.json"
        self.max_length = max_length or (
            json.loads(st_cfg.read_text()).get("max_seq_length", 256) if st_cfg.exists() else 256
        )
        model_file = export_onnx(path, cache_dir, quantize)
        opts = ort.SessionOptions()
        if threads > 0:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_file), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dim = (
            int(self.session.get_outputs()[0].shape[-1])
            if isinstance(self.session.get_outputs()[0].shape[-1], int)
            else 0
        )

    def encode(self, texts: list[str], normalize: bool = True, batch_size: int = 64) -> np.ndarray:
        parts = []
        for s in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[s : s + batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            feed: dict[str, Any] = {k: v.astype(np.int64) for k, v in batch.items() if k in self.inputs}
            if "token_type_ids" in self.inputs and "token_type_ids" not in feed:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
            hidden = self.session.run(None, feed)[0]  # (batch, tokens, dim)
            if self.pooling == "cls":
                vec = hidden[:, 0]
            else:
                mask = feed["attention_mask"][..., None].astype(np.float32)
                vec = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            parts.append(vec.astype(np.float32))
        out = np.concatenate(parts) if parts else np.zeros((0, self.dim), dtype=np.float32)
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        if not self.dim and len(out):
            self.dim = out.shape[1]
        return out
