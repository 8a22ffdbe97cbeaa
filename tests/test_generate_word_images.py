"""korean/generate_word_images.py end to end with real fonts: deterministic output whatever the
number of workers, folder output that create_lmdb_dataset reads, LMDB output with DTRB's keys,
labels in the alphabet, exclusions, skipped texts, every style, safe outputs and Ctrl-C."""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image

from create_lmdb_dataset import create_dataset
from korean import generate_word_images as gen
from korean.fonts import FontBank
from korean.text_sources import ExcludeRule
from utils import Alphabet, load_character

REPO = Path(__file__).resolve().parent.parent
NANUM = Path('/usr/share/fonts/truetype/nanum')
FONTS = [NANUM / 'NanumGothic.ttf', NANUM / 'NanumMyeongjo.ttf', NANUM / 'NanumSquareRoundB.ttf']
DEFAULT_ALPHABET = Alphabet(load_character(gen.DEFAULT_CHARACTER))


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory) -> Path:
    """One font ink cache for the module, so the alphabet is checked once."""
    return tmp_path_factory.mktemp('font-cache')


def run(output: Path, cache_dir: Path, **kwargs) -> dict:
    kwargs.setdefault('num_images', 24)
    kwargs.setdefault('workers', 1)
    return gen.generate(output, fonts=[str(f) for f in FONTS], cache_dir=str(cache_dir), progress=False, **kwargs)


def read_gt(root: Path) -> list[tuple[str, str]]:
    lines = (root / 'gt.txt').read_text(encoding='utf-8').splitlines()
    return [tuple(line.split('\t')) for line in lines]


def test_same_seed_gives_byte_identical_output_whatever_the_workers(tmp_path, cache_dir):
    run(tmp_path / 'one', cache_dir, num_images=40, seed=7, workers=1)
    run(tmp_path / 'two', cache_dir, num_images=40, seed=7, workers=2)
    gt = (tmp_path / 'one' / 'gt.txt').read_bytes()
    assert gt == (tmp_path / 'two' / 'gt.txt').read_bytes()
    for path, _ in read_gt(tmp_path / 'one'):
        assert (tmp_path / 'one' / path).read_bytes() == (tmp_path / 'two' / path).read_bytes(), path
    run(tmp_path / 'other', cache_dir, num_images=40, seed=8)
    assert (tmp_path / 'other' / 'gt.txt').read_bytes() != gt


def test_folder_output_round_trips_through_create_lmdb_dataset(tmp_path, cache_dir):
    out = tmp_path / 'synth'
    summary = run(out, cache_dir, num_images=30, seed=1)
    gt = read_gt(out)
    assert [path for path, _ in gt] == [f'images/{i:09d}.png' for i in range(1, 31)]
    assert summary['images'] == 30 and sorted(p.name for p in out.iterdir()) == ['gt.txt', 'images', 'summary.json']
    report = create_dataset(str(out), str(out / 'gt.txt'), str(tmp_path / 'lmdb'), show_progress=False)
    assert report.written == 30 and not report.problems
    env = lmdb.open(str(tmp_path / 'lmdb'), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b'num-samples') == b'30'
        for i, (path, label) in enumerate(gt, start=1):
            assert txn.get(b'label-%09d' % i).decode('utf-8') == label
            assert txn.get(b'image-%09d' % i) == (out / path).read_bytes()
    env.close()


def test_lmdb_output_has_the_dtrb_keys(tmp_path, cache_dir):
    out = tmp_path / 'train_lmdb'
    run(out, cache_dir, num_images=20, format='lmdb', seed=2, workers=2)
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        keys = {key for key, _ in txn.cursor()}
        expected = {b'num-samples'} | {b'image-%09d' % i for i in range(1, 21)} | {b'label-%09d' % i for i in range(1, 21)}
        assert keys == expected and txn.get(b'num-samples') == b'20'
        for i in range(1, 21):
            label = txn.get(b'label-%09d' % i).decode('utf-8')
            assert unicodedata.normalize('NFC', label) == label and DEFAULT_ALPHABET.keeps(label, 25)
            image = Image.open(io.BytesIO(txn.get(b'image-%09d' % i)))
            assert image.format == 'PNG' and image.mode == 'RGB' and min(image.size) > 8
    env.close()
    assert not any(p.name.startswith('.') for p in tmp_path.iterdir())  # no partial folder left


