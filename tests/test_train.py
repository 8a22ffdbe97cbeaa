"""train.py end to end on tiny LMDBs of rendered Korean words: files written, the printed
validation block and sample table, checkpoints that test.py and demo.py load, a model that
learns, resuming, Ctrl-C, fine-tuning onto a Korean alphabet and batch-balanced data."""
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

import demo
import test as test_script
import train
from conftest import LEARNED_WORDS, REPO, TINY_CTC, accuracy_line, run_torchrun_two_processes
from model import read_checkpoint
from utils import finish_common_options, run_script

torch.set_num_threads(1)

VALIDATION_BLOCK = re.compile(
    r'^\[(\d+)/(\d+)\] Train loss: \d+\.\d{5}, Valid loss: \d+\.\d{5}, Elapsed_time: \d+\.\d{5}\n'
    r'Current_accuracy : (\d+\.\d{3}), Current_norm_ED  : (\d+\.\d{2})\n'
    r'Best_accuracy    : (\d+\.\d{3}), Best_norm_ED     : (\d+\.\d{2})\n'
    r'-{80}\n'
    r'Ground Truth              \| Prediction                \| Confidence Score & T/F\n'
    r'-{80}\n'
    r'((?:.* \| .* \| \d\.\d{4}\t(?:True|False)\n)+)'
    r'-{80}$', re.MULTILINE)
SAMPLE_ROW = re.compile(r'^(.{25,}) \| (.{25,}) \| (\d\.\d{4})\t(True|False)$')


# what train.py writes in saved_models/<exp_name>/: upstream's files, then ours (the model
# configuration beside each .pth, the exact-resume state, metrics as CSV, TensorBoard and PNG)
UPSTREAM_FILES = ['best_accuracy.pth', 'best_norm_ED.pth', 'log_dataset.txt', 'log_train.txt', 'opt.txt']
ADDED_FILES = ['best_accuracy.json', 'best_norm_ED.json', 'metrics.csv', 'tensorboard', 'train_state.pth',
               'training_curves.png']


def exp_files(*extra):
    return sorted(UPSTREAM_FILES + ADDED_FILES + list(extra))


def validations(text):
    """[(iteration, num_iter, current accuracy, current norm_ED, best accuracy, best norm_ED,
    [(gt, prediction, confidence, flag)])] for every validation block in ``text``."""
    blocks = []
    for m in VALIDATION_BLOCK.finditer(text):
        rows = []
        for line in m.group(7).splitlines():
            row = SAMPLE_ROW.match(line)
            assert row, f'sample row {line!r} does not follow "{{gt:25s}} | {{pred:25s}} | {{conf:0.4f}}\\tT/F"'
            gt, pred = row.group(1), row.group(2)
            assert gt == f'{gt.rstrip():25s}' and pred == f'{pred.rstrip():25s}'
            rows.append((gt.rstrip(), pred.rstrip(), float(row.group(3)), row.group(4)))
        blocks.append((int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4)),
                       float(m.group(5)), float(m.group(6)), rows))
    return blocks


def train_argv(train_data, valid_data, *extra, arch=TINY_CTC):
    return list(arch) + ['--train_data', str(train_data), '--valid_data', str(valid_data),
                         '--select_data', '/', '--batch_ratio', '1', '--batch_size', '4',
                         '--workers', '0', '--num_threads', '1', '--adam', '--lr', '0.005'] + list(extra)


def arch_for(prediction, transformation='None'):
    args = list(TINY_CTC)
    args[args.index('--Prediction') + 1] = prediction
    args[args.index('--Transformation') + 1] = transformation
    return args


# ------------------------------------------------------------------------------------------


def test_a_model_learns_korean_words_and_test_py_agrees(learned_model, tmp_path, monkeypatch, capsys):
    exp_dir = learned_model.exp_dir
    assert os.path.basename(exp_dir) == 'None-VGG-BiLSTM-CTC-Seed1111'  # upstream's default exp_name
    assert sorted(os.listdir(exp_dir)) == exp_files()
    blocks = validations(learned_model.stdout)
    assert [b[0] for b in blocks] == [1, 50, 100, 150, 200] and all(b[1] == 200 for b in blocks)
    last = blocks[-1]
    assert last[2] == 100.0 and last[3] == 1.0 and last[4] == 100.0 and last[5] == 1.0
    assert learned_model.best_accuracy == 100.0
    assert sorted(gt for gt, *_ in last[6]) == sorted(LEARNED_WORDS)  # all 4 validation samples
    for gt, pred, confidence, flag in last[6]:
        assert pred == gt and flag == 'True' and 0.5 < confidence <= 1.0
    # best values never decrease and follow the current ones
    for previous, current in zip(blocks, blocks[1:]):
        assert current[4] == max(previous[4], current[2])
    with open(os.path.join(exp_dir, 'log_train.txt'), encoding='utf-8') as f:
        assert validations(f.read()) == blocks  # the log holds exactly what was printed

    monkeypatch.chdir(tmp_path)
    shutil.copytree(exp_dir, 'saved_models/learned')
    accuracy = test_script.main(learned_model.args + ['--eval_data', learned_model.lmdb, '--workers', '0',
                                                      '--saved_model', 'saved_models/learned/best_accuracy.pth'])
    assert accuracy == 100.0
    assert accuracy_line(capsys.readouterr().out) == '100.000'


