"""Per-site contributions of a linear-readout CGCNN, perovskite site roles, the site-map screen."""

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from gapkit.estimators import CGCNN
from gapkit.evaluate.site_contributions import (PerovskiteSiteError, element_site_means, label_sites,
                                                perovskite_roles, screen_by_site_map, site_contributions,
                                                structure_table)
from gapkit.models.cgcnn import atom_init_table
from gapkit.train.tasks import BandGapTask

SMALL = dict(node_features="onehot", node_dim=8, n_conv=2, hidden_dim=8, cutoff=6.0, gaussian_step=0.5,
             progress=False, graph_cache=False)


def perovskite(a: str, b: str, x: str = "O", lat: float = 3.9, shift: float = 0.0) -> Structure:
    """A 5-atom cubic ABX3 cell (A at the corner, B at the body centre), B optionally off-centre."""
    return Structure(Lattice.cubic(lat), [a, b, x, x, x],
                     [[0, 0, 0], [0.5 + shift, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def unfitted(readout: str, target: str = "heat_all_ev_per_atom", seed: int = 0) -> CGCNN:
    """A CGCNN with random weights and a target scaling, as if fitted (no training needed to test algebra)."""
    est = CGCNN(**SMALL, readout=readout, target=target)
    torch.manual_seed(seed)
    model = est.build_model({"atom_vectors": atom_init_table("onehot")})
    est.task_ = BandGapTask(model, target_mean=1.3, target_std=0.7).eval()
    return est


def structures() -> list[Structure]:
    nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return [perovskite("Sr", "Ti"), perovskite("Pb", "Zr", lat=4.1, shift=0.03), nacl,
            perovskite("Ba", "Ti", x="F") * (2, 1, 1)]


def test_site_contributions_average_exactly_to_the_prediction():
    est = unfitted("linear")
    s = structures()
    contrib = site_contributions(est, s)
    assert list(contrib.groupby("row").size()) == [len(x) for x in s]
    pred = est.predict(s)["heat_all_ev_per_atom"].to_numpy()
    mean = contrib.groupby("row")["contribution"].mean().to_numpy()
    np.testing.assert_allclose(mean, pred, rtol=0, atol=2e-6)
    assert contrib["contribution"].std() > 1e-4  # the sites differ: the test would notice a constant
    assert set(contrib["element"]) == {"Sr", "Ti", "O", "Pb", "Zr", "Na", "Cl", "Ba", "F"}


def test_contributions_need_the_linear_readout():
    with pytest.raises(ValueError, match="readout='linear'"):
        site_contributions(unfitted("mean"), structures()[:1])
    with pytest.raises(ValueError, match="readout must be one of"):
        CGCNN(**SMALL, readout="sum").build_model({"atom_vectors": atom_init_table("onehot")})


def test_perovskite_roles_follow_the_name_and_geometry():
    assert perovskite_roles("SrTiO3", perovskite("Sr", "Ti")) == ["A", "B", "X", "X", "X"]
    # the name decides which cation is A: here Ti sits at the corner
    assert perovskite_roles("TiSrO3", perovskite("Ti", "Sr")) == ["A", "B", "X", "X", "X"]
    # oxygen as B (as in Castelli's 'GeOO3'-like rows): geometry picks the octahedral O as B
    assert perovskite_roles("GeOO3", perovskite("Ge", "O"))[:2] == ["A", "B"]
    assert perovskite_roles("CdCdO3", perovskite("Cd", "Cd")) == ["A", "B", "X", "X", "X"]  # A = B element
    with pytest.raises(PerovskiteSiteError, match="5-atom"):
        perovskite_roles("SrTiO3", perovskite("Sr", "Ti") * (2, 1, 1))
    with pytest.raises(PerovskiteSiteError, match="cannot find"):
        perovskite_roles("BaTiO3", perovskite("Sr", "Ti"))


def _labelled() -> pd.DataFrame:
    rows = []
    # a made-up additive truth: Pb on A and Ti on B are favourable; O3 better than N3
    c_a = {"Pb": -1.0, "Sr": 0.0, "Na": 0.5}
    c_b = {"Ti": -0.5, "Zr": 0.0, "Cu": 1.0}
    c_x = {"O": 0.1, "N": 0.4}
    names = []
    for i, (a, b, x) in enumerate([("Pb", "Zr", "O"), ("Sr", "Ti", "O"), ("Na", "Cu", "N"), ("Sr", "Zr", "N")]):
        names.append(f"{a}{b}{x}3")
        for site, (el, c) in enumerate([(a, c_a[a]), (b, c_b[b]), (x, c_x[x]), (x, c_x[x]), (x, c_x[x])]):
            rows.append({"row": i, "site": site, "element": el, "contribution": c,
                         "role": "A" if site == 0 else "B" if site == 1 else "X"})
    return pd.DataFrame(rows)


def test_element_means_and_the_group_screen():
    labelled = _labelled()
    a = element_site_means(labelled, "A")
    assert a.loc["Pb", "mean"] == -1.0 and a.loc["Sr", "count"] == 2
    table = structure_table(labelled)
    assert table.loc[0, "anions"] == "OOO" and table.loc[0, "prediction"] == pytest.approx((-1 + 0 + 0.3) / 5)
    screen = screen_by_site_map(labelled)  # A in groups 13-15: Pb; B in groups 4-6: Ti, Zr
    assert set(screen["A"]) == {"Pb"} and set(screen["B"]) == {"Ti", "Zr"}
    best = screen.iloc[0]
    assert best["formula"] == "PbTiO3" and bool(best["known"])
    assert best["map_estimate"] == pytest.approx((-1.0 - 0.5 + 0.3) / 5)
    with pytest.raises(ValueError, match="role"):
        element_site_means(labelled, "Q")


def test_label_sites_uses_each_rows_name():
    s = [perovskite("Sr", "Ti")]
    contrib = pd.DataFrame({"row": [0] * 5, "site": range(5), "element": ["Sr", "Ti", "O", "O", "O"],
                            "contribution": np.arange(5.0)})
    assert list(label_sites(contrib, ["SrTiO3"], s)["role"]) == ["A", "B", "X", "X", "X"]
