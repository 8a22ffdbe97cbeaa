"""demo.py: the printed table and ./log_demo_result.txt, which files are read and in what
order, Hangul file names, and predictions that are empty or lack [s]."""
import argparse
import os
import subprocess
import sys

import pytest
import torch

import demo
from conftest import REPO

torch.set_num_threads(1)

DASHED = '-' * 80
HEAD = f'{"image_path":25s}\t{"predicted_labels":25s}\tconfidence score'
# the closing line for the image_folder fixture's two files of other types (after the tables,
# and not in log_demo_result.txt, which stays upstream's)
SKIPPED = ('skipped 2 files that are not .jpg/.jpeg/.png: notes.txt, word1.gif (--extensions reads other '
           'image types, e.g. --extensions .jpg,.jpeg,.png,.gif,.webp)\n')


def table(rows, batch_size):
    """The text demo.py prints for ``rows`` of (path, prediction, confidence), batch by batch."""
    out = []
    for start in range(0, len(rows), batch_size):
        out += [DASHED, HEAD, DASHED]
        out += [f'{path:25s}\t{pred:25s}\t{conf:0.4f}' for path, pred, conf in rows[start:start + batch_size]]
    return '\n'.join(out) + '\n'


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


@pytest.fixture
def image_folder(tmp_path, monkeypatch, render_word):
    """demo_images/ with PNG and JPEG files of the learned words under mixed-case extensions,
    a Hangul file name, a sub-folder, and files that are not images of the three types.
    Returns the image paths in the order demo.py must read them, with their words."""
    monkeypatch.chdir(tmp_path)
    files = {
        'demo_images/word10.png': render_word('가나'),
        'demo_images/word2.PNG': render_word('다라마'),
        'demo_images/sub/Ab7.Jpg': render_word('Ab7', fmt='JPEG'),
        'demo_images/바사.png': render_word('바-사'),
        'demo_images/sub/x.jpeg': render_word('가나', fmt='JPEG'),
        'demo_images/notes.txt': b'not an image',
        'demo_images/word1.gif': render_word('가나', fmt='GIF'),
    }
    for path, data in files.items():
        write(path, data)
    # natural order of the full path: sub/ sorts before word..., word2 before word10
    return [(os.path.join('demo_images', 'sub', 'Ab7.Jpg'), 'Ab7'), (os.path.join('demo_images', 'sub', 'x.jpeg'), '가나'),
            (os.path.join('demo_images', 'word2.PNG'), '다라마'), (os.path.join('demo_images', 'word10.png'), '가나'),
            (os.path.join('demo_images', '바사.png'), '바-사')]


