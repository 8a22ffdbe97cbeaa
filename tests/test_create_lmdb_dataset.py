"""create_lmdb_dataset.py: gt.txt + image folder -> LMDB, as a user runs it."""
import io
import os
import re
import signal
import subprocess
import sys
import unicodedata

import lmdb
import pytest
from PIL import Image, ImageDraw, ImageFont

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from create_lmdb_dataset import LmdbWriter, createDataset, create_dataset  # noqa: E402

FONT_PATH = '/usr/share/fonts/truetype/nanum/NanumGothic.ttf'


def render(text, fmt='PNG', size=(120, 32)):
    """Bytes of an image showing ``text`` in a real Korean font."""
    image = Image.new('RGB', size, 'white')
    ImageDraw.Draw(image).text((4, 4), text, fill='black', font=ImageFont.truetype(FONT_PATH, 20))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def read_lmdb(path):
    """Every key/value of the LMDB at ``path``."""
    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return dict(txn.cursor())
    finally:
        env.close()


def leftovers(parent):
    """Hidden temporary folders the writer may have left in ``parent``."""
    return [name for name in os.listdir(parent) if name.startswith('.')]


@pytest.fixture
def images(tmp_path):
    """An input folder with a PNG, a JPEG with a Hangul file name and a JPEG in a sub-folder."""
    root = tmp_path / 'input'
    files = {
        'images/word1.png': render('Hello'),
        'images/한국어.jpg': render('한국어', 'JPEG'),
        'images/sub/x.jpeg': render('가나 다', 'JPEG'),
    }
    for rel, data in files.items():
        write_file(str(root / rel), data)
    return root, files


def test_round_trip_keys_and_values_are_byte_exact(tmp_path, images, capsys):
    root, files = images
    nfd_label = unicodedata.normalize('NFD', '한국어')
    gt = root / 'gt.txt'
    gt.write_text(f'images/word1.png\tHello\nimages/한국어.jpg\t{nfd_label}\n'
                  'images/sub/x.jpeg\t가나 다 \n', encoding='utf-8')
    out = tmp_path / 'lmdb' / 'train'
    createDataset(str(root), str(gt), str(out))

    stored = read_lmdb(out)
    assert set(stored) == {b'num-samples', b'image-000000001', b'label-000000001', b'image-000000002',
                           b'label-000000002', b'image-000000003', b'label-000000003'}
    assert stored[b'num-samples'] == b'3'
    assert stored[b'image-000000001'] == files['images/word1.png']
    assert stored[b'image-000000002'] == files['images/한국어.jpg']
    assert stored[b'image-000000003'] == files['images/sub/x.jpeg']
    assert stored[b'label-000000001'] == b'Hello'
    assert stored[b'label-000000002'] == '한국어'.encode('utf-8')  # NFD in gt.txt, NFC stored
    assert stored[b'label-000000003'] == '가나 다 '.encode('utf-8')  # spaces are part of a label
    assert 'Created dataset with 3 samples' in capsys.readouterr().out
    assert leftovers(tmp_path / 'lmdb') == []


def test_bad_lines_are_reported_and_numbering_stays_consecutive(tmp_path, images, capsys):
    root, files = images
    gt = root / 'gt.txt'
    gt.write_text('\nimages/word1.png\tHello\nimages/한국어.jpg 한국어\n   \n\timagesless\n'
                  'images/sub/x.jpeg\t가\t나\n', encoding='utf-8')
    report = create_dataset(str(root), str(gt), str(tmp_path / 'out'), show_progress=False)

    assert (report.written, report.malformed, report.missing, report.invalid) == (2, 2, 0, 0)
    out = capsys.readouterr().out
    assert f'{gt}, line 3: no tab' in out
    assert f'{gt}, line 5: empty image path' in out
    stored = read_lmdb(tmp_path / 'out')
    assert stored[b'num-samples'] == b'2'
    assert stored[b'image-000000002'] == files['images/sub/x.jpeg']
    assert stored[b'label-000000002'] == '가\t나'.encode()  # split at the first tab only


def test_crlf_and_bom(tmp_path, images):
    root, _ = images
    gt = root / 'gt.txt'
    gt.write_bytes('\ufeffimages/word1.png\tHello\r\nimages/한국어.jpg\t한국어\r\n'.encode('utf-8'))
    report = create_dataset(str(root), str(gt), str(tmp_path / 'out'), show_progress=False)
    assert report.written == 2 and report.missing == 0
    stored = read_lmdb(tmp_path / 'out')
    assert stored[b'label-000000001'] == b'Hello'
    assert stored[b'label-000000002'] == '한국어'.encode()


