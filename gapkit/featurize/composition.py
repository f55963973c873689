"""Chemical formulas -> validated pymatgen compositions (and, later, element/fraction tensors)."""

from __future__ import annotations

from pymatgen.core import Composition, Element


class FormulaError(ValueError):
    """A formula that cannot be turned into a composition of real elements."""


def parse_formula(formula: str) -> Composition:
    """Parse a formula into a pymatgen Composition, raising FormulaError with the reason."""
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
    if len(comp) == 0:
        raise FormulaError(f"Formula {formula!r} contains no elements.")
    return comp
