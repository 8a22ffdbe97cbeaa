"""korean/fonts.py on the installed fonts: discovery, the ink check (empty glyphs and .notdef
boxes are not ink), font choice per text, and the on-disk cache."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
from PIL import ImageFont

from korean.fonts import MISSING_CODE_POINT, FontBank, _mask_signature, draws_hangul, find_korean_fonts

NANUM = Path('/usr/share/fonts/truetype/nanum')
GOTHIC = NANUM / 'NanumGothic.ttf'
SQUARE = NANUM / 'NanumSquareR.ttf'
DEJAVU = Path('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf')
# a modern syllable outside KS X 1001: NanumSquare maps it to an EMPTY glyph, NanumGothic draws it
NON_KS_SYLLABLE = '\uac02'  # 갂
# a symbol no Korean font here has: NanumGothic draws its .notdef box for it
SNOWMAN = '\u2603'


def test_installed_korean_fonts_are_found_sorted_and_latin_fonts_are_not():
    fonts = find_korean_fonts()
    names = [p.name for p in fonts]
    assert 'NanumGothic.ttf' in names and 'NanumMyeongjo.ttf' in names
    assert fonts == sorted(fonts)
    assert not any(name.startswith('DejaVu') for name in names)
    assert find_korean_fonts() == fonts  # deterministic


def test_a_font_folder_is_searched_recursively_and_only_hangul_fonts_kept(tmp_path):
    (tmp_path / 'a' / 'b').mkdir(parents=True)
    shutil.copy(GOTHIC, tmp_path / 'a' / 'b' / 'Gothic.ttf')
    shutil.copy(DEJAVU, tmp_path / 'a' / 'Latin.ttf')
    (tmp_path / 'a' / 'broken.ttf').write_bytes(b'not a font at all')
    (tmp_path / 'notes.txt').write_text('not a font', encoding='utf-8')
    assert find_korean_fonts([tmp_path]) == [(tmp_path / 'a' / 'b' / 'Gothic.ttf').resolve()]


def test_a_missing_font_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        find_korean_fonts([tmp_path / 'nowhere'])


def test_latin_only_font_is_excluded_from_the_bank_with_a_reason(tmp_path):
    bank = FontBank([GOTHIC, DEJAVU], cache_dir=tmp_path)
    assert bank.paths == [GOTHIC]
    assert DEJAVU in bank.excluded and 'syllables' in bank.excluded[DEJAVU]
    assert not draws_hangul(DEJAVU) and draws_hangul(GOTHIC)


def test_bank_with_no_korean_font_is_an_error(tmp_path):
    with pytest.raises(ValueError, match='DejaVuSans'):
        FontBank([DEJAVU], cache_dir=tmp_path)


def test_an_empty_glyph_is_not_ink(tmp_path):
    # the situation: NanumSquare maps the syllable, but its glyph leaves no ink at all
    assert _mask_signature(ImageFont.truetype(str(SQUARE), 32), NON_KS_SYLLABLE) is None
    bank = FontBank([GOTHIC, SQUARE], cache_dir=tmp_path)
    assert bank.draws(1, '가') and not bank.draws(1, NON_KS_SYLLABLE)
    assert bank.fonts_for('가' + NON_KS_SYLLABLE) == [GOTHIC]
    assert bank.fonts_for('가나') == [GOTHIC, SQUARE]


def test_the_notdef_box_is_not_ink(tmp_path):
    # the situation: NanumGothic puts ink for the snowman, but it is the same box as for a
    # code point no font has (so a plain "is anything drawn?" check would be fooled)
    font = ImageFont.truetype(str(GOTHIC), 32)
    box = _mask_signature(font, SNOWMAN)
    assert box is not None and box == _mask_signature(font, MISSING_CODE_POINT)
    bank = FontBank([GOTHIC, SQUARE], cache_dir=tmp_path)
    assert bank.fonts_for('눈사람' + SNOWMAN) == []
    assert bank.undrawable('눈사람 ' + SNOWMAN) == [SNOWMAN]


def test_spaces_need_no_glyph(tmp_path):
    bank = FontBank([GOTHIC], cache_dir=tmp_path)
    assert bank.fonts_for('서울 날씨') == [GOTHIC]
    assert bank.undrawable('서울 날씨') == []


def test_ink_results_are_cached_on_disk_and_invalidated_when_the_font_changes(tmp_path):
    font = tmp_path / 'fonts' / 'Gothic.ttf'
    font.parent.mkdir()
    shutil.copy(GOTHIC, font)
    cache = tmp_path / 'cache'
    bank = FontBank([font], cache_dir=cache)
    bank.precompute('가나다라' + NON_KS_SYLLABLE)
    data = json.loads((cache / 'font_ink.json').read_text(encoding='utf-8'))
    [(key, entry)] = data['fonts'].items()
    assert key.startswith(str(font.resolve()))
    assert set('가나다라' + NON_KS_SYLLABLE) <= set(entry['ink'])

    # the cache is trusted: a (deliberately wrong) entry saying 라 has no ink is believed ...
    entry['ink'] = entry['ink'].replace('라', '')
    entry['no_ink'] = entry['no_ink'] + '라'
    (cache / 'font_ink.json').write_text(json.dumps(data, ensure_ascii=False), encoding='utf-8')
    assert FontBank([font], cache_dir=cache).fonts_for('라') == []
    # ... until the font file changes, which makes the entry stale
    stat = font.stat()
    os.utime(font, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert FontBank([font], cache_dir=cache).fonts_for('라') == [font.resolve()]


def test_an_unwritable_cache_only_costs_time(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('a file where the cache folder should be', encoding='utf-8')
    bank = FontBank([GOTHIC], cache_dir=blocker / 'cache')
    bank.precompute('가나다')  # logs a warning, does not raise
    assert bank.fonts_for('가나다') == [GOTHIC]


def test_bank_pickles_for_worker_processes(tmp_path):
    bank = FontBank([GOTHIC, SQUARE], cache_dir=tmp_path)
    bank.precompute('가나')
    clone = pickle.loads(pickle.dumps(bank))
    assert clone.paths == bank.paths
    assert clone.fonts_for('가' + NON_KS_SYLLABLE) == [GOTHIC]
    assert clone.font(0, 20).getbbox('가')[3] > 10