def test_cp949_gt_file_needs_and_honours_encoding(tmp_path, images):
    root, _ = images
    gt = root / 'gt.txt'
    gt.write_bytes('images/word1.png\tHello\nimages/한국어.jpg\t한국어\n'.encode('cp949'))
    out = tmp_path / 'out'
    with pytest.raises(ValueError) as error:
        create_dataset(str(root), str(gt), str(out), show_progress=False)
    assert f'{gt}, line 2' in str(error.value) and '--encoding cp949' in str(error.value)
    assert not out.exists()

    report = create_dataset(str(root), str(gt), str(out), encoding='cp949', show_progress=False)
    assert report.written == 2
    assert read_lmdb(out)[b'label-000000002'] == '한국어'.encode('utf-8')


def test_backslash_paths_and_nfd_file_names_are_found(tmp_path):
    root = tmp_path / 'input'
    png = render('사과')
    # a Hangul name stored decomposed, as macOS writes it
    write_file(str(root / 'images' / unicodedata.normalize('NFD', '사과.png')), png)
    gt = root / 'gt.txt'
    gt.write_text('images\\사과.png\t사과\n', encoding='utf-8')
    report = create_dataset(str(root), str(gt), str(tmp_path / 'out'), show_progress=False)
    assert report.written == 1
    assert read_lmdb(tmp_path / 'out')[b'image-000000001'] == png