def test_every_label_is_in_the_alphabet_and_nfc(tmp_path, cache_dir):
    text = tmp_path / 'mixed.txt'
    text.write_text(unicodedata.normalize('NFD', '가나 다라\n마바사\nABC\n가나다라마바사가나다라마바사가나다라마바사가나다라\n'),
                    encoding='utf-8')
    alphabet = '0123456789가나다라마바사 :-'
    summary = run(tmp_path / 'out', cache_dir, num_images=60, character=alphabet,
                  sources='digits:1,scores:1', text_files=[f'{text}:2'], max_length=20)
    labels = [label for _, label in read_gt(tmp_path / 'out')]
    assert all(set(label) <= set(alphabet) for label in labels)
    assert all(unicodedata.normalize('NFC', label) == label for label in labels)
    assert {'가나 다라', '마바사'} <= set(labels)
    assert summary['text_files'][f'{text}']['rejected'] == {'outside alphabet': 1, 'too long': 1}
    assert summary['sources'][str(text)] > 20
    # and with the default alphabet, over all built-in sources
    run(tmp_path / 'default', cache_dir, num_images=60, seed=3)
    assert all(DEFAULT_ALPHABET.keeps(label, 25) for _, label in read_gt(tmp_path / 'default'))


def test_exclude_file_is_honoured(tmp_path, cache_dir):
    words = ['서울', '부산', '대구', '인천', '광주', '대전', '울산', '수원', '약국', '치킨', '날씨', '속보']
    (tmp_path / 'words.txt').write_text('\n'.join(words) + '\n', encoding='utf-8')
    held_out = ['서울', '약국', '날씨']
    (tmp_path / 'held_out.txt').write_text('\n'.join(held_out) + '\n', encoding='utf-8')
    summary = run(tmp_path / 'out', cache_dir, num_images=80, sources=f'captions:1,{tmp_path / "words.txt"}:1',
                  exclude_files=[str(tmp_path / 'held_out.txt')])
    labels = [label for _, label in read_gt(tmp_path / 'out')]
    rule = ExcludeRule(held_out, 'token')
    assert not any(rule.matches(label) for label in labels)
    from_file = [label for label in labels if label in words]
    assert len(from_file) > 20 and len(set(from_file)) >= 7  # the other words do come through
    assert summary['exclude_entries'] == 3


def test_held_out_words_given_in_memory_never_appear(tmp_path, cache_dir):
    from korean.text_sources import builtin_words, split_words
    train, test = split_words(builtin_words(), 0.2, seed=3)
    run(tmp_path / 'out', cache_dir, num_images=150, sources='words:2,captions:2', word_list=train, exclude=test)
    labels = [label for _, label in read_gt(tmp_path / 'out')]
    rule = ExcludeRule(test, 'token')
    assert not any(rule.matches(label) for label in labels)
    assert sum(label in set(train) for label in labels) > 40


def test_texts_no_font_draws_are_skipped_and_counted(tmp_path, cache_dir):
    text = tmp_path / 'symbols.txt'
    text.write_text('눈사람 \u2603\n서울\n부산 \u2603 날씨\n대구\n', encoding='utf-8')
    summary = run(tmp_path / 'out', cache_dir, num_images=20, character=DEFAULT_ALPHABET.characters + '\u2603',
                  text_files=[str(text)])
    assert {label for _, label in read_gt(tmp_path / 'out')} == {'서울', '대구'}
    assert summary['skipped_texts']['no font draws every character'] > 5
    assert summary['undrawable_characters'] == '\u2603'
    assert '\u2603' in gen.format_summary(summary)


REFERENCE_WORDS = ['서울', '대한민국 대표팀', '약국', '오늘의 날씨', '홈런', '속보', '12,000원', '2026년 11월 21일']


