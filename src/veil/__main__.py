"""`python -m veil`: the `veil` command, as `torchrun ... -m veil` starts it on each machine."""
import sys

from veil.cli import main

sys.exit(main())
