"""Chemical formulas -> validated pymatgen compositions -> (element index, fraction) arrays.

Index convention (shared by every composition model, CrabNet included):

* an element is indexed by its **atomic number Z** (H = 1, ..., Lr = 103, ...);
* index **0 is padding**: a formula with fewer than ``max_elements`` elements is padded with
  ``Z = 0`` and fraction ``0.0`` on the right;
* fractions are atomic fractions of the (unreduced) composition and sum to 1 over the real slots;
* elements keep pymatgen's order for the formula as written (``Composition`` insertion order).

So ``encode_formula("SiO2")`` gives ``Z = [14, 8, 0, 0, 0, 0, 0]`` and
``fractions = [1/3, 2/3, 0, 0, 0, 0, 0]``, and ``embedding_matrix(name)[Z]`` (see
``gapkit.featurize.embeddings``) looks the element vectors up directly, padding giving zeros.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

import numpy as np
from pymatgen.core import Composition, Element
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

MAX_ELEMENTS = 7
PAD_INDEX = 0


class FormulaError(ValueError):
    """A formula that cannot be turned into a composition of real elements."""


def parse_formula(formula: str) -> Composition:
    """Parse a formula into a pymatgen Composition, raising FormulaError with the reason."""
    if formula is None or (isinstance(formula, float) and formula != formula):
        # pandas reads an empty CSV cell as NaN: say "empty", not "got float"
        raise FormulaError("Empty formula (a missing value): give every row a formula or drop the row.")
    if not isinstance(formula, str):
        raise FormulaError(f"Formula must be a string, got {type(formula).__name__}: {formula!r}.")
    text = formula.strip()
    if not text:
        raise FormulaError("Empty formula.")
    try:
        comp = Composition(text)
    except Exception as exc:  # pymatgen raises ValueError/KeyError/CompositionError variously
        raise FormulaError(f"Cannot parse formula {formula!r}: {exc}") from exc
    for species, amount in comp.items():
        if not isinstance(species, Element):
            raise FormulaError(
                f"Formula {formula!r} contains {species!s}, which is not a chemical element."
            )
        if amount <= 0:
            raise FormulaError(f"Formula {formula!r} has a non-positive amount {amount} of {species}.")
    # pymatgen silently drops zero amounts ("Si0O2" -> O2): a symbol written but absent is a zero.
    written = set(re.findall(r"[A-Z][a-z]?", text))
    present = {el.symbol for el in comp}
    if written - present and all(Element.is_valid_symbol(s) for s in written - present):
        raise FormulaError(f"Formula {formula!r} has a zero amount of {', '.join(sorted(written - present))}.")
    if len(comp) == 0:
        raise FormulaError(f"Formula {formula!r} contains no elements.")
    return comp


def encode_formula(formula: str, max_elements: int = MAX_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    """Encode a formula as (Z int64[max_elements], atomic fractions float32[max_elements]), 0-padded."""
    if max_elements < 1:
        raise ValueError(f"max_elements must be >= 1, got {max_elements}.")
    comp = parse_formula(formula)
    if len(comp) > max_elements:
        raise FormulaError(
            f"Formula {formula!r} has {len(comp)} elements, more than max_elements={max_elements}; "
            "raise max_elements or drop this formula."
        )
    z = np.zeros(max_elements, dtype=np.int64)
    frac = np.zeros(max_elements, dtype=np.float32)
    total = comp.num_atoms
    for i, (element, amount) in enumerate(comp.items()):
        z[i] = element.Z
        frac[i] = amount / total
    return z, frac


def decode_formula(z: np.ndarray, fractions: np.ndarray) -> Composition:
    """Turn (Z, fractions) back into a Composition of atomic fractions (padding ignored)."""
    z = np.asarray(z)
    fractions = np.asarray(fractions)
    keep = z != PAD_INDEX
    return Composition({Element.from_Z(int(a)): float(f) for a, f in zip(z[keep], fractions[keep])})


def encode_formulas(
    formulas: Iterable[str], max_elements: int | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Encode many formulas as (Z int64[n, k], fractions float32[n, k]); k = the most elements of any
    formula unless ``max_elements`` fixes it (attention masks the padding, so the width changes nothing)."""
    formulas = list(formulas)
    comps = []
    for i, formula in enumerate(tqdm(formulas, desc="encoding formulas", disable=not progress,
                                     mininterval=1.0)):
        try:
            comps.append(parse_formula(formula))
        except FormulaError as exc:
            raise FormulaError(f"Row {i}: {exc}") from exc
    return encode_compositions(comps, max_elements)


def encode_compositions(
    comps: Sequence[Composition], max_elements: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Encode parsed compositions as (Z int64[n, k], fractions float32[n, k]); k as in ``encode_formulas``."""
    width = max((len(c) for c in comps), default=1) if max_elements is None else max_elements
    if width < 1:
        raise ValueError(f"max_elements must be >= 1, got {width}.")
    z = np.zeros((len(comps), width), dtype=np.int64)
    frac = np.zeros((len(comps), width), dtype=np.float32)
    for i, comp in enumerate(comps):
        if len(comp) > width:
            raise FormulaError(f"Row {i}: formula {comp.formula!r} has {len(comp)} elements, more than "
                               f"max_elements={width}; leave max_elements=None to size it from the data.")
        total = comp.num_atoms
        for j, (element, amount) in enumerate(comp.items()):
            z[i, j] = element.Z
            frac[i, j] = amount / total
    return z, frac
