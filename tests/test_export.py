"""export.py: every one of the 24 models exported to ONNX and run by a real ONNX Runtime session
predicts what PyTorch predicts; TorchScript too; demo.py runs the .onnx with no model flag."""
import itertools
import os
import subprocess
import sys

import pytest
import torch

import demo
import export
from conftest import LEARNED_WORDS, REPO, small_checkpoint
from inference import Recognizer
from utils import run_script

torch.set_num_threads(1)

COMBOS = list(itertools.product(('None', 'TPS'), ('VGG', 'RCNN', 'ResNet'), ('None', 'BiLSTM'), ('CTC', 'Attn')))


@pytest.fixture(scope='module')
def word_images(tmp_path_factory, render_word):
    folder = tmp_path_factory.mktemp('words')
    for i, word in enumerate(('서울', '부산역', '가나다', '12가3456', '뉴스', '속보')):
        (folder / f'{i}.png').write_bytes(render_word(word, size=(120, 32)))
    return folder


@pytest.mark.parametrize('combo', COMBOS, ids='-'.join)
def test_every_model_exports_to_onnx_and_onnx_runtime_agrees(tmp_path, word_images, combo, capsys):
    checkpoint = small_checkpoint(tmp_path, combo)
    onnx_file = tmp_path / 'exported' / 'model.onnx'
    export.main(['--saved_model', str(checkpoint), '--output', str(onnx_file), '--image_folder', str(word_images)])
    assert 'the same predictions as PyTorch' in capsys.readouterr().out
    assert sorted(os.listdir(onnx_file.parent)) == ['model.json', 'model.onnx']  # no temporary file left
    images = sorted(str(p) for p in word_images.iterdir())
    torch_results = Recognizer.from_checkpoint(checkpoint).read(images)
    onnx_results = Recognizer.from_checkpoint(onnx_file).read(images, batch_size=4)  # another batch size
    assert [t for t, _ in onnx_results] == [t for t, _ in torch_results]
    # a confidence is a product over every step: float32 kernels' last-bit differences add up
    assert [c for _, c in onnx_results] == pytest.approx([c for _, c in torch_results], rel=1e-2, abs=1e-6)


def test_torchscript_export_agrees(tmp_path, word_images):
    checkpoint = small_checkpoint(tmp_path, ('TPS', 'ResNet', 'BiLSTM', 'Attn'))
    output = tmp_path / 'model.pt'
    export.main(['--saved_model', str(checkpoint), '--output', str(output), '--format', 'torchscript'])
    scripted = torch.jit.load(str(output))
    recognizer = Recognizer.from_checkpoint(checkpoint)
    images = [str(p) for p in sorted(word_images.iterdir())]
    batch, _ = recognizer.collate([(Image_open(p), None) for p in images])
    with torch.no_grad():
        got = [p.text for p in export.decode_predictions(scripted(batch), recognizer.converter, recognizer.opt)]
    assert got == [text for text, _ in recognizer.read(images)]


def Image_open(path):
    from PIL import Image
    with Image.open(path) as image:
        return image.convert('L')


def test_a_mismatching_export_fails_and_is_not_kept(tmp_path, monkeypatch):
    checkpoint = small_checkpoint(tmp_path, ('None', 'VGG', 'None', 'CTC'))
    real = export.OnnxRuntimeModel

    class Corrupted(real):
        def __call__(self, image):
            return super().__call__(image).flip(-1)  # class order reversed: other texts

    monkeypatch.setattr(export, 'OnnxRuntimeModel', Corrupted)
    with pytest.raises(SystemExit) as info:
        run_script(export.main, ['--saved_model', str(checkpoint), '--output', str(tmp_path / 'bad.onnx')])
    assert 'the export does not predict what PyTorch predicts' in str(info.value.code)
    assert not any(p.suffix in ('.onnx', '.json') and p.stem.startswith(('bad', '.bad')) for p in tmp_path.iterdir())


