"""CIF parsing: the gemmi fast path reads the same crystals as pymatgen and hands the rest to pymatgen."""

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from gapkit.data import CIFParseError, structure_from_cif

pytest.importorskip("gemmi")


def crystals() -> list[Structure]:
    rutile = Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"],
                                       [[0, 0, 0], [0.305, 0.305, 0]])
    spinel = Structure.from_spacegroup("Fd-3m", Lattice.cubic(8.08), ["Mg", "Al", "O"],
                                       [[0.125, 0.125, 0.125], [0.5, 0.5, 0.5], [0.26, 0.26, 0.26]])
    mono = Structure(Lattice.monoclinic(5.1, 5.2, 5.3, 99.0), ["Zr", "Zr", "O", "O"],
                     [[0.27, 0.04, 0.21], [0.73, 0.96, 0.79], [0.07, 0.33, 0.34], [0.45, 0.76, 0.48]])
    return [rutile, spinel, mono]


@pytest.mark.parametrize("symprec", [None, 0.1])
def test_gemmi_and_pymatgen_read_the_same_crystal(symprec):
    matcher = StructureMatcher()
    for crystal in crystals():
        text = str(CifWriter(crystal, symprec=symprec))
        fast = structure_from_cif(text, engine="gemmi" if symprec is None else "auto")
        slow = structure_from_cif(text, engine="pymatgen")
        assert len(fast) == len(slow) == len(crystal)
        assert fast.composition == slow.composition
        assert matcher.fit(fast, slow)
        if symprec is not None and crystal.get_space_group_info()[1] > 1:  # symmetry to expand: pymatgen
            with pytest.raises(CIFParseError, match="engine='auto'"):
                structure_from_cif(text, engine="gemmi")
        else:  # P1: the very same lattice and sites
            np.testing.assert_allclose(fast.lattice.matrix, slow.lattice.matrix, atol=1e-9)
            np.testing.assert_allclose(fast.frac_coords, slow.frac_coords, atol=1e-6)


def test_partial_occupancy_goes_to_pymatgen():
    disordered = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Co": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    text = str(CifWriter(disordered))
    with pytest.raises(CIFParseError, match="engine='auto'"):
        structure_from_cif(text, engine="gemmi")
    parsed = structure_from_cif(text)  # auto: pymatgen keeps the partial occupancy
    assert not parsed.is_ordered


def test_bad_cif_text_and_engine():
    with pytest.raises(CIFParseError, match="empty"):
        structure_from_cif("   ")
    with pytest.raises(CIFParseError, match="could not parse|no atoms"):
        structure_from_cif("data_x\n_cell_length_a 3\n")
    with pytest.raises(ValueError, match="engine"):
        structure_from_cif("data_x\n", engine="ase")
