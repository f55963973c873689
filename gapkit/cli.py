"""The ``gapkit`` command line: ``gapkit predict --model PATH input.csv|*.cif [-o out.csv]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)


def read_inputs(paths: list[str]) -> pd.DataFrame:
    """Inputs as a DataFrame: CIF files -> (source, formula, structure); a CSV -> its rows (formula and/or cif)."""
    from gapkit.data import structure_from_cif

    rows, frames = [], []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"No such input file: {path}")
        if path.suffix.lower() == ".cif":
            s = structure_from_cif(path.read_text(), label=str(path))
            rows.append({"source": str(path), "formula": s.composition.reduced_formula, "structure": s})
        elif path.suffix.lower() == ".csv":
            df = pd.read_csv(path)
            if "formula" not in df.columns and "cif" not in df.columns:
                raise ValueError(f"{path}: a CSV input needs a 'formula' column (or a 'cif' column of CIF texts).")
            if "cif" in df.columns:
                df["structure"] = [structure_from_cif(c, label=f"{path} row {i}") for i, c in enumerate(df["cif"])]
                df = df.drop(columns=["cif"])
            frames.append(df.assign(source=str(path)))
        else:
            raise ValueError(f"{path}: inputs must be .csv (formulas) or .cif (crystal structures).")
    if rows:
        frames.append(pd.DataFrame(rows))
    if not frames:
        raise ValueError("No inputs given.")
    return pd.concat(frames, ignore_index=True)


def predict_command(args: argparse.Namespace) -> int:
    """Run ``gapkit predict``: load the model, read inputs, write gap_ev and uncertainty_ev as CSV."""
    from gapkit.estimators import load_estimator

    model = load_estimator(args.model)
    inputs = read_inputs(args.inputs)
    pred = model.predict(inputs, batch_size=args.batch_size)
    keep = [c for c in inputs.columns if c != "structure"]
    out = pd.concat([inputs[keep].reset_index(drop=True), pred.reset_index(drop=True)], axis=1)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(args.output, index=False)
        logger.info("wrote %d predictions to %s", len(out), args.output)
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gapkit`` command."""
    parser = argparse.ArgumentParser(prog="gapkit", description="Band-gap models of the gapkit book.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="predict band gaps with a saved model")
    p.add_argument("--model", required=True, help="a model saved with estimator.save(path)")
    p.add_argument("inputs", nargs="+", help="a CSV with a 'formula' (or 'cif') column, or CIF files")
    p.add_argument("-o", "--output", help="output CSV (default: standard output)")
    p.add_argument("--batch-size", type=int, default=None, help="inference batch (default: the model's, at most 64)")
    p.set_defaults(func=predict_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gapkit`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, TypeError) as exc:  # user errors: a message, not a traceback
        print(f"gapkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
