"""Render synthetic Korean word images for training a text recogniser.

Each image is one label (a word, caption, date, price ...) rendered with an installed Korean
font in one of three styles and cropped like a word detector's box:

* ``document``: dark text on white or paper tones, mild noise, blur and scan artefacts;
* ``caption``:  TV / sports-broadcast captions: coloured (semi-transparent) bars and boxes,
  white or yellow text with outlines and drop shadows, variety-show outlined lettering over
  a video frame, broadcast blur and compression;
* ``scene``:    signboards and scenes: gradients, textures, photo-like backgrounds, rotation,
  perspective, blur, low resolution then upscaling, JPEG artefacts;
* ``signboard``: shop signs: coloured panels with gradients, bevels, borders and shadows,
  outlined or extruded letters, uneven light, perspective, curved baselines;
* ``cover``:    book covers and posters: heavy display lettering over photo-like pictures;
* ``scorebug``: broadcast score bugs: semi-transparent bars, team and score boxes, thick
  outlines (the ``scorebugs`` text source writes their text);
* ``plate``:    licence plates (white, green, yellow, blue) for the ``plates`` text source;
* ``headline``: whole headline lines with spaces: wide images for ``--imgW`` 200 and up.
* ``vertical``: vertical signs, the characters stacked top to bottom on a tall panel (read
  with demo.py / test.py ``--vertical``).

The first three are the default (``--styles``); the others are switched on by naming them, so
a default run renders the same images for a seed as before they existed.

Output is either a folder that ``create_lmdb_dataset.py --inputPath OUT --gtFile OUT/gt.txt``
reads (``OUT/images/000000001.png``, ``OUT/gt.txt`` written last and atomically) or an LMDB
written through ``create_lmdb_dataset.LmdbWriter``. The same seed gives byte-identical output
whatever the number of workers: labels are drawn in the main process, and every image is
rendered from a random generator seeded by (seed, image number).

Example::

    python korean/generate_word_images.py --output data/synth_train --num_images 100000 \\
        --styles document:1,caption:1,scene:1 --seed 1
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import logging
import math
import multiprocessing
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

if __package__ in (None, ''):  # run as `python korean/generate_word_images.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from korean.contact_sheet import contact_sheet  # noqa: E402
from korean.fonts import FontBank, find_korean_fonts  # noqa: E402
from korean.text_sources import (DEFAULT_MAX_LENGTH, DEFAULT_SOURCES, EXCLUDE_MODES,  # noqa: E402
                                 TEXT_SPLITS, TextMixer, parse_weighted_list, read_exclude_files)
from utils import Alphabet, load_character, usable_cpu_count  # noqa: E402

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHARACTER = str(REPO_ROOT / 'korean' / 'alphabets' / 'ksx1001_with_space.txt')
STYLES = ('document', 'caption', 'scene', 'signboard', 'cover', 'scorebug', 'plate', 'headline', 'vertical')
DEFAULT_STYLES = 'document:1,caption:1,scene:1'
DEFAULT_HEIGHT = (20, 48)
FORMATS = ('folder', 'lmdb')
CHUNK_SIZE = 64
# PNG encoding of noisy images is a large share of the time: the Paeth filter with zlib's
# run-length strategy at level 1 was 2x faster than OpenCV's default AND 6% smaller on our images
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
if hasattr(cv2, 'IMWRITE_PNG_FILTER'):  # OpenCV >= 4.11
    PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH]
# give up when this many texts in a row have no font that draws them
MAX_UNDRAWABLE_IN_A_ROW = 10_000
CONTACT_SHEET_IMAGES = 32
RENDER_ATTEMPTS = 3


# ----------------------------------------------------------------------------------------------
# small image helpers (arrays are H x W x 3 float32 RGB in 0..255 unless said otherwise)


def _luminance(rgb: np.ndarray | Sequence[float]) -> float:
    """Mean luma (0..255) of a colour or an RGB array."""
    arr = np.asarray(rgb, np.float32)
    return float(np.mean(0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]))


def _random_color(rng: np.random.Generator, low: float = 0, high: float = 255) -> np.ndarray:
    return rng.uniform(low, high, 3).astype(np.float32)


def _hsv_color(hue: float, sat: float, val: float) -> np.ndarray:
    """An RGB colour (0..255) from hue in [0, 1), saturation and value in [0, 1]."""
    h = (hue % 1.0) * 6
    i, f = int(h), h - int(h)
    p, q, t = val * (1 - sat), val * (1 - sat * f), val * (1 - sat * (1 - f))
    rgb = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i % 6]
    return np.array(rgb, np.float32) * 255


def _contrasting_color(rng: np.random.Generator, background_luma: float, min_contrast: float) -> np.ndarray:
    """A random colour whose luminance differs from ``background_luma`` by ``min_contrast``
    or more (dark on light backgrounds, light on dark ones)."""
    for _ in range(8):
        color = _hsv_color(rng.random(), rng.uniform(0, 1) ** 1.5, rng.random())
        if abs(_luminance(color) - background_luma) >= min_contrast:
            return color
    level = 20.0 if background_luma > 127 else 240.0
    return np.array([level] * 3, np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int = 3) -> np.ndarray:
    """Low-frequency noise in 0..1: a few random values per axis, bicubically enlarged."""
    gh = max(2, cells)
    gw = max(2, int(round(cells * w / max(h, 1))))
    gw = min(gw, 64)
    small = rng.random((gh, gw, channels), dtype=np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    if channels == 1 and big.ndim == 2:
        big = big[..., None]
    return np.clip(big, 0, 1)


def _vertical_gradient(h: int, w: int, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()


def _linear_gradient(rng: np.random.Generator, h: int, w: int, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    angle = rng.uniform(0, 2 * math.pi)
    xs = np.arange(w, dtype=np.float32)[None, :] * math.cos(angle)
    ys = np.arange(h, dtype=np.float32)[:, None] * math.sin(angle)
    proj = xs + ys
    proj -= proj.min()
    proj *= 1.0 / max(float(proj.max()), 1e-6)
    return c1 + proj[..., None] * (c2 - c1)


def _composite(canvas: np.ndarray, alpha: np.ndarray, color: np.ndarray, opacity: float = 1.0) -> None:
    """Paint ``color`` over ``canvas`` in place through ``alpha`` (H x W, 0..1)."""
    a = alpha if opacity == 1.0 else alpha * np.float32(opacity)
    delta = color - canvas
    delta *= a[..., None]
    canvas += delta


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.05:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma)


def _motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(3, 8))
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0 / k
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(-30, 30)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(img, -1, kernel)


def _resample(img: np.ndarray, factor: float) -> np.ndarray:
    """Downscale by ``factor`` (< 1) and scale back up: the look of a low-resolution source."""
    h, w = img.shape[:2]
    sw, sh = max(2, int(round(w * factor))), max(2, int(round(h * factor)))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR if factor > 0.5 else cv2.INTER_CUBIC)


# a text line downsampled below this many pixels high is unreadable, for people too
MIN_LOW_RES_TEXT_HEIGHT = 12
# blur strengths below are for a 32-pixel font and scale with the font size
REFERENCE_SIZE = 32


def _low_res_factor(rng: np.random.Generator, low: float, high: float, line_height: int) -> float:
    """A random downscale factor in [low, high], raised so the text keeps a readable height."""
    return max(float(rng.uniform(low, high)), min(1.0, MIN_LOW_RES_TEXT_HEIGHT / max(line_height, 1)))


def _jpeg(img_u8: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode('.jpg', img_u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img_u8


_NOISE_BANK: np.ndarray | None = None
NOISE_BANK_SHAPE = (256, 2048, 3)


def _add_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Add Gaussian noise of ``sigma`` levels. Drawing fresh normal variates for every image
    is one of the slowest steps, so the noise is a random window of a fixed bank (made once
    per process from a fixed seed, hence still deterministic), flipped at random."""
    global _NOISE_BANK
    if sigma <= 0.05:
        return img
    h, w = img.shape[:2]
    bank_h, bank_w, _ = NOISE_BANK_SHAPE
    if h > bank_h or w > bank_w:
        return img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    if _NOISE_BANK is None:
        _NOISE_BANK = np.random.default_rng(12345).standard_normal(NOISE_BANK_SHAPE, dtype=np.float32)
    y, x = int(rng.integers(0, bank_h - h + 1)), int(rng.integers(0, bank_w - w + 1))
    noise = _NOISE_BANK[y:y + h, x:x + w]
    if rng.random() < 0.5:
        noise = noise[::-1, ::-1]
    out = noise * np.float32(sigma)
    out += img
    return out