def test_opt_txt_and_log_dataset(learned_model):
    with open(os.path.join(learned_model.exp_dir, 'opt.txt'), encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert lines[0] == '------------ Options -------------'
    assert lines[-1] == '---------------------------------------'
    options = dict(line.split(': ', 1) for line in lines[1:-1])
    assert options['exp_name'] == 'None-VGG-BiLSTM-CTC-Seed1111'
    assert options['character'] == '가나다라마바사-AaBb7' and options['sensitive'] == 'True'
    assert options['num_iter'] == '200' and options['manualSeed'] == '1111'
    assert options['select_data'] == "['/']" and options['num_class'] == '14'
    with open(os.path.join(learned_model.exp_dir, 'log_dataset.txt'), encoding='utf-8') as f:
        log = f.read()
    assert f'dataset_root: {learned_model.data_root}' in log
    assert 'Total_batch_size: 4 = 4' in log
    assert f'dataset_root:    {learned_model.lmdb}\t dataset: /' in log  # the validation data


def test_checkpoints_are_module_prefixed_state_dicts(learned_model):
    for name in ('best_accuracy.pth', 'best_norm_ED.pth'):
        raw = torch.load(os.path.join(learned_model.exp_dir, name), map_location='cpu', weights_only=True)
        assert raw and all(key.startswith('module.') for key in raw)
        assert raw['module.Prediction.weight'].shape == (14, 32)
        assert 'module.SequenceModeling.0.rnn.weight_ih_l0' in raw


def test_attn_validation_schedule_and_five_sample_table(tmp_path, monkeypatch, make_lmdb, capsys):
    monkeypatch.chdir(tmp_path)
    make_lmdb(tmp_path / 'data' / 'train', ['가나', '다라'])
    valid = make_lmdb(tmp_path / 'valid', ['가나', '다라', '가다', '나라', '라가', '나나'])
    argv = train_argv(tmp_path / 'data', valid, '--exp_name', 'attn', '--character', '가나다라',
                      '--num_iter', '6', '--valInterval', '3', arch=arch_for('Attn'))
    argv[argv.index('--batch_size') + 1] = '6'  # one validation batch: the table shows its first five
    train.main(argv)
    out = capsys.readouterr().out
    blocks = validations(out)
    assert [(b[0], b[1]) for b in blocks] == [(1, 6), (3, 6), (6, 6)]
    for block in blocks:
        rows = block[6]
        assert len(rows) == 5  # five of the six validation samples
        assert {gt for gt, *_ in rows} <= {'가나', '다라', '가다', '나라', '라가', '나나'}
        for gt, pred, confidence, flag in rows:
            assert '[s]' not in pred and '[GO]' not in pred
            assert flag == str(pred == gt)
            assert confidence == 0.0 if pred == '' else 0.0 < confidence <= 1.0
    assert sorted(os.listdir('saved_models/attn')) == exp_files()
    assert 'end the training' in out


def test_tps_checkpoint_loads_in_test_and_demo(tmp_path, monkeypatch, make_lmdb, render_word, capsys):
    monkeypatch.chdir(tmp_path)
    lmdb_path = make_lmdb(tmp_path / 'data' / 'train', ['가나', '다라'])
    arch = arch_for('CTC', transformation='TPS')
    train.main(train_argv(tmp_path / 'data', lmdb_path, '--character', '가나다라', '--num_iter', '2',
                          '--valInterval', '1', arch=arch))
    checkpoint = 'saved_models/TPS-VGG-BiLSTM-CTC-Seed1111/best_accuracy.pth'
    keys = read_checkpoint(checkpoint)
    assert 'Transformation.GridGenerator.P_hat' in keys and 'Transformation.LocalizationNetwork.localization_fc2.bias' in keys
    capsys.readouterr()
    accuracy = test_script.main(arch + ['--character', '가나다라', '--eval_data', lmdb_path,
                                        '--saved_model', checkpoint, '--workers', '0'])
    assert accuracy_line(capsys.readouterr().out) == f'{accuracy:0.3f}'
    os.mkdir('images')
    with open('images/가나.png', 'wb') as f:
        f.write(render_word('가나'))
    results = demo.main(arch + ['--character', '가나다라', '--image_folder', 'images',
                                '--saved_model', checkpoint, '--workers', '0'])
    assert [path for path, _, _ in results] == [os.path.join('images', '가나.png')]


def test_resume_from_iter_checkpoint(learned_model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(learned_model.checkpoint, 'iter_30.pth')
    argv = train_argv(learned_model.data_root, learned_model.lmdb, '--exp_name', 'resumed',
                      '--saved_model', 'iter_30.pth', '--num_iter', '32', '--valInterval', '1',
                      '--lr', '0.0001', arch=learned_model.args)
    train.main(argv)
    out = capsys.readouterr().out
    assert 'continue to train, start_iter: 30' in out
    blocks = validations(out)
    assert [(b[0], b[1]) for b in blocks] == [(31, 32), (32, 32)]
    assert blocks[0][2] == 100.0  # the loaded weights, not a fresh model


def _read_lines(stream, lines):
    for line in iter(stream.readline, ''):
        lines.put(line)
    lines.put(None)


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(learned_model, tmp_path, monkeypatch, capsys):
    """A real ``python train.py`` with a DataLoader worker, interrupted like a terminal's Ctrl-C
    (SIGINT to the whole process group)."""
    argv = train_argv(learned_model.data_root, learned_model.lmdb, '--exp_name', 'ctrlc',
                      '--num_iter', '100000', '--valInterval', '100000', '--workers', '1',
                      arch=learned_model.args)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'train.py')] + argv, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    output = []
    deadline = time.monotonic() + 60
    try:
        # wait until the first validation's table has been printed: training is under way
        while not re.search(r'\[1/100000\][^$]*?Ground Truth.*?\n-{80}\n(?:.*\n)*?-{80}\n',
                            ''.join(output), re.DOTALL):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, 'train.py ended early:\n' + ''.join(output)
            output.append(line)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    while (line := lines.get(timeout=10)) is not None:
        output.append(line)
    text = ''.join(output)
    assert returncode == 130, text
    m = re.search(r'interrupted at iteration (\d+); the model is saved in (\S+)\.\n'
                  r'Resume with the same command plus --saved_model (\S+)\n', text)
    assert m, text
    iteration, saved = int(m.group(1)), m.group(2)
    assert iteration >= 1 and saved == m.group(3) == f'./saved_models/ctrlc/iter_{iteration}.pth'
    assert 'Traceback' not in text
    assert sorted(os.listdir(tmp_path / 'saved_models' / 'ctrlc')) == exp_files(
        f'iter_{iteration}.pth', f'iter_{iteration}.json')  # no temporary file left behind

    monkeypatch.chdir(tmp_path)
    resume = [a for a in argv if a != '100000'] + ['--saved_model', saved]
    resume[resume.index('--num_iter') + 1:resume.index('--num_iter') + 1] = [str(iteration + 1)]
    resume[resume.index('--valInterval') + 1:resume.index('--valInterval') + 1] = ['1']
    resume[resume.index('--workers') + 1] = '0'
    train.main(resume)
    out = capsys.readouterr().out
    assert f'continue to train, start_iter: {iteration}' in out
    assert [b[0] for b in validations(out)] == [iteration + 1]