def test_missing_and_corrupt_images_are_skipped_and_counted(tmp_path, images, capsys):
    root, files = images
    good = files['images/word1.png']
    write_file(str(root / 'bad' / 'truncated.png'), good[:len(good) // 2])
    write_file(str(root / 'bad' / 'noise.jpg'), b'this is not an image at all')
    write_file(str(root / 'bad' / 'empty.png'), b'')
    gt = root / 'gt.txt'
    gt.write_text('images/word1.png\ta\nbad/truncated.png\tb\nimages/nothere.png\tc\n'
                  'bad/noise.jpg\td\nbad/empty.png\te\nimages/한국어.jpg\tf\n', encoding='utf-8')
    out = tmp_path / 'out'
    report = create_dataset(str(root), str(gt), str(out), show_progress=False)

    assert (report.written, report.missing, report.invalid, report.malformed) == (2, 1, 3, 0)
    printed = capsys.readouterr().out
    assert f'{gt}, line 3: ' in printed and 'nothere.png does not exist' in printed
    assert f'{gt}, line 2: ' in printed and 'truncated.png is not a valid image' in printed
    stored = read_lmdb(out)
    assert stored[b'num-samples'] == b'2'
    assert [stored[b'label-000000001'], stored[b'label-000000002']] == [b'a', b'f']

    # upstream's --checkValid False writes undecodable files as they are
    report = create_dataset(str(root), str(gt), str(tmp_path / 'unchecked'), checkValid=False,
                            show_progress=False)
    assert (report.written, report.missing, report.invalid) == (5, 1, 0)
    assert read_lmdb(tmp_path / 'unchecked')[b'image-000000003'] == b'this is not an image at all'


def test_rebuild_replaces_an_earlier_dataset(tmp_path, images):
    root, files = images
    gt = root / 'gt.txt'
    gt.write_text('images/word1.png\tone\nimages/한국어.jpg\ttwo\n', encoding='utf-8')
    out = tmp_path / 'out'
    create_dataset(str(root), str(gt), str(out), show_progress=False)
    gt.write_text('images/sub/x.jpeg\tthree\n', encoding='utf-8')
    create_dataset(str(root), str(gt), str(out), show_progress=False)
    stored = read_lmdb(out)
    assert stored[b'num-samples'] == b'1'
    assert b'label-000000002' not in stored  # no stale samples of the earlier dataset
    assert stored[b'label-000000001'] == b'three'
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize('interruption', [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_keeps_the_earlier_dataset(tmp_path, interruption):
    out = tmp_path / 'out'
    with LmdbWriter(out) as writer:
        writer.add(render('old'), 'old')
    before = read_lmdb(out)

    with pytest.raises(interruption):
        with LmdbWriter(out, commit_every=2) as writer:
            for i in range(5):  # some chunks are committed before the interruption
                writer.add(render(str(i)), f'new{i}')
            raise interruption()
    assert read_lmdb(out) == before
    assert leftovers(tmp_path) == []


def test_interrupted_first_write_leaves_no_dataset(tmp_path):
    out = tmp_path / 'out'
    with pytest.raises(KeyboardInterrupt):
        with LmdbWriter(out, commit_every=1) as writer:
            writer.add(render('a'), 'a')
            writer.add(render('b'), 'b')
            raise KeyboardInterrupt
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_nothing_usable_leaves_the_earlier_dataset(tmp_path, images):
    root, _ = images
    gt = root / 'gt.txt'
    gt.write_text('images/word1.png\tkeep\n', encoding='utf-8')
    out = tmp_path / 'out'
    create_dataset(str(root), str(gt), str(out), show_progress=False)
    gt.write_text('wrong/folder.png\tx\n', encoding='utf-8')
    with pytest.raises(ValueError, match='no sample could be written'):
        create_dataset(str(root), str(gt), str(out), show_progress=False)
    assert read_lmdb(out)[b'label-000000001'] == b'keep'


def test_map_grows_beyond_its_initial_size(tmp_path):
    payloads = [os.urandom(300_000) for _ in range(8)]  # 2.4 MB into a 256 KiB map
    with LmdbWriter(tmp_path / 'big', commit_every=3, map_size=256 * 1024) as writer:
        for i, payload in enumerate(payloads):
            assert writer.add(payload, f'label{i}') == i + 1
        assert writer.count == 8
    stored = read_lmdb(tmp_path / 'big')
    assert stored[b'num-samples'] == b'8'
    assert [stored[b'image-%09d' % (i + 1)] for i in range(8)] == payloads


def test_writer_normalises_labels_and_checks_types(tmp_path):
    with LmdbWriter(tmp_path / 'w') as writer:
        writer.add(render('가'), unicodedata.normalize('NFD', '각'))
        with pytest.raises(TypeError, match='image_bytes'):
            writer.add('not bytes', 'x')
    assert read_lmdb(tmp_path / 'w')[b'label-000000001'] == '각'.encode()
    with pytest.raises(RuntimeError, match='not open'):
        LmdbWriter(tmp_path / 'unopened').add(b'x', 'y')


def test_output_folder_with_other_files_is_refused(tmp_path, images):
    root, _ = images
    gt = root / 'gt.txt'
    gt.write_text('images/word1.png\tHello\n', encoding='utf-8')
    with pytest.raises(FileExistsError, match='gt.txt'):
        create_dataset(str(root), str(gt), str(root), show_progress=False)
    assert sorted(os.listdir(root)) == ['gt.txt', 'images']


def test_command_line(tmp_path, images):
    root, files = images
    gt = root / 'gt.txt'
    gt.write_text('images/word1.png\tHello\nimages/gone.png\tx\n', encoding='utf-8')
    out = tmp_path / 'out'
    script = os.path.join(REPO, 'create_lmdb_dataset.py')
    run = subprocess.run([sys.executable, script, '--inputPath', str(root), '--gtFile', str(gt),
                          '--outputPath', str(out), '--checkValid', 'False'],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.returncode == 0, run.stderr
    assert 'Created dataset with 1 samples' in run.stdout
    assert 'written 1, missing images 1, invalid images 0, malformed lines 0' in run.stdout
    assert read_lmdb(out)[b'image-000000001'] == files['images/word1.png']

    failed = subprocess.run([sys.executable, script, '--inputPath', str(root), '--gtFile',
                             str(root / 'nope.txt'), '--outputPath', str(out)],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert failed.returncode == 1 and 'nope.txt' in failed.stderr and 'Traceback' not in failed.stderr

    shown = subprocess.run([sys.executable, script, '--help'], capture_output=True, text=True,
                           cwd=REPO, timeout=60, env={**os.environ, 'PAGER': 'cat'})
    assert shown.returncode == 0
    help_text = shown.stdout + shown.stderr  # fire prints help on stderr when not on a terminal
    assert '--checkValid' in help_text and '--encoding' in help_text


def test_ctrl_c_from_the_command_line_keeps_the_earlier_dataset(tmp_path, images):
    root, _ = images
    gt = root / 'gt.txt'
    gt.write_text('images/word1.png\tearlier\n', encoding='utf-8')
    out = tmp_path / 'out'
    create_dataset(str(root), str(gt), str(out), show_progress=False)
    before = read_lmdb(out)
    # far more lines than can be written before the interrupt arrives
    gt.write_text(''.join(f'images/word1.png\tw{i}\n' for i in range(200_000)), encoding='utf-8')
    script = os.path.join(REPO, 'create_lmdb_dataset.py')
    process = subprocess.Popen([sys.executable, script, '--inputPath', str(root), '--gtFile', str(gt),
                                '--outputPath', str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=REPO,
                               # a shell may start children with SIGINT ignored; a terminal does not
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        progress = b''
        while not re.search(rb' [1-9][0-9]*/200000 ', progress):  # samples are being written
            chunk = os.read(process.stderr.fileno(), 4096)
            assert chunk, 'the script ended before writing'
            progress += chunk
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert b'interrupted' in err
    assert read_lmdb(out) == before
    assert leftovers(tmp_path) == []
