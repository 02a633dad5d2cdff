"""Reproduction of paper 003, MaungMaung & Kiya (2022): EtC images classified by ConvMixer, and their compressibility
under JPEG and PNG. Its runs are parts of `veil reproduce tradeoff` (`veil.experiments.manolakos.tradeoff`)."""
