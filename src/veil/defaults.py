"""Default locations of the shared data sets (relative to the working directory), named once for every command
and experiment. Imports nothing, so the command line can show them in `--help` cheaply."""

CIFAR10 = "../shared/data/cifar10-jpeg.tar.gz"
MNIST = "../shared/data/mnist"
