"""The Pareto plots label a lower bound as the tables do: a hollow point named with ≥."""
from __future__ import annotations

import numpy as np

from veil.experiments import plots


def test_a_lower_bound_point_is_hollow_and_labelled(monkeypatch, tmp_path):
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: drawn.setdefault("fig", fig))
    plots.frontier(tmp_path / "f.png", {"aae": (0.36, 1.2), "pe": (0.9, 0.8)}, ["aae", "pe"], "x", "y", "t",
                   lower_bounds=frozenset({"aae"}))
    ax = drawn["fig"].axes[0]
    labels = {text.get_text() for text in ax.texts}
    assert labels == {"aae (≥)", "pe"}
    faces = {tuple(np.round(c.get_offsets()[0], 2)): c.get_facecolors() for c in ax.collections if len(c.get_offsets())}
    assert len(faces[(0.36, 1.2)]) == 0 or faces[(0.36, 1.2)][0][3] == 0  # hollow: no face colour
    assert faces[(0.9, 0.8)][0][3] == 1
    assert "(≥) leakage is a lower bound" in [t.get_text() for t in ax.get_legend().get_texts()]
