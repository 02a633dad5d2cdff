"""The masking schemes that need no training, NumPy only: the keyed encryptions (EtC, LE, ELE, PE, block
scrambling) and paper 004's filters. One module per scheme family, which with its registry line is all a scheme
takes (docs/adding-a-scheme.md); `veil.maskers.faces` wraps each in a scikit-learn estimator that delegates to it,
and `veil mask` uses them directly (`veil.maskers.masking`), so that masking never imports scikit-learn, SciPy or
torch. Look schemes up by method name with `veil.registry.SCHEMES`."""