def _shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def _crop_padded(arr: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``arr[y0:y1, x0:x1]`` where the window may extend past the edges (filled with 0)."""
    h, w = arr.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0) + arr.shape[2:], arr.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = arr[sy0:sy1, sx0:sx1]
    return out


# ----------------------------------------------------------------------------------------------
# text layers

class NoInkError(ValueError):
    """A rendering that left no visible text."""


# a warped mask pixel above this (of 255) counts as ink when the crop box is measured
INK_THRESHOLD = 8
# share of crops with much wider margins, as a loose detector box gives
LOOSE_CROP_PROBABILITY = 0.1


@dataclass
class TextLayers:
    """Alpha masks (float32, 0..1, same size) of the rendered text, and the detector-like box
    around it: ``box`` = (x0, y0, x1, y1), ink extent horizontally, line extent vertically."""
    fill: np.ndarray
    strokes: list[np.ndarray] = field(default_factory=list)  # outlines, innermost first
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    line_height: int = 0


def _draw_text(font, text: str, tracking: float, pad: int) -> tuple[np.ndarray, int, int, int]:
    """Render ``text`` as a uint8 mask; returns (mask, baseline y, line top y, line bottom y).

    The line extent is the ink of a reference syllable (the height a Hangul word occupies),
    so labels like "-" or "…" still get a full-height box."""
    ascent, descent = font.getmetrics()
    if tracking == 0:
        width = font.getlength(text)
        positions = None
    else:
        advances = [font.getlength(ch) for ch in text]
        positions = np.concatenate([[0.0], np.cumsum(np.array(advances) + tracking)[:-1]])
        width = float(positions[-1] + advances[-1])
    w = int(math.ceil(width)) + 2 * pad
    h = ascent + descent + 2 * pad
    image = Image.new('L', (max(w, 1), max(h, 1)), 0)
    draw = ImageDraw.Draw(image)
    baseline = pad + ascent
    kwargs = dict(font=font, fill=255, anchor='ls')
    if positions is None:
        draw.text((pad, baseline), text, **kwargs)
    else:
        for ch, x in zip(text, positions):
            if not ch.isspace():
                draw.text((pad + float(x), baseline), ch, **kwargs)
    ref = font.getbbox('가', anchor='ls')
    return np.asarray(image), baseline, baseline + ref[1], baseline + ref[3]


def _draw_vertical_text(font, text: str, leading: float, pad: int) -> tuple[np.ndarray, int, int]:
    """Render ``text`` top to bottom as a vertical Korean sign sets it: every character upright
    and centred in a column one Hangul syllable wide, one syllable high plus ``leading`` pixels
    apart; a space leaves half a step. Returns (mask, column left x, column right x)."""
    ref = font.getbbox('가', anchor='ls')
    syllable_h = ref[3] - ref[1]
    step = syllable_h + leading
    boxes = [None if ch.isspace() else font.getbbox(ch, anchor='ls') for ch in text]
    column_w = max([ref[2] - ref[0]] + [b[2] - b[0] for b in boxes if b is not None])
    height = sum(step / 2 if b is None else step for b in boxes) - leading
    image = Image.new('L', (int(math.ceil(column_w)) + 2 * pad, max(1, int(math.ceil(height))) + 2 * pad), 0)
    draw = ImageDraw.Draw(image)
    top = float(pad)
    for ch, box in zip(text, boxes):
        if box is None:
            top += step / 2
            continue
        # the syllable's top at ``top``, its ink centred in the column
        x = pad + (column_w - (box[2] - box[0])) / 2 - box[0]
        draw.text((x, top - ref[1]), ch, font=font, fill=255, anchor='ls')
        top += step
    return np.asarray(image), pad, pad + int(math.ceil(column_w))


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    """The text grown by ``width`` pixels all round (grey dilation with a disc keeps the
    anti-aliased edge): the area an outline of that width covers, text included. Much faster
    than asking FreeType to stroke every glyph."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return cv2.dilate(mask, kernel)


def _geometry_matrix(rng: np.random.Generator, w: int, h: int, box: tuple[float, float, float, float],
                     hscale: float, shear: float, angle: float, perspective: float) -> tuple[np.ndarray, int, int]:
    """A 3x3 transform (scale x, italic shear, rotation, corner jitter) and the size of the
    canvas that holds the transformed w x h canvas."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    to_center = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    scale = np.diag([hscale, 1.0, 1.0])
    italic = np.array([[1, -shear, 0], [0, 1, 0], [0, 0, 1]], np.float64)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    rotate = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)
    m = rotate @ italic @ scale @ to_center
    if perspective > 0:
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
        src = _apply(m, corners)
        jitter = rng.uniform(-perspective, perspective, (4, 2)) * (y1 - y0)
        p = cv2.getPerspectiveTransform(src.astype(np.float32), (src + jitter).astype(np.float32))
        m = p @ m
    canvas = _apply(m, np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64))
    mn = np.floor(canvas.min(axis=0))
    mx = np.ceil(canvas.max(axis=0))
    shift = np.array([[1, 0, -mn[0]], [0, 1, -mn[1]], [0, 0, 1]], np.float64)
    return shift @ m, int(mx[0] - mn[0]), int(mx[1] - mn[1])


def _apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    homog = np.hstack([points, np.ones((len(points), 1))]) @ m.T
    return homog[:, :2] / homog[:, 2:3]


def render_text_layers(rng: np.random.Generator, font, text: str, size: int, tracking: float,
                       strokes: Sequence[int], hscale: float = 1.0, shear: float = 0.0,
                       angle: float = 0.0, perspective: float = 0.0, embolden: int = 0,
                       vertical: bool = False) -> TextLayers:
    """Render the fill and outline masks of ``text`` (outline widths ``strokes``, innermost
    first; the fill grown by ``embolden`` pixels for a heavier weight) and apply the
    geometric distortion. ``vertical`` sets the text top to bottom (:func:`_draw_vertical_text`,
    ``tracking`` the pixels between characters); its "line" is then the column: the box spans
    the column's width, and ``line_height`` is that width."""
    widest = max(strokes, default=0) + embolden
    pad = widest + max(2, size // 4)
    if vertical:
        fill, line_left, line_right = _draw_vertical_text(font, text, tracking, pad)
    else:
        fill, _, line_top, line_bottom = _draw_text(font, text, tracking, pad)
    if embolden:
        fill = _outline(fill, embolden)
    outlines = [_outline(fill, s) for s in strokes]
    union = outlines[-1] if outlines else fill
    cols = np.flatnonzero(union.any(axis=0))
    rows = np.flatnonzero(union.any(axis=1))
    if len(cols) == 0:
        raise NoInkError(f'the font draws nothing for {text!r}')
    if vertical:
        line_left, line_right = line_left - widest, line_right + widest
        line_height = line_right - line_left
        box = (float(min(cols[0], line_left)), float(rows[0]), float(max(cols[-1] + 1, line_right)), float(rows[-1] + 1))
    else:
        line_top, line_bottom = line_top - widest, line_bottom + widest
        line_height = line_bottom - line_top
        box = (float(cols[0]), float(min(rows[0], line_top)), float(cols[-1] + 1), float(max(rows[-1] + 1, line_bottom)))
    masks = [fill] + outlines
    if hscale != 1.0 or shear or angle or perspective:
        h, w = fill.shape
        m, out_w, out_h = _geometry_matrix(rng, w, h, box, hscale, shear, angle, perspective)
        masks = [cv2.warpPerspective(mk, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=0)
                 for mk in masks]
        x0, y0, x1, y1 = box
        corners = _apply(m, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64))
        union = masks[-1]
        cols = np.flatnonzero(union.max(axis=0) > INK_THRESHOLD)
        rows = np.flatnonzero(union.max(axis=1) > INK_THRESHOLD)
        if len(cols) == 0:
            raise NoInkError(f'the distortion left no ink for {text!r}')
        box = (float(cols[0]), min(float(rows[0]), float(corners[:, 1].min())),
               float(cols[-1] + 1), max(float(rows[-1] + 1), float(corners[:, 1].max())))
    as_float = [mk.astype(np.float32) * (1.0 / 255) for mk in masks]
    x0, y0, x1, y1 = box
    return TextLayers(fill=as_float[0], strokes=as_float[1:],
                      box=(int(math.floor(x0)), int(math.floor(y0)), int(math.ceil(x1)), int(math.ceil(y1))),
                      line_height=max(1, int(round(line_height))))


def crop_layers(rng: np.random.Generator, layers: TextLayers, margin_x: tuple[float, float],
                margin_y: tuple[float, float]) -> TextLayers:
    """Crop the layers to the text box plus random margins (fractions of the line height),
    like the box of a word detector. The window may reach past the canvas."""
    x0, y0, x1, y1 = layers.box
    lh = layers.line_height
    if rng.random() < LOOSE_CROP_PROBABILITY:
        margin_x, margin_y = (margin_x[0], margin_x[1] * 2.5), (margin_y[0], margin_y[1] * 2)
    left = int(round(rng.uniform(*margin_x) * lh))
    right = int(round(rng.uniform(*margin_x) * lh))
    top = int(round(rng.uniform(*margin_y) * lh))
    bottom = int(round(rng.uniform(*margin_y) * lh))
    cx0, cy0, cx1, cy1 = x0 - left, y0 - top, x1 + right, y1 + bottom
    return TextLayers(fill=_crop_padded(layers.fill, cx0, cy0, cx1, cy1),
                      strokes=[_crop_padded(s, cx0, cy0, cx1, cy1) for s in layers.strokes],
                      box=(left, top, left + x1 - x0, top + y1 - y0), line_height=lh)


# ----------------------------------------------------------------------------------------------
# backgrounds


def _paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    if rng.random() < 0.12:  # highlighted cell / tinted form
        base = _hsv_color(rng.random(), rng.uniform(0.05, 0.25), rng.uniform(0.88, 1.0))
    else:
        level = rng.uniform(215, 255)
        base = np.clip(level + rng.uniform(-8, 4, 3), 0, 255).astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    if rng.random() < 0.35:
        img *= 1 + (_smooth_noise(rng, h, w, 2, 1) - 0.5) * rng.uniform(0.03, 0.12)
    return img


def _natural_color(rng: np.random.Generator) -> np.ndarray:
    """A colour as found in photos: mostly muted, rarely saturated."""
    return _hsv_color(rng.random(), rng.uniform(0, 1) ** 2, rng.uniform(0.08, 0.95))


VIDEO_FRAME_SCALE = 4  # the frame is painted this many times smaller, then enlarged


def _video_frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Something like a blurred broadcast frame: smooth colour fields with soft blobs.
    Painted and blurred at a quarter of the size and enlarged, which blurs it further and
    costs a fraction of a full-size blur."""
    sh, sw = max(2, h // VIDEO_FRAME_SCALE), max(2, w // VIDEO_FRAME_SCALE)
    c1, c2 = _natural_color(rng), _natural_color(rng)
    if rng.random() < 0.5:
        img = _linear_gradient(rng, sh, sw, c1, c2)
    else:
        img = c1 + _smooth_noise(rng, sh, sw, int(rng.integers(2, 5))) * (c2 - c1) * 1.5
    for _ in range(int(rng.integers(1, 5))):
        center = (int(rng.integers(0, sw)), int(rng.integers(0, sh)))
        axes = (int(rng.integers(1, max(2, sw // 2))), int(rng.integers(1, max(2, sh))))
        cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360,
                    [float(v) for v in _natural_color(rng)], -1)
    img = _blur(img, rng.uniform(1.5, 6) / VIDEO_FRAME_SCALE)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.random()
    c1 = _natural_color(rng)
    c2 = np.clip(c1 + rng.uniform(-70, 70, 3), 0, 255).astype(np.float32)
    if kind < 0.4:  # stone / concrete / plaster: two octaves of noise between two colours
        t = 0.6 * _smooth_noise(rng, h, w, int(rng.integers(2, 6)), 1) + 0.4 * _smooth_noise(
            rng, h, w, int(rng.integers(8, 20)), 1)
    elif kind < 0.7:  # wood grain / brushed metal: horizontal or vertical stripes bent by noise
        if rng.random() < 0.6:
            coord = np.arange(h, dtype=np.float32)[:, None, None]
        else:
            coord = np.arange(w, dtype=np.float32)[None, :, None]
        bend = _smooth_noise(rng, h, w, 3, 1) * rng.uniform(2, 10)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * coord / rng.uniform(3, 15) + bend)
    else:  # fine grain
        t = _blur(rng.random((h, w), dtype=np.float32), rng.uniform(0.5, 1.5))[..., None]
    return c1 * (1 - t) + c2 * t


def _scene_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.random()
    if kind < 0.35:  # painted signboard panel
        img = np.empty((h, w, 3), np.float32)
        img[:] = _hsv_color(rng.random(), rng.uniform(0, 1), rng.uniform(0.1, 1.0))
        img += (_smooth_noise(rng, h, w, 3) - 0.5) * rng.uniform(0, 30)
    elif kind < 0.55:
        img = _linear_gradient(rng, h, w, _natural_color(rng), _natural_color(rng))
    elif kind < 0.8:
        img = _texture(rng, h, w)
    else:
        img = _video_frame(rng, h, w)
    if rng.random() < 0.4:  # uneven light across the sign
        light = 1 + (_smooth_noise(rng, h, w, 2, 1) - 0.5) * rng.uniform(0.2, 0.8)
        img = img * light
    return img


# ----------------------------------------------------------------------------------------------
# styles


def _pick_size(rng: np.random.Generator, height: tuple[int, int]) -> int:
    return int(rng.integers(height[0], height[1] + 1))


def _finish(img: np.ndarray) -> np.ndarray:
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def render_document(rng: np.random.Generator, font, text: str, size: int) -> np.ndarray:
    tracking = rng.uniform(-0.03, 0.15) * size if rng.random() < 0.15 else 0.0
    bold = 1 if rng.random() < 0.1 and size >= 24 else 0
    angle = rng.uniform(-1.5, 1.5) if rng.random() < 0.25 else 0.0
    shear = rng.uniform(0.1, 0.2) if rng.random() < 0.05 else 0.0
    layers = render_text_layers(rng, font, text, size, tracking, [], hscale=rng.uniform(0.85, 1.15),
                                shear=shear, angle=angle, embolden=bold)
    layers = crop_layers(rng, layers, (0.03, 0.35), (0.02, 0.25))
    h, w = layers.fill.shape
    img = _paper(rng, h, w)
    if rng.random() < 0.15:  # table rules or an underline at the crop edge
        color = float(rng.uniform(60, 180))
        thickness = int(rng.integers(1, 3))
        if rng.random() < 0.5:
            img[:thickness] = color
        img[h - thickness:] = color
    kind = rng.random()
    if kind < 0.7:  # black / grey print
        ink = np.clip(rng.uniform(0, 80) + rng.uniform(-6, 6, 3), 0, 255).astype(np.float32)
    elif kind < 0.85:  # coloured print: dark blue, red, green ...
        ink = _hsv_color(rng.random(), rng.uniform(0.5, 1), rng.uniform(0.25, 0.55))
    else:
        ink = _random_color(rng, 0, 70)
    _composite(img, layers.fill, ink, rng.uniform(0.8, 1.0))
    if rng.random() < 0.3:
        img = _blur(img, rng.uniform(0.3, 0.8) * size / REFERENCE_SIZE)
    if rng.random() < 0.15:
        img = _resample(img, _low_res_factor(rng, 0.5, 0.85, layers.line_height))
    img = _add_noise(img, rng, rng.uniform(0, 5))
    out = _finish(img)
    if rng.random() < 0.2:
        out = _jpeg(out, int(rng.integers(50, 96)))
    return out


CAPTION_BARS = [(11, 31, 75), (0, 0, 0), (30, 30, 35), (181, 18, 27), (0, 80, 160), (0, 110, 110),
                (80, 30, 120), (250, 250, 250), (255, 212, 0), (240, 120, 0), (20, 60, 30), (200, 0, 90)]
LIGHT_TEXT = [(255, 255, 255), (255, 255, 255), (255, 235, 0), (255, 220, 60), (170, 240, 255)]
DARK_TEXT = [(0, 0, 0), (15, 25, 70), (150, 0, 20), (40, 40, 40)]
VARIETY_FILLS = [(255, 255, 255), (255, 236, 0), (255, 120, 180), (120, 210, 255), (255, 150, 30),
                 (170, 255, 60), (255, 80, 80), (200, 150, 255)]
OUTLINES = [(0, 0, 0), (20, 20, 60), (60, 30, 10), (255, 255, 255), (120, 0, 60), (0, 60, 120)]


def _palette(rng: np.random.Generator, colors: Sequence[tuple[int, int, int]], jitter: float = 12) -> np.ndarray:
    base = np.array(colors[int(rng.integers(0, len(colors)))], np.float32)
    return np.clip(base + rng.uniform(-jitter, jitter, 3), 0, 255).astype(np.float32)


def render_caption(rng: np.random.Generator, font, text: str, size: int) -> np.ndarray:
    on_bar = rng.random() < 0.55
    tracking = rng.uniform(-0.05, 0.1) * size if rng.random() < 0.2 else 0.0
    if on_bar:
        strokes = [max(1, int(round(size * rng.uniform(0.02, 0.06))))] if rng.random() < 0.25 else []
    else:
        first = max(1, int(round(size * rng.uniform(0.04, 0.1))))
        strokes = [first]
        if rng.random() < 0.3:  # double outline, as variety shows use
            strokes.append(first + max(1, int(round(size * rng.uniform(0.03, 0.07)))))
    # broadcast captions favour heavy type
    embolden = max(1, size // 28) if rng.random() < 0.4 else 0
    shear = rng.uniform(0.08, 0.22) if rng.random() < 0.15 else 0.0
    layers = render_text_layers(rng, font, text, size, tracking, strokes,
                                hscale=rng.uniform(0.75, 1.1), shear=shear, embolden=embolden)
    layers = crop_layers(rng, layers, (0.05, 0.5), (0.04, 0.3))
    h, w = layers.fill.shape
    img = _video_frame(rng, h, w)
    if on_bar:
        bar = _palette(rng, CAPTION_BARS)
        top, bottom = 0, h
        if rng.random() < 0.5:  # the bar's edges show inside the crop
            _, by0, _, by1 = layers.box
            top = max(0, by0 - int(rng.uniform(0.05, 0.3) * layers.line_height))
            bottom = min(h, by1 + int(rng.uniform(0.05, 0.3) * layers.line_height))
        band = np.empty((bottom - top, w, 3), np.float32)
        if rng.random() < 0.4:
            band[:] = _vertical_gradient(bottom - top, w, np.clip(bar * 1.35 + 20, 0, 255), bar)
        else:
            band[:] = bar
        opacity = rng.uniform(0.7, 1.0)
        img[top:bottom] = img[top:bottom] * (1 - opacity) + band * opacity
        if rng.random() < 0.25:  # accent stripe along the bar
            thickness = max(1, int(h * rng.uniform(0.03, 0.08)))
            row = top if rng.random() < 0.5 else max(top, bottom - thickness)
            img[row:row + thickness] = _palette(rng, CAPTION_BARS + [(255, 212, 0)] * 3)
        fill = _palette(rng, LIGHT_TEXT if _luminance(bar) < 140 else DARK_TEXT, 8)
        outline_colors = [np.array((0, 0, 0), np.float32) if _luminance(fill) > 128
                          else np.array((255, 255, 255), np.float32)]
    else:
        fill = _palette(rng, VARIETY_FILLS, 10)
        first = _palette(rng, OUTLINES, 10)
        if abs(_luminance(first) - _luminance(fill)) < 90:
            first = np.zeros(3, np.float32) if _luminance(fill) > 128 else np.full(3, 255, np.float32)
        outline_colors = [first, _palette(rng, OUTLINES, 10)]
    union = layers.strokes[-1] if layers.strokes else layers.fill
    if rng.random() < (0.35 if on_bar else 0.6):  # drop shadow
        offset = max(1, int(round(size * rng.uniform(0.03, 0.1))))
        shadow = _blur(_shift(union, offset, offset), rng.uniform(0, 2.0))
        _composite(img, shadow, np.zeros(3, np.float32), rng.uniform(0.5, 0.9))
    for stroke, color in reversed(list(zip(layers.strokes, outline_colors))):
        _composite(img, stroke, color)
    _composite(img, layers.fill, fill)
    if rng.random() < 0.5:
        img = _blur(img, rng.uniform(0.3, 1.0 if on_bar else 0.6) * size / REFERENCE_SIZE)
    if rng.random() < 0.3:
        img = _resample(img, _low_res_factor(rng, 0.4, 0.8, layers.line_height))
    img = _add_noise(img, rng, rng.uniform(0, 4))
    out = _finish(img)
    if rng.random() < 0.5:
        out = _jpeg(out, int(rng.integers(35, 91)))
    return out


def render_scene(rng: np.random.Generator, font, text: str, size: int) -> np.ndarray:
    tracking = rng.uniform(-0.05, 0.3) * size if rng.random() < 0.25 else 0.0
    strokes = [max(1, int(round(size * rng.uniform(0.03, 0.08))))] if rng.random() < 0.15 else []
    perspective = rng.uniform(0.03, 0.15) if rng.random() < 0.5 else 0.0
    shear = rng.uniform(-0.2, 0.2) if rng.random() < 0.2 else 0.0
    layers = render_text_layers(rng, font, text, size, tracking, strokes, hscale=rng.uniform(0.7, 1.3),
                                shear=shear, angle=rng.uniform(-6, 6), perspective=perspective)
    layers = crop_layers(rng, layers, (0.05, 0.45), (0.03, 0.3))
    h, w = layers.fill.shape
    img = _scene_background(rng, h, w)
    x0, y0, x1, y1 = layers.box
    bg_luma = _luminance(img[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)])
    fill = _contrasting_color(rng, bg_luma, rng.uniform(60, 120))
    union = layers.strokes[-1] if layers.strokes else layers.fill
    if rng.random() < 0.25:  # hard shadow / extruded sign letters
        dx = int(round(size * rng.uniform(-0.08, 0.08)))
        dy = int(round(size * rng.uniform(0.02, 0.08)))
        shadow = _blur(_shift(union, dx, dy), rng.uniform(0, 1.2))
        _composite(img, shadow, fill * rng.uniform(0, 0.4), rng.uniform(0.5, 1.0))
    if layers.strokes:
        outline = np.full(3, 255 if _luminance(fill) < 128 else 0, np.float32)
        _composite(img, layers.strokes[0], outline)
    _composite(img, layers.fill, fill)
    if rng.random() < 0.15:  # sign panel frame
        cv2.rectangle(img, (0, 0), (w - 1, h - 1), [float(v) for v in _random_color(rng)],
                      int(rng.integers(1, 3)))
    blur_kind = rng.random()
    if blur_kind < 0.15:
        img = _motion_blur(img, rng)
    elif blur_kind < 0.6:
        img = _blur(img, rng.uniform(0.3, 1.4) * size / REFERENCE_SIZE)
    if rng.random() < 0.4:
        img = _resample(img, _low_res_factor(rng, 0.3, 0.8, layers.line_height))
    img = img * rng.uniform(0.75, 1.15) + rng.uniform(-25, 25)  # exposure
    img = _add_noise(img, rng, rng.uniform(1, 9))
    out = _finish(img)
    if rng.random() < 0.5:
        out = _jpeg(out, int(rng.integers(25, 86)))
    return out


STYLE_RENDERERS = {'document': render_document, 'caption': render_caption, 'scene': render_scene}


# ----------------------------------------------------------------------------------------------
# styles added later (signboard, cover, scorebug, plate, headline, vertical). None is in
# DEFAULT_STYLES and the styles above are untouched, so a run with the default --styles gives the
# same images for a seed as before.

# photos from --background_dir: the worker loads each one once
_BACKGROUND_CACHE: dict[str, np.ndarray] = {}
BACKGROUND_CACHE_LIMIT = 64
# share of signboard, vertical sign, cover, scorebug and plate backgrounds cropped from
# --background_dir photos
PHOTO_BACKGROUND_PROBABILITY = 0.5
BACKGROUND_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def find_background_images(folders: Sequence[str | os.PathLike]) -> tuple[str, ...]:
    """The image files under ``folders`` (recursively), in a fixed order, so the same folder
    gives the same crops for a seed. Raises ValueError naming a folder that is missing or holds
    no image."""
    found: list[str] = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise ValueError(f'--background_dir {str(folder)!r}: no such folder')
        images = sorted(str(p) for p in root.rglob('*') if p.suffix.lower() in BACKGROUND_EXTENSIONS)
        if not images:
            raise ValueError(f'--background_dir {str(folder)!r}: no {"/".join(BACKGROUND_EXTENSIONS)} '
                             'image in it')
        found += images
    return tuple(found)


def _load_background(path: str) -> np.ndarray:
    image = _BACKGROUND_CACHE.get(path)
    if image is None:
        with Image.open(path) as im:
            image = np.asarray(im.convert('RGB'), np.float32)
        if len(_BACKGROUND_CACHE) >= BACKGROUND_CACHE_LIMIT:
            _BACKGROUND_CACHE.pop(next(iter(_BACKGROUND_CACHE)))
        _BACKGROUND_CACHE[path] = image
    return image


def _photo_crop(rng: np.random.Generator, paths: Sequence[str], h: int, w: int) -> np.ndarray:
    """A random window of a random photo, of the output's aspect ratio and 30-100 % of the
    largest such window, resized to ``h`` x ``w``."""
    photo = _load_background(paths[int(rng.integers(0, len(paths)))])
    ph, pw = photo.shape[:2]
    scale = min(ph / h, pw / w) * rng.uniform(0.3, 1.0)
    win_h, win_w = max(2, min(ph, int(h * scale))), max(2, min(pw, int(w * scale)))
    x, y = int(rng.integers(0, pw - win_w + 1)), int(rng.integers(0, ph - win_h + 1))
    return cv2.resize(photo[y:y + win_h, x:x + win_w], (w, h), interpolation=cv2.INTER_AREA)


def _background(rng: np.random.Generator, h: int, w: int, photos: Sequence[str],
                procedural) -> np.ndarray:
    if photos and rng.random() < PHOTO_BACKGROUND_PROBABILITY:
        return _photo_crop(rng, photos, h, w)
    return procedural(rng, h, w)


def _curve_layers(rng: np.random.Generator, layers: TextLayers, amount: float) -> TextLayers:
    """Bend the baseline: an arc or a wave whose height is ``amount`` line heights. The layers
    are padded first, so no ink leaves the canvas."""
    amplitude = amount * layers.line_height
    pad = int(math.ceil(abs(amplitude))) + 1
    h, w = layers.fill.shape
    t = np.linspace(-1, 1, w, dtype=np.float32)
    if rng.random() < 0.6:
        offset = amplitude * (t ** 2 - 0.5) * (1 if rng.random() < 0.5 else -1)
    else:
        offset = amplitude * 0.5 * np.sin(math.pi * (t * rng.uniform(0.6, 1.2) + rng.uniform(0, 2)))
    map_x = np.broadcast_to(np.arange(w, dtype=np.float32), (h + 2 * pad, w))
    map_y = np.arange(h + 2 * pad, dtype=np.float32)[:, None] - pad - offset[None, :]

    def bend(mask: np.ndarray) -> np.ndarray:
        return cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    x0, y0, x1, y1 = layers.box
    # the line now spans from its highest to its lowest point
    box = (x0, y0 + pad + int(math.floor(offset.min())), x1, y1 + pad + int(math.ceil(offset.max())))
    return TextLayers(fill=bend(layers.fill), strokes=[bend(s) for s in layers.strokes],
                      box=box, line_height=layers.line_height)


def _panel(img: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int],
           color: np.ndarray) -> None:
    """Paint a sign panel in place over ``box``: a flat or gradient face, a drop shadow on
    the wall, a bevel (lit top-left edge, dark bottom-right edge) and sometimes a border."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    depth = max(1, int(round(min(y1 - y0, x1 - x0) * rng.uniform(0.02, 0.06))))
    if rng.random() < 0.6:  # the panel's shadow on the wall behind it
        sx, sy = depth * 2, depth * 2
        img[min(h, y0 + sy):min(h, y1 + sy), min(w, x0 + sx):min(w, x1 + sx)] *= np.float32(rng.uniform(0.45, 0.75))
    face_h, face_w = y1 - y0, x1 - x0
    if rng.random() < 0.5:
        other = np.clip(color * rng.uniform(0.55, 1.35) + rng.uniform(-30, 30, 3), 0, 255).astype(np.float32)
        face = _linear_gradient(rng, face_h, face_w, color, other)
    else:
        face = np.empty((face_h, face_w, 3), np.float32)
        face[:] = color
    img[y0:y1, x0:x1] = face
    if rng.random() < 0.7:  # bevel
        light, dark = np.float32(rng.uniform(1.15, 1.45)), np.float32(rng.uniform(0.45, 0.75))
        img[y0:y0 + depth, x0:x1] *= light
        img[y0:y1, x0:x0 + depth] *= light
        img[y1 - depth:y1, x0:x1] *= dark
        img[y0:y1, x1 - depth:x1] *= dark
    if rng.random() < 0.5:  # painted or metal border
        border = _palette(rng, [(250, 250, 250), (20, 20, 20), (200, 160, 40), (180, 20, 20), (0, 70, 150)], 15)
        thickness = max(1, int(round(depth * rng.uniform(0.8, 2.0))))
        inset = depth + int(rng.integers(0, depth + 2))
        cv2.rectangle(img, (x0 + inset, y0 + inset), (x1 - 1 - inset, y1 - 1 - inset),
                      [float(v) for v in border], thickness)


def _uneven_light(rng: np.random.Generator, img: np.ndarray, strength: tuple[float, float]) -> np.ndarray:
    h, w = img.shape[:2]
    light = 1 + (_smooth_noise(rng, h, w, 2, 1) - 0.5) * rng.uniform(*strength)
    if rng.random() < 0.3:  # a spotlight or a street lamp from one side
        xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
        light = light * (1 + rng.uniform(-0.35, 0.35) * xs)
    return img * light


def _camera(rng: np.random.Generator, img: np.ndarray, size: int, line_height: int,
            blur: float, low_res: tuple[float, float], noise: float, jpeg: tuple[int, int]) -> np.ndarray:
    """Lens blur, low resolution, exposure, sensor noise and JPEG, each at random up to the
    given strength: what a phone photo of the finished sign adds."""
    if rng.random() < 0.5:
        img = _blur(img, rng.uniform(0.2, blur) * size / REFERENCE_SIZE)
    if rng.random() < 0.35:
        img = _resample(img, _low_res_factor(rng, low_res[0], low_res[1], line_height))
    img = img * rng.uniform(0.8, 1.12) + rng.uniform(-20, 20)
    img = _add_noise(img, rng, rng.uniform(0.5, noise))
    out = _finish(img)
    if rng.random() < 0.5:
        out = _jpeg(out, int(rng.integers(*jpeg)))
    return out


SIGN_COLORS = [(200, 20, 30), (0, 70, 160), (0, 120, 70), (250, 250, 245), (20, 20, 25), (255, 200, 0),
               (240, 110, 0), (110, 30, 120), (0, 140, 170), (230, 230, 230), (120, 70, 30), (250, 90, 140)]


def _sign_lettering(rng: np.random.Generator, size: int) -> tuple[list[int], int]:
    """A sign's letters: an outline width (a third of signs) and how much heavier than the font."""
    strokes = [max(1, int(round(size * rng.uniform(0.04, 0.1))))] if rng.random() < 0.35 else []
    embolden = max(1, size // 24) if rng.random() < 0.5 else 0
    return strokes, embolden


def render_signboard(rng: np.random.Generator, font, text: str, size: int,
                     photos: Sequence[str] = ()) -> np.ndarray:
    """Shop and street signs: a coloured panel (flat or gradient, bevel, border, shadow) on a
    wall or a photo, bold letters with outline or extrusion, uneven light, perspective and
    sometimes a curved baseline."""
    strokes, embolden = _sign_lettering(rng, size)
    perspective = rng.uniform(0.03, 0.14) if rng.random() < 0.6 else 0.0
    layers = render_text_layers(rng, font, text, size, rng.uniform(0, 0.15) * size if rng.random() < 0.3 else 0.0,
                                strokes, hscale=rng.uniform(0.8, 1.25), angle=rng.uniform(-4, 4),
                                perspective=perspective, embolden=embolden)
    if rng.random() < 0.3:
        layers = _curve_layers(rng, layers, rng.uniform(0.15, 0.5))
    layers = crop_layers(rng, layers, (0.15, 0.6), (0.1, 0.4))
    return _paint_sign(rng, layers, size, photos)


def render_vertical_signboard(rng: np.random.Generator, font, text: str, size: int,
                              photos: Sequence[str] = ()) -> np.ndarray:
    """Vertical signs (세로 간판: a building's column of shop names, banners, hospital and
    pharmacy signs): the characters stacked top to bottom on a tall panel, painted and
    photographed as :func:`render_signboard`'s. A recogniser trained on horizontal lines reads
    them with demo.py / test.py ``--vertical``, which lays the column out left to right."""
    strokes, embolden = _sign_lettering(rng, size)
    # corner jitter is a share of the box's height, here several characters tall
    perspective = rng.uniform(0.01, 0.04) if rng.random() < 0.5 else 0.0
    layers = render_text_layers(rng, font, text, size, rng.uniform(0.05, 0.5) * size, strokes,
                                hscale=rng.uniform(0.85, 1.2), angle=rng.uniform(-2, 2),
                                perspective=perspective, embolden=embolden, vertical=True)
    layers = crop_layers(rng, layers, (0.1, 0.4), (0.1, 0.4))
    return _paint_sign(rng, layers, size, photos)


def _paint_sign(rng: np.random.Generator, layers: TextLayers, size: int, photos: Sequence[str]) -> np.ndarray:
    """A sign's picture around its cropped text layers: the wall or photo, the panel, the
    letters' colour, extrusion and outline, the light and the camera."""
    h, w = layers.fill.shape
    img = _background(rng, h, w, photos, _texture)
    panel_color = _palette(rng, SIGN_COLORS, 20)
    x0, y0, x1, y1 = layers.box
    lh = layers.line_height
    grow = [int(rng.uniform(0.1, 0.5) * lh) for _ in range(4)]
    _panel(img, rng, (x0 - grow[0], y0 - grow[1], x1 + grow[2], y1 + grow[3]), panel_color)
    fill = _contrasting_color(rng, _luminance(panel_color), rng.uniform(80, 140))
    union = layers.strokes[-1] if layers.strokes else layers.fill
    if rng.random() < 0.35:  # extruded channel letters: a dark copy offset down-right
        depth = max(1, int(round(size * rng.uniform(0.03, 0.08))))
        for step in range(depth, 0, -1):
            _composite(img, _shift(union, step, step), fill * np.float32(0.35))
    if layers.strokes:
        outline = np.full(3, 255 if _luminance(fill) < 128 else 0, np.float32)
        _composite(img, layers.strokes[0], outline)
    _composite(img, layers.fill, fill)
    img = _uneven_light(rng, img, (0.2, 0.9))
    return _camera(rng, img, size, lh, blur=1.3, low_res=(0.35, 0.8), noise=8, jpeg=(25, 86))


def _poster_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A photo-like picture for a cover: a blurred scene, a texture or a duotone gradient with
    soft shapes."""
    kind = rng.random()
    if kind < 0.4:
        return _video_frame(rng, h, w)
    if kind < 0.7:
        return _texture(rng, h, w)
    img = _linear_gradient(rng, h, w, _natural_color(rng), _natural_color(rng))
    img += (_smooth_noise(rng, h, w, int(rng.integers(3, 9))) - 0.5) * rng.uniform(20, 80)
    return img


def render_cover(rng: np.random.Generator, font, text: str, size: int,
                 photos: Sequence[str] = ()) -> np.ndarray:
    """Book covers and posters: heavy display lettering (emboldened, wide or condensed, often
    spaced) in a bright or dark colour with an outline or a soft shadow, over a photo-like
    picture."""
    embolden = max(1, int(round(size * rng.uniform(0.03, 0.08))))
    strokes = [max(1, int(round(size * rng.uniform(0.03, 0.08))))] if rng.random() < 0.5 else []
    tracking = rng.uniform(0.0, 0.25) * size if rng.random() < 0.4 else 0.0
    layers = render_text_layers(rng, font, text, size, tracking, strokes,
                                hscale=rng.uniform(0.7, 1.3), angle=rng.uniform(-2, 2), embolden=embolden)
    layers = crop_layers(rng, layers, (0.1, 0.6), (0.08, 0.45))
    h, w = layers.fill.shape
    img = _background(rng, h, w, photos, _poster_texture)
    x0, y0, x1, y1 = layers.box
    behind = _luminance(img[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)])
    fill = (_palette(rng, VARIETY_FILLS + [(255, 255, 255)] * 3, 10) if behind < 110
            else _palette(rng, DARK_TEXT + [(200, 0, 30)], 10) if behind > 160
            else _contrasting_color(rng, behind, 90))
    union = layers.strokes[-1] if layers.strokes else layers.fill
    if not layers.strokes or rng.random() < 0.5:  # soft shadow keeps light type readable on a busy picture
        offset = max(1, int(round(size * rng.uniform(0.02, 0.07))))
        shadow = _blur(_shift(union, offset, offset), rng.uniform(0.8, 3.0) * size / REFERENCE_SIZE)
        _composite(img, shadow, np.zeros(3, np.float32) if _luminance(fill) > 110 else np.full(3, 255, np.float32),
                   rng.uniform(0.6, 0.95))
    if layers.strokes:
        outline = np.zeros(3, np.float32) if _luminance(fill) > 110 else np.full(3, 255, np.float32)
        _composite(img, layers.strokes[0], outline)
    _composite(img, layers.fill, fill)
    return _camera(rng, img, size, layers.line_height, blur=0.9, low_res=(0.5, 0.9), noise=5, jpeg=(40, 95))


SCOREBUG_PANELS = [(10, 20, 60), (0, 0, 0), (25, 25, 30), (140, 10, 20), (0, 60, 130), (240, 240, 240)]
TEAM_COLORS = [(200, 20, 30), (0, 60, 160), (0, 110, 60), (240, 120, 0), (110, 30, 120), (20, 20, 20),
               (0, 130, 180), (180, 150, 40)]


def _word_spans(font, text: str, tracking: float, hscale: float, pad: int) -> list[tuple[int, int, str]]:
    """The x extent of each space-separated word of ``text`` as :func:`_draw_text` lays it out
    (before the crop), so boxes can be painted behind single words."""
    spans, start = [], 0
    for word in text.split(' '):
        x0 = font.getlength(text[:start]) + tracking * start
        x1 = x0 + font.getlength(word) + tracking * max(0, len(word) - 1)
        spans.append((int(pad + x0 * hscale), int(math.ceil(pad + x1 * hscale)), word))
        start += len(word) + 1
    return spans


def render_scorebug(rng: np.random.Generator, font, text: str, size: int,
                    photos: Sequence[str] = ()) -> np.ndarray:
    """Broadcast score bugs and lower thirds: a semi-transparent bar over the video frame,
    team-coloured boxes behind names, lighter boxes behind scores (digits), white text with
    a thick outline or a shadow."""
    strokes = [max(1, int(round(size * rng.uniform(0.06, 0.14))))] if rng.random() < 0.4 else []
    embolden = max(1, size // 26) if rng.random() < 0.6 else 0
    widest = max(strokes, default=0) + embolden
    pad = widest + max(2, size // 4)
    layers = render_text_layers(rng, font, text, size, 0.0, strokes, embolden=embolden)
    spans = _word_spans(font, text, 0.0, 1.0, pad)
    crop_x0 = layers.box[0]
    layers = crop_layers(rng, layers, (0.15, 0.5), (0.12, 0.35))
    shift_x = layers.box[0] - crop_x0
    h, w = layers.fill.shape
    img = _background(rng, h, w, photos, _video_frame)
    bar = _palette(rng, SCOREBUG_PANELS, 10)
    opacity = rng.uniform(0.55, 0.95)  # semi-transparent: the frame shows through
    img[:] = img * (1 - opacity) + bar * opacity
    _, y0, _, y1 = layers.box
    top, bottom = max(0, y0 - int(0.1 * layers.line_height)), min(h, y1 + int(0.1 * layers.line_height))
    for x0, x1, word in spans:
        a, b = max(0, x0 + shift_x - size // 8), min(w, x1 + shift_x + size // 8)
        if b <= a or rng.random() < 0.3:
            continue
        if any(ch.isdigit() for ch in word):
            box_color = _palette(rng, [(250, 250, 250), (255, 210, 0), (40, 40, 45)], 8)
        else:
            box_color = _palette(rng, TEAM_COLORS, 15)
        img[top:bottom, a:b] = img[top:bottom, a:b] * 0.2 + box_color * 0.8
    union = layers.strokes[-1] if layers.strokes else layers.fill
    if not layers.strokes:
        _composite(img, _blur(_shift(union, 1, 1), 0.8), np.zeros(3, np.float32), 0.8)
    else:
        _composite(img, layers.strokes[0], np.zeros(3, np.float32))
    # text colour per pixel: light on dark boxes, dark on light ones, as broadcasters do
    luma = img.mean(axis=2)
    light = _palette(rng, LIGHT_TEXT, 6)
    dark = _palette(rng, DARK_TEXT, 6)
    fill_alpha = layers.fill
    on_light = (luma > 150).astype(np.float32) * (0.0 if layers.strokes else 1.0)
    _composite(img, fill_alpha * (1 - on_light), light)
    _composite(img, fill_alpha * on_light, dark)
    return _camera(rng, img, size, layers.line_height, blur=0.8, low_res=(0.45, 0.85), noise=4, jpeg=(35, 91))


# white: private cars since 2006; green: older private plates; yellow: commercial (바사아자);
# blue: electric cars. (plate colour, text colour)
PLATE_COLORS = {'white': ((245, 245, 240), (15, 15, 15)), 'green': ((40, 110, 70), (245, 245, 245)),
                'yellow': ((245, 195, 20), (20, 20, 20)), 'blue': ((50, 110, 190), (10, 10, 10))}
PLATE_COMMERCIAL_LETTERS = '바사아자배'


def _plate_colors(rng: np.random.Generator, text: str) -> tuple[np.ndarray, np.ndarray]:
    letters = [ch for ch in text if not ch.isdigit()]
    if set(letters[-1:]) & set(PLATE_COMMERCIAL_LETTERS):
        kind = 'yellow' if rng.random() < 0.85 else 'white'
    elif len(letters) > 1:  # regional private plate: the older green plates
        kind = 'green' if rng.random() < 0.7 else 'white'
    else:
        kind = rng.choice(['white'] * 8 + ['green', 'blue'])
    plate, ink = PLATE_COLORS[kind]
    return (np.clip(np.array(plate, np.float32) + rng.uniform(-15, 15, 3), 0, 255).astype(np.float32),
            np.array(ink, np.float32))


def render_plate(rng: np.random.Generator, font, text: str, size: int,
                 photos: Sequence[str] = ()) -> np.ndarray:
    """Korean licence plates: white, green, yellow or blue plates with a dark rim and bolts,
    condensed heavy characters, seen by a traffic or dash camera (angle, blur, low
    resolution, dirt, glare)."""
    embolden = max(1, size // 20)
    layers = render_text_layers(rng, font, text, size, rng.uniform(0.0, 0.08) * size, [],
                                hscale=rng.uniform(0.7, 0.95), angle=rng.uniform(-5, 5),
                                perspective=rng.uniform(0.02, 0.12) if rng.random() < 0.6 else 0.0,
                                embolden=embolden)
    layers = crop_layers(rng, layers, (0.2, 0.55), (0.15, 0.4))
    h, w = layers.fill.shape
    img = _background(rng, h, w, photos, _texture) * np.float32(0.6)  # car body / bumper
    plate, ink = _plate_colors(rng, text)
    x0, y0, x1, y1 = layers.box
    lh = layers.line_height
    px0, py0 = x0 - int(rng.uniform(0.12, 0.35) * lh), y0 - int(rng.uniform(0.1, 0.3) * lh)
    px1, py1 = x1 + int(rng.uniform(0.12, 0.35) * lh), y1 + int(rng.uniform(0.1, 0.3) * lh)
    cv2.rectangle(img, (px0, py0), (px1, py1), [float(v) for v in plate], -1)
    cv2.rectangle(img, (px0, py0), (px1, py1), [float(v) * 0.35 for v in plate], max(1, lh // 14))
    bolt = max(1, lh // 12)
    for bx in (px0 + (px1 - px0) // 5, px1 - (px1 - px0) // 5):
        cv2.circle(img, (bx, py0 + 2 * bolt), bolt, [float(v) * 0.6 for v in plate], -1)
    _composite(img, layers.fill, ink)
    if rng.random() < 0.4:  # road dirt
        dirt = _smooth_noise(rng, h, w, int(rng.integers(4, 12)), 1)[..., 0]
        _composite(img, np.clip(dirt - 0.55, 0, 1) * 1.5, np.array((90, 80, 60), np.float32), 0.6)
    if rng.random() < 0.3:  # headlight glare
        img = _uneven_light(rng, img, (0.4, 1.2))
    if rng.random() < 0.2:
        img = _motion_blur(img, rng)
    return _camera(rng, img, size, lh, blur=1.5, low_res=(0.3, 0.75), noise=9, jpeg=(20, 80))


def render_headline(rng: np.random.Generator, font, text: str, size: int,
                    photos: Sequence[str] = ()) -> np.ndarray:
    """News headlines and long caption lines: a whole line with spaces, dark on light (print,
    web) or light on a dark bar (TV news), mildly degraded. The images are wide: train them
    with a larger --imgW (e.g. 200) and --batch_max_length (e.g. 40)."""
    embolden = max(1, size // 28) if rng.random() < 0.5 else 0
    layers = render_text_layers(rng, font, text, size, rng.uniform(-0.03, 0.05) * size if rng.random() < 0.2 else 0.0,
                                [], hscale=rng.uniform(0.85, 1.1), angle=rng.uniform(-1, 1) if rng.random() < 0.3 else 0.0,
                                embolden=embolden)
    layers = crop_layers(rng, layers, (0.05, 0.4), (0.05, 0.3))
    h, w = layers.fill.shape
    if rng.random() < 0.6:
        img = _paper(rng, h, w)
        ink = np.clip(rng.uniform(0, 70) + rng.uniform(-5, 5, 3), 0, 255).astype(np.float32)
        if rng.random() < 0.2:  # red or blue breaking-news type
            ink = _hsv_color(rng.choice([0.0, 0.6]), rng.uniform(0.7, 1), rng.uniform(0.45, 0.7))
    else:
        img = _video_frame(rng, h, w)
        bar = _palette(rng, CAPTION_BARS[:7], 10)
        opacity = rng.uniform(0.75, 1.0)
        img[:] = img * (1 - opacity) + bar * opacity
        ink = _palette(rng, LIGHT_TEXT, 8)
    _composite(img, layers.fill, ink)
    return _camera(rng, img, size, layers.line_height, blur=0.7, low_res=(0.6, 0.9), noise=4, jpeg=(45, 95))


EXTRA_STYLE_RENDERERS = {'signboard': render_signboard, 'cover': render_cover, 'scorebug': render_scorebug,
                         'plate': render_plate, 'headline': render_headline, 'vertical': render_vertical_signboard}


# ----------------------------------------------------------------------------------------------
# one sample


@dataclass(frozen=True)
class RenderConfig:
    """What every worker needs to render any sample."""
    seed: int
    styles: tuple[tuple[str, float], ...]
    height: tuple[int, int]
    backgrounds: tuple[str, ...] = ()  # photos from --background_dir (signboard, cover, ...)


class WordRenderer:
    """Renders sample ``number`` of a run: style, font, size and every random choice come from
    a generator seeded by (seed, number), so a sample does not depend on which process renders
    it or on any other sample."""

    def __init__(self, bank: FontBank, config: RenderConfig):
        self.bank = bank
        self.config = config
        self._style_names = [name for name, _ in config.styles]
        weights = np.array([w for _, w in config.styles], np.float64)
        self._style_p = weights / weights.sum()

    def render(self, number: int, label: str, font_mask: int) -> tuple[np.ndarray, str, int]:
        """Return (RGB uint8 image, style, font index) for sample ``number``.

        A draw of random choices that leaves no visible text (possible in principle with
        extreme distortions) is replaced by another draw, still determined by (seed, number)."""
        candidates = [i for i in range(len(self.bank)) if font_mask >> i & 1]
        if not candidates:
            raise ValueError(f'sample {number}: no font draws {label!r}')
        for attempt in range(RENDER_ATTEMPTS):
            rng = np.random.default_rng([self.config.seed, number] + ([attempt] if attempt else []))
            style = self._style_names[int(rng.choice(len(self._style_names), p=self._style_p))]
            font_index = candidates[int(rng.integers(0, len(candidates)))]
            size = _pick_size(rng, self.config.height)
            font = self.bank.font(font_index, size)
            try:
                if style in EXTRA_STYLE_RENDERERS:
                    image = EXTRA_STYLE_RENDERERS[style](rng, font, label, size, self.config.backgrounds)
                else:
                    image = STYLE_RENDERERS[style](rng, font, label, size)
                return image, style, font_index
            except NoInkError as e:
                logger.debug('sample %d, attempt %d: %s', number, attempt, e)
        raise RuntimeError(f'sample {number}: {label!r} could not be rendered in {RENDER_ATTEMPTS} attempts '
                           f'(last font {self.bank.paths[font_index]})')

    def render_png(self, number: int, label: str, font_mask: int) -> tuple[bytes, str, int, float]:
        """Like :meth:`render`, encoded as PNG; also returns the seconds it took."""
        start = time.process_time()  # CPU time: the per-core speed, whatever else the machine runs
        rgb, style, font_index = self.render(number, label, font_mask)
        ok, buf = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), PNG_PARAMS)
        if not ok:
            raise RuntimeError(f'PNG encoding failed for sample {number} ({label!r})')
        return buf.tobytes(), style, font_index, time.process_time() - start


_worker_renderer: WordRenderer | None = None


def _init_worker(bank: FontBank, config: RenderConfig, in_pool: bool = True) -> None:
    global _worker_renderer
    if in_pool:  # Ctrl-C is the main process's business: it terminates the pool
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    _worker_renderer = WordRenderer(bank, config)


def _render_chunk(chunk: tuple[int, list[tuple[str, int]]]) -> list[tuple[bytes, str, int, float]]:
    first, items = chunk
    assert _worker_renderer is not None
    return [_worker_renderer.render_png(first + k, label, mask) for k, (label, mask) in enumerate(items)]


# ----------------------------------------------------------------------------------------------
# outputs


FOLDER_OUTPUT_NAMES = frozenset({'images', 'gt.txt', 'summary.json'})
LMDB_OUTPUT_NAMES = frozenset({'data.mdb', 'lock.mdb'})


def _check_output(root: Path, overwrite: bool, ours: frozenset[str]) -> None:
    """Refuse to write where something would be lost: ``root`` must be absent or empty, or
    (with ``overwrite``) a previous output of this script (nothing but ``ours`` in it)."""
    if root.exists() and not root.is_dir():
        raise FileExistsError(f'--output {root} exists and is not a folder')
    if not root.exists() or not any(root.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f'--output {root} already holds files; choose another folder or pass '
                              '--overwrite to replace a previous output of this script')
    foreign = sorted(p.name for p in root.iterdir() if p.name not in ours)
    if foreign:
        raise FileExistsError(f'--output {root} holds files this script did not write '
                              f'({", ".join(foreign[:5])}); refusing to replace it')


class FolderOutput:
    """``OUT/images/000000001.png`` ... and ``OUT/gt.txt`` (``images/NAME<TAB>label``).

    Everything is written into a hidden sibling folder, gt.txt last (through a temporary
    file), and the folder is renamed to OUT only when complete; a previous output at OUT is
    set aside then and deleted only after the new one is in place. An interrupted run
    deletes its partial folder, so OUT is either the old output or the complete new one.
    """

    def __init__(self, root: Path, overwrite: bool):
        _check_output(root, overwrite, FOLDER_OUTPUT_NAMES)
        self.root = root
        root.parent.mkdir(parents=True, exist_ok=True)
        self.partial = root.parent / f'.{root.name}.partial-{os.getpid()}'
        if self.partial.exists():
            shutil.rmtree(self.partial)
        self.images = self.partial / 'images'
        self.images.mkdir(parents=True)
        self.lines: list[str] = []

    def add(self, number: int, image: bytes, label: str) -> None:
        name = f'{number:09d}.png'
        (self.images / name).write_bytes(image)
        self.lines.append(f'images/{name}\t{label}')

    def finish(self, summary: dict) -> None:
        (self.partial / 'summary.json').write_text(json.dumps(summary, ensure_ascii=False, indent=2),
                                                  encoding='utf-8')
        tmp = self.partial / '.gt.txt.tmp'
        with open(tmp, 'w', encoding='utf-8', newline='\n') as f:
            f.write('\n'.join(self.lines) + '\n')
        os.replace(tmp, self.partial / 'gt.txt')
        self._move_into_place()

    def _move_into_place(self) -> None:
        if self.root.exists() and not any(self.root.iterdir()):
            self.root.rmdir()
        if not self.root.exists():
            os.rename(self.partial, self.root)
            return
        old = self.root.parent / f'.{self.root.name}.old-{os.getpid()}'
        os.rename(self.root, old)
        try:
            os.rename(self.partial, self.root)
        except BaseException:
            os.rename(old, self.root)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        logger.warning('interrupted: removing the partial output %s (%d images); %s is unchanged',
                       self.partial, len(self.lines), self.root)
        shutil.rmtree(self.partial, ignore_errors=True)


class LmdbOutput:
    """An LMDB dataset written through ``create_lmdb_dataset.LmdbWriter``: numbered from 1,
    built in a hidden folder and moved to OUT only when complete (a previous LMDB at OUT is
    replaced then, and only with ``overwrite``)."""

    def __init__(self, root: Path, overwrite: bool):
        try:
            from create_lmdb_dataset import LmdbWriter
        except ImportError as e:
            raise RuntimeError(f'--format lmdb needs create_lmdb_dataset.LmdbWriter ({e})') from None
        _check_output(root, overwrite, LMDB_OUTPUT_NAMES)
        self._writer = LmdbWriter(str(root)).open()

    def add(self, number: int, image: bytes, label: str) -> None:
        self._writer.add(image, label)

    def finish(self, summary: dict) -> None:
        self._writer.finish()

    def abort(self) -> None:
        self._writer.abort()


# ----------------------------------------------------------------------------------------------
# the run


def parse_height(value: str | int | Sequence[int]) -> tuple[int, int]:
    """``"20-48"`` / ``"32"`` / ``(20, 48)`` -> (min, max) font size in pixels."""
    if isinstance(value, int):
        lo = hi = value
    elif isinstance(value, str):
        parts = value.replace(' ', '').split('-')
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f'--height {value!r}: expected MIN-MAX or one number of pixels, e.g. 20-48') from None
        if len(nums) not in (1, 2):
            raise ValueError(f'--height {value!r}: expected MIN-MAX or one number of pixels, e.g. 20-48')
        lo, hi = nums[0], nums[-1]
    else:
        lo, hi = (int(v) for v in value)
    if not 8 <= lo <= hi <= 400:
        raise ValueError(f'--height {value!r}: need 8 <= MIN <= MAX <= 400 pixels')
    return lo, hi


def parse_styles(spec: str | Sequence[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    items = parse_weighted_list(spec, 'style') if isinstance(spec, str) else list(spec)
    for name, _ in items:
        if name not in STYLES:
            raise ValueError(f'unknown style {name!r}; styles are {", ".join(STYLES)}')
    return tuple((n, float(w)) for n, w in items if w > 0)


def _parse_text_files(text_files: Iterable[str]) -> list[tuple[str, float]]:
    out = []
    for spec in text_files:
        name, _, weight = spec.rpartition(':')
        try:
            pair = (name, float(weight)) if name else (spec, 1.0)
        except ValueError:
            pair = (spec, 1.0)
        if not os.path.isfile(pair[0]):
            raise FileNotFoundError(f'--text_file {pair[0]!r}: no such file')
        out.append(pair)
    return out


def draw_labels(mixer: TextMixer, bank: FontBank, n: int, progress: bool = True) -> tuple[list[tuple[str, int]], dict]:
    """Draw ``n`` labels that at least one font draws completely, with their font masks.
    Texts no font draws are skipped and counted (with the characters at fault)."""
    from tqdm import tqdm
    labels: list[tuple[str, int]] = []
    undrawable = 0
    in_a_row = 0
    missing: collections.Counter[str] = collections.Counter()
    with tqdm(total=n, desc='texts', unit='text', disable=not progress, leave=False) as bar:
        while len(labels) < n:
            label = next(mixer)
            mask = bank.font_mask(label)
            if mask:
                labels.append((label, mask))
                in_a_row = 0
                bar.update(1)
                continue
            undrawable += 1
            in_a_row += 1
            missing.update(bank.undrawable(label))
            if in_a_row >= MAX_UNDRAWABLE_IN_A_ROW:
                raise RuntimeError(f'{in_a_row} texts in a row hold characters no font draws '
                                   f'(e.g. {"".join(c for c, _ in missing.most_common(10))!r}); '
                                   'add fonts (--font_dir) or restrict --character')
    return labels, {'undrawable': undrawable, 'undrawable_characters': ''.join(c for c, _ in missing.most_common(30))}


def generate(output: str | os.PathLike, num_images: int = 1000, format: str = 'folder', seed: int = 0,
             workers: int | None = None, font_dirs: Sequence[str] | None = None,
             fonts: Sequence[str] | None = None, text_files: Sequence[str] = (),
             sources: str | None = None, text_split: str = 'lines',
             exclude_files: Sequence[str] = (), exclude_mode: str = 'token',
             exclude: Iterable[str] = (), word_list: Sequence[str] | None = None,
             character: str = DEFAULT_CHARACTER, sensitive: bool = False,
             styles: str | Sequence[tuple[str, float]] = DEFAULT_STYLES,
             height: str | tuple[int, int] = DEFAULT_HEIGHT, max_length: int = DEFAULT_MAX_LENGTH,
             overwrite: bool = False, progress: bool = True, contact_sheet_png: str | None = None,
             cache_dir: str | None = None, background_dirs: Sequence[str] = ()) -> dict:
    """Render ``num_images`` labelled word images into ``output`` and return a summary.

    * ``format``: ``folder`` (``images/*.png`` + ``gt.txt`` + ``summary.json``) or ``lmdb``.
    * fonts: the installed Korean fonts, or those under ``font_dirs`` plus the files in
      ``fonts``; fonts that draw no Hangul are left out (listed in the summary).
    * text: ``sources`` (``name:weight,...`` of built-in sources and text files; default
      :data:`korean.text_sources.DEFAULT_SOURCES`, or only the text files when some are given)
      and ``text_files`` (``PATH`` or ``PATH:WEIGHT``); labels outside ``character`` (an
      alphabet string or file), longer than ``max_length`` or matching ``exclude_files``
      (per ``exclude_mode``) or ``exclude`` (the same, given as strings) are never produced;
      texts that no font draws are skipped. ``word_list`` replaces the built-in list behind
      the ``words`` source (e.g. the train part of :func:`korean.text_sources.split_words`).
    * ``styles``: ``document:1,caption:1,scene:1`` weights (any of :data:`STYLES`);
      ``height``: font size range in pixels (``"20-48"``), roughly the height of a Hangul
      syllable; ``background_dirs``: folders of your photos, cropped behind half of the
      signboard, vertical sign, cover, scorebug and plate images.

    The summary holds images written, counts per style, font and source, skipped texts and
    why, and speed. Ctrl-C leaves no gt.txt (folder) / no LMDB, and is re-raised.
    """
    if format not in FORMATS:
        raise ValueError(f'--format must be one of {FORMATS}, got {format!r}')
    if num_images < 1:
        raise ValueError(f'--num_images must be at least 1, got {num_images}')
    if seed < 0:
        raise ValueError(f'--seed must be non-negative, got {seed}')
    workers = max(1, int(workers)) if workers is not None else usable_cpu_count()
    style_items = parse_styles(styles)
    if not style_items:
        raise ValueError('--styles: give at least one style a positive weight')
    height_range = parse_height(height)
    backgrounds = find_background_images(background_dirs)
    root = Path(output)
    # fail before the slow steps: the sinks check again when they open
    _check_output(root, overwrite, FOLDER_OUTPUT_NAMES if format == 'folder' else LMDB_OUTPUT_NAMES)
    alphabet = Alphabet(load_character(character), sensitive)
    file_sources = _parse_text_files(text_files)
    if sources is None:
        source_items = file_sources or parse_weighted_list(DEFAULT_SOURCES)
    else:
        source_items = parse_weighted_list(sources) + file_sources
    exclude = list(dict.fromkeys(read_exclude_files(exclude_files) + [e for e in exclude]))

    font_paths = list(find_korean_fonts(font_dirs)) if font_dirs or not fonts else []
    font_paths += [Path(f) for f in fonts or ()]
    if not font_paths:
        raise RuntimeError('no Korean font found: install one (e.g. apt install fonts-nanum) '
                           'or pass --font_dir / --font')
    bank = FontBank(font_paths, cache_dir=cache_dir)
    logger.info('%d fonts; checking which alphabet characters each draws (cached in %s)',
                len(bank), bank.cache_file)
    bank.precompute(alphabet.characters)

    mixer = TextMixer(source_items, seed=seed, alphabet=alphabet, max_length=max_length, exclude=exclude,
                      exclude_mode=exclude_mode, text_split=text_split, word_list=word_list)
    labels, skipped = draw_labels(mixer, bank, num_images, progress)

    sink = FolderOutput(root, overwrite) if format == 'folder' else LmdbOutput(root, overwrite)
    config = RenderConfig(seed=seed, styles=style_items, height=height_range, backgrounds=backgrounds)
    try:
        stats = _render_into(sink, bank, config, labels, workers, progress,
                             CONTACT_SHEET_IMAGES if contact_sheet_png else 0)
        summary = _make_summary(root, format, seed, workers, labels, stats, mixer, bank, skipped, len(exclude))
        sink.finish(summary)
    except BaseException:
        sink.abort()
        raise
    finally:
        bank.save_cache()
    if contact_sheet_png:
        contact_sheet(stats['sheet_items'], contact_sheet_png, columns=4)
        summary['contact_sheet'] = str(contact_sheet_png)
    return summary


def _render_into(sink: FolderOutput | LmdbOutput, bank: FontBank, config: RenderConfig,
                 labels: Sequence[tuple[str, int]], workers: int, progress: bool, sheet_size: int) -> dict:
    """Render every label (in a pool of ``workers`` processes, in chunks, results in order)
    into ``sink``; return counts per style and font, CPU seconds per style, wall seconds and
    the first ``sheet_size`` images for a contact sheet. Ctrl-C terminates the pool."""
    from tqdm import tqdm
    chunks = [(start + 1, list(labels[start:start + CHUNK_SIZE])) for start in range(0, len(labels), CHUNK_SIZE)]
    styles: collections.Counter[str] = collections.Counter()
    fonts: collections.Counter[str] = collections.Counter()
    style_seconds: collections.Counter[str] = collections.Counter()
    sheet_items: list = []
    start_time = time.perf_counter()
    pool = None
    cv2_threads = cv2.getNumThreads()  # restored below: rendering in-process changes it
    try:
        if workers > 1:
            pool = multiprocessing.get_context('fork' if hasattr(os, 'fork') else 'spawn').Pool(
                workers, initializer=_init_worker, initargs=(bank, config))
            results: Iterator = pool.imap(_render_chunk, chunks)
        else:
            _init_worker(bank, config, in_pool=False)
            results = map(_render_chunk, chunks)
        with tqdm(total=len(labels), desc='images', unit='img', disable=not progress) as bar:
            for (first, items), rendered in zip(chunks, results):
                for k, ((label, _), (png, style, font_index, seconds)) in enumerate(zip(items, rendered)):
                    sink.add(first + k, png, label)
                    styles[style] += 1
                    style_seconds[style] += seconds
                    fonts[bank.paths[font_index].name] += 1
                    if len(sheet_items) < sheet_size:
                        sheet_items.append((Image.open(io.BytesIO(png)), label, None))
                bar.update(len(items))
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
            pool = None
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        cv2.setNumThreads(cv2_threads)
    return {'styles': styles, 'fonts': fonts, 'style_seconds': style_seconds,
            'seconds': time.perf_counter() - start_time, 'sheet_items': sheet_items}


def _make_summary(root: Path, format: str, seed: int, workers: int, labels: Sequence, stats: dict,
                  mixer: TextMixer, bank: FontBank, skipped: dict, exclude_entries: int) -> dict:
    elapsed = stats['seconds']
    mixer_stats = mixer.stats()
    return {
        'output': str(root), 'format': format, 'images': len(labels), 'seed': seed, 'workers': workers,
        'seconds': round(elapsed, 2), 'images_per_second': round(len(labels) / max(elapsed, 1e-9), 1),
        # CPU time per image in the rendering processes: the speed of one core
        'render_images_per_second_per_core': {
            s: round(n / max(stats['style_seconds'][s], 1e-9), 1) for s, n in stats['styles'].items()},
        'styles': dict(sorted(stats['styles'].items())), 'fonts': dict(sorted(stats['fonts'].items())),
        'sources': dict(sorted(mixer.produced.items())),
        'skipped_texts': {'no font draws every character': skipped['undrawable']},
        'undrawable_characters': skipped['undrawable_characters'],
        # candidates a source produced that failed the filters and were replaced by another
        'replaced_candidates': {f'{src}: {why}': n for src, reasons in mixer_stats['rejected'].items()
                                for why, n in reasons.items()},
        'text_files': mixer_stats['files'],
        'excluded_fonts': {str(p): why for p, why in bank.excluded.items()},
        'exclude_entries': exclude_entries,
    }


def format_summary(summary: dict) -> str:
    """The summary as lines a person reads at the end of a run."""
    lines = [f'wrote {summary["images"]} images to {summary["output"]} ({summary["format"]}) in '
             f'{summary["seconds"]} s: {summary["images_per_second"]} images/s with {summary["workers"]} worker(s)']
    total = max(summary['images'], 1)
    lines.append('styles: ' + ', '.join(
        f'{s} {n} ({100 * n / total:.0f}%, {summary["render_images_per_second_per_core"].get(s, 0)} img/s/core)'
        for s, n in summary['styles'].items()))
    lines.append('sources: ' + ', '.join(f'{s} {n}' for s, n in summary['sources'].items()))
    lines.append(f'fonts ({len(summary["fonts"])}): ' + ', '.join(f'{f} {n}' for f, n in summary['fonts'].items()))
    undrawable = summary['skipped_texts']['no font draws every character']
    if undrawable:
        lines.append(f'skipped texts: {undrawable} that no font draws completely (characters: '
                     f'{summary["undrawable_characters"]}); add fonts with --font_dir or drop those '
                     'characters from --character')
    else:
        lines.append('skipped texts: none')
    if summary['replaced_candidates']:
        lines.append('replaced candidates: ' + ', '.join(f'{k} {v}' for k, v in summary['replaced_candidates'].items()))
    for path, stats in summary['text_files'].items():
        lines.append(f'text file {path}: {stats["usable"]} usable units of {stats["lines"]} lines '
                     f'(dropped: {stats["rejected"] or "none"})')
        if stats['rejected'].get('too long') and stats['split'] == 'lines':
            lines.append('  long lines were dropped: --text_split phrases cuts them into short runs of words')
        if stats['missing_characters']:
            lines.append(f'  characters outside --character: {stats["missing_characters"]}')
    for path, why in summary['excluded_fonts'].items():
        lines.append(f'font not used: {path}: {why}')
    if summary.get('contact_sheet'):
        lines.append(f'contact sheet: {summary["contact_sheet"]}')
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', required=True, help='output folder (folder format) or LMDB folder')
    parser.add_argument('--format', choices=FORMATS, default='folder',
                        help='folder: images/*.png + gt.txt for create_lmdb_dataset.py; lmdb: an LMDB dataset')
    parser.add_argument('--num_images', type=int, default=1000)
    parser.add_argument('--seed', type=int, default=0, help='same seed, same images (whatever --workers)')
    parser.add_argument('--workers', type=int, default=usable_cpu_count(), help='rendering processes')
    parser.add_argument('--font_dir', action='append',
                        help='folder of fonts (repeatable; recursive); default: installed Korean fonts')
    parser.add_argument('--font', action='append', help='a font file (repeatable)')
    parser.add_argument('--text_file', action='append', default=[],
                        help='UTF-8 text: PATH or PATH:WEIGHT (repeatable); used alone unless --source is given')
    parser.add_argument('--text_split', choices=TEXT_SPLITS, default='lines',
                        help='a label from a text file is a line, a word, or a run of 1-4 words (phrases)')
    parser.add_argument('--source', default=None,
                        help=f'name:weight,... of built-in sources and text files (default {DEFAULT_SOURCES})')
    parser.add_argument('--exclude_file', action='append', default=[],
                        help='labels never to produce, one per line (repeatable), e.g. a held-out test vocabulary')
    parser.add_argument('--exclude_mode', choices=EXCLUDE_MODES, default='token',
                        help='label: whole label equals an entry; token: the label or one of its words does; '
                             'substring: an entry occurs anywhere in the label')
    parser.add_argument('--character', default=DEFAULT_CHARACTER,
                        help='alphabet string or file; labels outside it are skipped')
    parser.add_argument('--sensitive', action='store_true',
                        help='labels must match the alphabet case-sensitively (default: lower-cased, as train.py)')
    parser.add_argument('--styles', default=DEFAULT_STYLES,
                        help=f'style:weight,... of {", ".join(STYLES)}')
    parser.add_argument('--background_dir', action='append', default=[],
                        help='folder of your own photos (repeatable; recursive): crops of them are '
                             'the background of half the signboard, vertical sign, cover, scorebug and plate images')
    parser.add_argument('--height', default=f'{DEFAULT_HEIGHT[0]}-{DEFAULT_HEIGHT[1]}',
                        help='font size range in pixels, MIN-MAX (about the height of a Hangul syllable)')
    parser.add_argument('--max_length', type=int, default=DEFAULT_MAX_LENGTH, help='maximum label length')
    parser.add_argument('--overwrite', action='store_true', help='replace a previous output of this script')
    parser.add_argument('--contact_sheet', default=None, help='also write a PNG grid of the first 32 images here')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser


def main(argv: Sequence[str] | None = None) -> dict | None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format='%(levelname)s %(message)s')
    try:
        summary = generate(args.output, args.num_images, format=args.format, seed=args.seed, workers=args.workers,
                           font_dirs=args.font_dir, fonts=args.font, text_files=args.text_file,
                           sources=args.source, text_split=args.text_split, exclude_files=args.exclude_file,
                           exclude_mode=args.exclude_mode, character=args.character, sensitive=args.sensitive,
                           styles=args.styles, height=args.height, max_length=args.max_length,
                           overwrite=args.overwrite, progress=not args.quiet, contact_sheet_png=args.contact_sheet,
                           background_dirs=args.background_dir)
    except KeyboardInterrupt:
        print(f'\ninterrupted: {args.output} is incomplete (no gt.txt / no LMDB)', file=sys.stderr)
        sys.exit(130)
    except (ValueError, OSError, RuntimeError) as e:
        parser.exit(2, f'error: {e}\n')
    print(format_summary(summary))
    return summary


if __name__ == '__main__':
    main()