def test_learned_model_exports_with_no_flags_and_demo_reads_the_onnx(learned_model, tmp_path, monkeypatch,
                                                                    render_word):
    monkeypatch.chdir(tmp_path)
    os.makedirs('images')
    for i, word in enumerate(LEARNED_WORDS):
        with open(f'images/{i}.png', 'wb') as f:
            f.write(render_word(word))
    run = subprocess.run([sys.executable, os.path.join(REPO, 'export.py'), '--saved_model', learned_model.checkpoint,
                          '--output', 'learned.onnx'], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith('wrote learned.onnx')
    from_pth = demo.main(['--image_folder', 'images', '--saved_model', learned_model.checkpoint, '--workers', '0'])
    from_onnx = demo.main(['--image_folder', 'images', '--saved_model', 'learned.onnx', '--workers', '0'])
    assert [r[1] for r in from_onnx] == [r[1] for r in from_pth] == list(LEARNED_WORDS)
    assert [r[2] for r in from_onnx] == pytest.approx([r[2] for r in from_pth], rel=1e-4)


def test_amp_on_an_onnx_file_is_one_line(learned_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    export.main(['--saved_model', learned_model.checkpoint, '--output', 'm.onnx'])
    os.makedirs('images')
    with pytest.raises(SystemExit) as info:
        run_script(demo.main, ['--image_folder', 'images', '--saved_model', 'm.onnx', '--workers', '0', '--amp'])
    assert str(info.value.code) == ('error: --amp: m.onnx is an ONNX file, which ONNX Runtime runs in the '
                                    'precision it was exported in; --amp applies to .pth checkpoints')


def test_onnx_runtime_missing_is_one_line(learned_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    export.main(['--saved_model', learned_model.checkpoint, '--output', 'm.onnx'])
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # what an environment without it gives
    os.makedirs('images')
    with pytest.raises(SystemExit) as info:
        run_script(demo.main, ['--image_folder', 'images', '--saved_model', 'm.onnx', '--workers', '0'])
    assert str(info.value.code) == ('error: m.onnx: running an ONNX model needs ONNX Runtime, which is not '
                                    'installed (pip install onnxruntime)')


def test_demo_ensemble_reads_exported_onnx_files_as_their_checkpoints(learned_model, constant_model, tmp_path,
                                                                      monkeypatch, render_word, capsys):
    """export.py writes one model per file; --ensemble reads the .onnx files as it reads the .pth."""
    import json
    import shutil
    from PIL import Image
    from model import config_path
    monkeypatch.chdir(tmp_path)
    os.makedirs('images')
    for i, word in enumerate(LEARNED_WORDS):
        (tmp_path / 'images' / f'{i}.png').write_bytes(render_word(word))
    Image.new('L', (100, 32), 'white').save('images/blank.png')
    # the learned model read at 48 x 160 (as the shipped pair reads at two sizes) and a model that
    # reads 'A' everywhere with confidence 0.048, which wins on the blank image only
    shutil.copy(learned_model.checkpoint, 'tall.pth')
    config = json.loads(config_path(learned_model.checkpoint).read_text(encoding='utf-8'))
    config.update(imgH=48, imgW=160, PAD=True)
    config_path('tall.pth').write_text(json.dumps(config), encoding='utf-8')
    constant = constant_model('CTC', 'abcdefghijklmnopqrsA', 'A', describe=True)
    checkpoints = [learned_model.checkpoint, 'tall.pth', constant.checkpoint]
    exported = ['learned.onnx', 'tall.onnx', 'constant.onnx']
    for checkpoint, output in zip(checkpoints, exported):
        export.main(['--saved_model', checkpoint, '--output', output])
    from_pth = demo.main(['--image_folder', 'images', '--saved_model', checkpoints[0], '--ensemble', *checkpoints[1:],
                          '--workers', '0'])
    from_onnx = demo.main(['--image_folder', 'images', '--saved_model', exported[0], '--ensemble', *exported[1:],
                           '--workers', '0'])
    assert [r[1] for r in from_onnx] == [r[1] for r in from_pth] == list(LEARNED_WORDS) + ['A']
    assert [r[2] for r in from_onnx] == pytest.approx([r[2] for r in from_pth], rel=1e-4)
    assert capsys.readouterr().out.splitlines()[-1] == ('ensemble: the most confident of 3 models kept per image '
                                                        '(4 from learned.onnx, 0 from tall.onnx, 1 from constant.onnx)')