def test_finetune_onto_a_korean_alphabet(tmp_path, monkeypatch, make_lmdb, capsys):
    monkeypatch.chdir(tmp_path)
    english = make_lmdb(tmp_path / 'en' / 'train', ['ab12', 'cd34'])
    train.main(train_argv(tmp_path / 'en', english, '--exp_name', 'english', '--num_iter', '1'))
    english_model = 'saved_models/english/best_accuracy.pth'
    korean = make_lmdb(tmp_path / 'ko' / 'train', ['가나', '다라'])
    alphabet = tmp_path / 'ko.txt'
    alphabet.write_text('가\n나\n다\n라\n', encoding='utf-8')
    base = train_argv(tmp_path / 'ko', korean, '--character', str(alphabet), '--num_iter', '1',
                      '--saved_model', english_model)
    capsys.readouterr()

    with pytest.raises(SystemExit) as info:
        run_script(train.main, base + ['--exp_name', 'strict'])
    message = str(info.value.code)
    assert english_model in message and '37' in message and ' 5' in message
    assert 'Prediction.weight' in message

    # with --lr 0 the step changes nothing, so the saved model shows exactly what was loaded
    train.main(base + ['--exp_name', 'finetuned', '--FT', '--lr', '0'])
    out = capsys.readouterr().out
    source, tuned = read_checkpoint(english_model), read_checkpoint('saved_models/finetuned/best_accuracy.pth')
    assert f'Loaded {len(source) - 2} tensors from {english_model}' in out
    assert re.search(r'Prediction\.weight: shape \[37, 32\] in the checkpoint vs \[5, 32\] in the model', out)
    assert re.search(r'Prediction\.bias: shape \[37\] in the checkpoint vs \[5\] in the model', out)
    assert tuned['Prediction.weight'].shape == (5, 32)
    for key, tensor in source.items():
        if key.startswith('Prediction.') or 'running_' in key or 'num_batches' in key:
            continue  # BatchNorm statistics move in every training forward pass
        assert torch.equal(tensor, tuned[key]), key


