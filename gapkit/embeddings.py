"""Shortcut: ``gapkit.embeddings.get_embedding("atom_dl")`` is ``gapkit.featurize.embeddings``'s registry."""

from gapkit.featurize.embeddings import embedding_matrix, get_embedding, list_embeddings

__all__ = ["embedding_matrix", "get_embedding", "list_embeddings"]
