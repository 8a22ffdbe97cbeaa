"""inference.Recognizer: the three-line Python API, on the checkpoint train.py wrote."""
import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import LEARNED_WORDS
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
