"""widen_model.py: a widened checkpoint (--hidden_size, --output_channel or both) reads what the
trained one reads (the shipped Korean model on rendered Korean words, the session's trained model
under test.py), train.py fine-tunes it at the new size and its new units learn; bad input fails
with one line and writes nothing."""
import csv
import json
import os

import pytest
import torch

import test as test_script
import train
import widen_model
from conftest import REPO, accuracy_line, small_checkpoint
from inference import Recognizer
from model import read_checkpoint, read_model_config
from utils import run_script

torch.set_num_threads(1)

SHIPPED = os.path.join(REPO, 'korean', 'models', 'ko_vgg_bilstm_ctc.pth')
WORDS = ('서울특별시', '부산역', '편의점', '속보', '12가3456', '경기 종료', '삼성 2 : 1 기아', '떡볶이')


def sized_flags(args, **sizes):
    flags = list(args)
    for name, value in sizes.items():
        flags[flags.index(f'--{name}') + 1] = str(value)
    return flags


@pytest.mark.parametrize('grow', [('hidden_size',), ('output_channel',), ('output_channel', 'hidden_size')])
def test_the_widened_shipped_model_reads_korean_as_the_shipped_model_does(tmp_path, render_word, capsys, grow):
    images = []
    for i, word in enumerate(WORDS):
        images.append(tmp_path / f'{i}.png')
        images[-1].write_bytes(render_word(word, size=(40 + 26 * len(word), 36)))
    output = tmp_path / 'wide' / 'start.pth'
    old = read_model_config(SHIPPED)
    new = {name: old[name] + 64 for name in grow}
    widen_model.main(['--saved_model', SHIPPED, '--output', str(output)]
                     + [arg for name, size in new.items() for arg in (f'--{name}', str(size))])
    printed = capsys.readouterr().out
    for name, size in new.items():
        assert f'--{name} {old[name]} -> {size}' in printed
    config = json.loads(output.with_suffix('.json').read_text(encoding='utf-8'))
    assert all(config[name] == new.get(name, old[name]) for name in ('hidden_size', 'output_channel'))
    assert config['imgH'] == 48 and len(config['character']) == 2445
    weights = read_checkpoint(output)
    hidden, channels = config['hidden_size'], config['output_channel']
    assert weights['Prediction.weight'].shape == (2446, hidden)
    assert weights['FeatureExtraction.ConvNet.0.weight'].shape[0] == channels // 8
    assert weights['SequenceModeling.0.rnn.weight_ih_l0'].shape == (4 * hidden, channels)
    shipped = Recognizer.from_checkpoint(SHIPPED).read([str(p) for p in images])
    widened = Recognizer.from_checkpoint(output).read([str(p) for p in images])
    assert [text for text, _ in widened] == [text for text, _ in shipped]
    assert sum(text == word for (text, _), word in zip(shipped, WORDS)) >= 6  # it reads, so the check means something
    assert [c for _, c in widened] == pytest.approx([c for _, c in shipped], rel=1e-4)


