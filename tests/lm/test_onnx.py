"""The ONNX encoder backends give the PyTorch vectors (fp32: the same; int8: close) and are cached apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anyrec.errors import ConfigError
from anyrec.lm.encoder import EncoderConfig, TextEncoder
from anyrec.lm.onnx import RECIPE

pytest.importorskip("onnxruntime")

TEXTS = [
    "a space adventure with robots",
    "a quiet love story in Paris",
    "ghosts haunt an old house",
    "robots in love",
    "x",
]


def test_onnx_fp32_matches_torch_and_int8_stays_close(tiny_st: Path, tmp_path: Path) -> None:
    ref = TextEncoder(EncoderConfig(model=str(tiny_st), threads=1)).encode(TEXTS)
    fp32 = TextEncoder(EncoderConfig(model=str(tiny_st), backend="onnx", threads=1, cache_dir=str(tmp_path))).encode(
        TEXTS
    )
    np.testing.assert_allclose(fp32, ref, atol=1e-4)
    int8 = TextEncoder(EncoderConfig(model=str(tiny_st), backend="onnx-int8", threads=1, cache_dir=str(tmp_path)))
    vec = int8.encode(TEXTS)
    cos = (vec * ref).sum(1)
    assert vec.shape == ref.shape and cos.min() > 0.95 and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)
    assert int8.identity.endswith(f"+onnx-int8-r{RECIPE}") and int8.dim == ref.shape[1]
    assert list((tmp_path / "onnx").glob("*+onnx-int8-r*/model-int8.onnx"))  # exported once, kept beside the cache


def test_attention_is_fused_and_int8_uses_the_tanh_gelu(tiny_st: Path, tmp_path: Path) -> None:
    """The speed of the ONNX path rests on the optimiser fusing each layer's attention into one op."""
    import onnx

    for backend, name in (("onnx", "model-fp32.onnx"), ("onnx-int8", "model-int8.onnx")):
        TextEncoder(EncoderConfig(model=str(tiny_st), backend=backend, threads=1, cache_dir=str(tmp_path))).encode(
            TEXTS[:2]
        )
        (path,) = (tmp_path / "onnx").glob(f"*+{backend}-r*/{name}")
        ops = [n.op_type for n in onnx.load(str(path)).graph.node]
        assert ops.count("QAttention" if backend == "onnx-int8" else "Attention") == 2, ops  # one per layer
        assert ("FastGelu" in ops) == (backend == "onnx-int8") and ("BiasGelu" in ops) == (backend == "onnx")


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="backend must be torch, onnx or onnx-int8"):
        TextEncoder(EncoderConfig(model="hashing", backend="tensorrt"))
