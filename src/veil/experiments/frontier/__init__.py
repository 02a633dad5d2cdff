"""`veil report frontier`: the privacy-trained obfuscator, the AAE's knobs and the keyed AAE, swept and attacked as
`veil report privacy` attacks a scheme (`sweep`), and the frontier's figures, plots and report (`report`)."""
