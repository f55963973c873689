"""Band-gap models as plain torch ``nn.Module``s (no device code): CrabNet, CGCNN, CGCrabNet, Atom_DL."""
