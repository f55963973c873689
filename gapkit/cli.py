"""The ``gapkit`` command line: ``gapkit predict --model MODEL INPUT... [-o out.csv]``.

Inputs are structure files in any format pymatgen or ASE reads (CIF, POSCAR/CONTCAR, ``*.vasp``,
pymatgen JSON, extended XYZ, ...), folders of them, glob patterns, and CSV files with a ``formula`` or
``cif`` column. ``--on-error skip`` predicts every row it can and reports the others in an ``error``
column (exit status 1); the default stops at the first bad input (exit status 2).
"""

from __future__ import annotations

import argparse
import glob
import logging
import sys
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

# exit statuses: 0 all rows predicted, 1 some rows skipped (--on-error skip), 2 a usage or input error
EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2
CSV_SUFFIXES = {".csv"}
# files a folder argument contributes: what pymatgen's or ASE's structure readers take by name
STRUCTURE_SUFFIXES = {".cif", ".mcif", ".vasp", ".poscar", ".json", ".xyz", ".extxyz", ".xsf", ".cssr", ".res",
                      ".cell", ".in", ".pwi", ".gen", ".cfg", ".traj"}
STRUCTURE_PREFIXES = ("POSCAR", "CONTCAR")
OUTPUT_COLUMNS = """output columns (CSV, one row per input row, in input order):
  source          the file the row came from
  formula         the formula (reduced formula for structure files; as written for CSV rows)
  <other>         any other columns of an input CSV, unchanged
  gap_ev          predicted band gap in eV; never negative (the model's raw output is clipped at 0)
  uncertainty_ev  the Laplace scale b in eV: the expected |error| (std = 1.41 b)
  lower_ev, upper_ev  with --interval P only: a central P interval (scaled conformal when the model was
                  calibrated with model.calibrate(val_df), else the raw Laplace interval, with a warning)
  error           with --on-error skip only: why the row has no prediction (empty for good rows)

exit status: 0 every row predicted; 1 some rows skipped (--on-error skip); 2 bad usage or input."""


class InputFileError(ValueError):
    """An input file that no reader of gapkit, pymatgen or ASE can read."""


def _is_structure_name(path: Path) -> bool:
    return path.suffix.lower() in STRUCTURE_SUFFIXES or path.name.upper().startswith(STRUCTURE_PREFIXES)


def expand_inputs(names: list[str]) -> list[Path]:
    """Files named by the arguments: files as given, folders' structure and CSV files, glob patterns expanded."""
    paths: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_file():
            paths.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                           and (_is_structure_name(p) or p.suffix.lower() in CSV_SUFFIXES))
            if not found:
                raise FileNotFoundError(f"Folder {path} holds no structure or CSV files.")
            paths.extend(found)
        elif any(ch in name for ch in "*?["):  # a pattern the shell did not expand (quoted, or Windows)
            found = sorted(Path(p) for p in glob.glob(name, recursive=True) if Path(p).is_file())
            if not found:
                raise FileNotFoundError(f"No files match {name!r}.")
            paths.extend(found)
        else:
            raise FileNotFoundError(f"No such input file or folder: {path}")
    return paths


