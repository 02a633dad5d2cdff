"""The values paper 004 (Manolakos & Soltani, blur / filters / scrambling) reports, with where it states them: data
only, read by its claims (`veil.experiments.manolakos.claims`)."""

# ---------------------------------------------------------------- paper 004, CIFAR-10, its CNN (Fig 1)
#: Secs 3 and 4.1: the baseline CNN's accuracy on plain images
CNN_PLAIN = 0.74
#: Sec 4.5: "The accuracy is 58% for an 8x8 scrambling"
CNN_SCRAMBLE8 = 0.58
#: Sec 4.6: with the descrambler "the performance is always roughly 10% worse" than scrambling without it
DESCRAMBLER_CHANGE = -0.10
#: Sec 4.2: the drop with Gaussian blur "is less than 5% for all settings"
BLUR_MAX_DROP = 0.05
#: Sec 4.4: i.i.d. random filters against a single random filter: "a drop of almost 20%", read as 15 to 20 points
IID_DROP_BAND = (0.15, 0.20)
