"""dataset.py: LMDB / folder datasets, collation numerics and batch-balanced loading, on real
LMDBs holding images rendered with a real Korean font."""
import argparse
import io
import logging
import math
import os
import pickle
import re
import sys
import unicodedata

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from create_lmdb_dataset import LmdbWriter, create_dataset  # noqa: E402
from dataset import (AlignCollate, Batch_Balanced_Dataset, LmdbDataset, RawDataset,  # noqa: E402
                     find_vertical_cells, hierarchical_dataset, vertical_to_horizontal)
from utils import DEFAULT_CHARACTER, SENSITIVE_CHARACTER  # noqa: E402

torch.set_num_threads(1)
FONT = ImageFont.truetype('/usr/share/fonts/truetype/nanum/NanumGothic.ttf', 22)


def make_opt(**overrides):
    """The options train.py / test.py hand to the datasets (upstream names and defaults)."""
    opt = argparse.Namespace(character=DEFAULT_CHARACTER, sensitive=False, batch_max_length=25,
                             imgH=32, imgW=100, rgb=False, PAD=False, data_filtering_off=False,
                             workers=0, batch_size=4, select_data='/', batch_ratio='1',
                             total_data_usage_ratio='1.0', exp_name='exp', train_data='')
    for name, value in overrides.items():
        setattr(opt, name, value)
    return opt


def render_image(text, size=(120, 36), mode='RGB'):
    image = Image.new(mode, size, 'white')
    ImageDraw.Draw(image).text((3, 3), text, fill='black', font=FONT)
    return image


def png_bytes(text, size=(120, 36)):
    buffer = io.BytesIO()
    render_image(text, size).save(buffer, format='PNG')
    return buffer.getvalue()


def build_lmdb(path, labels, broken=()):
    """An LMDB written by the project's writer; samples whose (0-based) position is in
    ``broken`` hold bytes that are not an image."""
    with LmdbWriter(path) as writer:
        for i, label in enumerate(labels):
            writer.add(b'not an image' if i in broken else png_bytes(label or 'x'), label)
    return str(path)


def build_raw_lmdb(path, items):
    """An LMDB holding exactly ``items`` (bytes -> bytes), for data no writer would produce."""
    os.makedirs(path, exist_ok=True)
    env = lmdb.open(str(path), map_size=16 * 1024 ** 2)
    with env.begin(write=True) as txn:
        for key, value in items.items():
            txn.put(key, value)
    env.close()
    return str(path)


def upstream_keeps(label, character, batch_max_length):
    """DTRB's filter, regular expression and all; only meaningful for regex-safe alphabets."""
    if len(label) > batch_max_length:
        return False
    return re.search(f'[^{character}]', label.lower()) is None


def labels_of(dataset):
    return [dataset[i][1] for i in range(len(dataset))]


# ----------------------------------------------------------------------------------------------
# LmdbDataset


FILTER_LABELS = ['hello', 'HeLLo', 'hello!', 'a b', '가나다', 'abc가', '각', '0' * 25, '1' * 26, '',
                 'Σ', 'x-y']


@pytest.mark.parametrize('character', [DEFAULT_CHARACTER, DEFAULT_CHARACTER + '가나다각',
                                       '가나다각 '])
def test_filter_matches_upstream_for_regex_safe_alphabets(tmp_path, character):
    root = build_lmdb(tmp_path / 'data', FILTER_LABELS)
    dataset = LmdbDataset(root, make_opt(character=character))
    expected = [i + 1 for i, label in enumerate(FILTER_LABELS) if upstream_keeps(label, character, 25)]
    assert dataset.filtered_index_list.tolist() == expected
    assert dataset.nSamples == len(dataset) == len(expected)
    assert labels_of(dataset) == [FILTER_LABELS[i - 1].lower() for i in expected]


def test_alphabet_with_regex_metacharacters_and_hangul(tmp_path):
    # upstream's '[^ab-]\\^가]' is a broken character class; membership must be by character
    character = 'ab-]\\^가'
    labels = ['a-b', ']a', '\\^', 'c', 'a_b', '가-', 'A^', 'b[']
    dataset = LmdbDataset(build_lmdb(tmp_path / 'data', labels), make_opt(character=character))
    assert labels_of(dataset) == ['a-b', ']a', '\\^', '가-', 'a^']
    assert dataset.filtered_index_list.tolist() == [1, 2, 3, 6, 7]


def test_data_filtering_off_keeps_everything_and_cleans_when_read(tmp_path):
    labels = ['Hello, World!', '1' * 30, '가나', 'ok']
    dataset = LmdbDataset(build_lmdb(tmp_path / 'data', labels), make_opt(data_filtering_off=True))
    assert len(dataset) == 4 and dataset.filtered_index_list.tolist() == [1, 2, 3, 4]
    assert labels_of(dataset) == ['helloworld', '1' * 30, '', 'ok']


