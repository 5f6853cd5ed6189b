"""Vector search: exact (numpy) and FAISS indexes behind one small interface."""

from anyrec.index.vector import ExactIndex, FaissIndex, VectorIndex, load_index, make_index

__all__ = ["ExactIndex", "FaissIndex", "VectorIndex", "load_index", "make_index"]