def test_starting_from_a_model_that_read_images_otherwise_says_so(tmp_path, monkeypatch, make_lmdb, capsys):
    # the weights load at any --imgW and with or without --PAD, so only this line tells a user
    # who fine-tunes with other flags that images are now read as the model never learnt
    monkeypatch.chdir(tmp_path)
    data = make_lmdb(tmp_path / 'data' / 'train', ['가나', '다라'])
    base = train_argv(tmp_path / 'data', data, '--character', '가나다라', '--num_iter', '1')
    train.main(base + ['--exp_name', 'wide', '--imgW', '160', '--PAD'])
    start = base + ['--saved_model', 'saved_models/wide/best_accuracy.pth', '--FT']
    capsys.readouterr()

    train.main(start + ['--exp_name', 'stretched'])
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith('note: ')]
    assert notes == ['note: saved_models/wide/best_accuracy.json says the model read images at --imgH 32 '
                     '--imgW 160 --PAD; this run reads them at --imgH 32 --imgW 100 without --PAD '
                     '(the weights load either way; give its flags to read images as it learnt to)']

    train.main(start + ['--exp_name', 'same', '--imgW', '160', '--PAD'])
    assert 'note: ' not in capsys.readouterr().out


def test_baidu_ctc_without_the_binding_fails_clearly(tmp_path, monkeypatch, make_lmdb):
    monkeypatch.chdir(tmp_path)
    lmdb_path = make_lmdb(tmp_path / 'data' / 'train', ['ab'])
    with pytest.raises(SystemExit) as info:
        train.main(train_argv(tmp_path / 'data', lmdb_path, '--baiduCTC', '--num_iter', '1'))
    assert 'warpctc_pytorch' in str(info.value.code) and '--baiduCTC' in str(info.value.code)


def test_select_data_and_batch_ratio_with_two_datasets_and_a_worker(tmp_path, monkeypatch, make_lmdb, capsys):
    monkeypatch.chdir(tmp_path)
    make_lmdb(tmp_path / 'data' / 'MJ' / 'train', ['가나', '다라', '나라'])
    make_lmdb(tmp_path / 'data' / 'ST', ['라가', '가다'])
    make_lmdb(tmp_path / 'data' / 'other', ['나나'])  # not selected
    valid = make_lmdb(tmp_path / 'valid', ['가나'])
    argv = train_argv(tmp_path / 'data', valid, '--exp_name', 'balanced', '--character', '가나다라',
                      '--num_iter', '3', '--valInterval', '3', '--workers', '1')
    argv[argv.index('--select_data') + 1] = 'MJ-ST'
    argv[argv.index('--batch_ratio') + 1] = '0.75-0.25'
    train.main(argv)
    out = capsys.readouterr().out
    with open('saved_models/balanced/log_dataset.txt', encoding='utf-8') as f:
        log = f.read()
    assert "opt.select_data: ['MJ', 'ST']" in log and "opt.batch_ratio: ['0.75', '0.25']" in log
    assert 'sub-directory:\t/MJ/train\t num samples: 3' in log
    assert 'sub-directory:\t/ST\t num samples: 2' in log
    assert 'other' not in log
    assert 'Total_batch_size: 3+1 = 4' in log
    assert [b[0] for b in validations(out)] == [1, 3]


def test_bad_input_is_one_line_from_the_command_line(tmp_path):
    """``python train.py`` from the repo root: --help works, and a missing dataset is reported
    in one line naming it, not a traceback."""
    help_run = subprocess.run([sys.executable, 'train.py', '--help'], cwd=REPO, capture_output=True,
                              text=True, timeout=60)
    assert help_run.returncode == 0
    for flag in ('--train_data', '--valid_data', '--select_data', '--batch_ratio', '--FT', '--adam',
                 '--baiduCTC', '--valInterval', '--num_iter', '--manualSeed', '--exp_name'):
        assert flag in help_run.stdout
    missing = tmp_path / 'nowhere'
    run = subprocess.run([sys.executable, os.path.join(REPO, 'train.py')] + train_argv(missing, missing),
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert 'Traceback' not in run.stderr and str(missing) in run.stderr


@pytest.mark.parametrize('flag', ['--valInterval', '--num_iter'])
def test_a_zero_count_is_refused_before_any_work(tmp_path, monkeypatch, capsys, flag):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        train.main(train_argv(tmp_path, tmp_path, flag, '0'))
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert f'argument {flag}: expected an integer of at least 1, got 0' in error
    assert not os.path.exists('saved_models')


def test_cosine_schedule_warms_up_then_decays_to_zero_and_none_is_constant():
    from train import lr_factor
    assert all(lr_factor(i, 1000, 'none') == 1.0 for i in (0, 500, 999))
    assert lr_factor(0, 1000, 'cosine') == pytest.approx(0.04)
    assert lr_factor(100, 1000, 'cosine') == pytest.approx(1.0)  # end of the 10 % warm-up
    assert lr_factor(550, 1000, 'cosine') == pytest.approx(0.5)  # half way through the decay
    assert lr_factor(1000, 1000, 'cosine') == pytest.approx(0.0, abs=1e-12)
    factors = [lr_factor(i, 1000, 'cosine') for i in range(100, 1001)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))


def test_resumed_run_continues_the_schedule(tmp_path):
    import argparse
    from train import lr_factor, make_scheduler
    opt = argparse.Namespace(num_iter=200, lr_schedule='cosine')
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=0.01)
    make_scheduler(opt, optimizer, start_iter=150)
    assert optimizer.param_groups[0]['lr'] == pytest.approx(0.01 * lr_factor(150, 200, 'cosine'))


