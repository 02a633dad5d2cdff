"""`skimage-photos`: the colour photographs that ship inside installed packages (scikit-image's `skimage.data` and
scikit-learn's sample images), at their own sizes, unlabelled (in the order of `photographs()`). Real photographs at a size like
paper 003's 224x224, which no download is needed for; several sizes, so they load with a size
(`load("skimage-photos", size=224, resize="crop")`)."""
from __future__ import annotations

import numpy as np

from veil.data.convert import Resize, stack_images
from veil.data.formats import Raw
from veil.errors import VeilError

PHOTOS = "skimage-photos"
#: scikit-image's colour photographs that ship in its wheel (chelsea is also `cat`; the others need a download)
SKIMAGE = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket")


def photographs() -> dict[str, np.ndarray]:
    """name -> uint8 (H, W, 3): scikit-image's colour photographs, the left view of its stereo motorcycle, and
    scikit-learn's two sample images."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(skimage.data, name)() for name in SKIMAGE}
    photos["motorcycle"] = skimage.data.stereo_motorcycle()[0]
    samples = load_sample_images()
    photos.update({path.rsplit("/", 1)[-1].split(".")[0]: image for path, image in zip(samples.filenames,
                                                                                        samples.images)})
    return photos


def read_photos(split: str | None, resize: Resize | None) -> Raw:
    if split is not None:
        raise VeilError(f"{PHOTOS} has no splits; drop --split", PHOTOS)
    photos = photographs()
    fit = resize.image if resize is not None else (lambda pixels: pixels)
    pixels = stack_images([fit(np.ascontiguousarray(image[..., :3], dtype=np.uint8)) for image in photos.values()],
                          PHOTOS)
    return Raw(pixels, None, [])