def test_sensitive_keeps_case_and_punctuation(tmp_path):
    labels = ['Hello,World!', 'ABC', 'a\\b]c^d-e']
    root = build_lmdb(tmp_path / 'data', labels)
    dataset = LmdbDataset(root, make_opt(character=SENSITIVE_CHARACTER, sensitive=True))
    assert labels_of(dataset) == labels
    # the 94 characters hold no space, so upstream drops a label with one
    spaced = LmdbDataset(build_lmdb(tmp_path / 'spaced', ['a b']),
                         make_opt(character=SENSITIVE_CHARACTER, sensitive=True))
    assert len(spaced) == 0
    insensitive = LmdbDataset(root, make_opt())
    assert labels_of(insensitive) == ['abc']


def test_nfd_labels_are_read_as_nfc(tmp_path):
    word = '한국어'
    nfd = unicodedata.normalize('NFD', word)
    assert nfd != word
    root = build_raw_lmdb(tmp_path / 'data', {b'num-samples': b'1', b'image-000000001': png_bytes(word),
                                              b'label-000000001': nfd.encode('utf-8')})
    dataset = LmdbDataset(root, make_opt(character='한국어'))
    assert len(dataset) == 1  # an NFD label would fail the filter: its jamo are not in the alphabet
    image, label = dataset[0]
    assert label == word and image.mode == 'L' and image.size == (120, 36)


def test_rgb_images(tmp_path):
    dataset = LmdbDataset(build_lmdb(tmp_path / 'data', ['abc']), make_opt(rgb=True))
    image, _ = dataset[0]
    assert image.mode == 'RGB'
    assert image.tobytes() == render_image('abc').tobytes()


def test_corrupt_image_gives_blank_image_and_dummy_label(tmp_path, caplog):
    root = build_lmdb(tmp_path / 'data', ['good', 'bad', 'fine'], broken={1})
    dataset = LmdbDataset(root, make_opt(imgW=64, imgH=24))
    with caplog.at_level(logging.WARNING, logger='dataset'):
        image, label = dataset[1]
    assert image.size == (64, 24) and image.mode == 'L'
    assert np.asarray(image).max() == 0
    assert label == 'dummylabel'  # '[dummy_label]' cleaned by the alphabet, as upstream
    assert root in caplog.text and 'image-000000002' in caplog.text
    assert dataset[2][1] == 'fine'

    sensitive = LmdbDataset(root, make_opt(character=SENSITIVE_CHARACTER, sensitive=True))
    assert sensitive[1][1] == '[dummy_label]'


def test_not_an_lmdb_folder_is_named(tmp_path):
    folder = tmp_path / 'images_only'
    folder.mkdir()
    with pytest.raises(FileNotFoundError) as error:
        LmdbDataset(folder, make_opt())
    assert str(folder) in str(error.value) and 'data.mdb' in str(error.value)
    with pytest.raises(FileNotFoundError, match='no such'):
        LmdbDataset(tmp_path / 'absent', make_opt())


@pytest.mark.parametrize('items, complaint', [
    ({b'image-000000001': b'x', b'label-000000001': b'a'}, 'no num-samples'),
    ({b'num-samples': b'many'}, "num-samples is b'many'"),
    ({b'num-samples': b'2', b'label-000000001': b'a'}, 'label-000000002 is missing'),
    ({b'num-samples': b'1', b'label-000000001': b'\xff\xfe'}, 'label-000000001 is not UTF-8'),
])
def test_malformed_lmdb_errors_name_the_folder(tmp_path, items, complaint):
    root = build_raw_lmdb(tmp_path / 'broken', items)
    with pytest.raises(ValueError) as error:
        LmdbDataset(root, make_opt())
    assert root in str(error.value) and complaint in str(error.value)


def test_same_lmdb_opened_twice_in_one_process(tmp_path):
    root = build_lmdb(tmp_path / 'data', ['abc', 'def'])
    os.symlink(root, tmp_path / 'alias')
    train = LmdbDataset(root, make_opt())
    valid = LmdbDataset(root + '/', make_opt())
    aliased = LmdbDataset(tmp_path / 'alias', make_opt())
    assert labels_of(train) == labels_of(valid) == labels_of(aliased) == ['abc', 'def']