# ------------------------------------------------------------------------------------------
# exact resume, SIGTERM, non-finite losses, metrics files, mixed precision, torchrun

RESUME_WORDS = ['가나', '다라', '나라', '라가', '가다', '나나', '다다', '라라', '가라', '나다']


def resume_argv(tmp_path, make_lmdb, *extra, arch=TINY_CTC):
    """Ten words, batch 4: an epoch is three batches, so eight steps cross two epoch ends."""
    if not (tmp_path / 'data').exists():
        make_lmdb(tmp_path / 'data' / 'train', RESUME_WORDS)
        make_lmdb(tmp_path / 'valid', RESUME_WORDS[:6])
    return train_argv(tmp_path / 'data', tmp_path / 'valid', '--character', '가나다라', '--manualSeed', '7',
                      *extra, arch=arch)


def final_state(exp):
    return torch.load(f'saved_models/{exp}/train_state.pth', weights_only=True)


def assert_same_training(a, b):
    assert a['model'].keys() == b['model'].keys()
    assert all(torch.equal(a['model'][k], b['model'][k]) for k in a['model'])  # bit-identical
    for pa, pb in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in ('exp_avg', 'exp_avg_sq'))
    assert a['progress'] == b['progress'] and a['data'] == b['data']


def without_elapsed(block_text):
    return re.sub(r'Elapsed_time: \d+\.\d+', 'Elapsed_time: -', block_text)


def blocks_after(out, iteration):
    return [without_elapsed(m.group(0)) for m in VALIDATION_BLOCK.finditer(out) if int(m.group(1)) > iteration]


def test_half_then_resume_gives_the_same_weights_and_log_as_one_run(tmp_path, monkeypatch, make_lmdb, capsys):
    monkeypatch.chdir(tmp_path)
    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'whole', '--num_iter', '8', '--valInterval', '4'))
    whole_out = capsys.readouterr().out
    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'halves', '--num_iter', '4', '--valInterval', '4'))
    capsys.readouterr()
    # --num_iter raised on resume; the folder stands for its latest state
    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'halves', '--num_iter', '8', '--valInterval', '4',
                           '--resume', 'saved_models/halves'))
    resumed_out = capsys.readouterr().out
    assert 'resuming from saved_models/halves/train_state.pth: iteration 4' in resumed_out
    assert_same_training(final_state('whole'), final_state('halves'))
    assert blocks_after(resumed_out, 4) == blocks_after(whole_out, 4) and len(blocks_after(whole_out, 4)) == 1
    with open('saved_models/halves/metrics.csv', encoding='utf-8') as f:
        assert [row.split(',')[0] for row in f.read().splitlines()] == ['iteration', '1', '4', '8']


def test_sigterm_saves_everything_and_resume_continues_exactly(tmp_path, monkeypatch, make_lmdb, capsys):
    """A real ``python train.py`` stopped by SIGTERM (a cluster's preemption) at whatever step it
    has reached, then resumed: the result is the uninterrupted run's, bit for bit."""
    monkeypatch.chdir(tmp_path)
    common = ['--num_iter', '300', '--valInterval', '100', '--lr_schedule', 'cosine']
    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'whole', *common))
    whole_out = capsys.readouterr().out
    argv = resume_argv(tmp_path, make_lmdb, '--exp_name', 'stopped', *common)
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'train.py')] + argv, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    output = []
    try:
        while not any(line.startswith('[1/300]') for line in output):
            line = lines.get(timeout=60)
            assert line is not None, ''.join(output)
            output.append(line)
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    while (line := lines.get(timeout=10)) is not None:
        output.append(line)
    text = ''.join(output)
    m = re.search(r'stopped by SIGTERM at iteration (\d+); the model is saved in (\S+)\.\n', text)
    assert returncode == 143 and m, text
    stopped_at = int(m.group(1))
    assert 1 <= stopped_at < 300 and os.path.isfile(f'saved_models/stopped/iter_{stopped_at}.pth')
    assert f'--resume ./saved_models/stopped' in text and 'Traceback' not in text
    assert final_state('stopped')['progress']['iteration'] == stopped_at

    train.main(argv + ['--resume', 'saved_models/stopped/train_state.pth'])
    resumed_out = capsys.readouterr().out
    assert_same_training(final_state('whole'), final_state('stopped'))
    assert blocks_after(resumed_out, stopped_at) == blocks_after(whole_out, stopped_at)


