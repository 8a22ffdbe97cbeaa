"""Reading text-recognition data: LMDB datasets, folders of images, and the batches built
from them.

The names are DTRB's (``LmdbDataset``, ``RawDataset``, ``AlignCollate``, ``ResizeNormalize``,
``NormalizePAD``, ``hierarchical_dataset``, ``Batch_Balanced_Dataset``) so code written against
DTRB keeps working. What differs is how the work is done:

* Labels are read, NFC-normalised and filtered once, when an :class:`LmdbDataset` is built;
  ``__getitem__`` only decodes the image. Every decision about characters is made by
  :class:`utils.Alphabet` (set membership, so ``- ] \\ ^`` and Hangul are ordinary characters).
* The LMDB environment is opened lazily, once per folder per process, so a dataset pickles into
  DataLoader workers (fork or spawn) and the same folder can be used twice in one process
  (training data == validation data), which current ``lmdb`` otherwise refuses.
* :func:`augment_image` (training-time blur, noise, JPEG, contrast, rotation, perspective) and
  :func:`augment_glyphs` (stroke weight, elastic warp) are off unless the caller applies them;
  upstream trains on the images as stored.
* Images become tensors with numpy/torch only; the numbers equal torchvision's ``ToTensor``
  followed by ``(x - 0.5) / 0.5``, as upstream.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import random
import sys
import threading
from typing import Any, Sequence

import lmdb
import numpy as np
import torch
from natsort import natsorted
from PIL import Image, ImageEnhance, ImageFilter
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset

from utils import Alphabet, nfc, reading_vertical

logger = logging.getLogger(__name__)

DUMMY_LABEL = '[dummy_label]'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
DASHED_LINE = '-' * 80


# ----------------------------------------------------------------------------------------------
# images -> tensors


def to_normalized_tensor(image: Image.Image) -> torch.Tensor:
    """An 8-bit ``L`` or ``RGB`` PIL image as a float tensor [C, H, W] scaled to [-1, 1].

    The values equal torchvision's ``ToTensor()`` (bytes / 255) followed by ``(x - 0.5) / 0.5``,
    computed with the same float32 torch operations.
    """
    if image.mode not in ('L', 'RGB'):
        raise ValueError(f'expected an 8-bit L or RGB image, got mode {image.mode!r}; '
                         'convert it first (LmdbDataset and RawDataset already do)')
    array = np.array(image, dtype=np.uint8, copy=True)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(array).permute(2, 0, 1).contiguous()
    return tensor.float().div(255).sub(0.5).div(0.5)


class ResizeNormalize:
    """Resize a PIL image to ``size`` = (width, height) and normalise it to [-1, 1]."""

    def __init__(self, size: tuple[int, int], interpolation: int = Image.BICUBIC):
        self.size = tuple(size)
        self.interpolation = interpolation

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return to_normalized_tensor(img.resize(self.size, self.interpolation))


class NormalizePAD:
    """Normalise an (already resized) PIL image and place it at the left of a
    ``max_size`` = (C, H, W) canvas; the columns right of the image repeat its last column."""

    def __init__(self, max_size: tuple[int, int, int], PAD_type: str = 'right'):
        if PAD_type != 'right':
            raise ValueError(f"PAD_type {PAD_type!r} is not supported; only 'right' padding exists")
        self.max_size = tuple(max_size)
        self.max_width_half = math.floor(max_size[2] / 2)  # kept for code that reads it upstream
        self.PAD_type = PAD_type

    def __call__(self, img: Image.Image) -> torch.Tensor:
        tensor = to_normalized_tensor(img)
        channels, height, width = tensor.shape
        if (channels, height) != self.max_size[:2] or width > self.max_size[2]:
            raise ValueError(f'image tensor {tuple(tensor.shape)} does not fit the canvas {self.max_size}')
        padded = torch.empty(self.max_size, dtype=tensor.dtype)
        padded[:, :, :width] = tensor
        if width < self.max_size[2]:
            padded[:, :, width:] = tensor[:, :, width - 1:width]  # broadcast the last column
        return padded


def pad_resized_width(width: int, height: int, imgH: int, imgW: int) -> int:
    """Width an image of ``width`` x ``height`` gets with --PAD: its aspect ratio kept at height
    imgH, rounded up, and at most imgW (the arithmetic is upstream's, so widths agree exactly)."""
    ratio = width / float(height)
    return min(math.ceil(imgH * ratio), imgW)


# ----------------------------------------------------------------------------------------------
# vertical text (demo.py, test.py and train.py --vertical)
#
# Korean signs, banners and book spines often stack the characters top to bottom, each upright.
# A Hangul syllable fills a square, so such a column is a run of near-square cells; laid out
# left to right it is an ordinary horizontal line, which any model trained on horizontal text
# reads. The cells are found from the image alone: rows between two characters hold little
# horizontal contrast, and each cell's ink is about as tall as the column is wide.

VERTICAL_CUT_SEARCH = 0.3  # a cut may move this share of a cell from the even split, to a gap
# of the column's width, kept around each character's ink: narrower margins read no better, and
# wider ones are read as spaces
VERTICAL_MARGIN = 0.15
VERTICAL_MAX_CELLS = 40
# the line's first and last rows: where the contrast rises this share of its range above the
# floor (the tail of a ㄱ or the foot of a ㄴ is faint beside a whole syllable); whether the ink is
# one character is judged on the rows above a quarter of it, which a faint tail does not stretch
VERTICAL_END_SHARE = 0.1
# ink less than this many times taller than wide is one character: a Hangul syllable's is 0.8 to
# 1.2 times (condensed to wide faces), two stacked at least 1.7 times, and perspective or a tall
# syllable (원, 역) stretches one
VERTICAL_ONE_CHARACTER = 1.6


def _smooth(profile: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return profile
    return np.convolve(profile, np.ones(width) / width, mode='same')


def _above_floor(profile: np.ndarray, share: float = 0.25) -> np.ndarray:
    """Where a contrast profile rises above its floor (its 10th percentile) by ``share`` of its
    range: where there is ink."""
    floor = np.percentile(profile, 10)
    return profile > floor + share * (profile.max() - floor)


def _ink_extent(profile: np.ndarray, share: float = 0.25) -> tuple[int, int]:
    """First and one-past-last index of :func:`_above_floor`."""
    above = np.flatnonzero(_above_floor(profile, share))
    if len(above) == 0:
        return 0, len(profile)
    return int(above[0]), int(above[-1]) + 1


def _vertical_cuts(rows: np.ndarray, top: int, bottom: int, cells: int) -> list[int]:
    """Cut rows splitting [top, bottom) into ``cells``: the even split, each cut moved to the
    row of least contrast near it."""
    pitch = (bottom - top) / cells
    reach = max(1, int(pitch * VERTICAL_CUT_SEARCH))
    cuts = []
    for k in range(1, cells):
        even = int(round(top + k * pitch))
        low, high = max(top + 1, even - reach), min(bottom - 1, even + reach + 1)
        if high <= low:
            cuts.append(even)
            continue
        window = rows[low:high]
        lowest = int(np.argmin(window))
        # the middle of the gap, not its edge next to a character
        quiet = window <= window[lowest] + 0.1 * (window.max() - window[lowest])
        first = last = lowest
        while first > 0 and quiet[first - 1]:
            first -= 1
        while last < len(window) - 1 and quiet[last + 1]:
            last += 1
        cuts.append(low + (first + last + 1) // 2)
    return cuts


def _cell_score(excess: np.ndarray, typical: float, ink_rows: np.ndarray, top: int, bottom: int,
                cuts: list[int], column: float) -> float:
    """How unlikely the cut is (lower is better): the contrast left at the cuts (``excess``, each
    row's above the floor), relative to the text's (``typical``), plus how far each cell's ink
    height is from the column's width (a square)."""
    edges = [top] + cuts + [bottom]
    through_ink = float(np.mean(excess[cuts])) / typical if cuts else 0.0
    shapes = []
    for a, b in zip(edges[:-1], edges[1:]):
        inked = np.flatnonzero(ink_rows[a:b])
        height = (inked[-1] - inked[0] + 1) if len(inked) else (b - a)
        shapes.append(math.log(max(height, 1) / column) ** 2)
    return through_ink + float(np.mean(shapes))


def find_vertical_cells(image: Image.Image) -> tuple[list[int], int, int]:
    """Where the characters of a vertical line are: the row edges of its cells (one more than
    the cells, top to bottom) and the columns (x0, x1) they span, margins included. Ink about as
    tall as wide is one character, the whole image; otherwise the number of characters is the
    one whose cells are cut through the least contrast and come out nearest to square."""
    grey = np.asarray(image.convert('L'), dtype=np.float32)
    height, width = grey.shape
    if height < 4 or width < 4:
        return [0, height], 0, width
    # contrast across rows and columns, less what a whole column (a panel's or border's side) or
    # a whole row (its top and bottom) has: what is left is the characters'
    across = np.abs(np.diff(grey, axis=1))
    across = np.maximum(across - np.median(across, axis=0, keepdims=True), 0)
    down = np.abs(np.diff(grey, axis=0))
    down = np.maximum(down - np.median(down, axis=1, keepdims=True), 0)
    left, right = _ink_extent(_smooth(down.sum(axis=0), max(1, width // 16)))
    column = float(max(right - left, 1))
    across_rows = across[:, left:right].sum(axis=1)
    rows = _smooth(across_rows, max(1, width // 16))
    # the line's ends by both kinds of contrast, since a horizontal stroke (ㅡ) has it only up and
    # down; the cuts by contrast across alone, which placed them better
    both = _smooth(across_rows + np.append(down[:, left:right].sum(axis=1), 0), max(1, width // 16))
    core_top, core_bottom = _ink_extent(both)
    if core_bottom - core_top < VERTICAL_ONE_CHARACTER * column:
        return [0, height], 0, width
    top, bottom = _ink_extent(both, VERTICAL_END_SHARE)
    ink_rows = _above_floor(rows)
    # contrast every row has (a panel's edges, texture, noise) is no sign of a character
    floor = float(np.percentile(rows, 10))
    excess = np.maximum(rows - floor, 0.0)
    typical = max(float(np.median(rows[top:bottom])) - floor, 1e-6)
    span = bottom - top
    fewest = min(VERTICAL_MAX_CELLS, max(2, int(span / (2.0 * column))))
    most = min(VERTICAL_MAX_CELLS, max(fewest, int(math.ceil(span / (0.6 * column)))))
    candidates = [(n, _vertical_cuts(rows, top, bottom, n)) for n in range(fewest, most + 1)]
    _, _, cuts = min((_cell_score(excess, typical, ink_rows, top, bottom, cuts, column), n, cuts)
                     for n, cuts in candidates)
    margin = int(round(VERTICAL_MARGIN * column))
    edges = [max(0, top - margin)] + cuts + [min(height, bottom + margin)]
    return edges, max(0, left - margin), min(width, right + margin)


def vertical_to_horizontal(image: Image.Image) -> Image.Image:
    """Lay a vertical line of text (characters stacked top to bottom, each upright) out left to
    right: the cells of :func:`find_vertical_cells` joined in reading order, each centred on the
    tallest one's height and padded by repeating its top and bottom rows (which read better than
    scaling each to one height or padding with the background's colour). An image of one
    character is returned as it is."""
    edges, x0, x1 = find_vertical_cells(image)
    if len(edges) == 2:
        return image
    cells = [np.asarray(image.crop((x0, a, x1, b))) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    line_h = max(cell.shape[0] for cell in cells)
    padded = []
    for cell in cells:
        above = (line_h - cell.shape[0]) // 2
        rows = ((above, line_h - cell.shape[0] - above), (0, 0)) + (((0, 0),) if cell.ndim == 3 else ())
        padded.append(np.pad(cell, rows, mode='edge'))
    return Image.fromarray(np.concatenate(padded, axis=1), image.mode)


class AlignCollate:
    """Collate (image, label) pairs into (tensor [B, C, imgH, imgW], list of labels).

    Without ``keep_ratio_with_pad`` every image is stretched to imgW x imgH (bicubic). With it,
    the width follows the aspect ratio (:func:`pad_resized_width`) and the rest of the canvas
    repeats the last column; ``min_aspect`` (reading only, 0 = off) first widens an image
    narrower than that many times its height to that width. ``vertical`` (0 = off) lays an image
    at least that many times taller than wide out as a horizontal line first
    (:func:`vertical_to_horizontal`). C is 3 when the first image is RGB, else 1. ``None``
    entries are dropped, as upstream.
    """

    def __init__(self, imgH: int = 32, imgW: int = 100, keep_ratio_with_pad: bool = False,
                 min_aspect: float = 0.0, vertical: float = 0.0):
        self.imgH = imgH
        self.imgW = imgW
        self.keep_ratio_with_pad = keep_ratio_with_pad
        self.min_aspect = min_aspect
        self.vertical = vertical

    def __call__(self, batch: Sequence[tuple[Image.Image, Any]]) -> tuple[torch.Tensor, list]:
        batch = [sample for sample in batch if sample is not None]
        if not batch:
            raise ValueError('AlignCollate got an empty batch')
        images, labels = zip(*batch)
        if self.vertical:
            images = [vertical_to_horizontal(image) if image.height >= self.vertical * image.width else image
                      for image in images]
        if self.keep_ratio_with_pad:
            channels = 3 if images[0].mode == 'RGB' else 1
            pad = NormalizePAD((channels, self.imgH, self.imgW))
            tensors = []
            for image in images:
                width, height = image.size
                # a licence plate holds 7-9 characters in 2-4 heights of width: kept at that ratio
                # it gets a quarter to a half of the columns, fewer than CTC reads it well with
                width = max(width, self.min_aspect * height)
                resized_w = pad_resized_width(width, height, self.imgH, self.imgW)
                tensors.append(pad(image.resize((resized_w, self.imgH), Image.BICUBIC)))
        else:
            resize = ResizeNormalize((self.imgW, self.imgH))
            tensors = [resize(image) for image in images]
        return torch.stack(tensors, 0), list(labels)


# ----------------------------------------------------------------------------------------------
# training-time augmentation (off by default: upstream trains on the images as stored)
#
# Real crops are blurred, noisy, JPEG-compressed, low in contrast and a little tilted or seen
# at an angle; LMDBs built from clean renders or scans rarely are. Each operation below fires
# on its own with the probability in AUGMENT_PROBABILITIES, in camera order: the view
# (rotation, perspective) first, then the light (contrast), the optics (blur), the sensor
# (noise) and last the file (JPEG).

AUGMENT_PROBABILITIES: dict[str, float] = {
    'rotate': 0.3,  # tilted text: a hand-held photo, a detector box off by a few degrees
    'perspective': 0.3,  # text seen at an angle
    'contrast': 0.4,  # faded print, low light, glare
    'blur': 0.3,  # focus and motion
    'noise': 0.3,  # sensor noise of dim photos and video frames
    'jpeg': 0.3,  # re-compressed web and video images
}
ROTATE_DEGREES = (1.0, 4.0)  # magnitude; the sign is drawn separately
PERSPECTIVE_SHIFT = 0.08  # each corner moves by up to this share of the width / height
CONTRAST_FACTORS = ((0.45, 0.8), (1.25, 1.6))  # lower or raise, never (almost) unchanged
# Gaussian radius for a 32-pixel-high image; scaled with the height so the look is the same
# at any size
BLUR_RADIUS = (0.6, 1.4)
BLUR_REFERENCE_HEIGHT = 32
NOISE_SIGMA = (4.0, 14.0)  # of 255
JPEG_QUALITY = (12, 45)


def _border_fill(image: Image.Image) -> int | tuple[int, ...]:
    """The median colour of the outermost pixels: what the background most likely is, used to
    fill the corners a rotation or a warp uncovers."""
    array = np.asarray(image)
    border = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    median = np.median(border, axis=0)
    return int(median) if image.mode == 'L' else tuple(int(v) for v in median)


def _signed(rng: random.Random, low: float, high: float) -> float:
    return rng.uniform(low, high) * rng.choice((-1, 1))


def _rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    angle = _signed(rng, *ROTATE_DEGREES)
    return image.rotate(angle, resample=Image.BICUBIC, fillcolor=_border_fill(image))


def _perspective_coefficients(source: Sequence[tuple[float, float]],
                              target: Sequence[tuple[float, float]]) -> list[float]:
    """The 8 coefficients PIL's PERSPECTIVE transform wants: they map each output corner
    ``target[i]`` to the input point ``source[i]``."""
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values.extend((u, v))
    return np.linalg.solve(np.array(rows, dtype=np.float64), np.array(values)).tolist()


def _perspective(image: Image.Image, rng: random.Random) -> Image.Image:
    w, h = image.size
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    dx, dy = PERSPECTIVE_SHIFT * w, PERSPECTIVE_SHIFT * h
    moved = [(x + rng.uniform(-dx, dx), y + rng.uniform(-dy, dy)) for x, y in corners]
    coefficients = _perspective_coefficients(moved, corners)
    return image.transform(image.size, Image.PERSPECTIVE, coefficients, Image.BICUBIC,
                           fillcolor=_border_fill(image))


def _contrast(image: Image.Image, rng: random.Random) -> Image.Image:
    factor = rng.uniform(*rng.choice(CONTRAST_FACTORS))
    return ImageEnhance.Contrast(image).enhance(factor)


def _blur(image: Image.Image, rng: random.Random) -> Image.Image:
    radius = rng.uniform(*BLUR_RADIUS) * image.height / BLUR_REFERENCE_HEIGHT
    return image.filter(ImageFilter.GaussianBlur(radius))


def _numpy_generator(rng: random.Random) -> np.random.Generator:
    """A numpy generator for drawing arrays fast, seeded from ``rng``, so ``rng`` alone decides."""
    return np.random.default_rng(rng.getrandbits(64))


def _noise(image: Image.Image, rng: random.Random) -> Image.Image:
    sigma = rng.uniform(*NOISE_SIGMA)
    noise = _numpy_generator(rng).normal(0.0, sigma, np.asarray(image).shape)
    noisy = np.asarray(image, dtype=np.float32) + noise
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), image.mode)


def _jpeg(image: Image.Image, rng: random.Random) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format='JPEG', quality=rng.randint(*JPEG_QUALITY))
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return decoded.convert(image.mode)


# name -> operation; the order is the order they are applied in
AUGMENT_OPERATIONS = {'rotate': _rotate, 'perspective': _perspective, 'contrast': _contrast,
                      'blur': _blur, 'noise': _noise, 'jpeg': _jpeg}


# Glyph-shape augmentation (--augment_glyphs): what a font the model never saw changes. Held-out
# fonts cost the shipped model 5 to 7 points in every style (README's model card) while unseen
# words cost it little once the lexicon trained it, so these vary the glyphs themselves: strokes
# made heavier or lighter (a Light face against a Bold one) and letters bent by a smooth random
# warp about a syllable wide (hand-written and brush faces). Applied before the camera
# operations above: the glyphs are drawn before the photo is taken.
GLYPH_PROBABILITIES: dict[str, float] = {
    'stroke': 0.4,  # heavier or lighter strokes
    'warp': 0.4,  # letters bent, each a little differently
}
STROKE_PIXELS = (0.25, 0.75)  # each side of a stroke grows by this, for a 32-pixel-high image
STROKE_REFERENCE_HEIGHT = 32
# strokes shrink by this share of it only: a thin face's strokes would vanish
STROKE_LIGHTER_SHARE = 0.4
# a lighter image whose contrast fell below this share of the original's is left as it was (its
# letters were fading out)
STROKE_KEEP_CONTRAST = 0.6
STROKE_MAX_UPSCALE = 4  # a sub-pixel change is made at up to this many times the size
WARP_CELL = 0.5  # the warp's control points are this share of the height apart
WARP_AMPLITUDE = (0.015, 0.04)  # their displacement (standard deviation), a share of the height


def _min_or_max_filter(image: Image.Image, radius: float, heavier: bool) -> Image.Image:
    """Dark strokes grown (a minimum filter) or shrunk (a maximum filter) by ``radius`` pixels on
    each side; below a pixel, a one-pixel filter at a size where one pixel is ``radius``."""
    if radius >= 1:
        size = 2 * round(radius) + 1
        return image.filter(ImageFilter.MinFilter(size) if heavier else ImageFilter.MaxFilter(size))
    scale = min(STROKE_MAX_UPSCALE, 1.0 / radius)
    large = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.BICUBIC)
    large = large.filter(ImageFilter.MinFilter(3) if heavier else ImageFilter.MaxFilter(3))
    return large.resize(image.size, Image.BOX)


def _stroke(image: Image.Image, rng: random.Random) -> Image.Image:
    """Dark strokes made heavier or lighter by a fraction of a pixel or more; light text on a dark
    panel changes the other way, which real faces do as well."""
    radius = rng.uniform(*STROKE_PIXELS) * image.height / STROKE_REFERENCE_HEIGHT
    heavier = rng.random() < 0.5
    if heavier:
        return _min_or_max_filter(image, radius, True)
    lighter = _min_or_max_filter(image, radius * STROKE_LIGHTER_SHARE, False)
    contrast = float(np.asarray(image.convert('L'), np.float32).std())
    if float(np.asarray(lighter.convert('L'), np.float32).std()) < STROKE_KEEP_CONTRAST * contrast:
        return image
    return lighter


def _warp(image: Image.Image, rng: random.Random) -> Image.Image:
    """A smooth random displacement: control points WARP_CELL of the height apart, each moved
    by a normal draw, interpolated over the image (an elastic distortion)."""
    import cv2  # only training with --augment_glyphs needs it

    w, h = image.size
    cell = max(2.0, WARP_CELL * h)
    grid = (2 + math.ceil(h / cell), 2 + math.ceil(w / cell))
    amplitude = rng.uniform(*WARP_AMPLITUDE) * h
    field = _numpy_generator(rng).normal(0.0, amplitude, (2,) + grid).astype(np.float32)
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(np.asarray(image), xs + dx, ys + dy, interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(warped, image.mode)


GLYPH_OPERATIONS = {'stroke': _stroke, 'warp': _warp}


def _apply_operations(operations: dict, probabilities: dict[str, float], image: Image.Image,
                      rng: random.Random, caller: str) -> Image.Image:
    """``image`` through each of ``operations`` in order, each with its probability (missing
    names count as 0): one draw from ``rng`` per operation, then that operation's parameters."""
    if image.mode not in ('L', 'RGB'):
        raise ValueError(f'{caller}: expected an L or RGB image, got mode {image.mode!r}')
    unknown = set(probabilities) - set(operations)
    if unknown:
        raise ValueError(f'{caller}: unknown operation(s) {sorted(unknown)}; '
                         f'expected names from {list(operations)}')
    result = image.copy()
    for name, operation in operations.items():
        if rng.random() < probabilities.get(name, 0.0):
            result = operation(result, rng)
    return result


def augment_image(image: Image.Image, rng: random.Random,
                  probabilities: dict[str, float] = AUGMENT_PROBABILITIES) -> Image.Image:
    """A new image: ``image`` with each operation of :data:`AUGMENT_OPERATIONS` applied, in
    that order, with its probability in ``probabilities`` (missing names count as 0).

    Size and mode (``L`` or ``RGB``) are kept; ``image`` is not modified. Everything random is
    drawn from ``rng`` in a fixed order (one draw per operation, then that operation's
    parameters), so the same ``rng`` state always gives the same image.
    """
    return _apply_operations(AUGMENT_OPERATIONS, probabilities, image, rng, 'augment_image')


def augment_glyphs(image: Image.Image, rng: random.Random,
                   probabilities: dict[str, float] = GLYPH_PROBABILITIES) -> Image.Image:
    """:func:`augment_image` for the glyph operations (:data:`GLYPH_OPERATIONS`: stroke weight,
    elastic warp), with the same guarantees."""
    return _apply_operations(GLYPH_OPERATIONS, probabilities, image, rng, 'augment_glyphs')


def augment_glyphs_then_image(image: Image.Image, rng: random.Random) -> Image.Image:
    """--augment_glyphs with --augment: the glyphs changed, then the camera operations, from one
    ``rng``."""
    return augment_image(augment_glyphs(image, rng), rng)


# ----------------------------------------------------------------------------------------------
# LMDB environments: one per data file per process


_ENVS: dict[tuple[int, int], tuple[int, lmdb.Environment]] = {}
_ENVS_LOCK = threading.Lock()


def _reset_env_lock_after_fork() -> None:
    # a lock held by another thread at fork time would stay locked forever in the child
    global _ENVS_LOCK
    _ENVS_LOCK = threading.Lock()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_reset_env_lock_after_fork)


def check_lmdb_folder(root: str | os.PathLike) -> str:
    """Return ``root`` as a string after checking it is a folder holding ``data.mdb``.

    Raises FileNotFoundError (no such folder, or no data.mdb in it) or NotADirectoryError.
    """
    root = os.fspath(root)
    if not os.path.exists(root):
        raise FileNotFoundError(f'{root}: no such LMDB dataset folder')
    if not os.path.isdir(root):
        raise NotADirectoryError(f'{root}: expected an LMDB dataset folder (holding data.mdb), '
                                 'got a file')
    if not os.path.isfile(os.path.join(root, 'data.mdb')):
        raise FileNotFoundError(f'{root}: not an LMDB dataset (expected {os.path.join(root, "data.mdb")}, '
                                'as written by create_lmdb_dataset.py)')
    return root


def open_lmdb_readonly(root: str | os.PathLike) -> lmdb.Environment:
    """The read-only environment of the LMDB folder ``root``, shared within this process.

    ``lmdb`` refuses to open the same files twice in one process, so every dataset reading a
    folder gets the same environment. An environment inherited over ``fork`` is closed in the
    child and reopened there, because LMDB handles must not be used across fork. Environments
    are keyed by the data file's identity, so a folder rebuilt in place is opened afresh.
    """
    root = check_lmdb_folder(root)
    stat = os.stat(os.path.join(root, 'data.mdb'))
    key = (stat.st_dev, stat.st_ino)
    pid = os.getpid()
    with _ENVS_LOCK:
        cached = _ENVS.get(key)
        if cached is not None:
            owner, env = cached
            if owner == pid:
                return env
            env.close()  # inherited from the parent process: closing it only affects this process
        env = lmdb.open(root, readonly=True, lock=False, readahead=False, meminit=False,
                        max_readers=32)
        _ENVS[key] = (pid, env)
        return env


def _decode_image(buffer: bytes | None, mode: str) -> Image.Image | None:
    """Decode image bytes into a PIL image of ``mode``; None when they cannot be decoded."""
    if buffer is None:
        return None
    try:
        return Image.open(io.BytesIO(buffer)).convert(mode)
    except Exception:  # PIL signals malformed data with many exception types; all mean "unreadable"
        return None


# ----------------------------------------------------------------------------------------------
# datasets


def _alphabet_of(opt: argparse.Namespace) -> Alphabet:
    alphabet = getattr(opt, 'alphabet', None)
    return alphabet if alphabet is not None else Alphabet.from_opt(opt)


def _read_num_samples(txn: lmdb.Transaction, root: str) -> int:
    raw = txn.get(b'num-samples')
    if raw is None:
        raise ValueError(f'{root}: the LMDB has no num-samples key; expected a dataset written by '
                         'create_lmdb_dataset.py (an interrupted or foreign LMDB lacks it)')
    try:
        count = int(raw.decode('ascii').strip())
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f'{root}: num-samples is {raw[:40]!r}; expected a decimal count') from None
    if count < 0:
        raise ValueError(f'{root}: num-samples is {count}; expected a count of 0 or more')
    return count


def _read_label(txn: lmdb.Transaction, root: str, index: int) -> str:
    key = b'label-%09d' % index
    raw = txn.get(key)
    if raw is None:
        raise ValueError(f'{root}: {key.decode()} is missing; expected label-NNNNNNNNN for every '
                         f'index from 1 to num-samples')
    try:
        return nfc(raw.decode('utf-8'))
    except UnicodeDecodeError as e:
        raise ValueError(f'{root}: {key.decode()} is not UTF-8 text (byte {e.start})') from None


def read_lmdb_labels(root: str | os.PathLike) -> list[str]:
    """Every label of the LMDB dataset folder ``root``, in index order (label-000000001 first),
    NFC-normalised; errors as :class:`LmdbDataset`."""
    root = check_lmdb_folder(root)
    with open_lmdb_readonly(root).begin(write=False) as txn:
        count = _read_num_samples(txn, root)
        return [_read_label(txn, root, index) for index in range(1, count + 1)]


class LmdbDataset(Dataset):
    """One LMDB dataset folder, read as (PIL image, label) samples.

    At construction every label is read once and NFC-normalised, then filtered with
    ``alphabet.keeps(label, opt.batch_max_length)`` unless ``opt.data_filtering_off``.
    ``filtered_index_list`` holds the kept LMDB indices (1-based, a numpy array) and
    ``nSamples`` is how many were kept; labels are read again with each sample.

    ``__getitem__`` decodes the image (``RGB`` with opt.rgb, else ``L``) and returns
    (image, ``alphabet.clean(label)``). An image that does not decode becomes a blank
    opt.imgW x opt.imgH image whose label is ``[dummy_label]`` passed through
    ``alphabet.clean`` like any label, as upstream (``dummylabel`` with the default alphabet),
    and a warning names the folder and index.

    Raises FileNotFoundError when ``root`` has no data.mdb, and ValueError when num-samples is
    missing or not a count, or a label is missing or not UTF-8; each message names the folder.

    The alphabet is ``opt.alphabet`` when present, else ``Alphabet.from_opt(opt)``.
    """

    def __init__(self, root: str | os.PathLike, opt: argparse.Namespace):
        self.root = check_lmdb_folder(root)
        self.opt = opt
        self.alphabet = _alphabet_of(opt)
        self._env: lmdb.Environment | None = None
        self._env_pid: int | None = None
        if getattr(opt, 'data_filtering_off', False):
            # upstream reads no label here: every sample is kept
            with self.env.begin(write=False) as txn:
                self.num_total = _read_num_samples(txn, self.root)
            self.filtered_index_list = np.arange(1, self.num_total + 1, dtype=np.int64)
        else:
            labels = read_lmdb_labels(self.root)
            self.num_total = len(labels)
            self.filtered_index_list = np.array(
                [index for index, label in enumerate(labels, start=1)
                 if self.alphabet.keeps(label, opt.batch_max_length)], dtype=np.int64)
        # indices in a numpy array, labels read per sample as upstream: a Python list of
        # MJ+ST's 14 million labels would be copied into every forked DataLoader worker
        self.nSamples = len(self.filtered_index_list)
        logger.info('%s: kept %d of %d samples', self.root, self.nSamples, self.num_total)

    @property
    def env(self) -> lmdb.Environment:
        """The LMDB environment, opened on first use in each process."""
        if self._env is None or self._env_pid != os.getpid():
            self._env = open_lmdb_readonly(self.root)
            self._env_pid = os.getpid()
        return self._env

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_env'] = None  # each process opens its own handle
        state['_env_pid'] = None
        return state

    def __len__(self) -> int:
        return self.nSamples

    def __getitem__(self, index: int) -> tuple[Image.Image, str]:
        lmdb_index = int(self.filtered_index_list[index])
        with self.env.begin(write=False) as txn:
            label = _read_label(txn, self.root, lmdb_index)
            buffer = txn.get(b'image-%09d' % lmdb_index)
            mode = 'RGB' if self.opt.rgb else 'L'
            image = _decode_image(buffer, mode)
        if image is None:
            logger.warning('%s: image-%09d %s; using a blank image with label %s', self.root,
                           lmdb_index, 'is missing' if buffer is None else 'does not decode',
                           DUMMY_LABEL)
            image = Image.new(mode, (self.opt.imgW, self.opt.imgH))
            label = DUMMY_LABEL
        return image, self.alphabet.clean(label)


def _walk_files(root: str) -> list[str]:
    return [os.path.join(dirpath, name) for dirpath, _, filenames in os.walk(root) for name in filenames]


def list_image_files(root: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[str]:
    """Every file under ``root`` (recursive) whose lower-cased extension is one of ``extensions``
    (upstream's .jpg, .jpeg and .png by default), as paths joined onto ``root``, in natural sort
    order of the full path."""
    wanted = {e.lower() for e in extensions}
    return natsorted(p for p in _walk_files(os.fspath(root)) if os.path.splitext(p)[1].lower() in wanted)


def list_skipped_files(root: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[str]:
    """The files under ``root`` that :func:`list_image_files` leaves out, in the same order."""
    wanted = {e.lower() for e in extensions}
    return natsorted(p for p in _walk_files(os.fspath(root)) if os.path.splitext(p)[1].lower() not in wanted)


class RawDataset(Dataset):
    """The images of a folder (see :func:`list_image_files`) as (PIL image, path) samples.

    Images are decoded as ``RGB`` with opt.rgb, else ``L``; a file that does not decode gives a
    blank opt.imgW x opt.imgH image and a warning naming the file. Raises NotADirectoryError when
    ``root`` is not a folder.
    """

    def __init__(self, root: str | os.PathLike, opt: argparse.Namespace,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS):
        root = os.fspath(root)
        if not os.path.isdir(root):
            raise NotADirectoryError(f'{root}: expected a folder of {"/".join(extensions)} images')
        self.root = root
        self.opt = opt
        self.image_path_list = list_image_files(root, extensions)
        self.nSamples = len(self.image_path_list)
        if not self.image_path_list:
            logger.warning('%s: no %s files found', root, ', '.join(extensions))

    def __len__(self) -> int:
        return self.nSamples

    def __getitem__(self, index: int) -> tuple[Image.Image, str]:
        path = self.image_path_list[index]
        mode = 'RGB' if self.opt.rgb else 'L'
        try:
            with open(path, 'rb') as f:
                buffer = f.read()
        except OSError as e:
            logger.warning('%s: cannot be read (%s); using a blank image', path, e.strerror)
            buffer = None
        image = _decode_image(buffer, mode)
        if image is None:
            if buffer is not None:
                logger.warning('%s: does not decode as an image; using a blank image', path)
            image = Image.new(mode, (self.opt.imgW, self.opt.imgH))
        return image, path


def _as_name_list(select_data: str | Sequence[str]) -> list[str]:
    return [select_data] if isinstance(select_data, str) else list(select_data)


def find_leaf_folders(root: str | os.PathLike, select_data: str | Sequence[str] = '/') -> list[str]:
    """The leaf folders (no sub-folders) under ``root``, ``root`` itself included when it is a
    leaf, whose path contains any of the ``select_data`` names; sorted. '/' selects every leaf,
    because upstream walks ``root + '/'`` and so every path contains '/'."""
    names = _as_name_list(select_data)
    leaves = []
    for dirpath, dirnames, _ in os.walk(os.fspath(root) + '/'):
        # hidden folders are never datasets: an interrupted LmdbWriter or generator leaves its
        # temporary .<name>.partial-* / .<name>.old-* folders there
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
        if not dirnames and any(name in dirpath for name in names):
            leaves.append(dirpath)
    return leaves


def hierarchical_dataset(root: str | os.PathLike, opt: argparse.Namespace,
                         select_data: str | Sequence[str] = '/') -> tuple[ConcatDataset, str]:
    """Every selected leaf folder under ``root`` as one :class:`LmdbDataset`, concatenated.

    ``select_data`` is a list of names (a single string is one name); a leaf is used when one
    of the names is a substring of its path, and '/' selects all. Prints and returns upstream's
    log: ``dataset_root:    {root}\\t dataset: {first name}`` and a ``sub-directory:`` line per
    leaf. Raises FileNotFoundError when ``root`` is not a folder and ValueError when no leaf
    matches.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f'{root}: no such dataset folder')
    names = _as_name_list(select_data)
    leaves = find_leaf_folders(root, names)
    if not leaves:
        raise ValueError(f'{root}: no leaf folder whose path contains any of {names} '
                         '(select_data names are matched as substrings of the folder paths)')
    dataset_log = f'dataset_root:    {root}\t dataset: {names[0]}'
    print(dataset_log)
    dataset_log += '\n'
    datasets = []
    for leaf in leaves:
        dataset = LmdbDataset(leaf, opt)
        sub_log = f'sub-directory:\t/{os.path.relpath(leaf, root)}\t num samples: {len(dataset)}'
        print(sub_log)
        dataset_log += f'{sub_log}\n'
        datasets.append(dataset)
    return ConcatDataset(datasets), dataset_log


def _split_option(value: str | Sequence[str], flag: str) -> list[str]:
    items = value.split('-') if isinstance(value, str) else [str(v) for v in value]
    if not items or any(item == '' for item in items):
        raise ValueError(f'{flag} {value!r}: expected names joined by "-", e.g. MJ-ST')
    return items


def _parse_ratio(value: Any, flag: str) -> float:
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'{flag}: {value!r} is not a number') from None
    if not ratio > 0:
        raise ValueError(f'{flag}: {value!r} must be greater than 0')
    return ratio


RENDER_SOURCE = 'render'
RENDER_POOL_SIZE = 10_000  # labels drawn once; each draw renders one in a new font, size and style


class RenderedDataset(Dataset):
    """Korean word images rendered on the fly by korean/'s generator, one per draw: no LMDB is
    needed and no image is seen twice, since draw ``d`` renders label ``d % RENDER_POOL_SIZE``
    of a label pool with every random choice (style, font, size, geometry, noise) seeded by
    (seed, d). The labels come from the generator's default text sources filtered by the
    alphabet and --batch_max_length; fonts are the installed Korean fonts; ``styles`` is the
    generator's ``--styles`` spec (default all styles)."""

    def __init__(self, opt: argparse.Namespace, seed: int, styles: str | None = None,
                 pool_size: int = RENDER_POOL_SIZE):
        from korean.fonts import FontBank, find_korean_fonts
        from korean.generate_word_images import (DEFAULT_HEIGHT, DEFAULT_STYLES, RenderConfig,
                                                 WordRenderer, draw_labels, parse_styles)
        from korean.text_sources import DEFAULT_SOURCES, TextMixer, read_exclude_files

        self.opt = opt
        self.alphabet = _alphabet_of(opt)
        style_items = parse_styles(styles or DEFAULT_STYLES)
        if not style_items:
            raise ValueError(f'--select_data {RENDER_SOURCE}:{styles}: give at least one style a weight')
        # options read with defaults: DTRB-style code builds opt namespaces without them
        font_dirs = getattr(opt, 'render_font_dir', None) or None
        try:
            fonts = list(find_korean_fonts(font_dirs))
        except FileNotFoundError as e:
            raise ValueError(f'--render_font_dir: {e}') from None
        if not fonts:
            where = ', '.join(font_dirs) if font_dirs else 'installed'
            raise RuntimeError(f'--select_data render needs a Korean font ({where}: none draws Hangul; '
                               'e.g. install fonts-nanum)')
        bank = FontBank(fonts)
        bank.precompute(self.alphabet.characters)
        self.font_paths = list(bank.paths)
        exclude = read_exclude_files(getattr(opt, 'render_exclude_file', None) or [])
        mixer = TextMixer(getattr(opt, 'render_text', None) or DEFAULT_SOURCES, seed=seed, alphabet=self.alphabet,
                          max_length=opt.batch_max_length, sensitive=self.alphabet.sensitive, exclude=exclude)
        self.labels, _ = draw_labels(mixer, bank, pool_size, progress=False)
        bank.save_cache()
        self.renderer = WordRenderer(bank, RenderConfig(seed=seed, styles=style_items, height=DEFAULT_HEIGHT))
        self.nSamples = len(self.labels)

    def __len__(self) -> int:
        return self.nSamples

    def draw(self, number: int) -> tuple[Image.Image, str]:
        label, font_mask = self.labels[number % self.nSamples]
        rgb, _, _ = self.renderer.render(number, label, font_mask)
        image = Image.fromarray(rgb).convert('RGB' if self.opt.rgb else 'L')
        return image, self.alphabet.clean(label)

    def __getitem__(self, index: int) -> tuple[Image.Image, str]:
        return self.draw(index)


class DrawDataset(Dataset):
    """A training source read by draw number (see :class:`EpochShuffleSampler`): a rendered
    source renders the draw itself, any other source gives sample ``draw % len``. With
    ``augment``, the image then goes through ``augment`` with a generator seeded by
    (seed, draw), so augmentation is the same whichever worker process runs it, and on resume."""

    def __init__(self, dataset: Dataset, seed: int, augment=None):
        self.dataset, self.seed, self.augment = dataset, seed, augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, draw: int):
        if isinstance(self.dataset, RenderedDataset):
            image, label = self.dataset.draw(draw)
        else:
            image, label = self.dataset[draw % len(self.dataset)]
        if self.augment is not None:
            image = self.augment(image, random.Random(self.seed * 1_000_000_007 + draw))
        return image, label


class EpochShuffleSampler(Sampler[int]):
    """Shuffled indices of a dataset of ``size`` samples: one permutation per epoch, drawn from
    ``seed`` and the epoch alone, so an epoch can be replayed from any position (exact resume)
    and every process of a distributed run draws the same permutation and keeps its own shard.

    With ``world_size`` > 1 the permutation is padded by repeating its start to a multiple of
    ``world_size`` and process ``rank`` takes every ``world_size``-th index from position
    ``rank``: the shards are disjoint (up to the padding) and equally long, so every process
    runs the same number of batches. ``start(epoch, skip)`` selects the epoch the next
    iteration yields and how many of its leading indices to leave out.

    It yields *draw numbers*, ``epoch * size + index``, unique over a run, so that a source
    rendering images on the fly (or an augmentation) can make every draw different yet fixed by
    (seed, draw): :class:`DrawDataset` turns a draw back into a sample.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1):
        if size < 1:
            raise ValueError('EpochShuffleSampler needs at least one sample')
        self.size, self.seed = size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    def start(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def shard(self, epoch: int) -> list[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        if self.world_size > 1:
            padded = -(-self.size // self.world_size) * self.world_size
            order = (order * (padded // self.size + 1))[:padded]
            order = order[self.rank::self.world_size]
        return order

    def __len__(self) -> int:
        return max(0, -(-self.size // self.world_size) - self.skip)

    def __iter__(self):
        # a draw number, unique over the run: sample index + epoch * size (see DrawDataset)
        offset = self.epoch * self.size
        order = self.shard(self.epoch)
        return (offset + order[i] for i in range(self.skip, len(order)))


class Batch_Balanced_Dataset:
    """Upstream's batch-balanced training data: each batch holds a fixed share of every
    dataset named in opt.select_data.

    opt.select_data and opt.batch_ratio are '-'-joined strings or lists (train.py splits them).
    For each name the datasets under opt.train_data whose path contains it are concatenated,
    cut to the first ``int(len * opt.total_data_usage_ratio)`` samples and loaded with batch size
    ``max(round(opt.batch_size * ratio), 1)`` (shuffled, AlignCollate, opt.workers workers).
    The log goes to stdout and is appended to ``./saved_models/{opt.exp_name}/log_dataset.txt``
    (by process ``rank`` 0 alone). As upstream, opt.batch_size is set to the total batch size.

    Shuffling is an :class:`EpochShuffleSampler` per dataset, seeded by opt.manualSeed and the
    dataset's position in --select_data; in a distributed run (``world_size`` > 1) each process
    reads its own shard of every dataset, opt.batch_size being the batch of one process.
    :meth:`state_dict` says where each dataset is in its epoch and :meth:`load_state_dict`
    continues from there, so a resumed run reads exactly the batches it would have read.

    Raises ValueError when the numbers of names and ratios differ, a ratio is not a positive
    number, or a name selects no sample.
    """

    def __init__(self, opt: argparse.Namespace, rank: int = 0, world_size: int = 1):
        select_data = _split_option(opt.select_data, '--select_data')
        batch_ratio = _split_option(opt.batch_ratio, '--batch_ratio')
        if len(select_data) != len(batch_ratio):
            raise ValueError(f'--select_data names {len(select_data)} datasets ({select_data}) but '
                             f'--batch_ratio gives {len(batch_ratio)} ratios ({batch_ratio}); '
                             'give one ratio per dataset')
        ratios = [_parse_ratio(r, '--batch_ratio') for r in batch_ratio]
        usage_ratio = _parse_ratio(opt.total_data_usage_ratio, '--total_data_usage_ratio')

        log_dir = f'./saved_models/{opt.exp_name}'
        os.makedirs(log_dir, exist_ok=True)
        collate = AlignCollate(imgH=opt.imgH, imgW=opt.imgW, keep_ratio_with_pad=opt.PAD,
                               vertical=reading_vertical(opt))
        workers = int(opt.workers)
        seed = int(getattr(opt, 'manualSeed', 0))
        self.names = select_data
        self.data_loader_list: list[DataLoader] = []
        self.dataloader_iter_list: list = []
        self.samplers: list[EpochShuffleSampler] = []
        self.epochs: list[int] = []
        self.consumed: list[int] = []  # batches taken from the current epoch, per dataset
        self.dataset_sizes: list[int] = []
        batch_sizes: list[int] = []
        log = open(f'{log_dir}/log_dataset.txt', 'a', encoding='utf-8') if rank == 0 else None
        try:
            def emit(text: str) -> None:
                if log is not None:
                    print(text)
                    log.write(text + '\n')

            emit(DASHED_LINE)
            emit(f'dataset_root: {opt.train_data}\nopt.select_data: {select_data}\n'
                 f'opt.batch_ratio: {batch_ratio}')
            for position, (name, ratio) in enumerate(zip(select_data, ratios)):
                batch_size = max(round(opt.batch_size * ratio), 1)
                emit(DASHED_LINE)
                source_seed = seed * 101 + position
                if name == RENDER_SOURCE or name.startswith(RENDER_SOURCE + ':'):
                    dataset = RenderedDataset(opt, source_seed, name.partition(':')[2] or None)
                    emit(f'rendered on the fly: {name} ({len(dataset)} labels, {len(dataset.font_paths)} fonts, '
                         'a new image every draw)')
                    total = len(dataset)
                else:
                    with contextlib.redirect_stdout(sys.stdout if log is not None else io.StringIO()):
                        dataset, dataset_log = hierarchical_dataset(opt.train_data, opt, [name])
                    if log is not None:
                        log.write(dataset_log)
                    total = len(dataset)
                    dataset = Subset(dataset, range(int(total * usage_ratio)))
                emit(f'num total samples of {name}: {total} x {opt.total_data_usage_ratio} '
                     f'(total_data_usage_ratio) = {len(dataset)}\n'
                     f'num samples of {name} per batch: {opt.batch_size} x {ratio} '
                     f'(batch_ratio) = {batch_size}')
                if len(dataset) == 0:
                    raise ValueError(f'--select_data {name!r} under {opt.train_data} leaves no sample '
                                     '(check --character, --batch_max_length and '
                                     '--total_data_usage_ratio, or use --data_filtering_off)')
                sampler = EpochShuffleSampler(len(dataset), source_seed, rank, world_size)
                dataset = DrawDataset(dataset, source_seed, augment_function(opt))
                # a generator of its own: starting an iterator (on resume, or at an epoch's end)
                # must not draw from the global RNG, whose state the training state restores
                generator = torch.Generator().manual_seed(source_seed)
                loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                    collate_fn=collate, pin_memory=torch.cuda.is_available(),
                                    persistent_workers=workers > 0, generator=generator)
                self.data_loader_list.append(loader)
                self.samplers.append(sampler)
                self.dataset_sizes.append(len(dataset))
                batch_sizes.append(batch_size)
            total_batch_size = sum(batch_sizes)
            emit(f'{DASHED_LINE}\nTotal_batch_size: {"+".join(map(str, batch_sizes))} = '
                 f'{total_batch_size}\n{DASHED_LINE}')
        finally:
            if log is not None:
                log.close()
        self.batch_size_list = batch_sizes
        self.epochs = [0] * len(self.data_loader_list)
        self.consumed = [0] * len(self.data_loader_list)
        self.dataloader_iter_list = [None] * len(self.data_loader_list)
        opt.batch_size = total_batch_size

    def _start_epoch(self, i: int, epoch: int, consumed_batches: int = 0) -> None:
        self.epochs[i], self.consumed[i] = epoch, consumed_batches
        self.samplers[i].start(epoch, consumed_batches * self.batch_size_list[i])
        self.dataloader_iter_list[i] = iter(self.data_loader_list[i])

    def get_batch(self) -> tuple[torch.Tensor, list[str]]:
        """One balanced batch: the next batch of every loader, images concatenated on dim 0 and
        labels in the same order; an exhausted loader starts its next (reshuffled) epoch."""
        images, labels = [], []
        for i in range(len(self.data_loader_list)):
            if self.dataloader_iter_list[i] is None:
                self._start_epoch(i, self.epochs[i], self.consumed[i])
            try:
                batch_images, batch_labels = next(self.dataloader_iter_list[i])
            except StopIteration:
                self._start_epoch(i, self.epochs[i] + 1)
                batch_images, batch_labels = next(self.dataloader_iter_list[i])
            self.consumed[i] += 1
            images.append(batch_images)
            labels += batch_labels
        return torch.cat(images, 0), labels

    def state_dict(self) -> dict:
        """Where every dataset is: its epoch and the batches already taken from it."""
        return {'names': list(self.names), 'sizes': list(self.dataset_sizes),
                'batch_sizes': list(self.batch_size_list), 'epochs': list(self.epochs),
                'consumed': list(self.consumed)}

    def load_state_dict(self, state: dict, source: str = 'the training state') -> None:
        """Continue every dataset where ``state`` left it. Raises ValueError naming what
        differs when the data no longer matches (other datasets, sizes or batch shares)."""
        for key, mine in (('names', self.names), ('sizes', self.dataset_sizes),
                          ('batch_sizes', self.batch_size_list)):
            if list(state[key]) != list(mine):
                raise ValueError(f'{source}: the training data differs from the run being resumed '
                                 f'({key}: {state[key]} then, {mine} now); resume with the same '
                                 '--train_data, --select_data, --batch_ratio and --batch_size')
        for i, (epoch, consumed) in enumerate(zip(state['epochs'], state['consumed'])):
            # started lazily, so worker processes are not spawned twice
            self.epochs[i], self.consumed[i] = int(epoch), int(consumed)
            self.dataloader_iter_list[i] = None


def augment_function(opt: argparse.Namespace):
    """The training-time augmentation ``--augment`` and ``--augment_glyphs`` ask for (None, without
    either: upstream's behaviour). ``--augment`` alone draws exactly as before the glyph
    operations existed, so its runs reproduce."""
    camera, glyphs = getattr(opt, 'augment', False), getattr(opt, 'augment_glyphs', False)
    if camera and glyphs:
        return augment_glyphs_then_image
    return augment_image if camera else augment_glyphs if glyphs else None
