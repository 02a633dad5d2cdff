"""Data input: every source becomes an ImageSet of float32 RGB images in [0, 1], at its own size unless a size is
asked for."""
from veil.data.imageset import ImageSet, to_float_images, to_pixel_images, to_uint8_images
from veil.data.load import cache_dir, load
from veil.data.splits import limit_indices, random_classes, stratified_split, stratified_subsample

__all__ = ["ImageSet", "load", "cache_dir", "limit_indices", "random_classes", "stratified_split",
           "stratified_subsample", "to_float_images", "to_pixel_images", "to_uint8_images"]
