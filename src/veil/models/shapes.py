"""Image sizes as the architectures take them."""
from __future__ import annotations


def image_sides(size: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) of an image size given as one side or as (height, width)."""
    height, width = (size, size) if isinstance(size, int) else size
    return int(height), int(width)
