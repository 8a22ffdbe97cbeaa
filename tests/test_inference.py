"""inference.Recognizer: the three-line Python API, on the checkpoint train.py wrote; and
inference.py as the one evaluation path train.py and test.py share."""
import inspect
import io
import shutil
import string
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import inference
from conftest import LEARNED_WORDS, REPO
from inference import Recognizer

torch.set_num_threads(1)


def test_three_lines_read_paths_pil_images_and_arrays(learned_model, render_word, tmp_path):
    recognizer = Recognizer.from_checkpoint(learned_model.checkpoint)
    images = [Image.open(io.BytesIO(render_word(word))) for word in LEARNED_WORDS]
    path = tmp_path / 'word.png'
    path.write_bytes(render_word(LEARNED_WORDS[1]))
    rgb_array = np.array(images[2].convert('RGB'))  # H x W x 3 arrays are read as grey, as training did
    results = recognizer.read(images + [str(path), rgb_array, np.array(images[3].convert('L'))], batch_size=3)
    assert [text for text, _ in results] == list(LEARNED_WORDS) + [LEARNED_WORDS[1], LEARNED_WORDS[2],
                                                                    LEARNED_WORDS[3]]
    assert all(0.0 < confidence <= 1.0 for _, confidence in results)
    # the same image as a PIL image, a file or an array gets the same confidence
    assert results[4][1] == pytest.approx(results[1][1]) and results[6][1] == pytest.approx(results[3][1])
    assert recognizer.opt.Prediction == 'CTC' and recognizer.opt.sensitive  # from best_accuracy.json


def test_a_bare_dtrb_checkpoint_takes_its_flags(learned_model, render_word, tmp_path):
    bare = tmp_path / 'bare.pth'
    shutil.copy(learned_model.checkpoint, bare)
    with pytest.raises(ValueError, match='required: --Transformation'):
        Recognizer.from_checkpoint(bare)
    flags = dict(zip(learned_model.args[0:10:2], learned_model.args[1:10:2]))
    recognizer = Recognizer.from_checkpoint(
        bare, Transformation=flags['--Transformation'], FeatureExtraction=flags['--FeatureExtraction'],
        SequenceModeling=flags['--SequenceModeling'], Prediction=flags['--Prediction'],
        output_channel=32, hidden_size=32, character=learned_model.alphabet_file, sensitive=True)
    image = Image.open(io.BytesIO(render_word(LEARNED_WORDS[0])))
    assert recognizer.read([image])[0][0] == LEARNED_WORDS[0]


def test_bad_inputs_are_named(learned_model):
    recognizer = Recognizer.from_checkpoint(learned_model.checkpoint)
    with pytest.raises(ValueError, match=r'expected a uint8 array of H x W or H x W x 3, got float64'):
        recognizer.read([np.zeros((32, 100))])
    with pytest.raises(TypeError, match='expected a path, a PIL image or a numpy array, got int'):
        recognizer.read([3])
    with pytest.raises(TypeError, match=r"unknown model flags \['imgw'\]"):
        Recognizer.from_checkpoint(learned_model.checkpoint, imgw=100)


def modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statement`` in the repository root
    (a fresh one, because this process has imported everything already)."""
    run = subprocess.run([sys.executable, '-c', f'import sys\n{statement}\nprint(" ".join(sys.modules))'],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


def test_train_imports_its_evaluation_from_inference_not_from_the_test_script():
    modules = modules_after('import train')
    assert {'train', 'inference'} <= modules
    assert 'test' not in modules


@pytest.mark.parametrize('statement', ['from test import validation, validation_loss, make_eval_loader',
                                       'import train\nfrom test import validation',
                                       'from test import validation\nimport train'])
def test_the_scripts_import_in_either_order(statement):
    """No circular import between the scripts and inference.py, whichever comes first."""
    assert 'inference' in modules_after(statement)


def test_dtrb_code_importing_validation_from_test_gets_the_shared_function():
    import test as test_script
    for name in ('validation', 'validation_loss', 'make_eval_loader'):
        assert getattr(test_script, name) is getattr(inference, name)
    # upstream's signature, and its 8-tuple (unpacked by DTRB users) checked in test_test.py
    assert list(inspect.signature(test_script.validation).parameters)[:5] == [
        'model', 'criterion', 'evaluation_loader', 'converter', 'opt']
    parameters = inspect.signature(test_script.make_eval_loader).parameters
    assert list(parameters)[:4] == ['root', 'opt', 'batch_size', 'shuffle']
    assert all(p.default is not p.empty for p in list(parameters.values())[3:])  # additions are optional


# ------------------------------------------------------------------ several models: Ensemble


def resized_copy(checkpoint, folder, **reading):
    """A copy of ``checkpoint`` whose configuration reads images at another size (the weights
    load at any size, as the shipped 48- and 64-high models show)."""
    import json
    from model import config_path
    copy = folder / f'resized-{len(list(folder.iterdir()))}.pth'
    shutil.copy(checkpoint, copy)
    config = json.loads(config_path(checkpoint).read_text(encoding='utf-8'))
    config.update(reading)
    config_path(copy).write_text(json.dumps(config), encoding='utf-8')
    return copy


def test_an_ensemble_keeps_each_images_most_confident_reading(learned_model, constant_model, render_word,
                                                            tmp_path):
    # reads 'x' everywhere with one confidence, 0.048 (0.881 a step over 21 classes): below the
    # learned model's on its words (0.4 to 0.96), above what either learned model reads in a blank
    constant = constant_model('CTC', string.ascii_lowercase[:19] + 'x', 'x', describe=True)
    tall = resized_copy(learned_model.checkpoint, tmp_path, imgH=48, imgW=160, PAD=True)
    ensemble = inference.Ensemble.from_checkpoints([learned_model.checkpoint, tall, constant.checkpoint])
    blank = Image.new('L', (100, 32), 'white')  # the learned models read nothing there: confidence 0
    images = [Image.open(io.BytesIO(render_word(word))) for word in LEARNED_WORDS] + [blank]
    alone = [Recognizer.from_checkpoint(path).read(images)
             for path in (learned_model.checkpoint, tall, constant.checkpoint)]
    kept = ensemble.read(images, batch_size=2)
    for k, (text, confidence) in enumerate(kept):
        candidates = [readings[k] for readings in alone]
        best = max(range(3), key=lambda m: (candidates[m][1], -m))
        assert (text, confidence) == (candidates[best][0], pytest.approx(candidates[best][1], rel=1e-4)), \
            (k, candidates)
    assert [text for text, _ in kept] == list(LEARNED_WORDS) + ['x']
    # the 32 x 100 and the 48 x 160 readings differ, and each model read what its configuration says
    assert [c for _, c in alone[0]] != pytest.approx([c for _, c in alone[1]])
    tensors, _ = ensemble.collate([(image, None) for image in images[:2]])
    assert [tuple(t.shape) for t in tensors] == [(2, 1, 32, 100), (2, 1, 48, 160), (2, 1, 32, 100)]
    assert ensemble.readings_kept == [len(LEARNED_WORDS), 0, 1]


def test_on_a_tie_the_first_model_keeps_its_reading(learned_model, render_word):
    ensemble = inference.Ensemble.from_checkpoints([learned_model.checkpoint] * 2)
    images = [Image.open(io.BytesIO(render_word(word))) for word in LEARNED_WORDS]
    assert ensemble.read(images) == Recognizer.from_checkpoint(learned_model.checkpoint).read(images)
    assert ensemble.readings_kept == [len(images), 0]
    assert ensemble.summary() == (f'ensemble: the most confident of 2 models kept per image (4 from '
                                  f'{learned_model.checkpoint}, 0 from {learned_model.checkpoint})')


def test_an_ensemble_member_without_a_configuration_is_one_line(learned_model, constant_model):
    import demo
    bare = constant_model('CTC', 'xyz가', 'x')
    args = demo.build_parser().parse_args(['--image_folder', '.', '--saved_model', learned_model.checkpoint,
                                           '--ensemble', bare.checkpoint])
    with pytest.raises(inference.InputError, match=rf'--ensemble {bare.checkpoint}: no configuration beside it'):
        inference.ensemble_member_options(args, bare.checkpoint)


def test_a_colour_model_beside_a_grey_saved_model_is_one_line(learned_model, tmp_path):
    import demo
    colour = resized_copy(learned_model.checkpoint, tmp_path, rgb=True, input_channel=3)
    args = demo.build_parser().parse_args(['--image_folder', '.', '--saved_model', learned_model.checkpoint,
                                           '--ensemble', str(colour)])
    opt = inference.finish_reading_options(args)
    with pytest.raises(inference.InputError, match=rf'--ensemble {colour} reads colour images and --saved_model '
                                                   r'.* grey ones; give the colour model as --saved_model'):
        inference.make_reader(opt, torch.device('cpu'))


def test_the_likelihood_rule_keeps_the_reading_both_models_support():
    """Model A reads 'ab' fairly sure (0.475) but finds 'ac' nearly as likely; model B reads 'ac'
    less sure (0.42) and finds 'ab' very unlikely: the most confident reading is A's, the
    likeliest under both is B's."""
    from conftest import ctc_frames
    from utils import CTCLabelConverter
    converter = CTCLabelConverter('abc')
    a = ctc_frames([{'a': 0.95}, {'b': 0.5, 'c': 0.48}], converter)
    b = ctc_frames([{'a': 0.6}, {'c': 0.7, 'b': 0.01}], converter)
    candidates = [inference.Prediction('ab', 0.475), inference.Prediction('ac', 0.42)]
    assert inference.likeliest_reading(candidates, [a, b], converter.dict) == 1
    # with B nearly as sure of 'b' as of 'c', A's reading is the likelier under both
    b_unsure = ctc_frames([{'a': 0.6}, {'c': 0.47, 'b': 0.46}], converter)
    unsure = [inference.Prediction('ab', 0.475), inference.Prediction('ac', 0.282)]
    assert inference.likeliest_reading(unsure, [a, b_unsure], converter.dict) == 0
    # one text read by both: the more confident of them is kept, the first on a tie
    same = [inference.Prediction('ab', 0.3), inference.Prediction('ab', 0.4), inference.Prediction('ab', 0.4)]
    assert inference.likeliest_reading(same, [a, a, a], converter.dict) == 1


