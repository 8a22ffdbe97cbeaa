"""widen_model.py: a widened checkpoint reads what the trained one reads (the shipped Korean model
on rendered Korean words, the session's trained model under test.py), train.py fine-tunes it at
the new size and its new units learn; bad input fails with one line and writes nothing."""
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


def hidden_flags(args, hidden_size):
    flags = list(args)
    flags[flags.index('--hidden_size') + 1] = str(hidden_size)
    return flags


def test_the_widened_shipped_model_reads_korean_as_the_shipped_model_does(tmp_path, render_word, capsys):
    images = []
    for i, word in enumerate(WORDS):
        images.append(tmp_path / f'{i}.png')
        images[-1].write_bytes(render_word(word, size=(40 + 26 * len(word), 36)))
    output = tmp_path / 'wide' / 'start.pth'
    hidden = read_model_config(SHIPPED)['hidden_size']
    widen_model.main(['--saved_model', SHIPPED, '--hidden_size', str(hidden + 64), '--output', str(output)])
    assert f'hidden_size {hidden} -> {hidden + 64}' in capsys.readouterr().out
    config = json.loads(output.with_suffix('.json').read_text(encoding='utf-8'))
    assert config['hidden_size'] == hidden + 64 and config['imgH'] == 48 and len(config['character']) == 2445
    assert read_checkpoint(output)['Prediction.weight'].shape == (2446, hidden + 64)
    shipped = Recognizer.from_checkpoint(SHIPPED).read([str(p) for p in images])
    widened = Recognizer.from_checkpoint(output).read([str(p) for p in images])
    assert [text for text, _ in widened] == [text for text, _ in shipped]
    assert sum(text == word for (text, _), word in zip(shipped, WORDS)) >= 6  # it reads, so the check means something
    assert [c for _, c in widened] == pytest.approx([c for _, c in shipped], rel=1e-4)


def test_train_py_fine_tunes_the_widened_model_from_what_it_had_learnt(tmp_path, learned_model, monkeypatch, capsys):
    widened = tmp_path / 'widened.pth'
    widen_model.main(['--saved_model', learned_model.checkpoint, '--hidden_size', '48', '--output', str(widened)])
    # test.py with no model flag: the widened model reads the four training words as before
    test_script.main(['--eval_data', learned_model.lmdb, '--saved_model', str(widened), '--workers', '0'])
    assert accuracy_line(capsys.readouterr().out) == '100.000'

    monkeypatch.chdir(tmp_path)
    args = hidden_flags(learned_model.args, 48)
    train.main(args + ['--saved_model', str(widened), '--train_data', learned_model.data_root,
                       '--valid_data', learned_model.lmdb, '--select_data', '/', '--batch_ratio', '1',
                       '--batch_size', '4', '--workers', '0', '--num_iter', '20', '--valInterval', '10',
                       '--adam', '--lr', '0.0005', '--num_threads', '1', '--exp_name', 'wide', '--save_last'])
    out = capsys.readouterr().out
    assert f'loading pretrained model from {widened}' in out  # a strict load: every tensor fits
    trained = read_checkpoint(tmp_path / 'saved_models' / 'wide' / 'last.pth')
    start = read_checkpoint(widened)
    # the new units' outgoing weights started at zero and training gave them values
    assert start['Prediction.weight'][:, 32:].abs().max() == 0
    assert trained['Prediction.weight'][:, 32:].abs().max() > 0
    assert trained['SequenceModeling.1.rnn.weight_hh_l0'][48 * 3 + 32:].ne(start['SequenceModeling.1.rnn.weight_hh_l0'][48 * 3 + 32:]).any()
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
    message = error('--saved_model', learned_model.checkpoint, '--hidden_size', '64', '--output', str(tmp_path / 'o.onnx'))
    assert message == "error: --output '" + str(tmp_path / 'o.onnx') + "': expected a .pth file (its .json is written beside it)"
    assert sorted(os.listdir(tmp_path)) == ['bare']


def test_only_bilstm_ctc_models_widen(tmp_path):
    attn = small_checkpoint(tmp_path, ('None', 'VGG', 'BiLSTM', 'Attn'))
    with pytest.raises(SystemExit) as raised:
        run_script(widen_model.main, ['--saved_model', str(attn), '--hidden_size', '64', '--output', str(tmp_path / 'w.pth')])
    assert 'a BiLSTM-Attn model; only BiLSTM-CTC models can be widened' in str(raised.value)
    assert not (tmp_path / 'w.pth').exists()