def test_time_limit_ends_the_run_in_time_validated_saved_and_resumable(tmp_path, monkeypatch, make_lmdb, capsys):
    """--time_limit on a run sized far beyond it: --num_iter is lowered to what fits (so the
    cosine schedule ends at the deadline), or the deadline stops it; either way the last
    iteration is validated, best_accuracy.pth and the training state are saved there, a line
    says so, and --resume carries on."""
    monkeypatch.chdir(tmp_path)
    argv = resume_argv(tmp_path, make_lmdb, '--exp_name', 'capped', '--num_iter', '100000',
                       '--valInterval', '50000', '--time_limit', '0.15', '--lr_schedule', 'cosine')
    started = time.time()
    train.main(argv)
    took = time.time() - started
    out = capsys.readouterr().out
    lowered = re.search(r'--time_limit 0.15 min: --num_iter lowered from 100000 to (\d+) at the measured speed', out)
    stopped = re.search(r'stopped by --time_limit 0.15 min at iteration (\d+) of (\d+); continue with '
                        r'--resume ./saved_models/capped', out)
    assert lowered or stopped, out[-3000:]
    reached = int(stopped.group(1)) if stopped else int(lowered.group(1))
    assert 1 < reached < 100000 and took < 60
    assert [b[0] for b in validations(out)] == [1, reached]
    assert final_state('capped')['progress']['iteration'] == reached
    assert os.path.isfile('saved_models/capped/best_accuracy.pth')
    assert 'last.pth' not in os.listdir('saved_models/capped')  # only with --save_last

    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'capped', '--num_iter', str(reached + 3),
                           '--valInterval', str(reached + 3), '--resume', 'saved_models/capped',
                           '--lr_schedule', 'cosine'))
    resumed = capsys.readouterr().out
    assert f'resuming from saved_models/capped/train_state.pth: iteration {reached}' in resumed
    assert final_state('capped')['progress']['iteration'] == reached + 3


def test_save_last_writes_the_last_iterations_weights_beside_the_best(tmp_path, monkeypatch, make_lmdb,
                                                                       capsys):
    """--save_last: last.pth holds the weights the run ended with (the training state's), with its
    .json so test.py reads it with no model flag."""
    monkeypatch.chdir(tmp_path)
    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'last', '--num_iter', '6', '--valInterval', '3',
                           '--save_last'))
    out = capsys.readouterr().out
    assert 'checkpoints in ./saved_models/last/: best_accuracy.pth, best_norm_ED.pth, last.pth (iteration 6)' in out
    assert sorted(os.listdir('saved_models/last')) == exp_files('last.pth', 'last.json')
    last = read_checkpoint('saved_models/last/last.pth')
    state = final_state('last')['model']
    assert last.keys() == {k.removeprefix('module.') for k in state}
    assert all(torch.equal(last[k.removeprefix('module.')], v) for k, v in state.items())
    test_script.main(['--eval_data', str(tmp_path / 'valid'), '--saved_model', 'saved_models/last/last.pth',
                      '--workers', '0'])
    assert 'loading pretrained model from saved_models/last/last.pth' in capsys.readouterr().out


def test_iterations_that_fit_the_time_left():
    # 0.1 s a step with 20 s left: 200 more steps
    assert train.iterations_that_fit(150, 0.1, 20.0) == 350
    assert train.iterations_that_fit(150, 0.1, -1.0) == 150  # already late: no more steps


@pytest.mark.parametrize('value', ['-1', 'soon', 'nan'])
def test_a_bad_time_limit_is_one_line(tmp_path, value):
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'train.py'), '--train_data', 'x', '--valid_data', 'y',
                           '--time_limit', value], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and 'argument --time_limit: expected a number of minutes' in proc.stderr


def test_resume_with_other_model_flags_or_optimizer_names_the_difference(tmp_path, monkeypatch, make_lmdb):
    monkeypatch.chdir(tmp_path)
    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'r', '--num_iter', '2', '--valInterval', '2'))
    argv = resume_argv(tmp_path, make_lmdb, '--exp_name', 'r', '--num_iter', '4', '--valInterval', '2',
                       '--resume', 'saved_models/r', '--imgW', '120')
    argv.remove('--adam')
    with pytest.raises(SystemExit) as info:
        run_script(train.main, argv)
    message = str(info.value.code)
    assert message.startswith('error: --resume saved_models/r/train_state.pth: this command differs')
    assert '--imgW: 100 then, 120 now' in message and 'optimizer: Adam then, Adadelta now' in message
    with pytest.raises(SystemExit, match=r'error: --resume and --saved_model both given'):
        run_script(train.main, argv + ['--saved_model', 'x.pth'])
    with pytest.raises(SystemExit, match=r'error: --resume nowhere/train_state.pth: no such training state'):
        run_script(train.main, resume_argv(tmp_path, make_lmdb, '--resume', 'nowhere/train_state.pth'))


def test_a_diverging_run_stops_naming_the_iteration_and_keeps_good_checkpoints(tmp_path, monkeypatch,
                                                                               make_lmdb, capsys):
    monkeypatch.chdir(tmp_path)
    argv = resume_argv(tmp_path, make_lmdb, '--exp_name', 'nan', '--num_iter', '200', '--valInterval', '1000')
    argv[argv.index('--lr') + 1] = '1e6'
    with pytest.raises(SystemExit) as info:
        run_script(train.main, argv)
    message = str(info.value.code)
    assert re.match(r'error: iteration \d+: the loss or its gradients were not finite for 5 iterations '
                    r'in a row, so training stopped', message), message
    assert 'warning: iteration' in capsys.readouterr().err
    # the checkpoint of the first validation is still the good one: finite weights
    weights = read_checkpoint('saved_models/nan/best_accuracy.pth')
    assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())


