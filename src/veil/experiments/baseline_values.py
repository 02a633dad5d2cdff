"""The values papers 003 (MaungMaung & Kiya, EtC + ConvMixer) and 004 (Manolakos & Soltani, blur / filters /
scrambling) report, with where they state them: data only, read by the baselines' claims (`baseline_claims`)."""

# ---------------------------------------------------------------- paper 003, CIFAR-10, ConvMixer-256/8
#: Table II: accuracy (%) trained and tested on plain and on EtC images (block 16)
CONVMIXER_PLAIN = 96.07
CONVMIXER_ETC = 92.72
#: Table III: ConvMixer-256/8 (EtC), accuracy (%) uncompressed and after JPEG at each quality factor
JPEG_ETC = {85: 90.43, 80: 89.95}
#: Table IV: file size (MB) of all 60,000 CIFAR-10 images after JPEG at each quality factor; uncompressed 178.20
FILE_MB = {"plain": {85: 68.7, 80: 64.4}, "etc": {85: 69.0, 80: 64.7}}
UNCOMPRESSED_MB = 178.20
#: Sec IV-C: EtC attains "a reduction in file size of more than 50%" under lossy compression
LOSSY_REDUCTION = 0.5
#: Sec IV-C says EtC compresses "almost the same" as plain images (its Table IV: within 0.5%); we read "almost the
#: same" as within 2%, four times the paper's own difference
SAME_SIZE_TOLERANCE = 0.02

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