def test_a_rebuilt_folder_is_read_afresh(tmp_path):
    inputs = tmp_path / 'input'
    inputs.mkdir()
    (inputs / 'a.png').write_bytes(png_bytes('a'))
    gt = tmp_path / 'gt.txt'
    out = tmp_path / 'data'
    gt.write_text('a.png\tfirst\n', encoding='utf-8')
    create_dataset(str(inputs), str(gt), str(out), show_progress=False)
    assert labels_of(LmdbDataset(out, make_opt())) == ['first']
    gt.write_text('a.png\tsecond\na.png\tthird\n', encoding='utf-8')
    create_dataset(str(inputs), str(gt), str(out), show_progress=False)
    assert labels_of(LmdbDataset(out, make_opt())) == ['second', 'third']


def test_dataset_pickles_without_an_open_environment(tmp_path):
    dataset = LmdbDataset(build_lmdb(tmp_path / 'data', ['abc', 'xyz']), make_opt())
    dataset[0]
    state = pickle.dumps(dataset)
    assert b'Environment' not in state
    assert labels_of(pickle.loads(state)) == ['abc', 'xyz']


@pytest.mark.parametrize('context', ['spawn', 'fork'])
def test_dataloader_workers(tmp_path, context):
    labels = ['a1', 'b2', 'c3', 'd4', 'e5']
    dataset = LmdbDataset(build_lmdb(tmp_path / 'data', labels), make_opt())
    dataset[0]  # the parent process has the environment open before the worker starts
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1,
                                         multiprocessing_context=context, collate_fn=AlignCollate())
    seen = []
    for images, batch_labels in loader:
        assert images.shape[1:] == (1, 32, 100)
        seen += batch_labels
    assert seen == labels


# ----------------------------------------------------------------------------------------------
# hierarchical_dataset and Batch_Balanced_Dataset


@pytest.fixture
def training_root(tmp_path):
    root = tmp_path / 'training'
    build_lmdb(root / 'MJ' / 'MJ_train', ['mj1', 'mj2', 'mj3', 'mj4'])
    build_lmdb(root / 'MJ' / 'MJ_valid', ['mj5', 'mj6'])
    build_lmdb(root / 'ST', ['st1', 'st2', 'st3', 'st4'])
    return str(root)


def test_hierarchical_selection_by_substring(training_root, capsys):
    dataset, log = hierarchical_dataset(training_root, make_opt(), select_data=['MJ'])
    assert log == (f'dataset_root:    {training_root}\t dataset: MJ\n'
                   'sub-directory:\t/MJ/MJ_train\t num samples: 4\n'
                   'sub-directory:\t/MJ/MJ_valid\t num samples: 2\n')
    assert capsys.readouterr().out == log
    assert labels_of(dataset) == ['mj1', 'mj2', 'mj3', 'mj4', 'mj5', 'mj6']

    everything, log = hierarchical_dataset(training_root, make_opt())
    assert len(everything) == 10 and log.count('sub-directory:') == 3
    assert len(hierarchical_dataset(training_root, make_opt(), ['valid', 'ST'])[0]) == 6


def test_hierarchical_leaf_root_and_nothing_found(training_root):
    leaf = os.path.join(training_root, 'ST')
    dataset, log = hierarchical_dataset(leaf, make_opt())
    assert len(dataset) == 4 and 'sub-directory:\t/.\t num samples: 4' in log
    with pytest.raises(ValueError) as error:
        hierarchical_dataset(training_root, make_opt(), ['SynthText'])
    assert training_root in str(error.value) and 'SynthText' in str(error.value)


