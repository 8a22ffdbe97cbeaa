"""inference.Recognizer: the three-line Python API, on the checkpoint train.py wrote; and
inference.py as the one evaluation path train.py and test.py share."""
import inspect
import io
import shutil
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
    assert list(inspect.signature(test_script.make_eval_loader).parameters) == ['root', 'opt', 'batch_size',
                                                                                 'shuffle']
