"""Reproduction of paper 002, Lis et al. (2021), "Classification of masked image data": the protocol (`veil
reproduce paper`'s parts), the values the paper reports, its claims checked by code, and report.md; and `veil demo`
(demo.py), the paper's pipeline and Fig. 1 in small, on scikit-learn's digits."""
