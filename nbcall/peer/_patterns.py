"""Frames that carry numbers: known colours plus bits drawn as blocks (tests, benchmark, demos).

``pattern(index, width, height, stamp_ms)`` is a frame whose left half is :data:`LEFT`, right
half :data:`RIGHT`, with two rows of 16 black/white blocks at the top: ``index`` and the low
32 bits of ``stamp_ms`` (sender time, for latency).  Blocks are ``width // 20`` pixels, so a
VP8 or H.264 encoder at any usual bitrate keeps them readable: :func:`read_bits` reads them
back from a decoded frame (numpy), and :data:`READ_BITS_JS` from a canvas in a page.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LEFT = (220, 40, 40)
RIGHT = (40, 60, 220)
BITS = 16
Array = np.ndarray[Any, Any]


def block(width: int) -> int:
    return max(4, width // 20)


def _draw(array: Array, value: int, row: int, size: int) -> None:
    for bit in range(BITS):
        on = (value >> (BITS - 1 - bit)) & 1
        array[row * size : (row + 1) * size, bit * size : (bit + 1) * size] = 255 if on else 0


def pattern(index: int, width: int = 640, height: int = 480, stamp_ms: int = 0) -> Array:
    """The frame numbered ``index`` (mod 65536), stamped with ``stamp_ms`` (low 32 bits kept)."""
    array = np.empty((height, width, 3), np.uint8)
    array[:, : width // 2] = LEFT
    array[:, width // 2 :] = RIGHT
    size = block(width)
    stamp = stamp_ms & 0xFFFFFFFF
    _draw(array, index & 0xFFFF, 0, size)
    _draw(array, stamp >> 16, 1, size)
    _draw(array, stamp & 0xFFFF, 2, size)
    return array


def read_bits(array: Array, row: int) -> int:
    """The 16-bit number in block row ``row`` of a decoded frame (0: index, 1-2: the stamp)."""
    size = block(array.shape[1])
    value = 0
    for bit in range(BITS):
        y, x = row * size + size // 2, bit * size + size // 2
        patch = array[y - size // 4 : y + size // 4 + 1, x - size // 4 : x + size // 4 + 1]
        value = (value << 1) | int(patch.mean() > 128)
    return value


def read_stamp(array: Array) -> int:
    """The low 32 bits of the sender's ``stamp_ms``."""
    return (read_bits(array, 1) << 16) | read_bits(array, 2)


# (canvas 2d context, width, height, row) => the number in that row, as read_bits.
READ_BITS_JS = """
(ctx, width, row) => {
  const size = Math.max(4, Math.floor(width / 20));
  let value = 0;
  for (let bit = 0; bit < 16; bit++) {
    const y = row * size + Math.floor(size / 2), x = bit * size + Math.floor(size / 2);
    const q = Math.floor(size / 4);
    const d = ctx.getImageData(x - q, y - q, 2 * q + 1, 2 * q + 1).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += (d[i] + d[i + 1] + d[i + 2]) / 3;
    value = value * 2 + (sum / (d.length / 4) > 128 ? 1 : 0);
  }
  return value;
}
"""