@pytest.mark.parametrize('grow, reads_new, new_rows', [
    # --hidden_size: the CTC layer reads the 16 new units of each direction; the second BiLSTM's new units
    ({'hidden_size': 48}, 'Prediction.weight', ('SequenceModeling.1.rnn.weight_hh_l0', slice(48 * 3 + 32, None))),
    # --output_channel: the first BiLSTM reads the 32 new channels; the first convolution's 4 new filters
    ({'output_channel': 64}, 'SequenceModeling.0.rnn.weight_ih_l0', ('FeatureExtraction.ConvNet.0.weight', slice(4, None))),
])
def test_train_py_fine_tunes_the_widened_model_from_what_it_had_learnt(tmp_path, learned_model, monkeypatch, capsys,
                                                                       grow, reads_new, new_rows):
    widened = tmp_path / 'widened.pth'
    flags = [arg for name, size in grow.items() for arg in (f'--{name}', str(size))]
    widen_model.main(['--saved_model', learned_model.checkpoint, '--output', str(widened)] + flags)
    # test.py with no model flag: the widened model reads the four training words as before
    test_script.main(['--eval_data', learned_model.lmdb, '--saved_model', str(widened), '--workers', '0'])
    assert accuracy_line(capsys.readouterr().out) == '100.000'

    monkeypatch.chdir(tmp_path)
    train.main(sized_flags(learned_model.args, **grow) + [
        '--saved_model', str(widened), '--train_data', learned_model.data_root, '--valid_data', learned_model.lmdb,
        '--select_data', '/', '--batch_ratio', '1', '--batch_size', '4', '--workers', '0', '--num_iter', '20',
        '--valInterval', '10', '--adam', '--lr', '0.0005', '--num_threads', '1', '--exp_name', 'wide', '--save_last'])
    assert f'loading pretrained model from {widened}' in capsys.readouterr().out  # a strict load: every tensor fits
    trained = read_checkpoint(tmp_path / 'saved_models' / 'wide' / 'last.pth')
    start = read_checkpoint(widened)
    # the new units' outgoing weights started at zero (the old size is 32) and training gave them
    # values; the new units' own weights learnt too
    assert start[reads_new][:, 32:].abs().max() == 0
    assert trained[reads_new][:, 32:].abs().max() > 0
    key, rows = new_rows
    assert trained[key][rows].ne(start[key][rows]).any()
    # it went on reading what it had learnt: validated after its first step and at its last
    rows = list(csv.DictReader(open(tmp_path / 'saved_models' / 'wide' / 'metrics.csv', encoding='utf-8')))
    assert [(row['iteration'], float(row['accuracy'])) for row in rows] == [('1', 100.0), ('10', 100.0), ('20', 100.0)]


def test_bad_input_fails_with_one_line_and_writes_nothing(tmp_path, learned_model):
    def error(*argv):
        with pytest.raises(SystemExit) as raised:
            run_script(widen_model.main, list(argv))
        return str(raised.value)

    output = tmp_path / 'out.pth'
    message = error('--saved_model', learned_model.checkpoint, '--hidden_size', '32', '--output', str(output))
    assert message.startswith('error: --hidden_size 32: the checkpoint\'s is 32; expected a larger one')
    bare = tmp_path / 'bare' / 'model.pth'
    bare.parent.mkdir()
    bare.write_bytes(open(learned_model.checkpoint, 'rb').read())
    message = error('--saved_model', str(bare), '--hidden_size', '64', '--output', str(output))
    assert message.startswith(f'error: {bare}: no model configuration beside it') and '\n' not in message
    message = error('--saved_model', learned_model.checkpoint, '--output_channel', '16', '--output', str(output))
    assert message.startswith('error: --output_channel 16: the checkpoint\'s is 32; expected a larger one')
    message = error('--saved_model', learned_model.checkpoint, '--output', str(output))
    assert message == "error: nothing to widen: give --hidden_size, --output_channel or both, larger than the model's"
    message = error('--saved_model', learned_model.checkpoint, '--hidden_size', '64', '--output', str(tmp_path / 'o.onnx'))
    assert message == "error: --output '" + str(tmp_path / 'o.onnx') + "': expected a .pth file (its .json is written beside it)"
    assert sorted(os.listdir(tmp_path)) == ['bare']


def test_only_bilstm_ctc_models_widen_their_hidden_size_and_vgg_bilstm_their_channels(tmp_path):
    attn = small_checkpoint(tmp_path, ('None', 'VGG', 'BiLSTM', 'Attn'))
    resnet = small_checkpoint(tmp_path, ('None', 'ResNet', 'BiLSTM', 'CTC'))
    cases = [(attn, '--hidden_size', 'a BiLSTM-Attn model; only BiLSTM-CTC models can be widened'),
             (resnet, '--output_channel', 'a ResNet-BiLSTM model; only VGG-BiLSTM models can have their '
                                          '--output_channel widened')]
    for checkpoint, flag, expected in cases:
        with pytest.raises(SystemExit) as raised:
            run_script(widen_model.main, ['--saved_model', str(checkpoint), flag, '64', '--output', str(tmp_path / 'w.pth')])
        assert str(raised.value) == f'error: {checkpoint}: {expected}'
    assert not (tmp_path / 'w.pth').exists()
    # an Attn model's feature extractor widens: what it reads is the BiLSTM's, not the features
    widen_model.main(['--saved_model', str(attn), '--output_channel', '64', '--output', str(tmp_path / 'w.pth')])
    assert read_checkpoint(tmp_path / 'w.pth')['FeatureExtraction.ConvNet.18.weight'].shape[0] == 64
