"""korean/contact_sheet.py: a grid of images with labels, predictions in green when right and
red when wrong, from any kind of image input."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from korean.contact_sheet import contact_sheet

FONT = '/usr/share/fonts/truetype/nanum/NanumGothic.ttf'


def word_image(text: str) -> Image.Image:
    image = Image.new('RGB', (120, 36), 'white')
    ImageDraw.Draw(image).text((4, 4), text, fill='black', font=ImageFont.truetype(FONT, 24))
    return image


def colour_pixels(region: np.ndarray) -> tuple[int, int]:
    """(green-ish, red-ish) pixel counts: the prediction colours, not the grey/black label."""
    r, g, b = (region[..., i].astype(int) for i in range(3))
    green = int(((g > 90) & (r < 80) & (b < 80)).sum())
    red = int(((r > 150) & (g < 80) & (b < 80)).sum())
    return green, red


def test_predictions_are_green_when_right_and_red_when_wrong(tmp_path):
    png = io.BytesIO()
    word_image('부산').save(png, format='PNG')
    path = tmp_path / 'crop.png'
    word_image('약국').save(path)
    items = [(word_image('서울'), '서울', '서울'),                   # right
             (png.getvalue(), '부산', '부잔'),                        # wrong
             (path, '약국', None),                                    # no prediction
             (np.asarray(word_image('날씨')), '날씨', '날씨')]         # right, from an array
    out = contact_sheet(items, tmp_path / 'sheets' / 'sheet.png', columns=2, cell_width=200)
    sheet = np.asarray(Image.open(out).convert('RGB'))
    rows = sheet.shape[0] // 2
    assert sheet.shape[1] == 400 and sheet.shape[0] == 2 * rows
    cells = [sheet[:rows, :200], sheet[:rows, 200:], sheet[rows:, :200], sheet[rows:, 200:]]
    green, red = zip(*(colour_pixels(cell) for cell in cells))
    assert green[0] > 20 and red[0] == 0
    assert red[1] > 20 and green[1] == 0
    assert green[2] == 0 and red[2] == 0
    assert green[3] > 20 and red[3] == 0
    # the images themselves are on the sheet: dark ink in the image area of every cell
    for cell in cells:
        assert (cell[8:64].mean(axis=2) < 80).sum() > 30


def test_prediction_is_compared_after_nfc(tmp_path):
    import unicodedata
    out = contact_sheet([(word_image('한글'), '한글', unicodedata.normalize('NFD', '한글'))], tmp_path / 's.png')
    green, red = colour_pixels(np.asarray(Image.open(out).convert('RGB')))
    assert green > 20 and red == 0


def test_long_labels_are_fitted_into_the_cell(tmp_path):
    long_label = '대한민국 국가대표 축구팀 월드컵 본선 진출 확정 소식'
    out = contact_sheet([(word_image('긴 글'), long_label, long_label + '!')], tmp_path / 's.png',
                        cell_width=160)
    sheet = np.asarray(Image.open(out).convert('RGB'))
    assert sheet.shape[1] == 160
    # nothing is drawn in the right padding: the text was shrunk or cut to the cell
    assert (sheet[:, -6:].mean(axis=2) < 200).sum() == 0


def test_no_items_is_an_error(tmp_path):
    with pytest.raises(ValueError, match='no items'):
        contact_sheet([], tmp_path / 's.png')
    assert not (tmp_path / 's.png').exists()
