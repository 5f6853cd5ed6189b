"""Pictures: any CLIP-style model, by hub name or folder, puts images and texts in one space.

Two kinds of model load: a sentence-transformers CLIP folder or name (``clip-ViT-B-32``: ``modules.json``, one
``encode`` for images and texts), and a ``transformers`` dual encoder (``CLIPModel``, ``SiglipModel``, any model with
``get_image_features`` / ``get_text_features``) with its tokenizer and image processor. No such model ships in a
package this project can install offline: users with a network name one; tests build tiny ones from a config.

Images are read once from a path or an http(s) URL, and their vectors cached like texts' (keyed by the image's
bytes, so a moved file is not embedded again and a changed one is). A picture that is missing or cannot be read is
counted by reason, never fatal: its item keeps the CLIP vector of its own text (the shared space makes that a fair
stand-in).
"""

from __future__ import annotations

import hashlib
import io
import logging
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.data.table import is_url
from anyrec.errors import ConfigError
from anyrec.lm.cache import EmbeddingCache
from anyrec.lm.encoder import model_identity

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None] | None


@dataclass
class ImageReport:
    """What became of a catalog's pictures: embedded (read now or found in the cache), none given, or skipped
    with a reason (``missing file``, ``unreadable image``, ``download failed``), with a few examples."""

    items: int = 0
    embedded: int = 0
    cached: int = 0
    without: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"pictures: {self.embedded:,} of {self.items:,} items embedded ({self.cached:,} from the cache)"
               + (f", {self.without:,} without one" if self.without else "")]
        if self.skipped:
            out.append("pictures skipped (the item keeps its text's vector there): "
                       + ", ".join(f"{n:,} {why}" for why, n in self.skipped.most_common())
                       + (f"; e.g. {'; '.join(self.examples[:3])}" if self.examples else ""))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "embedded": self.embedded, "cached": self.cached, "without": self.without,
                "skipped": dict(self.skipped), "examples": self.examples[:5]}


def resolve_image_model(name: str) -> str:
    """A folder made absolute, or the hub name as given."""
    if not name.strip():
        raise ConfigError(
            "--image-encoder needs a model name or folder (e.g. clip-ViT-B-32, openai/clip-vit-base-patch32)"
        )
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ConfigError(
                f"image encoder folder {path} holds neither modules.json (sentence-transformers) nor "
                "config.json (transformers)"
            )
        return str(path.resolve())
    return name


def read_image_bytes(source: str, timeout: float = 10.0) -> bytes:
    """The bytes of a picture at a path or an http(s) URL; ``OSError`` / ``ValueError`` with the reason."""
    if is_url(source):
        with urllib.request.urlopen(source, timeout=timeout) as resp:  # noqa: S310 (http(s) only, checked above)
            return bytes(resp.read())
    return Path(source).read_bytes()


