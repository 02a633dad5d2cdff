"""Privacy under attack: one module per attack, each stating its threat model.

- a, ciphertext-only: the victim's masked data, the algorithm, the architecture and public images of the same kind.
- b, encoder or oracle: (a) plus the victim's AAE encoder or black-box use of its masking function.
- c, known pairs: (a) plus n (image, masked) pairs of the victim.

Attacks (`veil attack --method`): mismatch, itn, itn-prior, latent-align, latent-linear, neuracrypt, fr, jigsaw,
gan, deconv, key-procrustes, seed-guess. Each declares the masker capabilities it needs (`Attack.requires`) and the
budget fields that drive it (`budget_fields`).
"""
from veil.attacks.base import (ATTACKS, THREATS, Attack, Budget, Knowledge, attack_class, check_grants,
                               register_attack)
from veil.attacks.run import Outcome, run_attack

__all__ = ["ATTACKS", "THREATS", "Attack", "Budget", "Knowledge", "Outcome", "attack_class", "check_grants",
           "register_attack", "run_attack"]