def test_batch_balanced_dataset(training_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = make_opt(train_data=training_root, select_data=['MJ', 'ST'], batch_ratio=['0.5', '0.5'])
    balanced = Batch_Balanced_Dataset(opt)
    assert opt.batch_size == 4
    seen_mj = set()
    for _ in range(5):  # more batches than MJ (6 samples, 2 a batch) has: its loader restarts
        images, labels = balanced.get_batch()
        assert images.shape == (4, 1, 32, 100)
        assert [label[:2] for label in labels] == ['mj', 'mj', 'st', 'st']
        seen_mj.update(labels[:2])
    assert seen_mj == {'mj1', 'mj2', 'mj3', 'mj4', 'mj5', 'mj6'}

    log = (tmp_path / 'saved_models' / 'exp' / 'log_dataset.txt').read_text(encoding='utf-8')
    dashes = '-' * 80
    assert log == (f'{dashes}\n'
                   f'dataset_root: {training_root}\n'
                   "opt.select_data: ['MJ', 'ST']\n"
                   "opt.batch_ratio: ['0.5', '0.5']\n"
                   f'{dashes}\n'
                   f'dataset_root:    {training_root}\t dataset: MJ\n'
                   'sub-directory:\t/MJ/MJ_train\t num samples: 4\n'
                   'sub-directory:\t/MJ/MJ_valid\t num samples: 2\n'
                   'num total samples of MJ: 6 x 1.0 (total_data_usage_ratio) = 6\n'
                   'num samples of MJ per batch: 4 x 0.5 (batch_ratio) = 2\n'
                   f'{dashes}\n'
                   f'dataset_root:    {training_root}\t dataset: ST\n'
                   'sub-directory:\t/ST\t num samples: 4\n'
                   'num total samples of ST: 4 x 1.0 (total_data_usage_ratio) = 4\n'
                   'num samples of ST per batch: 4 x 0.5 (batch_ratio) = 2\n'
                   f'{dashes}\n'
                   'Total_batch_size: 2+2 = 4\n'
                   f'{dashes}\n')


def test_batch_ratio_usage_ratio_and_strings(training_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = make_opt(train_data=training_root, select_data='MJ-ST', batch_ratio='1-0.1',
                   batch_size=4, total_data_usage_ratio='0.5')
    balanced = Batch_Balanced_Dataset(opt)
    assert balanced.batch_size_list == [4, 1] and opt.batch_size == 5
    for _ in range(4):
        _, labels = balanced.get_batch()
        # only the first int(6 * 0.5) = 3 MJ and int(4 * 0.5) = 2 ST samples are used
        assert sorted(labels[:3]) == ['mj1', 'mj2', 'mj3']
        assert len(labels) == 4 and labels[3] in {'st1', 'st2'}
    log = (tmp_path / 'saved_models' / 'exp' / 'log_dataset.txt').read_text(encoding='utf-8')
    assert 'num total samples of MJ: 6 x 0.5 (total_data_usage_ratio) = 3' in log
    assert 'num samples of ST per batch: 4 x 0.1 (batch_ratio) = 1' in log
    assert 'Total_batch_size: 4+1 = 5' in log


def test_batch_balanced_mismatched_names_and_ratios(training_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = make_opt(train_data=training_root, select_data='MJ-ST', batch_ratio='1.0')
    with pytest.raises(ValueError, match=r"2 datasets .*1 ratios"):
        Batch_Balanced_Dataset(opt)


# ----------------------------------------------------------------------------------------------
# AlignCollate numerics


def expected_tensor(image, imgH, imgW, pad, min_aspect=0.0):
    """The contract's formula in plain numpy: resize (bicubic), bytes / 255, (x - 0.5) / 0.5,
    and with PAD a width of min(ceil(imgH * w / h), imgW) padded by repeating the last column
    (w at least min_aspect * h: test.py / demo.py --min_aspect)."""
    width, height = image.size
    width = max(width, min_aspect * height)
    new_width = min(math.ceil(imgH * (width / height)), imgW) if pad else imgW
    array = np.asarray(image.resize((new_width, imgH), Image.BICUBIC), dtype=np.float32) / 255
    array = (array - np.float32(0.5)) / np.float32(0.5)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    canvas = np.empty((array.shape[0], imgH, imgW), dtype=np.float32)
    canvas[:, :, :new_width] = array
    canvas[:, :, new_width:] = array[:, :, -1:]
    return canvas, new_width


@pytest.mark.parametrize('mode', ['L', 'RGB'])
@pytest.mark.parametrize('pad', [False, True])
def test_align_collate_numerics(mode, pad):
    sizes = [(200, 40), (60, 40), (33, 64), (97, 31)]
    images = [render_image('가나다 abc', size).convert(mode) for size in sizes]
    tensors, labels = AlignCollate(imgH=32, imgW=100, keep_ratio_with_pad=pad)(
        [(image, f'label{i}') for i, image in enumerate(images)])
    channels = 3 if mode == 'RGB' else 1
    assert tensors.shape == (4, channels, 32, 100) and tensors.dtype == torch.float32
    assert labels == ['label0', 'label1', 'label2', 'label3']
    widths = []
    for i, image in enumerate(images):
        expected, width = expected_tensor(image, 32, 100, pad)
        widths.append(width)
        assert np.array_equal(tensors[i].numpy(), expected)
    if pad:
        assert widths == [100, 48, 17, 100]
        # padding repeats the image's last column, it is not a constant fill
        assert torch.equal(tensors[2, :, :, 17:], tensors[2, :, :, 16:17].expand(-1, -1, 83))


def test_min_aspect_widens_only_images_narrower_than_it():
    # a plate crop 2.5 times as wide as high is read 4 times as wide; a line 5 times as wide is not touched
    images = [render_image('12가3456', (100, 40)), render_image('가나다 abc', (200, 40))]
    batch = [(image, '') for image in images]
    widened, _ = AlignCollate(imgH=32, imgW=256, keep_ratio_with_pad=True, min_aspect=4)(batch)
    as_is, _ = AlignCollate(imgH=32, imgW=256, keep_ratio_with_pad=True)(batch)
    expected, width = expected_tensor(images[0], 32, 256, True, min_aspect=4)
    assert width == 128 and np.array_equal(widened[0].numpy(), expected)
    assert expected_tensor(images[0], 32, 256, True)[1] == 80
    assert torch.equal(widened[1], as_is[1]) and not torch.equal(widened[0], as_is[0])


# ----------------------------------------------------------------------------------------------
# vertical text (test.py / demo.py --vertical)


def render_column(text, size=28, gap=6, margin=10):
    """``text`` set top to bottom, each character upright and centred, black on white: a plain
    vertical sign. Returns the image and the (top, bottom) rows of each character's ink."""
    font = ImageFont.truetype('/usr/share/fonts/truetype/nanum/NanumGothic.ttf', size)
    width = size + 2 * margin
    image = Image.new('L', (width, len(text) * (size + gap) - gap + 2 * margin), 255)
    draw = ImageDraw.Draw(image)
    for i, ch in enumerate(text):
        draw.text((width / 2, margin + i * (size + gap) + size / 2), ch, fill=0, font=font, anchor='mm')
    ink = np.asarray(image) < 128
    rows = []
    for i in range(len(text)):
        top = margin + i * (size + gap) - gap // 2
        band = np.flatnonzero(ink[max(0, top):top + size + gap].any(axis=1)) + max(0, top)
        rows.append((int(band[0]), int(band[-1]) + 1))
    return image, rows


@pytest.mark.parametrize('text', ['서울', '약국', '대한민국', '김밥천국집', '한국은행본점'])
def test_vertical_cells_are_the_characters_of_a_plain_column(text):
    image, ink_rows = render_column(text)
    edges, x0, x1 = find_vertical_cells(image)
    assert len(edges) - 1 == len(text)
    # every cell holds the whole of its own character and nothing of the next
    for a, b, (top, bottom) in zip(edges[:-1], edges[1:], ink_rows):
        assert a <= top and bottom <= b, (text, edges, ink_rows)
    ink_columns = np.flatnonzero((np.asarray(image) < 128).any(axis=0))
    assert x0 <= ink_columns[0] and ink_columns[-1] < x1


def test_vertical_line_is_laid_out_left_to_right_in_reading_order():
    image, _ = render_column('대한민국')
    line = vertical_to_horizontal(image)
    assert line.mode == image.mode and line.width > 3 * line.height
    # each cell of the column, unchanged, is the next stretch of the line, from the left
    edges, x0, x1 = find_vertical_cells(image)
    column, laid_out = np.asarray(image), np.asarray(line)
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        cell = column[a:b, x0:x1]
        stretch = laid_out[:, k * (x1 - x0):(k + 1) * (x1 - x0)]
        assert any(np.array_equal(stretch[top:top + b - a], cell) for top in range(line.height - (b - a) + 1)), k
    assert line.width == 4 * (x1 - x0)
    # one character is read as it is
    single, _ = render_column('국')
    assert vertical_to_horizontal(single) is single


@pytest.mark.parametrize('shape, kind', [((1600, 12), 'stripes'), ((900, 30), 'noise'), ((300, 5), 'blank'),
                                         ((60, 3), 'stripes')])
def test_vertical_layout_of_any_tall_image_never_fails(shape, kind):
    # a training run met a crop so tall and thin that it held more cells than are ever tried
    height, width = shape
    array = np.full(shape, 255, np.uint8)
    if kind == 'stripes':
        array[::7] = 0
    elif kind == 'noise':
        array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    line = vertical_to_horizontal(Image.fromarray(array))
    assert line.width >= 1 and line.height >= 1 and line.mode == 'L'


def test_vertical_collate_lays_out_only_images_at_least_that_tall():
    column, _ = render_column('대한민국')
    square, _ = render_column('국')
    line = render_image('가나다 abc', (200, 40)).convert('L')
    batch = [(column, ''), (square, ''), (line, '')]
    read, _ = AlignCollate(imgH=32, imgW=256, keep_ratio_with_pad=True, vertical=1.5)(batch)
    as_is, _ = AlignCollate(imgH=32, imgW=256, keep_ratio_with_pad=True)(batch)
    assert torch.equal(read[1], as_is[1]) and torch.equal(read[2], as_is[2])
    expected, width = expected_tensor(vertical_to_horizontal(column), 32, 256, True)
    assert width > 100 and np.array_equal(read[0].numpy(), expected)


def test_vertical_signs_of_the_generator_are_cut_into_their_characters(tmp_path):
    # the generator's vertical signs (panels, outlines, light, camera) in the Un fonts, which
    # the cell rules were not tuned on: each sign should come apart into its syllables
    from korean import generate_word_images as gen
    from korean.fonts import FontBank
    fonts = [f'/usr/share/fonts/truetype/unfonts-core/{name}.ttf' for name in ('UnDotum', 'UnBatang', 'UnGraphic')]
    bank = FontBank(fonts, cache_dir=str(tmp_path))
    renderer = gen.WordRenderer(bank, gen.RenderConfig(seed=21, styles=(('vertical', 1.0),), height=(24, 40)))
    words = ['약국', '치과의원', '세탁소', '김밥천국', '부동산', '미용실', '노래연습장', '한의원']
    right = total = 0
    for number in range(48):
        word = words[number % len(words)]
        image, _, _ = renderer.render(number, word, bank.font_mask(word))
        edges, _, _ = find_vertical_cells(Image.fromarray(image))
        right += len(edges) - 1 == len(word)
        total += 1
    assert right >= 0.85 * total, f'{right} of {total} signs cut into their syllables'


# ----------------------------------------------------------------------------------------------
# RawDataset


def test_raw_dataset_order_extensions_and_broken_files(tmp_path, caplog):
    root = tmp_path / 'demo_image'
    (root / 'sub').mkdir(parents=True)
    for name in ['img10.png', 'img2.PNG', 'img1.jpeg', 'sub/가나.JPG']:
        render_image(name).save(root / name, format='PNG' if 'png' in name.lower() else 'JPEG')
    render_image('gif').save(root / 'anim.gif')
    (root / 'notes.txt').write_text('not an image', encoding='utf-8')
    (root / 'broken.png').write_bytes(b'\x89PNG but not really')

    dataset = RawDataset(str(root), make_opt(imgW=50, imgH=20))
    expected = [str(root / name) for name in
                ['broken.png', 'img1.jpeg', 'img2.PNG', 'img10.png', 'sub/가나.JPG']]
    assert dataset.image_path_list == expected and len(dataset) == 5
    image, path = dataset[4]
    assert path == expected[4] and image.mode == 'L' and image.size == (120, 36)
    with caplog.at_level(logging.WARNING, logger='dataset'):
        image, path = dataset[0]
    assert path == expected[0] and image.size == (50, 20)
    assert str(root / 'broken.png') in caplog.text
    assert RawDataset(str(root), make_opt(rgb=True))[1][0].mode == 'RGB'


def test_hidden_leftover_folders_of_an_interrupted_writer_are_not_datasets(tmp_path):
    import io as _io

    from PIL import Image as _Image

    from create_lmdb_dataset import LmdbWriter
    from dataset import find_leaf_folders
    buf = _io.BytesIO()
    _Image.new('L', (20, 10), 255).save(buf, format='PNG')
    with LmdbWriter(str(tmp_path / 'root' / 'real')) as w:
        w.add(buf.getvalue(), 'abc')
    (tmp_path / 'root' / '.real.partial-123').mkdir()  # what a killed writer leaves
    assert [os.path.basename(os.path.normpath(p)) for p in find_leaf_folders(tmp_path / 'root')] == ['real']


# ----------------------------------------------------------------------------------------------
# rendering on the fly

KSX1001 = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'korean', 'alphabets',
                       'ksx1001_with_space.txt')


@pytest.fixture(scope='module')
def rendered():
    from dataset import RenderedDataset
    from utils import read_alphabet_file
    opt = make_opt(character=read_alphabet_file(KSX1001), batch_max_length=12)
    return RenderedDataset(opt, seed=5, pool_size=50)


def test_a_rendered_source_draws_a_new_image_every_draw_fixed_by_seed_and_draw(rendered):
    import numpy as np
    from dataset import RenderedDataset
    image, label = rendered.draw(3)
    assert image.mode == 'L' and image.width > 0 and 0 < len(label) <= 12
    again, same_label = rendered.draw(3)
    assert same_label == label and np.array_equal(np.array(again), np.array(image))
    # the same label one epoch later is another rendering of it
    later, later_label = rendered.draw(3 + len(rendered))
    assert later_label == label and np.array(later).tobytes() != np.array(image).tobytes()
    # the same seed in another dataset (another process, a resumed run) gives the same image
    twin = RenderedDataset(rendered.opt, seed=5, pool_size=50)
    assert np.array_equal(np.array(twin.draw(3)[0]), np.array(image))


def test_a_rendered_source_keeps_to_its_fonts_texts_and_held_out_words(tmp_path):
    """--render_font_dir, --render_text and --render_exclude_file: what a held-out evaluation
    needs (test fonts and test words never rendered for training)."""
    from dataset import RenderedDataset
    from korean.text_sources import builtin_words
    from utils import read_alphabet_file
    words = builtin_words()
    held_out = words[::2]
    (tmp_path / 'held_out.txt').write_text('\n'.join(held_out) + '\n', encoding='utf-8')
    opt = make_opt(character=read_alphabet_file(KSX1001), batch_max_length=12,
                   render_font_dir=['/usr/share/fonts/truetype/lexi'], render_text='words:1',
                   render_exclude_file=[str(tmp_path / 'held_out.txt')])
    source = RenderedDataset(opt, seed=5, pool_size=200)
    assert source.font_paths and all('/lexi/' in str(p) for p in source.font_paths)
    labels = {label for label, _ in source.labels}
    assert labels <= set(words) - set(held_out) and len(labels) > 50
    assert source.draw(0)[1] in labels

    opt.render_font_dir = [str(tmp_path / 'nowhere')]
    with pytest.raises(ValueError, match=r'^--render_font_dir: .*nowhere'):
        RenderedDataset(opt, seed=5, pool_size=10)


def test_rendered_and_lmdb_sources_mix_by_batch_ratio(training_root, tmp_path, monkeypatch, capsys):
    from utils import read_alphabet_file
    monkeypatch.chdir(tmp_path)
    opt = make_opt(train_data=training_root, select_data=['render:caption', 'ST'], batch_ratio=['0.5', '0.5'],
                   character=read_alphabet_file(KSX1001), manualSeed=1)
    balanced = Batch_Balanced_Dataset(opt)
    images, labels = balanced.get_batch()
    assert images.shape == (4, 1, 32, 100)
    assert labels[2:] and all(label.startswith('st') for label in labels[2:])
    assert all(label and not label.startswith('st') for label in labels[:2])
    assert 'rendered on the fly: render:caption' in capsys.readouterr().out


def test_epoch_shuffle_sampler_shards_replays_and_numbers_draws():
    from dataset import EpochShuffleSampler
    shards = [EpochShuffleSampler(10, seed=3, rank=r, world_size=3) for r in range(3)]
    epoch0 = [list(s) for s in shards]
    assert [len(draws) for draws in epoch0] == [4, 4, 4] == [len(s) for s in shards]  # 10 padded to 12
    assert sorted(set(sum(epoch0, []))) == list(range(10))  # every sample, two of them twice
    single = EpochShuffleSampler(10, seed=3)
    assert sorted(single) == list(range(10)) and list(single) == list(EpochShuffleSampler(10, seed=3))
    single.start(epoch=2, skip=4)
    later = list(single)
    assert len(later) == 6 == len(single) and all(20 <= d < 30 for d in later)  # draws of epoch 2
    whole = EpochShuffleSampler(10, seed=3)
    whole.start(epoch=2)
    assert list(whole)[4:] == later  # a resumed epoch continues where it stopped
    assert sorted(d - 20 for d in whole) == list(range(10))
    assert [d - 20 for d in whole] != list(EpochShuffleSampler(10, seed=3))  # each epoch is another order


# ---------------------------------------------------------------------------------------------
# training-time augmentation

def _word_image(text: str, mode: str) -> Image.Image:
    image = Image.new('RGB', (120, 32), (235, 228, 210))
    ImageDraw.Draw(image).text((6, 3), text, fill=(30, 30, 90), font=FONT)
    return image.convert(mode)


@pytest.mark.parametrize('mode', ['L', 'RGB'])
def test_augment_image_is_deterministic_keeps_size_and_mode_and_leaves_the_input(mode):
    import random

    from dataset import augment_image
    original = _word_image('한글 간판', mode)
    before = original.tobytes()
    first = [augment_image(original, random.Random(seed)) for seed in range(12)]
    again = [augment_image(original, random.Random(seed)) for seed in range(12)]
    assert [im.tobytes() for im in first] == [im.tobytes() for im in again]
    assert all((im.size, im.mode) == (original.size, mode) for im in first)
    assert original.tobytes() == before
    # the probabilities are below 1: some seeds change the image, different seeds differ
    assert len({im.tobytes() for im in first}) > 6


@pytest.mark.parametrize('name', ['rotate', 'perspective', 'contrast', 'blur', 'noise', 'jpeg'])
@pytest.mark.parametrize('mode', ['L', 'RGB'])
def test_each_augmentation_changes_the_image_on_its_own(name, mode):
    import random

    from dataset import AUGMENT_PROBABILITIES, augment_image
    assert 0 < AUGMENT_PROBABILITIES[name] < 1
    original = _word_image('서울 12가', mode)
    changed = augment_image(original, random.Random(7), {name: 1.0})
    assert (changed.size, changed.mode) == (original.size, mode)
    difference = np.abs(np.asarray(changed, np.int16) - np.asarray(original, np.int16))
    assert difference.mean() > 0.5, f'{name} left the image (almost) as it was'
    assert augment_image(original, random.Random(7), {name: 0.0}).tobytes() == original.tobytes()


def test_augment_image_rejects_other_modes_and_unknown_operations():
    import random

    from dataset import augment_image
    with pytest.raises(ValueError, match="expected an L or RGB image, got mode 'RGBA'"):
        augment_image(Image.new('RGBA', (10, 10)), random.Random(0))
    with pytest.raises(ValueError, match=r"unknown operation\(s\) \['sharpen'\]"):
        augment_image(Image.new('L', (10, 10)), random.Random(0), {'sharpen': 1.0})


def _dark_pixels(image: Image.Image) -> int:
    """How many pixels are darker than mid-grey: the ink of dark letters on a light panel."""
    return int((np.asarray(image.convert('L')) < 128).sum())


@pytest.mark.parametrize('name', ['stroke', 'warp'])
@pytest.mark.parametrize('mode', ['L', 'RGB'])
def test_each_glyph_augmentation_changes_the_letters_deterministically(name, mode):
    import random

    from dataset import GLYPH_PROBABILITIES, augment_glyphs
    assert 0 < GLYPH_PROBABILITIES[name] < 1
    original = _word_image('강남역 2번 출구', mode)
    before = original.tobytes()
    changed = [augment_glyphs(original, random.Random(seed), {name: 1.0}) for seed in range(6)]
    again = [augment_glyphs(original, random.Random(seed), {name: 1.0}) for seed in range(6)]
    assert [im.tobytes() for im in changed] == [im.tobytes() for im in again]
    assert all((im.size, im.mode) == (original.size, mode) for im in changed)
    assert original.tobytes() == before
    assert len({im.tobytes() for im in changed}) == 6
    ink = _dark_pixels(original)
    for image in changed:
        difference = np.abs(np.asarray(image, np.int16) - np.asarray(original, np.int16))
        assert difference.mean() > 0.5, f'{name} left the letters (almost) as they were'
        # the letters change shape, they are not erased nor smeared over the panel
        assert 0.4 * ink < _dark_pixels(image) < 2.5 * ink
    assert augment_glyphs(original, random.Random(7), {name: 0.0}).tobytes() == before


def test_stroke_makes_the_letters_heavier_or_lighter_at_any_height():
    import random

    from dataset import augment_glyphs
    for height in (24, 32, 64):
        original = _word_image('굵기', 'L').resize((120 * height // 32, height))
        ink = _dark_pixels(original)
        inks = [_dark_pixels(augment_glyphs(original, random.Random(seed), {'stroke': 1.0})) for seed in range(12)]
        assert min(inks) < 0.95 * ink and max(inks) > 1.05 * ink, (height, ink, inks)


def test_augment_function_follows_the_flags():
    import argparse
    import random

    from dataset import augment_function, augment_glyphs, augment_image
    original = _word_image('플래그', 'RGB')

    def read(augment, glyphs, seed=3):
        function = augment_function(argparse.Namespace(augment=augment, augment_glyphs=glyphs))
        return None if function is None else function(original, random.Random(seed)).tobytes()

    assert read(False, False) is None  # upstream: the images as stored
    # --augment alone draws as it did before the glyph operations existed: a run reproduces
    assert all(read(True, False, seed) == augment_image(original, random.Random(seed)).tobytes()
               for seed in range(8))
    assert all(read(False, True, seed) == augment_glyphs(original, random.Random(seed)).tobytes()
               for seed in range(8))
    both = [read(True, True, seed) for seed in range(8)]
    assert both != [read(True, False, seed) for seed in range(8)]
    assert both != [read(False, True, seed) for seed in range(8)]
    with pytest.raises(ValueError, match=r"augment_glyphs: unknown operation\(s\) \['rotate'\]"):
        augment_glyphs(original, random.Random(0), {'rotate': 1.0})


def test_augmentation_contact_sheet(tmp_path):
    import random

    from dataset import AUGMENT_OPERATIONS, GLYPH_OPERATIONS, augment_glyphs, augment_image
    from korean.contact_sheet import contact_sheet
    words = ['편의점', '국회 본회의', '서울 날씨', 'KTX 3시']
    items = []
    for k, word in enumerate(words):
        original = _word_image(word, 'RGB')
        items.append((original, f'{word} (원본)', None))
        items += [(augment_image(original, random.Random(k), {name: 1.0}), f'{word} {name}', None)
                  for name in AUGMENT_OPERATIONS]
        items += [(augment_glyphs(original, random.Random(k), {name: 1.0}), f'{word} {name}', None)
                  for name in GLYPH_OPERATIONS]
        items.append((augment_image(original, random.Random(k)), f'{word} mixed', None))
    sheet = contact_sheet(items, tmp_path / 'augment.png', columns=10)
    with Image.open(sheet) as image:
        assert image.format == 'PNG' and image.width == 10 * 260 and image.height > 4 * 56
