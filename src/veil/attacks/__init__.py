"""Privacy under attack: one module per attack, each stating its threat model.

- a, ciphertext-only: the victim's masked data, the algorithm, the architecture and public images of the same kind.
- b, encoder or oracle: (a) plus the victim's AAE encoder or black-box use of its masking function.
- c, known pairs: (a) plus n (image, masked) pairs of the victim.

Attacks (`veil attack --method`): mismatch, itn, latent-align, neuracrypt, fr, jigsaw, gan, deconv,
itn-prior.
"""
from veil.attacks.base import ATTACKS, THREATS, Attack, Budget, Knowledge, attack_class, register_attack
from veil.attacks.run import Outcome, run_attack, write_attack

__all__ = ["ATTACKS", "THREATS", "Attack", "Budget", "Knowledge", "Outcome", "attack_class", "register_attack",
           "run_attack", "write_attack"]