class ImageEncoder:
    """Images and texts to unit float32 vectors in one space; the model loads on first use."""

    def __init__(self, name: str, cache_dir: str = "", batch_size: int = 32, timeout: float = 10.0) -> None:
        self.name = name
        self.resolved = resolve_image_model(name)
        self.identity = "image:" + model_identity(self.resolved)
        self.batch_size, self.timeout = batch_size, timeout
        self._cache = EmbeddingCache(cache_dir) if cache_dir else None
        self._kind = ""
        self._model: Any = None
        self._tokenizer: Any = None
        self._processor: Any = None

    def load(self) -> None:
        """Load the model: a folder with ``modules.json`` through sentence-transformers; otherwise ``transformers``
        first (a dual encoder with ``get_image_features``), then, for a hub name, sentence-transformers (its own
        names, ``clip-ViT-B-32``); a :class:`ConfigError` that names the model and each loader's reason."""
        if self._model is not None:
            return
        path = Path(self.resolved)
        errors: list[str] = []
        if not (path / "modules.json").exists():
            try:
                self._load_transformers()
                return
            except Exception as exc:  # noqa: BLE001 (any loader failure becomes one clear message below)
                errors.append(f"transformers: {_first_line(exc)}")
                if not path.exists() and _unreachable(exc):  # offline: the second loader would wait as long again
                    raise ConfigError(
                        f"image encoder {self.name!r} could not be loaded (a hub name needs a network; "
                        f"offline, give a folder): {_first_line(exc)}"
                    ) from None
        if (path / "modules.json").exists() or not path.exists():
            try:
                from sentence_transformers import SentenceTransformer

                self._model, self._kind = SentenceTransformer(self.resolved, device="cpu"), "sentence-transformers"
                return
            except Exception as exc:  # noqa: BLE001
                errors.append(f"sentence-transformers: {_first_line(exc)}")
        offline = "" if path.exists() else " (a hub name needs a network; offline, give a folder)"
        raise ConfigError(f"image encoder {self.name!r} could not be loaded{offline}: " + "; ".join(errors))

    def _load_transformers(self) -> None:
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        net = AutoModel.from_pretrained(self.resolved)
        if not (hasattr(net, "get_image_features") and hasattr(net, "get_text_features")):
            raise ConfigError(f"{type(net).__name__} is not a CLIP-style model (no get_image_features)")
        self._tokenizer = AutoTokenizer.from_pretrained(self.resolved)
        self._processor = AutoImageProcessor.from_pretrained(self.resolved)
        self._model, self._kind = net.eval(), "transformers"

    def describe(self) -> dict[str, str]:
        self.load()
        return {"image_encoder": self.name, "kind": self._kind, "identity": self.identity}

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of ``texts`` through the model's text tower."""
        self.load()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self._kind == "sentence-transformers":
            out = np.asarray(
                self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True), dtype=np.float32
            )
        else:
            import torch

            parts = []
            with torch.no_grad():
                for s in range(0, len(texts), self.batch_size):
                    batch = self._tokenizer(
                        texts[s : s + self.batch_size],
                        padding=True,
                        truncation=True,
                        max_length=_max_length(self._model),
                        return_tensors="pt",
                    )
                    batch.pop("token_type_ids", None)
                    parts.append(_features(self._model.get_text_features(**batch)))
            out = np.vstack(parts)
        return _unit(out)

    def _encode_pictures(self, pictures: list[Any]) -> np.ndarray:
        if self._kind == "sentence-transformers":
            return _unit(
                np.asarray(
                    self._model.encode(pictures, batch_size=self.batch_size, convert_to_numpy=True), dtype=np.float32
                )
            )
        import torch

        parts = []
        with torch.no_grad():
            for s in range(0, len(pictures), self.batch_size):
                pixels = self._processor(images=pictures[s : s + self.batch_size], return_tensors="pt")["pixel_values"]
                parts.append(_features(self._model.get_image_features(pixel_values=pixels)))
        return _unit(np.vstack(parts))

    def encode_images(
        self, sources: list[str], progress: Progress = None, chunk: int = 256
    ) -> tuple[np.ndarray, np.ndarray, ImageReport]:
        """``(vectors, ok, report)``: a unit vector per source (zeros where ``ok`` is false: none given, missing,
        unreadable), read from the cache by the picture's bytes or embedded here — ``chunk`` pictures at a time, so
        a catalog of any size holds one chunk's bytes and decoded pictures at once."""
        report = ImageReport(items=len(sources))
        vectors: dict[int, np.ndarray] = {}
        for s in range(0, len(sources), chunk):
            vectors.update(self._encode_chunk(sources, range(s, min(s + chunk, len(sources))), report))
            if progress is not None:
                progress(min(s + chunk, len(sources)), len(sources))
        dim = next((v.shape[0] for v in vectors.values()), 0) or self.encode_texts(["a picture"]).shape[1]
        out = np.zeros((len(sources), dim), dtype=np.float32)
        ok = np.zeros(len(sources), dtype=bool)
        for i, vec in vectors.items():
            out[i], ok[i] = vec, True
        report.embedded = int(ok.sum())
        return out, ok, report

    def _encode_chunk(self, sources: list[str], rows: range, report: ImageReport) -> dict[int, np.ndarray]:
        """The vectors of one chunk's readable pictures by row; the others counted in ``report``."""
        from PIL import Image, UnidentifiedImageError

        keys: dict[int, str] = {}
        data: dict[str, bytes] = {}
        for i in rows:
            src = sources[i]
            if not src:
                report.without += 1
                continue
            try:
                raw = read_image_bytes(src, self.timeout)
            except (OSError, ValueError) as exc:
                _skip(
                    report,
                    "download failed" if is_url(src) else "missing file",
                    src,
                )
                log.debug("picture %s: %s", src, exc)
                continue
            keys[i] = hashlib.sha256(raw).hexdigest()
            data[keys[i]] = raw
        found = self._cache.get_many(self.identity, list(data)) if self._cache is not None else {}
        report.cached += sum(1 for k in keys.values() if k in found)
        pictures, readable, unreadable = [], [], set()
        for k, raw in data.items():
            if k in found:
                continue
            try:
                with Image.open(io.BytesIO(raw)) as im:
                    pictures.append(im.convert("RGB"))
                readable.append(k)
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
                unreadable.add(k)
                log.debug("unreadable picture %s: %s", k, exc)
        if pictures:
            self.load()
            fresh = self._encode_pictures(pictures)
            if self._cache is not None:
                self._cache.put_many(self.identity, readable, fresh)
            found.update({k: fresh[j] for j, k in enumerate(readable)})
        out = {}
        for i, k in keys.items():
            if k in unreadable:
                _skip(report, "unreadable image", sources[i])
            else:
                out[i] = found[k]
        return out


