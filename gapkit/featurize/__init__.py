"""Featurizers: compositions, element embeddings, crystal graphs, atom-centred descriptors."""
