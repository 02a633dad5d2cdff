"""The README's Python quick start runs as written: a masker and a classifier in one scikit-learn Pipeline, with
fit, score, GridSearchCV over both steps' parameters and cross_val_score with two worker processes."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start() -> str:
    text = README.read_text()
    section = text[text.index("## Python quick start"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_quick_start_runs(capsys):
    exec(compile(quick_start(), str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    accuracy = float(re.search(r"AAE \+ NN, held-out accuracy: ([0-9.]+)", out).group(1))
    assert accuracy > 0.5, out  # ten classes: chance is 0.1
    folds = re.search(r"EtC \+ ConvMixer, 3-fold accuracy: \[([^\]]*)\]", out).group(1).split()
    assert len(folds) == 3 and min(map(float, folds)) > 0.2, out
    assert "best: {'mask__gauss_dim'" in out
