import numpy as np
import pytest

from anyrec.errors import ConfigError
from anyrec.lm import EmbeddingCache, EncoderConfig, TextEncoder, resolve_encoder


def test_hashing_encoder_is_deterministic_and_normalised():
    enc = TextEncoder(EncoderConfig(model="hashing:64"))
    a = enc.encode(["space robots", "a quiet drama", "space robots"])
    assert a.shape == (3, 64) and np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert np.array_equal(a[0], a[2])
    assert float(a[0] @ enc.encode(["robots in space"])[0]) > float(a[0] @ a[1])


def test_cache_reencodes_only_changed_texts(tmp_path):
    enc = TextEncoder(EncoderConfig(model="hashing:32", cache_dir=str(tmp_path)))
    texts = [f"item {i} text" for i in range(30)]
    first = enc.encode(texts)
    assert enc.last_stats == {"texts": 30, "encoded": 30, "cached": 0}
    second = TextEncoder(EncoderConfig(model="hashing:32", cache_dir=str(tmp_path))).encode(texts)
    assert np.array_equal(first, second)
    enc2 = TextEncoder(EncoderConfig(model="hashing:32", cache_dir=str(tmp_path)))
    changed = list(texts)
    for i in range(10):
        changed[i] = f"changed {i}"
    enc2.encode(changed)
    assert enc2.last_stats == {"texts": 30, "encoded": 10, "cached": 20}
    # Another model identity never reads these vectors.
    other = TextEncoder(EncoderConfig(model="hashing:16", cache_dir=str(tmp_path)))
    other.encode(texts)
    assert other.last_stats["encoded"] == 30
    assert EmbeddingCache(tmp_path).count() == 30 + 10 + 30


def test_resolution_of_names():
    assert resolve_encoder("hashing") == "hashing"
    assert resolve_encoder("default").endswith("model")
    assert resolve_encoder("some-org/some-model") == "some-org/some-model"  # a hub name, loaded with a network


def test_folder_without_model_files_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="modules.json"):
        resolve_encoder(str(tmp_path))


@pytest.mark.slow
def test_real_minilm_offline():
    enc = TextEncoder(EncoderConfig())
    v = enc.encode(["A space opera with robots.", "Robots fight in outer space.", "A tax law handbook."])
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2