def test_metrics_csv_tensorboard_and_curves(learned_model):
    import csv
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    with open(os.path.join(learned_model.exp_dir, 'metrics.csv'), encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert [int(r['iteration']) for r in rows] == [1, 50, 100, 150, 200]
    assert float(rows[-1]['accuracy']) == 100.0 and float(rows[-1]['images_per_s']) > 0
    assert float(rows[0]['train_loss']) > float(rows[-1]['train_loss'])
    events = EventAccumulator(os.path.join(learned_model.exp_dir, 'tensorboard'))
    events.Reload()
    assert [e.step for e in events.Scalars('train/accuracy')] == [1, 50, 100, 150, 200]
    with Image.open(os.path.join(learned_model.exp_dir, 'training_curves.png')) as image:
        assert image.size == (800, 560)
    assert re.search(r'metrics: .*metrics\.csv, .*training_curves\.png, TensorBoard: tensorboard --logdir',
                     learned_model.stdout)


def test_amp_on_the_cpu_trains_in_bfloat16_and_float16_is_refused(tmp_path, monkeypatch, make_lmdb):
    monkeypatch.chdir(tmp_path)
    for arch in (TINY_CTC, arch_for('Attn')):
        exp = 'amp-' + arch[arch.index('--Prediction') + 1]
        best, _ = train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', exp, '--num_iter', '4',
                                         '--valInterval', '2', '--amp', arch=arch))
        assert 0.0 <= best <= 100.0
        assert test_script.main(['--eval_data', str(tmp_path / 'valid'), '--workers', '0',
                                 '--saved_model', f'saved_models/{exp}/best_accuracy.pth']) == best
    with pytest.raises(SystemExit, match=r'error: --amp_dtype float16 needs a CUDA GPU'):
        run_script(train.main, resume_argv(tmp_path, make_lmdb, '--amp', '--amp_dtype', 'float16'))
    with pytest.raises(SystemExit, match=r'error: --amp_dtype bfloat16 is given without --amp'):
        run_script(train.main, resume_argv(tmp_path, make_lmdb, '--amp_dtype', 'bfloat16'))


RANK_RECORDER = '''
import os, sys
sys.path.insert(0, {repo!r})
import dataset, train, utils
original = dataset.Batch_Balanced_Dataset.get_batch

def recording_get_batch(self):
    images, labels = original(self)
    with open(f'seen_rank{{os.environ["RANK"]}}.txt', 'a', encoding='utf-8') as f:
        f.write(' '.join(labels) + '\\n')
    return images, labels

dataset.Batch_Balanced_Dataset.get_batch = recording_get_batch
utils.run_script(train.main, sys.argv[1:])
'''


