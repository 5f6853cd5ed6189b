"""The decoder over code tokens: a Hugging Face GPT-2 built from a config, and constrained beam search.

A user's history is written as code tokens, ``[BOS] c1 c2 c3 c4  c1 c2 c3 c4 …``, each level with
its own token range (a level-2 code 5 is a different token from a level-1 code 5). The model
is trained with the causal-LM objective on those sequences and recommends by generating the
next item's codes with beam search, each step restricted by the catalog's prefix trie.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anyrec.models.generative.trie import CodeTrie

PAD, BOS, FIRST = 0, 1, 2  # token ids: padding, start of history, first code token


@dataclass(frozen=True)
class Vocab:
    """Token layout: level ``l``'s code ``c`` is token ``FIRST + offsets[l] + c``."""

    sizes: tuple[int, ...]

    @property
    def offsets(self) -> np.ndarray:
        return FIRST + np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    @property
    def size(self) -> int:
        return FIRST + int(sum(self.sizes))

    @property
    def depth(self) -> int:
        return len(self.sizes)

    def tokens(self, codes: np.ndarray) -> np.ndarray:
        """Token ids of full item codes ``(items, depth)``."""
        return np.asarray(codes, dtype=np.int64) + self.offsets[None, :]


def build_decoder(vocab: Vocab, max_items: int, layers: int, hidden: int, heads: int, dropout: float) -> Any:
    """A GPT-2 language model sized for code sequences of ``max_items`` items plus the one generated."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=vocab.size, n_positions=1 + (max_items + 1) * vocab.depth, n_embd=hidden,
                     n_layer=layers, n_head=heads, n_inner=4 * hidden, resid_pdrop=dropout, embd_pdrop=dropout,
                     attn_pdrop=dropout, bos_token_id=BOS, eos_token_id=BOS, pad_token_id=PAD)
    net = GPT2LMHeadModel(cfg)
    net.loss_type = "ForCausalLM"  # the plain shifted cross-entropy (transformers cannot tell it from the class name)
    return net


def history_prompt(item_tokens: np.ndarray, items: np.ndarray, max_items: int) -> np.ndarray:
    """``[BOS]`` and the code tokens of the last ``max_items`` items (``item_tokens``: items × depth)."""
    recent = np.asarray(items, dtype=np.int64)[-max_items:] if max_items > 0 else np.zeros(0, dtype=np.int64)
    return np.concatenate([[BOS], item_tokens[recent].ravel()]).astype(np.int64)


def training_windows(item_tokens: np.ndarray, seqs: list[np.ndarray], max_items: int) -> list[tuple[np.ndarray, int]]:
    """Windows of up to ``max_items + 1`` items (a prompt's worth and the item after it) cut from the
    end of each sequence (items as indices), consecutive windows sharing one item, so training
    sees every position that generation uses. Returns ``(tokens, first_target_token)`` pairs: the
    first item of a window that is not the sequence's start is context only, not a target."""
    if max_items < 1:
        raise ValueError(f"max_items must be at least 1, got {max_items}")
    depth = item_tokens.shape[1]
    out = []
    for s in seqs:
        end = len(s)
        while end > 0:
            start = max(0, end - max_items - 1)
            toks = np.concatenate([[BOS], item_tokens[s[start:end]].ravel()])
            out.append((toks.astype(np.int64), 1 if start == 0 else 1 + depth))
            end = start + 1 if start > 0 else 0
    return out


def beam_search(net: Any, prompts: list[np.ndarray], trie: CodeTrie, vocab: Vocab, beam: int,
                leaves: list[np.ndarray], blocked: list[tuple[np.ndarray, np.ndarray]] | None,
                device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """The ``beam`` best items for each prompt, generated code by code inside the trie.

    Returns ``(items, log_probs)``, both ``(len(prompts), beam)``, best first; a row with fewer
    open items than ``beam`` is padded with item -1 and ``-inf``. ``leaves`` and ``blocked`` say
    which items may be generated for each prompt row (see :class:`CodeTrie`).

    The prompt is encoded once per row; the beams then share its cached keys and values: each
    step feeds all ``beam`` codes of a row side by side, at the same position, with a 4-D attention
    mask (tree attention) that lets each one see the prompt, its own ancestors and itself. So the
    cache grows by ``beam`` tokens per step for each row instead of being copied ``beam`` times.
    """
    import torch

    b, w = len(prompts), beam
    width = max(len(p) for p in prompts)
    ids = np.full((b, width), PAD, dtype=np.int64)
    mask = np.zeros((b, width), dtype=bool)
    for r, p in enumerate(prompts):  # left padding: every prompt ends at the last column
        ids[r, width - len(p):] = p
        mask[r, width - len(p):] = True
    t_mask = torch.from_numpy(mask).to(device)
    pos = (t_mask.long().cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        out = net(
            input_ids=torch.from_numpy(ids).to(device), attention_mask=t_mask.long(), position_ids=pos, use_cache=True
        )
    cache = out.cache if hasattr(out, "cache") else out.past_key_values
    logp = torch.log_softmax(out.logits[:, -1:].float(), -1).cpu().numpy()  # (rows, 1 beam, vocab)
    offsets = vocab.offsets
    nodes = np.zeros((b, 1), dtype=np.int64)
    scores = np.zeros((b, 1))
    ancestors = np.zeros((b, 1, 0), dtype=np.int64)  # slot (column in the generated part) of each ancestor
    codes = np.zeros((b, 1), dtype=np.int64)
    for level in range(vocab.depth):
        k = vocab.sizes[level]
        now = nodes.shape[1]
        rows = np.repeat(np.arange(b), now)
        allowed = trie.open_children(level, nodes.ravel(), rows, leaves, blocked).reshape(b, now, k)
        part = logp[:, :, offsets[level] : offsets[level] + k]  # (rows, beams, k)
        cand = np.where(allowed & np.isfinite(scores)[:, :, None], scores[:, :, None] + part, -np.inf).reshape(
            b, now * k
        )
        keep = min(w, now * k)
        top = (
            np.argpartition(-cand, keep - 1, axis=1)[:, :keep]
            if keep < cand.shape[1]
            else np.tile(np.arange(keep), (b, 1))
        )
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(cand, top, 1), axis=1, kind="stable"), 1)
        new_scores = np.take_along_axis(cand, top, 1)  # (rows, keep) best first
        parent, codes = top // k, top % k
        child = trie.child[level][np.take_along_axis(nodes, parent, 1), codes]
        child[~np.isfinite(new_scores)] = -1
        nodes, scores = np.maximum(child, 0), np.where(child >= 0, new_scores, -np.inf)
        if level > 0:  # the parents were the tokens fed at the previous step, in slots of that step
            ancestors = np.concatenate(
                [np.take_along_axis(ancestors, parent[:, :, None], 1), ((level - 1) * w + parent)[:, :, None]], 2
            )
        else:
            ancestors = np.zeros((b, keep, 0), dtype=np.int64)
        if level == vocab.depth - 1:
            items = np.where(np.isfinite(scores), nodes, -1)
            break
        # Feed this level's codes: one token per beam, all at the next position, tree-masked.
        gen_before = level * w
        step_mask = np.zeros((b, 1, keep, width + gen_before + keep), dtype=bool)
        step_mask[:, 0, :, :width] = mask[:, None, :]
        for lv in range(ancestors.shape[2]):
            np.put_along_axis(step_mask[:, 0], width + ancestors[:, :, lv : lv + 1], True, axis=2)
        step_mask[:, 0, np.arange(keep), width + gen_before + np.arange(keep)] = True
        if keep < w:  # fewer beams than the width (tiny catalogs): pad the slots so later steps line up
            step_mask = np.concatenate([step_mask, np.zeros((b, 1, w - keep, step_mask.shape[3]), dtype=bool)], 2)
            step_mask = np.concatenate([step_mask, np.zeros((b, 1, w, w - keep), dtype=bool)], 3)
            step_mask[:, 0, np.arange(keep, w), width + gen_before + np.arange(keep, w)] = True
        fed = np.zeros((b, w), dtype=np.int64)
        fed[:, :keep] = offsets[level] + codes
        position = (pos[:, -1:] + 1 + level).repeat(1, w)
        with torch.no_grad():
            out = net(
                input_ids=torch.from_numpy(fed).to(device),
                attention_mask=torch.from_numpy(step_mask).to(device),
                position_ids=position,
                cache=cache,
                use_cache=True,
            )
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        logp = torch.log_softmax(out.logits[:, :keep].float(), -1).cpu().numpy()  # (rows, keep, vocab)
    final = scores
    if items.shape[1] < beam:
        items = np.pad(items, ((0, 0), (0, beam - items.shape[1])), constant_values=-1)
        final = np.pad(final, ((0, 0), (0, beam - final.shape[1])), constant_values=-np.inf)
    return items, final