@pytest.mark.parametrize('style', gen.STYLES)
def test_each_style_renders_visible_sensibly_sized_text(style, cache_dir):
    size = 32
    bank = FontBank(FONTS, cache_dir=cache_dir)
    renderer = gen.WordRenderer(bank, gen.RenderConfig(seed=5, styles=((style, 1.0),), height=(size, size)))
    for number, word in enumerate(REFERENCE_WORDS, start=1):
        image, used_style, font_index = renderer.render(number, word, bank.font_mask(word))
        assert used_style == style and 0 <= font_index < len(FONTS)
        h, w, channels = image.shape
        assert image.dtype == np.uint8 and channels == 3
        across, along = (w, h) if style == 'vertical' else (h, w)  # a vertical sign's line is its column
        assert 0.7 * size <= across <= 3 * size, (word, across)
        assert along >= 0.3 * size * len(word.replace(' ', '')), (word, along)
        gray = image.astype(np.float32).mean(axis=2)
        assert gray.std() > 12, f'{style} image of {word!r} is nearly blank'
        again, _, _ = renderer.render(number, word, bank.font_mask(word))
        assert np.array_equal(image, again)
        if style == 'document':
            # dark ink on paper: the ink must be about one Hangul syllable high
            ink_rows = np.flatnonzero((gray < np.median(gray) - 60).any(axis=1))
            assert len(ink_rows), word
            assert 0.45 * size <= ink_rows[-1] - ink_rows[0] + 1 <= 1.3 * size, word


def test_styles_and_fonts_are_mixed_and_counted(tmp_path, cache_dir):
    summary = run(tmp_path / 'out', cache_dir, num_images=90, styles='document:1,caption:1,scene:1', seed=4)
    assert set(summary['styles']) == {'document', 'caption', 'scene'} and sum(summary['styles'].values()) == 90
    assert set(summary['fonts']) == {f.name for f in FONTS} and sum(summary['fonts'].values()) == 90
    assert sum(summary['sources'].values()) == 90
    assert summary['images_per_second'] > 0
    only_caption = run(tmp_path / 'captions', cache_dir, num_images=10, styles='caption:1')
    assert only_caption['styles'] == {'caption': 10}
    with pytest.raises(ValueError, match="unknown style 'poster'"):
        run(tmp_path / 'bad', cache_dir, styles='poster:1')


def test_existing_output_is_never_clobbered_by_accident(tmp_path, cache_dir):
    out = tmp_path / 'out'
    run(out, cache_dir, num_images=5, seed=1)
    first = (out / 'gt.txt').read_bytes()
    with pytest.raises(FileExistsError, match='--overwrite'):
        run(out, cache_dir, num_images=5, seed=2)
    assert (out / 'gt.txt').read_bytes() == first
    run(out, cache_dir, num_images=6, seed=2, overwrite=True)
    assert len(read_gt(out)) == 6 and len(list((out / 'images').iterdir())) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out']  # nothing set aside is left behind

    foreign = tmp_path / 'home'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('precious', encoding='utf-8')
    with pytest.raises(FileExistsError, match='notes.txt'):
        run(foreign, cache_dir, num_images=5, overwrite=True)
    assert (foreign / 'notes.txt').read_text(encoding='utf-8') == 'precious'