def test_table_order_and_log(learned_model, image_folder, capsys):
    argv = learned_model.args + ['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                                 '--workers', '0', '--batch_size', '3']
    results = demo.main(argv)
    out = capsys.readouterr().out
    assert [path for path, _, _ in results] == [path for path, _ in image_folder]
    for (path, pred, conf), (_, word) in zip(results, image_folder):
        if path.lower().endswith('.png'):  # the exact images it was trained on
            assert pred == word and 0.5 < conf <= 1.0
    printed = table(results, batch_size=3)
    assert out.endswith(printed + SKIPPED)  # two batches, each with its own header
    assert out.count(HEAD) == 2
    with open('log_demo_result.txt', encoding='utf-8') as f:
        assert f.read() == printed
    demo.main(argv)  # a second run appends
    with open('log_demo_result.txt', encoding='utf-8') as f:
        assert f.read() == printed * 2


def test_a_self_describing_checkpoint_needs_no_model_flags(learned_model, image_folder, capsys):
    """train.py writes best_accuracy.json beside the .pth: demo.py rebuilds the model from it."""
    full = demo.main(learned_model.args + ['--image_folder', 'demo_images', '--saved_model',
                                           learned_model.checkpoint, '--workers', '0'])
    bare = demo.main(['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                      '--workers', '0'])
    assert bare == full
    assert [pred for path, pred, _ in bare if path.lower().endswith('.png')] == ['다라마', '가나', '바-사']


def test_a_flag_that_contradicts_the_checkpoint_stops_naming_both_values(learned_model, image_folder):
    from utils import run_script
    with pytest.raises(SystemExit) as info:
        run_script(demo.main, ['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                               '--workers', '0', '--imgW', '120'])
    message = str(info.value.code)
    assert message.startswith('error: --imgW 120 contradicts') and 'imgW = 100' in message
    assert 'best_accuracy.json' in message
    assert not os.path.exists('log_demo_result.txt')  # stopped before reading any image


@pytest.mark.parametrize('prediction, token', [('CTC', '[CTCblank]'), ('Attn', '[s]')])
def test_empty_prediction_prints_confidence_zero(constant_model, image_folder, capsys, prediction, token):
    model = constant_model(prediction, '가나다', token)
    results = demo.main(model.args + ['--image_folder', 'demo_images', '--saved_model', model.checkpoint,
                                      '--workers', '0'])
    assert results == [(path, '', 0.0) for path, _ in image_folder]
    assert capsys.readouterr().out.endswith(table(results, batch_size=192) + SKIPPED)


def test_attn_prediction_without_eos_is_printed_whole(constant_model, image_folder, capsys):
    model = constant_model('Attn', '가나다', '나', batch_max_length=4)
    results = demo.main(model.args + ['--image_folder', 'demo_images', '--saved_model', model.checkpoint,
                                      '--workers', '0', '--PAD'])
    for path, pred, conf in results:
        assert pred == '나' * 5 and conf == pytest.approx(model.probability ** 5, rel=1e-4)
    assert f'{"나" * 5:25s}\t{model.probability ** 5:0.4f}' in capsys.readouterr().out


def test_command_line_with_a_worker(learned_model, image_folder):
    """``python demo.py`` as a user runs it, with a DataLoader worker process (batches of 2, so
    the folder takes several batches and the worker is started)."""
    argv = learned_model.args + ['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                                 '--workers', '1', '--batch_size', '2']
    run = subprocess.run([sys.executable, os.path.join(REPO, 'demo.py')] + argv, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    start = lines.index(DASHED)
    assert lines[start:start + 3] == [DASHED, HEAD, DASHED]
    assert lines[-1] + '\n' == SKIPPED
    # upstream prints the table's head again before each batch
    rows = [line.split('\t') for line in lines[start:-1] if line not in (DASHED, HEAD)]
    assert [row[0].rstrip() for row in rows] == [path for path, _ in image_folder]
    for row, (path, word) in zip(rows, image_folder):
        assert len(row) == 3 and len(row[0]) >= 25 and len(row[1]) >= 25 and len(row[2]) == 6
        if path.endswith('.png'):
            assert row[1].rstrip() == word
    with open('log_demo_result.txt', encoding='utf-8') as f:
        assert f.read() == '\n'.join(lines[start:-1]) + '\n'


def test_a_folder_that_fits_one_batch_starts_no_worker_process():
    opt = argparse.Namespace(workers=4, batch_size=192)
    assert demo.loader_workers(opt, 1) == 0 and demo.loader_workers(opt, 192) == 0
    assert demo.loader_workers(opt, 193) == 4


@pytest.mark.parametrize('flags, expected', [
    (['--min_aspect', '4'], '--min_aspect 4 needs --PAD'),
    (['--min_aspect', '-1'], '--min_aspect -1: expected 0 (off) or a positive'),
    (['--vertical', '0.5'], '--vertical 0.5: expected 0 (off) or a height-to-width ratio of 1 or more'),
])
def test_min_aspect_without_pad_or_negative_is_one_line(learned_model, image_folder, flags, expected):
    run = subprocess.run([sys.executable, os.path.join(REPO, 'demo.py')] + learned_model.args +
                         ['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                          '--workers', '0'] + flags, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and 'Traceback' not in run.stderr
    assert expected in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_missing_folder_is_one_line(learned_model, tmp_path):
    run = subprocess.run([sys.executable, os.path.join(REPO, 'demo.py')] + learned_model.args +
                         ['--image_folder', 'nowhere', '--saved_model', learned_model.checkpoint],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and 'Traceback' not in run.stderr
    assert 'nowhere' in run.stderr


def test_extensions_widen_what_is_read_and_output_files_hold_every_result(learned_model, image_folder, capsys):
    import csv
    import json
    results = demo.main(['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                         '--workers', '0', '--extensions', '.png,.gif', '--output', 'results.csv'])
    paths = [path for path, _, _ in results]
    assert paths == [os.path.join('demo_images', name) for name in ('word1.gif', 'word2.PNG', 'word10.png', '바사.png')]
    assert results[0][1] == '가나'  # the GIF is read like any image
    out = capsys.readouterr().out
    assert out.endswith('skipped 3 files that are not .png/.gif: notes.txt, sub/Ab7.Jpg, sub/x.jpeg (--extensions '
                        'reads other image types, e.g. --extensions .jpg,.jpeg,.png,.gif,.webp)\n')
    with open('results.csv', encoding='utf-8', newline='') as f:
        rows = list(csv.DictReader(f))
    assert [(r['path'], r['prediction'], float(r['confidence'])) for r in rows] == [
        (p, t, pytest.approx(c, abs=1e-6)) for p, t, c in results]
    demo.main(['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint, '--workers', '0',
               '--output', 'results.jsonl'])
    with open('results.jsonl', encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    assert [r['path'] for r in records] == [path for path, _ in image_folder]
    assert {'바-사'} <= {r['prediction'] for r in records}


def test_amp_reads_the_trained_words_and_its_flags_are_checked(learned_model, image_folder):
    from utils import run_script
    argv = ['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint, '--workers', '0']
    mixed = demo.main(argv + ['--amp'])
    assert [pred for path, pred, _ in mixed if path.lower().endswith('.png')] == ['다라마', '가나', '바-사']
    assert all(0.0 <= conf <= 1.0 for _, _, conf in mixed)
    with pytest.raises(SystemExit) as info:
        run_script(demo.main, argv + ['--amp_dtype', 'bfloat16'])
    assert str(info.value.code) == ('error: --amp_dtype bfloat16 is given without --amp; add --amp to run in '
                                    'mixed precision')
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='error: --amp_dtype float16 needs a CUDA GPU'):
            run_script(demo.main, argv + ['--amp', '--amp_dtype', 'float16'])


def test_bad_extensions_and_output_names_are_one_line(learned_model, image_folder):
    from utils import run_script
    with pytest.raises(SystemExit) as info:
        run_script(demo.main, ['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                               '--output', 'results.txt'])
    assert str(info.value.code) == "error: --output 'results.txt': expected a file name ending in .csv or .jsonl"
    run = subprocess.run([sys.executable, os.path.join(REPO, 'demo.py'), '--image_folder', 'demo_images',
                          '--saved_model', learned_model.checkpoint, '--extensions', '.txt'],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "'.txt' is not an image file extension Pillow decodes" in run.stderr


def test_ensemble_prints_upstreams_table_with_the_more_confident_reading(learned_model, constant_model,
                                                                         image_folder, capsys):
    from PIL import Image
    Image.new('L', (100, 32), 'white').save('demo_images/zblank.png')  # the learned model reads nothing
    # reads 'x' in every image with confidence 0.048, below the learned model's on its words; its
    # alphabet differs from the learned one, so --saved_model's model flags must not reach it
    constant = constant_model('CTC', 'abcdefghijklmnopqrsx', 'x', describe=True)
    argv = learned_model.args + ['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                                 '--ensemble', constant.checkpoint, '--workers', '1', '--batch_size', '3']
    alone = demo.main(learned_model.args + ['--image_folder', 'demo_images', '--saved_model',
                                            learned_model.checkpoint, '--workers', '0'])
    capsys.readouterr()
    os.remove('log_demo_result.txt')
    results = demo.main(argv)
    out = capsys.readouterr().out
    constant_confidence = constant.probability ** 24  # 24 CTC steps at imgW 100
    for (path, pred, conf), (_, alone_pred, alone_conf) in zip(results, alone):
        if alone_conf >= constant_confidence:
            assert (pred, conf) == (alone_pred, pytest.approx(alone_conf, rel=1e-4)), path
        else:
            assert (pred, conf) == ('x', pytest.approx(constant_confidence, rel=1e-4)), path
    by_path = {path: pred for path, pred, _ in results}
    assert by_path[os.path.join('demo_images', 'zblank.png')] == 'x'
    assert by_path[os.path.join('demo_images', 'word2.PNG')] == '다라마'
    kept_constant = sum(pred == 'x' for _, pred, _ in results)
    printed = table(results, batch_size=3)
    summary = (f'ensemble: the most confident of 2 models kept per image ({len(results) - kept_constant} from '
               f'{learned_model.checkpoint}, {kept_constant} from {constant.checkpoint})\n')
    assert out.endswith(printed + summary + SKIPPED)
    assert f'loading pretrained model from {constant.checkpoint}' in out
    with open('log_demo_result.txt', encoding='utf-8') as f:
        assert f.read() == printed  # upstream's log holds upstream's lines only


def test_ensemble_errors_are_one_line(learned_model, constant_model, image_folder, capsys):
    from utils import run_script
    bare = constant_model('CTC', 'abcdefghijklmnopqrsx', 'x')
    for argv, expected in [(['--ensemble', bare.checkpoint], f'--ensemble {bare.checkpoint}: no configuration'),
                           (['--ensemble', 'missing.pth'], '--ensemble missing.pth: no such file'),
                           (['--ensemble'], 'expected at least one argument')]:
        with pytest.raises(SystemExit) as info:
            run_script(demo.main, ['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                                   '--workers', '0'] + argv)
        assert expected in f'{info.value.code} {capsys.readouterr().err}', argv
    assert not os.path.exists('log_demo_result.txt')


def test_ensemble_rule_without_ensemble_is_one_line(learned_model, image_folder):
    from utils import run_script
    with pytest.raises(SystemExit) as info:
        run_script(demo.main, ['--image_folder', 'demo_images', '--saved_model', learned_model.checkpoint,
                               '--workers', '0', '--ensemble_rule', 'likelihood'])
    assert str(info.value.code) == ('error: --ensemble_rule likelihood is given without --ensemble; add the '
                                    'checkpoints to read beside --saved_model')
    assert not os.path.exists('log_demo_result.txt')