def test_torchrun_two_processes_train_on_disjoint_shards(tmp_path, make_lmdb):
    """A real 2-process gloo job under torchrun: it finishes, each process reads its own half of
    every epoch, only rank 0 writes, and the checkpoint loads in test.py with no model flags."""
    words = ['가나', '다라', '나라', '라가', '가다', '나나', '다다', '라라']
    make_lmdb(tmp_path / 'data' / 'train', words)
    valid = make_lmdb(tmp_path / 'valid', words)
    (tmp_path / 'recorder.py').write_text(RANK_RECORDER.format(repo=REPO), encoding='utf-8')
    argv = train_argv(tmp_path / 'data', valid, '--character', '가나다라', '--exp_name', 'ddp',
                      '--num_iter', '4', '--valInterval', '2')
    argv[argv.index('--batch_size') + 1] = '2'  # per process: 4 batches of 2 are one epoch in all
    run = run_torchrun_two_processes(['recorder.py'] + argv, cwd=tmp_path, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    seen = [(tmp_path / f'seen_rank{r}.txt').read_text(encoding='utf-8').split('\n')[:-1] for r in (0, 1)]
    assert [len(batches) for batches in seen] == [4, 4]
    first_epoch = [[w for batch in batches[:2] for w in batch.split()] for batches in seen]
    assert not set(first_epoch[0]) & set(first_epoch[1])
    assert sorted(first_epoch[0] + first_epoch[1]) == sorted(words)
    assert run.stdout.count('end the training') == 1  # one process speaks
    assert [b[0] for b in validations(run.stdout)] == [1, 2, 4]
    with open(tmp_path / 'saved_models' / 'ddp' / 'log_train.txt', encoding='utf-8') as f:
        assert len(validations(f.read())) == 3  # not one log per process
    resumed = run_torchrun_two_processes(['recorder.py'] + argv[:-4] + ['--num_iter', '6', '--valInterval', '2',
                                                                     '--resume', 'saved_models/ddp'],
                                         cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert 'resuming from saved_models/ddp/train_state.pth: iteration 4' in resumed.stdout
    assert [b[0] for b in validations(resumed.stdout)] == [6]
    evaluated = subprocess.run([sys.executable, os.path.join(REPO, 'test.py'), '--eval_data', valid,
                                '--saved_model', 'saved_models/ddp/best_accuracy.pth', '--workers', '0'],
                               cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert evaluated.returncode == 0, evaluated.stderr
    accuracy_line(evaluated.stdout)


def test_rendering_on_the_fly_in_a_worker_resumes_exactly(tmp_path, monkeypatch, make_lmdb, capsys):
    """--select_data render: images rendered inside a DataLoader worker, each draw new, and a
    run resumed half-way equals the run in one go."""
    monkeypatch.chdir(tmp_path)
    valid = make_lmdb(tmp_path / 'valid', RESUME_WORDS[:4])
    alphabet = os.path.join(REPO, 'korean', 'alphabets', 'ksx1001_with_space.txt')

    def argv(exp, num_iter, *extra):
        return train_argv(tmp_path, valid, '--character', alphabet, '--exp_name', exp, '--num_iter', num_iter,
                          '--valInterval', '2', '--workers', '1', '--select_data', 'render', *extra)

    train.main(argv('whole', '4'))
    train.main(argv('halves', '2'))
    train.main(argv('halves', '4', '--resume', 'saved_models/halves'))
    assert 'rendered on the fly: render' in capsys.readouterr().out
    assert_same_training(final_state('whole'), final_state('halves'))


@pytest.mark.parametrize('flags', [('--augment',), ('--augment', '--augment_glyphs')])
def test_augment_changes_the_training_images_and_resumes_exactly(tmp_path, monkeypatch, make_lmdb, capsys, flags):
    import argparse
    from dataset import Batch_Balanced_Dataset
    monkeypatch.chdir(tmp_path)
    argv = resume_argv(tmp_path, make_lmdb, '--num_iter', '4')
    opt = finish_common_options(train.build_parser().parse_args(argv + ['--exp_name', 'a', *flags]))
    plain = argparse.Namespace(**dict(vars(opt), augment=False, augment_glyphs=False))
    augmented_batch, labels = Batch_Balanced_Dataset(opt).get_batch()
    plain_batch, plain_labels = Batch_Balanced_Dataset(plain).get_batch()
    assert labels == plain_labels and not torch.equal(augmented_batch, plain_batch)
    if '--augment_glyphs' in flags:  # the glyph operations change what --augment alone draws
        camera_batch, _ = Batch_Balanced_Dataset(argparse.Namespace(**dict(vars(opt), augment_glyphs=False))).get_batch()
        assert not torch.equal(augmented_batch, camera_batch)
    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'whole', '--num_iter', '6', '--valInterval', '3',
                           *flags, '--workers', '1'))
    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'halves', '--num_iter', '3', '--valInterval', '3',
                           *flags, '--workers', '1'))
    train.main(resume_argv(tmp_path, make_lmdb, '--exp_name', 'halves', '--num_iter', '6', '--valInterval', '3',
                           *flags, '--resume', 'saved_models/halves'))  # and without the worker
    capsys.readouterr()
    assert_same_training(final_state('whole'), final_state('halves'))


def test_vertical_lays_out_tall_training_images_as_the_readers_do(tmp_path, monkeypatch, capsys):
    # vertical signs among the training images: train.py --vertical lays them out left to right
    # as demo.py and test.py --vertical read them, in its batches and its validation
    import argparse
    import io
    from PIL import Image, ImageDraw, ImageFont
    from conftest import KOREAN_FONT
    from create_lmdb_dataset import LmdbWriter
    from dataset import AlignCollate, Batch_Balanced_Dataset
    monkeypatch.chdir(tmp_path)
    font = ImageFont.truetype(KOREAN_FONT, 24)
    columns = {}
    for folder in ('data/train', 'valid'):
        with LmdbWriter(str(tmp_path / folder)) as writer:
            for word in RESUME_WORDS:
                column = Image.new('L', (40, 20 + 30 * len(word)), 255)
                for i, ch in enumerate(word):
                    ImageDraw.Draw(column).text((20, 22 + 30 * i), ch, fill=0, font=font, anchor='mm')
                png = io.BytesIO()
                column.save(png, format='PNG')
                writer.add(png.getvalue(), word)
                columns[word] = column
    argv = train_argv(tmp_path / 'data', tmp_path / 'valid', '--character', '가나다라', '--manualSeed', '7',
                      '--imgH', '32', '--imgW', '100', '--PAD', '--num_iter', '4', '--valInterval', '2',
                      '--exp_name', 'vertical', '--vertical', '1.2')
    opt = finish_common_options(train.build_parser().parse_args(argv))
    batch, labels = Batch_Balanced_Dataset(opt).get_batch()
    laid_out, _ = AlignCollate(imgH=32, imgW=100, keep_ratio_with_pad=True, vertical=1.2)(
        [(columns[label], label) for label in labels])
    assert torch.equal(batch, laid_out)
    as_stored, stored_labels = Batch_Balanced_Dataset(argparse.Namespace(**dict(vars(opt), vertical=0))).get_batch()
    assert stored_labels == labels and not torch.equal(as_stored, batch)
    train.main(argv)
    assert os.path.isfile('saved_models/vertical/best_accuracy.pth')
    from utils import InputError
    with pytest.raises(InputError, match=r'--vertical 0.5: expected 0 \(off\) or a height-to-width ratio of 1'):
        train.main(argv[:-1] + ['0.5'])
