"""The masking schemes that need no training, NumPy only: the keyed encryptions (EtC, LE, ELE, PE, block
scrambling) and paper 004's filters. One module per scheme family; `veil.maskers` wraps each in a scikit-learn
estimator that delegates to it, and `veil mask` uses them directly, so that masking never imports scikit-learn,
SciPy or torch. Look schemes up by method name with `veil.registry.SCHEMES`."""