def read_structure(path: Path):
    """One pymatgen Structure from a file: CIF through gapkit's fast reader, else pymatgen, else ASE."""
    import warnings

    from pymatgen.core import Structure

    if path.suffix.lower() == ".cif":
        from gapkit.data import structure_from_cif

        return structure_from_cif(path.read_text(errors="replace"), label=str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about rounding and POTCAR symbols
            return Structure.from_file(path)
    except Exception as pmg_exc:  # pymatgen raises many types; ASE gets its chance below
        pmg_error = pmg_exc
    try:
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor

        atoms = read(path)
    except Exception as ase_exc:
        raise InputFileError(
            f"{path}: neither pymatgen ({type(pmg_error).__name__}: {str(pmg_error)[:120]}) nor ASE "
            f"({type(ase_exc).__name__}: {str(ase_exc)[:120]}) reads it as a crystal structure. Give CIF, "
            "POSCAR/CONTCAR/*.vasp, pymatgen JSON, extended XYZ or another pymatgen/ASE format, or a CSV "
            "with a 'formula' or 'cif' column."
        ) from ase_exc
    if not atoms.pbc.any() or atoms.cell.volume <= 0:
        raise InputFileError(f"{path}: ASE read {len(atoms)} atoms but no periodic cell; a crystal needs one "
                             "(e.g. extended XYZ with a Lattice= entry).")
    return AseAtomsAdaptor.get_structure(atoms)


def read_inputs(paths: list[str], on_error: str = "raise") -> pd.DataFrame:
    """Inputs as one DataFrame: structure files -> (source, formula, structure); CSVs -> their rows.

    With ``on_error="skip"`` an unreadable file or CIF row becomes a row with an ``error`` message.
    """
    from gapkit.data import structure_from_cif

    skip = on_error == "skip"
    frames = []
    for path in expand_inputs(paths):
        if path.suffix.lower() in CSV_SUFFIXES:
            try:
                df = pd.read_csv(path)
            except pd.errors.EmptyDataError:
                raise InputFileError(f"{path} is empty: a CSV input needs a header with 'formula' (or 'cif') "
                                     "and one row per material.") from None
            if "formula" not in df.columns and "cif" not in df.columns:
                raise InputFileError(f"{path}: a CSV input needs a 'formula' column (or a 'cif' column of CIF texts).")
            if "cif" in df.columns:
                structures, errors = [], []
                for i, text in enumerate(df["cif"]):
                    try:
                        structures.append(structure_from_cif(text, label=f"{path} row {i}"))
                        errors.append("")
                    except ValueError as exc:
                        if not skip:
                            raise
                        structures.append(None)
                        errors.append(str(exc))
                df = df.drop(columns=["cif"]).assign(structure=structures)
                if "formula" not in df.columns:
                    df["formula"] = [s.composition.reduced_formula if s is not None else "" for s in structures]
                if skip:
                    df["error"] = errors
            frames.append(df.assign(source=str(path)))
            continue
        try:
            s = read_structure(path)
            row = {"source": str(path), "formula": s.composition.reduced_formula, "structure": s}
        except ValueError as exc:
            if not skip:
                raise
            row = {"source": str(path), "formula": "", "structure": None, "error": str(exc)}
        frames.append(pd.DataFrame([row]))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(out) == 0:
        raise InputFileError(f"The inputs ({', '.join(paths)}) hold no rows to predict.")
    if "error" in out.columns:
        out["error"] = out["error"].fillna("")
    return out


def _resolve_model(name_or_path: str) -> Path:
    """A saved-model path from a path or a shipped model name (gapkit.pretrained, when installed)."""
    try:
        from gapkit.pretrained import resolve
    except ImportError:  # an install without shipped models: the argument is a path
        return Path(name_or_path)
    try:
        return resolve(name_or_path)
    except RuntimeError as exc:  # PretrainedModelError: unknown name, missing or corrupt weights
        raise ValueError(str(exc)) from exc


def predict_command(args: argparse.Namespace) -> int:
    """Run ``gapkit predict``: load the model, read inputs, write gap_ev and uncertainty_ev as CSV."""
    from gapkit.estimators import load_estimator

    model = load_estimator(_resolve_model(args.model))
    if args.quiet:
        model.params["progress"] = False
    if args.no_graph_cache:
        model.params["graph_cache"] = False
    skip = args.on_error == "skip"
    inputs = read_inputs(args.inputs, on_error=args.on_error)
    disorder = {"error": "raise", "majority": "majority"}[args.disorder] if args.disorder else None
    read_errors = inputs["error"] if "error" in inputs.columns else pd.Series("", index=inputs.index)
    readable = inputs[read_errors == ""]
    keep = [c for c in inputs.columns if c not in ("structure", "error")]
    out = inputs[keep].copy()
    out["gap_ev"] = float("nan")
    out["uncertainty_ev"] = float("nan")
    if args.interval is not None:
        out["lower_ev"] = float("nan")
        out["upper_ev"] = float("nan")
    if skip:
        out["error"] = read_errors
    if len(readable):
        pred = model.predict(readable, batch_size=args.batch_size, errors=args.on_error, disorder=disorder,
                             interval=args.interval)
        out.loc[readable.index, "gap_ev"] = pred["gap_ev"].to_numpy()
        out.loc[readable.index, "uncertainty_ev"] = pred["uncertainty_ev"].to_numpy()
        if args.interval is not None:
            for col in ("lower_ev", "upper_ev"):
                out.loc[readable.index, col] = pred[col].to_numpy()
        if skip:
            out.loc[readable.index, "error"] = pred["error"].to_numpy()
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(args.output, index=False)
        logger.info("wrote %d predictions to %s", len(out), args.output)
    else:
        out.to_csv(sys.stdout, index=False)
    n_failed = int((out["error"] != "").sum()) if skip else 0
    if n_failed:
        logger.warning("%d of %d rows could not be predicted; see the 'error' column.", n_failed, len(out))
        return EXIT_SOME_FAILED
    return EXIT_OK


def _level(text: str) -> float:
    """An interval coverage level in (0, 1) from the command line."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"--interval is a coverage level between 0 and 1 (e.g. 0.9), got {text!r}")
    return value


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("gapkit")
    except Exception:  # running from a source tree that is not installed
        from gapkit import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gapkit`` command."""
    parser = argparse.ArgumentParser(prog="gapkit", description="Band-gap models of the gapkit book.")
    parser.add_argument("--version", action="version", version=f"gapkit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "predict", help="predict band gaps with a saved or shipped model",
        description="Predict band gaps (eV, never negative) from structure files or formulas.",
        epilog=OUTPUT_COLUMNS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True,
                   help="a model file saved with estimator.save(path), or the name of a shipped model")
    p.add_argument("inputs", nargs="+",
                   help="structure files (CIF, POSCAR/CONTCAR, *.vasp, pymatgen JSON, extended XYZ, anything "
                        "pymatgen or ASE reads), folders of them, glob patterns, or CSV files with a 'formula' "
                        "or 'cif' column")
    p.add_argument("-o", "--output", help="output CSV (default: standard output)")
    p.add_argument("--batch-size", type=int, default=None, help="inference batch (default: the model's, at most 64)")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="raise: stop at the first bad input (default); skip: predict the rest, explain the bad "
                        "rows in an 'error' column and exit with status 1")
    p.add_argument("--disorder", choices=("error", "majority"), default=None,
                   help="partially occupied sites: error, or majority (put the majority species on each such "
                        "site, an approximation); default: the model's own setting (error unless trained with "
                        "disorder='majority')")
    p.add_argument("--interval", type=_level, default=None, metavar="P",
                   help="add lower_ev and upper_ev, a central interval with coverage P (e.g. 0.9)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-graph-cache", action="store_true",
                   help="do not cache crystal graphs on disk (default: under $GAPKIT_CACHE_DIR/graphs or the "
                        "user cache)")
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
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
