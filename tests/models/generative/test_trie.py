"""The code trie: every generated id is an item; exclusions and allow-lists hold inside the beam."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyrec.models.generative.decoder import Vocab, beam_search, build_decoder, history_prompt
from anyrec.models.generative.trie import CodeTrie


def random_codes(n: int, sizes: list[int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    space = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))
    return space[rng.choice(len(space), size=n, replace=False)]


def test_item_of_round_trips_and_rejects_unknown_codes():
    codes = random_codes(40, [4, 4, 3], seed=0)
    trie = CodeTrie(codes, [4, 4, 3])
    assert np.array_equal(trie.item_of(codes), np.arange(40))
    space = np.stack(np.meshgrid(np.arange(4), np.arange(4), np.arange(3), indexing="ij"), -1).reshape(-1, 3)
    known = {tuple(r) for r in codes.tolist()}
    unknown = np.array([r for r in space.tolist() if tuple(r) not in known])
    assert (trie.item_of(unknown) == -1).all()
    assert (trie.item_of(np.array([[9, 0, 0], [-1, 0, 0]])) == -1).all()
    with pytest.raises(ValueError, match="unique"):
        CodeTrie(np.r_[codes, codes[:1]], [4, 4, 3])


@pytest.fixture(scope="module")
def net():
    import torch

    torch.manual_seed(0)
    return build_decoder(Vocab((4, 4, 3)), max_items=4, layers=1, hidden=16, heads=2, dropout=0.0).eval()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 30), st.booleans())
def test_beam_search_never_lets_out_an_invalid_excluded_or_disallowed_id(net, seed, beam, restrict):
    rng = np.random.default_rng(seed)
    sizes = [4, 4, 3]
    codes = random_codes(30, sizes, seed)
    trie, vocab = CodeTrie(codes, sizes), Vocab(tuple(sizes))
    tokens = vocab.tokens(codes)
    prompts = [history_prompt(tokens, rng.integers(30, size=int(rng.integers(0, 5))), 4) for _ in range(5)]
    rows = rng.integers(5, size=40)
    items = rng.integers(30, size=40)
    allowed = rng.choice(30, size=12, replace=False) if restrict else None
    leaves = trie.leaf_counts(allowed)
    found, lp = beam_search(net, prompts, trie, vocab, beam, leaves, trie.exclusions(rows, items, leaves))
    assert found.shape == lp.shape == (5, beam)
    for r in range(5):
        got = found[r][found[r] >= 0]
        banned = set(items[rows == r].tolist())
        pool = set(range(30)) if allowed is None else set(allowed.tolist())
        assert set(got.tolist()) <= pool - banned  # real items only, never an excluded or disallowed one
        assert len(set(got.tolist())) == len(got)  # no item twice
        assert len(got) == min(beam, len(pool - banned))  # the beam is filled while open items remain
        assert (np.diff(lp[r][: len(got)]) <= 1e-9).all() and np.isneginf(lp[r][len(got):]).all()


def test_cached_beam_scores_equal_a_full_forward_pass(net):
    """The incremental decoding (left padding, cache reordered per beam) gives each item the same
    log-probability as scoring prompt + item codes in one pass."""
    import torch

    sizes = [4, 4, 3]
    codes = random_codes(30, sizes, 5)
    trie, vocab = CodeTrie(codes, sizes), Vocab(tuple(sizes))
    tokens = vocab.tokens(codes)
    prompts = [history_prompt(tokens, np.array(h), 4) for h in ([3, 7, 1], [], [12, 5, 9, 22, 4, 6])]
    found, lp = beam_search(net, prompts, trie, vocab, 6, trie.leaf_counts(), None)
    for r, p in enumerate(prompts):
        for item, score in zip(found[r], lp[r]):
            seq = torch.from_numpy(np.r_[p, tokens[item]])[None]
            with torch.no_grad():
                logp = torch.log_softmax(net(input_ids=seq).logits[0].float(), -1)
            full = sum(float(logp[len(p) - 1 + j, tokens[item, j]]) for j in range(3))
            assert score == pytest.approx(full, abs=1e-4)


@pytest.mark.parametrize("length, max_items", [(1, 3), (3, 3), (4, 3), (10, 3), (25, 4)])
def test_training_windows_make_every_item_a_target_exactly_once(length, max_items):
    from anyrec.models.generative.decoder import BOS, training_windows

    vocab = Vocab((5, 5, 4))
    codes = random_codes(30, [5, 5, 4], 0)
    tokens = vocab.tokens(codes)
    seq = np.arange(length) % 30
    windows = training_windows(tokens, [seq], max_items)
    targets = []
    for toks, first in windows:
        assert toks[0] == BOS and len(toks) <= 1 + (max_items + 1) * 3  # never longer than a prompt plus one item
        assert (len(toks) - 1) % 3 == 0 and (first - 1) % 3 == 0
        items = trie_items(toks[1:].reshape(-1, 3), codes, vocab)
        targets += items[(first - 1) // 3 :]
    assert sorted(targets) == sorted(seq.tolist())


def trie_items(token_rows, codes, vocab):
    trie = CodeTrie(codes, list(vocab.sizes))
    return trie.item_of(token_rows - vocab.offsets[None, :]).tolist()
