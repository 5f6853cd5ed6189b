"""Settings of the generative model (semantic ids, the decoder, its training and decoding)."""

from __future__ import annotations

from dataclasses import dataclass

from anyrec.lm.encoder import DEFAULT_ENCODER


@dataclass(frozen=True)
class GenerativeConfig:
    """Generative model settings.

    Attributes:
        encoder, cache_dir: text encoder and embedding cache (see :class:`EncoderConfig`).
        levels, codebook, kmeans_iters: semantic ids of ``levels`` codes out of ``codebook`` each
            (plus one collision code), residual k-means with this many iterations per level;
            ``balanced_codes``: capacity-bound clusters at every level (see :class:`CodesConfig`); on
            Amazon Scientific collisions fell from 32 % to 8 % of items and test NDCG@10 rose 0.0741 → 0.0785.
        collision_codes: size of the collision level (0 = twice the largest group, at least 8;
            headroom for items added later).
        max_items: items of history in the prompt (and per training window).
        layers, hidden, heads, dropout: the GPT-2 decoder.
        init_from_codebooks: code token embeddings start at their centroids (projected to ``hidden``);
            off by default: on Amazon Scientific it trailed the random start (validation NDCG@10 0.064 vs
            0.073 after 8 epochs).
        lr, warmup_steps, weight_decay, batch_size, epochs, patience, valid_every, max_minutes: optimisation
            (linear warm-up to ``lr``, then constant);
            early stopping on validation NDCG@10 every ``valid_every`` epochs.
        beam: beam width; the list is the beam's top (at least the list length asked for).
        new_items: also generate items never seen in training (from their text codes).
        pretrained: a saved generative model folder whose codebooks and decoder weights start this fit.
        gen_batch: users per generation batch.
        device: ``cpu``, ``cuda`` or ``auto``; threads: torch CPU threads (0 = default).
        seed: seeds the codebooks, initialisation and batch order.
        log_dir, resume: ``train_log.jsonl`` and ``checkpoint.pt`` there; continue from the checkpoint.
    """

    encoder: str = DEFAULT_ENCODER
    cache_dir: str = ""
    levels: int = 3
    codebook: int = 256
    kmeans_iters: int = 25
    balanced_codes: bool = True
    collision_codes: int = 0
    max_items: int = 20
    layers: int = 4
    hidden: int = 128
    heads: int = 4
    dropout: float = 0.1
    init_from_codebooks: bool = False
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    batch_size: int = 64
    epochs: int = 200
    patience: int = 5
    valid_every: int = 1
    max_minutes: float = 0.0
    beam: int = 20
    new_items: bool = True
    pretrained: str = ""
    gen_batch: int = 128
    device: str = "cpu"
    threads: int = 0
    seed: int = 0
    log_dir: str = ""
    resume: bool = False
