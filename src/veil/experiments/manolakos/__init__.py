"""Reproduction of paper 004, Manolakos & Soltani: accuracy against the strength of blur, random filters and
scrambling, and the descrambler; `veil reproduce tradeoff` runs these with paper 003's parts."""