def item_picture_vectors(
    encoder: ImageEncoder, images: list[str], texts: list[str], progress: Progress = None
) -> tuple[np.ndarray, ImageReport]:
    """Each item's vector in the picture model's space: its picture's, or (none, or unreadable) its own text's
    through the model's text tower — both live in the one space, so an item without a picture still sits near the
    pictures its words describe."""
    vectors, ok, report = encoder.encode_images(images, progress)
    if (~ok).any():
        missing = np.flatnonzero(~ok)
        vectors[missing] = encoder.encode_texts([texts[i] for i in missing])
    return vectors, report


def _skip(report: ImageReport, why: str, example: str) -> None:
    report.skipped[why] += 1
    if len(report.examples) < 5:
        report.examples.append(example)


def _unreachable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(w in text for w in ("couldn't connect", "offline", "name or service not known", "connection"))


def _features(out: Any) -> np.ndarray:
    """``get_*_features`` returns a tensor (most versions) or an output object with the pooled vectors."""
    tensor = out if hasattr(out, "detach") else getattr(out, "pooler_output", None)
    if tensor is None:
        tensor = out[0]
    return np.asarray(tensor.detach().float().cpu().numpy(), dtype=np.float32)


def _max_length(net: Any) -> int:
    cfg = getattr(net.config, "text_config", net.config)
    return int(getattr(cfg, "max_position_embeddings", 77) or 77)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


_ENCODERS: dict[tuple[str, str], ImageEncoder] = {}


def shared_image_encoder(name: str, cache_dir: str = "") -> ImageEncoder:
    """One loaded picture model per (name, cache) in a process (the service's queries reuse the fit's)."""
    key = (name, cache_dir)
    if key not in _ENCODERS:
        _ENCODERS[key] = ImageEncoder(name, cache_dir)
    return _ENCODERS[key]


__all__ = [
    "ImageEncoder",
    "ImageReport",
    "item_picture_vectors",
    "read_image_bytes",
    "resolve_image_model",
    "shared_image_encoder",
]
