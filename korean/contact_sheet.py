"""A contact sheet: a PNG grid of word images, each with its label and, optionally, a
model's prediction under it (green when it equals the label, red when it does not).

Used to eyeball generated data (``generate_word_images.py --contact_sheet``) and a model's
mistakes::

    contact_sheet([(image, '서울 날씨', '서울 날씨'), ('crop.png', '약국', '약곡')], 'sheet.png')
"""
from __future__ import annotations

import io
import os
import unicodedata
from pathlib import Path
from typing import Iterable, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ImageLike = Union[Image.Image, str, os.PathLike, bytes, np.ndarray]

PREFERRED_FONTS = ('NanumGothic.ttf', 'NanumBarunGothic.ttf', 'UnDotum.ttf', 'NanumSquareR.ttf')
LABEL_COLOR = (20, 20, 20)
CORRECT_COLOR = (0, 140, 0)
WRONG_COLOR = (210, 0, 0)
BACKGROUND = (255, 255, 255)
IMAGE_BACKGROUND = (235, 235, 235)
MIN_TEXT_SIZE = 9


def _open_image(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert('RGB')
    if isinstance(image, bytes):
        return Image.open(io.BytesIO(image)).convert('RGB')
    if isinstance(image, np.ndarray):
        return Image.fromarray(image).convert('RGB')
    with Image.open(image) as im:
        return im.convert('RGB')


def _sheet_font_path(font_path: str | os.PathLike | None) -> Path:
    if font_path is not None:
        return Path(font_path)
    from korean.fonts import find_korean_fonts
    fonts = find_korean_fonts()
    if not fonts:
        raise RuntimeError('contact_sheet needs a Korean font: install one (fonts-nanum) or pass font_path')
    for name in PREFERRED_FONTS:
        for path in fonts:
            if path.name == name:
                return path
    return fonts[0]


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font_path: Path, size: int, width: int) -> tuple[str, ImageFont.FreeTypeFont]:
    """Shrink the font until ``text`` fits ``width``; below the minimum size, cut it with '…'."""
    while True:
        font = ImageFont.truetype(str(font_path), size)
        if draw.textlength(text, font=font) <= width:
            return text, font
        if size <= MIN_TEXT_SIZE:
            break
        size -= 1
    while text and draw.textlength(text + '…', font=font) > width:
        text = text[:-1]
    return text + '…', font


def contact_sheet(items: Iterable[tuple[ImageLike, str, str | None]], out_png: str | os.PathLike,
                  columns: int = 4, font_path: str | os.PathLike | None = None, cell_width: int = 260,
                  image_height: int = 56, text_size: int = 18) -> Path:
    """Write a grid of ``(image, label, prediction or None)`` items to ``out_png``.

    Images (PIL images, file paths, encoded bytes or RGB arrays) are scaled to
    ``image_height`` pixels high (narrower when wider than a cell). Under each image the
    label is printed in black; a prediction, when given, is printed under it in green if it
    equals the label (after NFC normalisation) and red otherwise. Text too wide for a cell is
    shrunk, then cut with '…'. The PNG is written atomically; the path is returned.
    """
    items = list(items)
    if not items:
        raise ValueError('contact_sheet: no items to draw')
    if columns < 1:
        raise ValueError(f'contact_sheet: columns must be at least 1, got {columns}')
    font_file = _sheet_font_path(font_path)
    pad = 8
    has_predictions = any(pred is not None for _, _, pred in items)
    line_h = int(text_size * 1.35)
    cell_h = pad + image_height + 4 + line_h * (2 if has_predictions else 1) + pad
    cols = min(columns, len(items))
    rows = (len(items) + cols - 1) // cols
    sheet = Image.new('RGB', (cols * cell_width, rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    inner = cell_width - 2 * pad
    for k, (image, label, prediction) in enumerate(items):
        x, y = (k % cols) * cell_width + pad, (k // cols) * cell_h + pad
        picture = _open_image(image)
        scale = min(image_height / max(picture.height, 1), inner / max(picture.width, 1))
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        draw.rectangle([x, y, x + inner - 1, y + image_height - 1], fill=IMAGE_BACKGROUND)
        sheet.paste(picture.resize(size, Image.BILINEAR), (x, y + (image_height - size[1]) // 2))
        ty = y + image_height + 4
        text, font = _fit_text(draw, label, font_file, text_size, inner)
        draw.text((x, ty), text, font=font, fill=LABEL_COLOR)
        if prediction is not None:
            correct = unicodedata.normalize('NFC', prediction) == unicodedata.normalize('NFC', label)
            text, font = _fit_text(draw, prediction, font_file, text_size, inner)
            draw.text((x, ty + line_h), text, font=font, fill=CORRECT_COLOR if correct else WRONG_COLOR)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f'.{out.name}.tmp{os.getpid()}')
    try:
        sheet.save(tmp, format='PNG')
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