def test_the_likelihood_rule_reads_and_names_its_limits(learned_model, constant_model, render_word, tmp_path):
    # the learned model read 128 wide and padded: it reads the words too, less sure of them
    wide = resized_copy(learned_model.checkpoint, tmp_path, imgW=128, PAD=True)
    images = [Image.open(io.BytesIO(render_word(word))) for word in LEARNED_WORDS]
    ensemble = inference.Ensemble.from_checkpoints([learned_model.checkpoint, wide], rule='likelihood')
    assert [text for text, _ in ensemble.read(images)] == list(LEARNED_WORDS)
    assert ensemble.summary().startswith('ensemble: the likeliest reading of 2 models kept per image (')
    other_alphabet = constant_model('CTC', 'abcdefghijklmnopqrsA', 'A', describe=True)
    with pytest.raises(inference.InputError, match='has another alphabet than .*; the rule scores each reading '
                                                   'under every model, so they need one alphabet'):
        inference.Ensemble.from_checkpoints([learned_model.checkpoint, other_alphabet.checkpoint], rule='likelihood')
    attn = constant_model('Attn', 'abc', 'a', describe=True)
    with pytest.raises(inference.InputError, match='is an Attn model; .* every model must be CTC'):
        inference.Ensemble.from_checkpoints([learned_model.checkpoint, attn.checkpoint], rule='likelihood')
    with pytest.raises(ValueError, match="unknown ensemble rule 'vote'"):
        inference.Ensemble.from_checkpoints([learned_model.checkpoint], rule='vote')
