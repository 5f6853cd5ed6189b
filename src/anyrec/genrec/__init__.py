"""Generative recommendation parts: semantic ids, the code trie, the decoder and its training."""
