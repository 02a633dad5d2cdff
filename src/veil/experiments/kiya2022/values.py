"""The values paper 003 (MaungMaung & Kiya, EtC + ConvMixer) reports, with where it states them: data only, read by
its claims (`veil.experiments.kiya2022.claims`)."""

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

# ---------------------------------------------------------------- paper 003 at 224x224 (Table II)
#: ViT-B/16 (pretrained on ImageNet-21k, fine-tuned) on CIFAR-10 resized to 224, accuracy (%) plain and EtC (block 16)
VIT_CIFAR224 = {"plain": 99.06, "etc": 87.89}
#: ConvMixer-384/8 (patch 4, from scratch) on Imagenette at 224, accuracy (%) plain and EtC (block 16)
CONVMIXER384_IMAGENETTE = {"plain": 96.10, "etc": 90.11}
#: Sec IV-E / IV-F: EtC images at a large size are "robust against ciphertext-only attacks"; the paper gives no
#: number, so we read robust as at most this share of blocks restored exactly by a ciphertext-only attack
ROBUST_BLOCKS = 0.05