def _default_sigint() -> None:
    # a job started in the background of a shell inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: restore what a terminal's Ctrl-C reaches
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_leaves_no_complete_looking_output(tmp_path, cache_dir):
    out = tmp_path / 'big'
    fonts = sum((['--font', str(f)] for f in FONTS), [])
    env = dict(os.environ, KOREAN_STR_CACHE=str(cache_dir))
    proc = subprocess.Popen([sys.executable, 'korean/generate_word_images.py', '--output', str(out),
                             '--num_images', '20000', '--workers', '2', '--quiet', *fonts],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            partial = [p for p in tmp_path.glob('.big.partial-*/images/*.png')]
            if len(partial) >= 20:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            raise AssertionError('the generator wrote no images within 60 s')
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert 'interrupted' in stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the partial folder was removed too


def test_command_line_prints_a_summary_and_a_contact_sheet(tmp_path, cache_dir, capsys, monkeypatch):
    monkeypatch.setenv('KOREAN_STR_CACHE', str(cache_dir))
    sheet = tmp_path / 'sheet.png'
    gen.main(['--output', str(tmp_path / 'out'), '--num_images', '12', '--workers', '1', '--quiet',
              '--font', str(FONTS[0]), '--contact_sheet', str(sheet), '--height', '24-30'])
    printed = capsys.readouterr().out
    assert 'wrote 12 images' in printed and 'styles:' in printed and 'NanumGothic.ttf 12' in printed
    with Image.open(sheet) as im:
        assert im.format == 'PNG' and im.width >= 4 * 200
    with pytest.raises(SystemExit):
        gen.main(['--output', str(tmp_path / 'x'), '--height', 'tall', '--font', str(FONTS[0])])
    assert "--height 'tall'" in capsys.readouterr().err
    help_run = subprocess.run([sys.executable, 'korean/generate_word_images.py', '--help'], cwd=REPO,
                              capture_output=True, text=True)
    assert help_run.returncode == 0 and '--styles' in help_run.stdout and '--exclude_file' in help_run.stdout


# ----------------------------------------------------------------------------------------------
# the styles beyond the first three

NEW_STYLE_TEXTS = {
    'signboard': ['행복약국', '김밥천국', '서울 치과', '24시 편의점'],
    'cover': ['어린 왕자', '봄날의 기억', '데미안', '한국사 이야기'],
    'scorebug': ['두산 3 : 2 LG 9회말', '울산 1 - 0 전북', 'KIA 5 삼성 4', '현대건설 2 - 1 흥국생명 3세트'],
    'plate': ['12가3456', '123가4567', '서울12바3456', '경기34아5678'],
    'headline': ['정부, 내년도 예산안 국회 본회의 통과 전망', '서울 아침 기온 영하 5도 안팎 추위 계속'],
    'vertical': ['행복약국', '치과의원', '24시 세탁', '노래연습장'],
}


def _write_photos(folder: Path) -> Path:
    """Two 'photos' a user might give: a striped wall and a smooth sky, as JPEG and PNG."""
    folder.mkdir()
    ys, xs = np.mgrid[0:90, 0:160]
    stripes = np.stack([(xs // 8 % 2) * 120 + 60, ys + 40, np.full_like(xs, 90)], -1).astype(np.uint8)
    Image.fromarray(stripes).save(folder / 'wall.jpg', quality=90)
    sky = np.stack([np.full_like(xs, 90), xs + 60, np.full_like(xs, 230)], -1).astype(np.uint8)
    (folder / 'sub').mkdir()
    Image.fromarray(sky).save(folder / 'sub' / 'sky.png')
    return folder


def test_new_styles_are_deterministic_for_seed_and_number_and_make_a_contact_sheet(tmp_path, cache_dir):
    bank = FontBank(FONTS, cache_dir=cache_dir)
    photos = gen.find_background_images([_write_photos(tmp_path / 'photos')])
    items = []
    for style, texts in NEW_STYLE_TEXTS.items():
        config = gen.RenderConfig(seed=3, styles=((style, 1.0),), height=(28, 36), backgrounds=photos)
        renderer = gen.WordRenderer(bank, config)
        for number in range(1, 5):
            text = texts[number % len(texts)]
            image, used, _ = renderer.render(number, text, bank.font_mask(text))
            again, _, _ = gen.WordRenderer(bank, config).render(number, text, bank.font_mask(text))
            assert used == style and np.array_equal(image, again), (style, number)
            other, _, _ = renderer.render(number + 100, text, bank.font_mask(text))
            assert not np.array_equal(image, other)
            items.append((image, f'{style}: {text}', None))
    sheet = tmp_path / 'new_styles.png'
    gen.contact_sheet(items, sheet, columns=4)
    with Image.open(sheet) as im:
        assert im.format == 'PNG' and im.height >= 6 * 56


def test_vertical_signs_stack_their_characters_top_to_bottom(cache_dir):
    # each character drawn upright in its own row: as tall as the characters are many, about
    # one character wide, and the ink of each row of characters apart from the next
    bank = FontBank(FONTS, cache_dir=cache_dir)
    renderer = gen.WordRenderer(bank, gen.RenderConfig(seed=4, styles=(('vertical', 1.0),), height=(30, 30)))
    for number, word in enumerate(['약국', '세탁소', '치과의원', '노래연습장'], start=1):
        image, style, _ = renderer.render(number, word, bank.font_mask(word))
        h, w, _ = image.shape
        assert style == 'vertical' and w < 3 * 30 and h > 0.9 * 30 * len(word), (word, image.shape)
        assert h > 1.5 * w, (word, image.shape)


def test_plates_scorebugs_and_headlines_through_the_generator(tmp_path, cache_dir):
    plates = run(tmp_path / 'plates', cache_dir, num_images=8, styles='plate:1', sources='plates:1', seed=2)
    assert plates['styles'] == {'plate': 8} and plates['sources'] == {'plates': 8}
    assert all(re.fullmatch(r'([가-힣]{2})?\d{2,3}[가-힣]\d{4}', label) for _, label in read_gt(tmp_path / 'plates'))
    bugs = run(tmp_path / 'bugs', cache_dir, num_images=6, styles='scorebug:1', sources='scorebugs:1', seed=2)
    assert bugs['styles'] == {'scorebug': 6}


def test_background_dir_photos_are_used_and_bad_folders_are_clear_errors(tmp_path, cache_dir):
    photos = _write_photos(tmp_path / 'photos')
    plain = run(tmp_path / 'plain', cache_dir, num_images=6, styles='signboard:1,cover:1', seed=5)
    with_photos = run(tmp_path / 'photo', cache_dir, num_images=6, styles='signboard:1,cover:1', seed=5,
                      background_dirs=[str(photos)])
    again = run(tmp_path / 'again', cache_dir, num_images=6, styles='signboard:1,cover:1', seed=5,
                background_dirs=[str(photos)])
    assert plain['styles'] == with_photos['styles']
    images = [sorted((tmp_path / name / 'images').iterdir()) for name in ('plain', 'photo', 'again')]
    assert [p.read_bytes() for p in images[1]] == [p.read_bytes() for p in images[2]]
    assert [p.read_bytes() for p in images[0]] != [p.read_bytes() for p in images[1]]
    with pytest.raises(ValueError, match="--background_dir '.*missing': no such folder"):
        run(tmp_path / 'x', cache_dir, styles='signboard:1', background_dirs=[str(tmp_path / 'missing')])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match="--background_dir '.*empty': no .* image in it"):
        run(tmp_path / 'y', cache_dir, styles='signboard:1', background_dirs=[str(tmp_path / 'empty')])


def test_wide_headlines_train_and_evaluate_with_imgW_200_and_40_characters(tmp_path, cache_dir, monkeypatch):
    """headline images (labels up to 40 characters with spaces) through train.py with --imgW 200
    --batch_max_length 40, then test.py on the same LMDB: both run and report."""
    import test as test_script
    import train
    lines = ['정부 내년도 예산안 국회 본회의 통과 전망 나와 여야 합의', '서울 아침 기온 영하 5도 안팎 추위 당분간 계속돼',
             '반도체 수출 석 달 연속 증가세 이어가 업계 기대감', '주말 전국 대체로 맑고 일교차 커 건강 관리 유의해야']
    assert all(25 < len(line) <= 40 for line in lines)
    text_file = tmp_path / 'headlines.txt'
    text_file.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    data = tmp_path / 'data'
    run(data / 'train', cache_dir, num_images=8, format='lmdb', styles='headline:1',
        text_files=[str(text_file)], max_length=40, seed=1)
    from dataset import read_lmdb_labels
    assert set(read_lmdb_labels(data / 'train')) <= set(lines)  # whole lines, none cut
    monkeypatch.chdir(tmp_path)
    torch_args = ['--Transformation', 'None', '--FeatureExtraction', 'VGG', '--SequenceModeling', 'None',
                  '--Prediction', 'CTC', '--output_channel', '32', '--hidden_size', '32',
                  '--imgW', '200', '--batch_max_length', '40', '--character', gen.DEFAULT_CHARACTER]
    train.main(torch_args + ['--train_data', str(data), '--valid_data', str(data / 'train'),
                             '--select_data', '/', '--batch_ratio', '1', '--batch_size', '4',
                             '--workers', '0', '--num_iter', '4', '--valInterval', '2',
                             '--num_threads', '1', '--exp_name', 'headlines'])
    checkpoint = tmp_path / 'saved_models' / 'headlines' / 'best_accuracy.pth'
    log = (tmp_path / 'saved_models' / 'headlines' / 'log_dataset.txt').read_text(encoding='utf-8')
    assert checkpoint.is_file() and 'num samples: 8' in log
    accuracy = test_script.main(torch_args + ['--eval_data', str(data / 'train'), '--saved_model',
                                              str(checkpoint), '--workers', '0', '--batch_size', '4'])
    assert 0.0 <= accuracy <= 100.0
