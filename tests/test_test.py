"""test.py: the printed accuracy, ./result/{exp_name}/ and its logs, accuracy / norm_ED /
confidence per the contract and CER / jamo 1-NED after them (checked against reimplementations,
with models whose outputs are known), the --data_filtering_off and --sensitive rules,
--benchmark_all_eval and --save_errors."""
import csv
import os
import re
import shutil
import subprocess
import sys
import unicodedata

import pytest
import torch
from PIL import Image

import test as test_script
from conftest import LEARNED_WORDS, REPO
from model import Model
from utils import (AttnLabelConverter, CTCLabelConverter, RecognitionMetrics, finish_common_options, make_converter,
                   run_script)

torch.set_num_threads(1)

VGG_STEPS = 24  # CTC time steps of the VGG extractor at imgW 100 (contract section 5)


# ------------------------------------------------------------------------------------------
# the contract's metrics, written out independently


def levenshtein(a, b):
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def reference_scores(pairs, batch_max_length=25, sensitive_and_filtering_off=False):
    """(accuracy %, norm_ED) of (label, prediction) pairs as contract section 8 defines them."""
    correct, ned = 0, 0.0
    for gt, pred in pairs:
        if sensitive_and_filtering_off:
            gt = ''.join(c for c in gt.lower() if c in '0123456789abcdefghijklmnopqrstuvwxyz')
            pred = ''.join(c for c in pred.lower() if c in '0123456789abcdefghijklmnopqrstuvwxyz')
        correct += pred == gt and len(gt) <= batch_max_length
        if gt and pred:
            ned += 1 - levenshtein(gt, pred) / max(len(gt), len(pred))
    return 100.0 * correct / len(pairs), ned / len(pairs)


def reference_korean_metrics(pairs):
    """(CER, jamo 1-NED) of (label, prediction) pairs, with Unicode's NFD as the jamo split
    (the same as the arithmetic one for Hangul syllables; these labels hold no other letter
    NFD would change)."""
    errors = sum(levenshtein(gt, pred) for gt, pred in pairs)
    chars = sum(len(gt) for gt, _ in pairs)
    similarity = 0.0
    for gt, pred in pairs:
        gt, pred = unicodedata.normalize('NFD', gt), unicodedata.normalize('NFD', pred)
        if gt and pred:
            similarity += 1 - levenshtein(gt, pred) / max(len(gt), len(pred))
    return errors / chars, similarity / len(pairs)


def metrics_line(pairs):
    cer, similarity = reference_korean_metrics(pairs)
    return f'CER {cer:0.4f}\t jamo_1-NED {similarity:0.4f}'


def evaluate(argv, metrics=None):
    """What test.py computes for ``argv``, through its own functions, as validation()'s tuple."""
    opt = finish_common_options(test_script.build_parser().parse_args(argv))
    opt.num_gpu = 0
    device = torch.device('cpu')
    converter = make_converter(opt)
    model = test_script.load_model_for_inference(opt, device)
    _, _, loader = test_script.make_eval_loader(opt.eval_data, opt, opt.batch_size)
    with torch.no_grad():
        return test_script.validation(model, test_script.make_criterion(opt, device), loader, converter, opt,
                                      metrics)


def eval_argv(args, eval_data, checkpoint, *extra):
    return list(args) + ['--eval_data', str(eval_data), '--saved_model', str(checkpoint),
                         '--workers', '0', '--batch_size', '4'] + list(extra)


# ------------------------------------------------------------------------------------------
# metrics with models whose outputs are known


def test_ctc_accuracy_norm_ed_and_confidence(tmp_path, monkeypatch, make_lmdb, constant_model, capsys):
    monkeypatch.chdir(tmp_path)
    model = constant_model('CTC', 'xyz가', 'x')  # reads 'x' in every image
    labels = ['x', 'xy', 'y', '가', 'xx', '']
    argv = eval_argv(model.args, make_lmdb(tmp_path / 'eval', labels), model.checkpoint)
    _, accuracy, norm_ED, preds, confidences, last_labels, _, count = evaluate(argv)
    expected_accuracy, expected_ned = reference_scores([(gt, 'x') for gt in labels])
    assert count == 6 and last_labels == ['xx', '']  # two batches: 4 + 2
    assert accuracy == pytest.approx(expected_accuracy) and norm_ED == pytest.approx(expected_ned)
    assert preds == ['x', 'x']
    assert confidences == pytest.approx([model.probability ** VGG_STEPS] * 2, rel=1e-4)
    capsys.readouterr()
    assert test_script.main(argv) == pytest.approx(expected_accuracy)
    # upstream's accuracy line stays as it was; the Korean metrics follow it
    assert capsys.readouterr().out.splitlines()[-2:] == ['16.667', 'CER 0.7143\t jamo_1-NED 0.3333']
    assert metrics_line([(gt, 'x') for gt in labels]) == 'CER 0.7143\t jamo_1-NED 0.3333'


def test_validation_keeps_upstreams_tuple_and_fills_an_accumulator(tmp_path, make_lmdb, learned_model):
    images = ['가나', '다라마', '바-사', 'Ab7']
    labels = ['나나', '다라', '바-사', 'Ab7']
    argv = eval_argv(learned_model.args, make_lmdb(tmp_path / 'eval', labels, image_texts=images),
                     learned_model.checkpoint)
    metrics = RecognitionMetrics(keep_samples=True)
    result = evaluate(argv, metrics)
    assert len(result) == 8 and result[1:3] == evaluate(argv)[1:3]
    pairs = list(zip(labels, images))  # the learned model reads every image right
    assert (metrics.cer, metrics.jamo_similarity) == pytest.approx(reference_korean_metrics(pairs))
    assert metrics.cer == pytest.approx(2 / 10)  # 나→가 and an extra 마 over 10 label characters
    assert [(label, prediction, correct) for label, prediction, _, correct in metrics.samples] == [
        ('나나', '가나', False), ('다라', '다라마', False), ('바-사', '바-사', True), ('Ab7', 'Ab7', True)]


def test_attn_prediction_without_eos_is_kept_whole(tmp_path, make_lmdb, constant_model):
    model = constant_model('Attn', 'xyz', 'x', batch_max_length=3)  # 'x' at all 4 steps, never [s]
    labels = ['xxx', 'xx', 'x']
    argv = eval_argv(model.args, make_lmdb(tmp_path / 'eval', labels), model.checkpoint)
    _, accuracy, norm_ED, preds, confidences, _, _, _ = evaluate(argv)
    assert preds == ['xxxx'] * 3  # upstream cut the last character and scored 'xxx' correct
    assert (accuracy, norm_ED) == pytest.approx(reference_scores([(gt, 'xxxx') for gt in labels]))
    assert accuracy == 0.0
    assert confidences == pytest.approx([model.probability ** 4] * 3, rel=1e-4)


@pytest.mark.parametrize('prediction, blank', [('CTC', '[CTCblank]'), ('Attn', '[s]')])
def test_empty_prediction_has_confidence_zero(tmp_path, make_lmdb, constant_model, prediction, blank):
    model = constant_model(prediction, 'xyz', blank)
    labels = ['', 'x', 'xy']
    argv = eval_argv(model.args, make_lmdb(tmp_path / 'eval', labels), model.checkpoint)
    _, accuracy, norm_ED, preds, confidences, _, _, _ = evaluate(argv)
    assert preds == ['', '', ''] and confidences == [0.0, 0.0, 0.0]
    assert (accuracy, norm_ED) == pytest.approx(reference_scores([(gt, '') for gt in labels]))


def softmax_max(logits):
    return torch.tensor(logits, dtype=torch.float).softmax(-1).max(-1).values


def test_decode_predictions_confidence_is_the_product_before_eos():
    opt = type('Opt', (), {'Prediction': 'Attn'})()
    converter = AttnLabelConverter('ab')  # [GO]=0 [s]=1 a=2 b=3
    steps = [[0, 0, 3, 1], [0, 1, 0, 4], [0, 6, 1, 1], [0, 1, 3, 0], [0, 0, 5, 0]]  # a b [s] b [s]
    preds = torch.tensor([steps, [steps[2]] * 5], dtype=torch.float)
    first, second = test_script.decode_predictions(preds, converter, opt)
    assert first.text == 'ab' and second.text == ''
    expected = softmax_max(steps[:2]).prod().item()
    assert first.confidence == pytest.approx(expected) and second.confidence == 0.0

    opt.Prediction = 'CTC'
    converter = CTCLabelConverter('ab')  # blank=0 a=1 b=2
    steps = [[0, 4, 0], [0, 3, 0], [2, 0, 0], [0, 5, 1], [0, 0, 2]]  # a a - a b
    (prediction,) = test_script.decode_predictions(torch.tensor([steps], dtype=torch.float), converter, opt)
    assert prediction.text == 'aab'
    assert prediction.confidence == pytest.approx(softmax_max(steps).prod().item())


# ------------------------------------------------------------------------------------------
# the learned model: files, filtering rules, benchmarks


def test_result_folder_checkpoint_copy_and_appended_log(learned_model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.makedirs('saved_models/korean')
    shutil.copy(learned_model.checkpoint, 'saved_models/korean/best_accuracy.pth')
    argv = eval_argv(learned_model.args, learned_model.lmdb, 'saved_models/korean/best_accuracy.pth')
    for _ in range(2):
        assert test_script.main(argv) == 100.0
    assert capsys.readouterr().out.splitlines()[-2:] == ['100.000', 'CER 0.0000\t jamo_1-NED 1.0000']
    result = 'result/korean_best_accuracy.pth'
    assert sorted(os.listdir(result)) == ['best_accuracy.pth', 'log_evaluation.txt']
    with open(f'{result}/best_accuracy.pth', 'rb') as copy, open(learned_model.checkpoint, 'rb') as original:
        assert copy.read() == original.read()
    with open(f'{result}/log_evaluation.txt', encoding='utf-8') as f:
        entry = (f'dataset_root:    {learned_model.lmdb}\t dataset: /\n'
                 'sub-directory:\t/.\t num samples: 4\n100.000\nCER 0.0000\t jamo_1-NED 1.0000\n')
        assert f.read() == entry * 2

    os.makedirs('runs/a/b')
    shutil.copy(learned_model.checkpoint, 'runs/a/b/model.pth')
    test_script.main(eval_argv(learned_model.args, learned_model.lmdb, 'runs/a/b/model.pth'))
    assert os.path.isfile('result/a_b_model.pth/model.pth')


def without_sensitive(args):
    return [a for a in args if a != '--sensitive']


def test_data_filtering_off_counts_a_too_long_label_as_a_miss(learned_model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = without_sensitive(learned_model.args)
    argv = eval_argv(args, learned_model.lmdb, learned_model.checkpoint, '--batch_max_length', '2')
    assert test_script.main(argv) == 100.0  # only '가나' fits in 2 characters
    assert 'num samples: 1' in capsys.readouterr().out
    _, accuracy, _, preds, _, labels, _, count = evaluate(argv + ['--data_filtering_off'])
    assert count == 4
    assert preds == list(LEARNED_WORDS)  # every word read right, but only '가나' fits
    assert labels == ['가나', '다라마', 'ab7', '바-사']  # lower-cased: no --sensitive
    assert accuracy == pytest.approx(reference_scores(list(zip(labels, preds)), batch_max_length=2)[0]) == 25.0


def test_sensitive_with_filtering_off_compares_lower_case_alphanumerics(learned_model, tmp_path, make_lmdb, capsys):
    images = ['Ab7', 'Ab7', '가나', 'Ab7']
    labels = ['aB7', 'Ab7', '다라마', 'Ab']
    lmdb_path = make_lmdb(tmp_path / 'eval', labels, image_texts=images)
    argv = eval_argv(learned_model.args, lmdb_path, learned_model.checkpoint)
    assert '--sensitive' in argv
    _, accuracy, norm_ED, preds, _, _, _, _ = evaluate(argv)
    assert preds == images
    assert (accuracy, norm_ED) == pytest.approx(reference_scores(list(zip(labels, preds))))
    assert accuracy == 25.0
    _, accuracy, norm_ED, preds, _, _, _, _ = evaluate(argv + ['--data_filtering_off'])
    assert (accuracy, norm_ED) == pytest.approx(
        reference_scores(list(zip(labels, preds)), sensitive_and_filtering_off=True))
    assert accuracy == 75.0


def test_benchmark_all_eval(learned_model, tmp_path, monkeypatch, make_lmdb, capsys):
    monkeypatch.chdir(tmp_path)
    names = test_script.BENCHMARK_SETS
    assert names == ['IIIT5k_3000', 'SVT', 'IC03_860', 'IC03_867', 'IC13_857', 'IC13_1015',
                     'IC15_1811', 'IC15_2077', 'SVTP', 'CUTE80']
    expected = []
    for i, name in enumerate(names):
        images = [LEARNED_WORDS[(i + k) % 4] for k in range(1 + i % 3)]
        labels = [text if (i + k) % 3 else '가' for k, text in enumerate(images)]
        make_lmdb(tmp_path / 'evaluation' / name, labels, image_texts=images)
        expected.append((len(images), reference_scores(list(zip(labels, images))), list(zip(labels, images))))
    os.makedirs('saved_models/korean')
    shutil.copy(learned_model.checkpoint, 'saved_models/korean/best_accuracy.pth')
    argv = eval_argv(learned_model.args, 'evaluation', 'saved_models/korean/best_accuracy.pth',
                     '--benchmark_all_eval', '--save_errors')
    capsys.readouterr()
    test_script.main(argv)
    out = capsys.readouterr().out
    with open('result/korean_best_accuracy.pth/log_all_evaluation.txt', encoding='utf-8') as f:
        log = f.read()

    for (count, (accuracy, ned), pairs), name in zip(expected, names):
        block = (f'dataset_root:    evaluation/{name}\t dataset: /\nsub-directory:\t/.\t num samples: {count}\n'
                 f'Acc {accuracy:0.3f}\t normalized_ED {ned:0.3f}\n{metrics_line(pairs)}\n' + '-' * 80 + '\n')
        assert block in log
        with open(f'result/korean_best_accuracy.pth/{name}/predictions.csv', encoding='utf-8') as f:
            rows = list(csv.DictReader(f))
        assert [(row['label'], row['prediction']) for row in rows] == pairs
    total = sum(count * accuracy for count, (accuracy, _), _ in expected) / sum(count for count, _, _ in expected)
    opt = finish_common_options(test_script.build_parser().parse_args(argv))
    make_converter(opt)
    parameters = sum(p.numel() for p in Model(opt).parameters())
    pattern = ''.join(f'{name}: {accuracy:0.3f}\t' for name, (_, (accuracy, _), _) in zip(names, expected))
    pattern = (re.escape(f'accuracy: {pattern}total_accuracy: {total:0.3f}\t')
               + r'averaged_infer_time: \d+\.\d{3}\t' + re.escape(f'# parameters: {parameters / 1e6:0.3f}'))
    final = re.fullmatch(pattern, log.splitlines()[-1])
    assert final, log.splitlines()[-1]
    assert out.splitlines()[-1] == log.splitlines()[-1]
    assert log.startswith('-' * 80 + '\n')


# ------------------------------------------------------------------------------------------
# --save_errors


def read_csv(path):
    with open(path, encoding='utf-8', newline='') as f:
        return list(csv.reader(f))


def test_save_errors_with_a_known_output_model(tmp_path, monkeypatch, make_lmdb, constant_model, capsys):
    monkeypatch.chdir(tmp_path)
    model = constant_model('CTC', 'xyz가', 'x')  # reads 'x' in every image
    lmdb_path = make_lmdb(tmp_path / 'eval', ['x', '가', 'xy', 'x가'])
    argv = eval_argv(model.args, lmdb_path, model.checkpoint, '--save_errors')
    test_script.main(argv)
    out = capsys.readouterr().out.splitlines()
    result = os.path.join('.', 'result', test_script.result_name(model.checkpoint))
    # CER (0 + 1 + 1 + 1) / 6 characters; jamo 1-NED (1 + 0 + 1/2 + 1/3) / 4, 가 being ㄱㅏ
    assert out[-3:-1] == ['25.000', 'CER 0.5000\t jamo_1-NED 0.4583']  # upstream's line, ours after it
    assert out[-1] == (f'errors: {result}/predictions.csv, {result}/confusions.csv, '
                       f'{result}/worst_errors.png')
    confidence = f'{model.probability ** VGG_STEPS:.6f}'
    assert read_csv(f'{result}/predictions.csv') == [
        ['lmdb', 'index', 'label', 'prediction', 'confidence', 'correct'],
        [lmdb_path, '1', 'x', 'x', confidence, 'True'],
        [lmdb_path, '2', '가', 'x', confidence, 'False'],
        [lmdb_path, '3', 'xy', 'x', confidence, 'False'],
        [lmdb_path, '4', 'x가', 'x', confidence, 'False']]
    assert read_csv(f'{result}/confusions.csv') == [
        ['label_char', 'predicted_char', 'count'], ['y', '', '1'], ['가', '', '1'], ['가', 'x', '1']]
    with Image.open(f'{result}/worst_errors.png') as sheet:
        assert sheet.format == 'PNG' and sheet.width == 3 * 260  # three errors, one row
    assert not [name for name in os.listdir(result) if '.tmp' in name]


def test_save_errors_sheet_shows_the_least_confident_errors_first(learned_model, tmp_path, monkeypatch,
                                                                 make_lmdb, render_word):
    from korean.contact_sheet import contact_sheet
    monkeypatch.chdir(tmp_path)
    images = ['가나', '다라마', 'Ab7', '바-사', '가나']
    labels = ['가나', '다라', 'Ab7', '바사', '나가']
    lmdb_path = make_lmdb(tmp_path / 'eval', labels, image_texts=images)
    test_script.main(eval_argv(learned_model.args, lmdb_path, learned_model.checkpoint, '--save_errors'))
    result = os.path.join('result', test_script.result_name(learned_model.checkpoint))
    rows = read_csv(f'{result}/predictions.csv')[1:]
    assert [(row[2], row[3], row[5]) for row in rows] == [
        (label, image, str(label == image)) for label, image in zip(labels, images)]
    assert [row[1] for row in rows] == ['1', '2', '3', '4', '5'] and {row[0] for row in rows} == {lmdb_path}
    assert read_csv(f'{result}/confusions.csv')[1:] == [
        ['', '-', '1'], ['', '마', '1'], ['가', '나', '1'], ['나', '가', '1']]  # '' = nothing in the label
    wrong = sorted((row for row in rows if row[5] == 'False'), key=lambda row: float(row[4]))
    assert len({row[4] for row in wrong}) == 3  # distinct confidences, so the order means something
    expected = contact_sheet([(render_word(images[int(row[1]) - 1]), row[2], row[3]) for row in wrong],
                             tmp_path / 'expected.png')
    with Image.open(f'{result}/worst_errors.png') as got, Image.open(expected) as want:
        assert got.tobytes() == want.tobytes()

    # a second run with nothing wrong removes the first run's sheet rather than leave it to mislead
    test_script.main(eval_argv(learned_model.args, learned_model.lmdb, learned_model.checkpoint, '--save_errors'))
    assert not os.path.exists(f'{result}/worst_errors.png')
    assert read_csv(f'{result}/confusions.csv') == [['label_char', 'predicted_char', 'count']]
    assert all(row[5] == 'True' for row in read_csv(f'{result}/predictions.csv')[1:])


def test_save_errors_shows_an_undecodable_image_as_the_blank_the_model_read(tmp_path, monkeypatch,
                                                                           constant_model, render_word):
    import lmdb
    monkeypatch.chdir(tmp_path)
    model = constant_model('CTC', 'xyz가', 'x')
    env = lmdb.open(str(tmp_path / 'eval'), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b'num-samples', b'2')
        txn.put(b'image-000000001', b'not an image')
        txn.put(b'label-000000001', '가'.encode())
        txn.put(b'image-000000002', render_word('x'))
        txn.put(b'label-000000002', b'x')
    env.close()
    test_script.main(eval_argv(model.args, tmp_path / 'eval', model.checkpoint, '--save_errors'))
    result = os.path.join('result', test_script.result_name(model.checkpoint))
    # upstream reads it as a blank image labelled [dummy_label], cleaned to the alphabet: 'y'
    assert [row[2:4] + row[5:] for row in read_csv(f'{result}/predictions.csv')[1:]] == [
        ['y', 'x', 'False'], ['x', 'x', 'True']]
    with Image.open(f'{result}/worst_errors.png') as sheet:
        assert sheet.width == 260


# ------------------------------------------------------------------------------------------
# errors


def test_a_self_describing_checkpoint_needs_no_model_flags(learned_model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    full = test_script.main(eval_argv(learned_model.args, learned_model.lmdb, learned_model.checkpoint))
    bare = test_script.main(['--eval_data', learned_model.lmdb, '--saved_model', learned_model.checkpoint,
                             '--workers', '0'])
    assert bare == full == 100.0
    result = tmp_path / 'result' / test_script.result_name(learned_model.checkpoint)
    assert {'best_accuracy.pth', 'best_accuracy.json'} <= set(os.listdir(result))


def test_amp_evaluates_in_mixed_precision_with_upstreams_lines(learned_model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert test_script.main(['--eval_data', learned_model.lmdb, '--saved_model', learned_model.checkpoint,
                             '--workers', '0', '--amp']) == 100.0
    assert capsys.readouterr().out.splitlines()[-2:] == ['100.000', 'CER 0.0000\t jamo_1-NED 1.0000']


def test_a_bare_dtrb_checkpoint_still_needs_its_flags(learned_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bare = str(tmp_path / 'bare.pth')
    shutil.copy(learned_model.checkpoint, bare)
    with pytest.raises(SystemExit) as info:
        run_script(test_script.main, ['--eval_data', learned_model.lmdb, '--saved_model', bare])
    assert 'required: --Transformation' in str(info.value.code)
    assert test_script.main(eval_argv(learned_model.args, learned_model.lmdb, bare)) == 100.0


def test_checkpoint_for_another_alphabet_names_both_class_counts(learned_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bare = str(tmp_path / 'bare.pth')  # a DTRB checkpoint: no configuration beside it
    shutil.copy(learned_model.checkpoint, bare)
    args = without_sensitive(learned_model.args)
    args[args.index('--character') + 1] = '0123456789abcdefghijklmnopqrstuvwxyz'
    with pytest.raises(SystemExit) as info:
        run_script(test_script.main, eval_argv(args, learned_model.lmdb, bare))
    message = str(info.value.code)
    assert message.startswith('error: ') and bare in message
    assert '14 classes' in message and '37' in message


def test_save_errors_without_a_korean_font_is_one_line_and_keeps_the_csvs(tmp_path, monkeypatch, make_lmdb,
                                                                         constant_model):
    import korean.fonts
    monkeypatch.chdir(tmp_path)
    model = constant_model('CTC', 'xyz가', 'x')
    argv = eval_argv(model.args, make_lmdb(tmp_path / 'eval', ['가']), model.checkpoint, '--save_errors')
    monkeypatch.setattr(korean.fonts, 'find_korean_fonts', lambda *args, **kwargs: [])
    with pytest.raises(SystemExit) as info:
        run_script(test_script.main, argv)
    message = str(info.value.code)
    assert message.startswith('error: contact_sheet needs a Korean font') and '\n' not in message
    result = os.path.join('.', 'result', test_script.result_name(model.checkpoint))
    assert sorted(name for name in os.listdir(result) if name.endswith('.csv')) == ['confusions.csv',
                                                                                    'predictions.csv']


def test_baidu_ctc_without_the_binding(learned_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match='warpctc_pytorch'):
        test_script.main(eval_argv(learned_model.args, learned_model.lmdb, learned_model.checkpoint, '--baiduCTC'))


def test_help_from_the_repo_root():
    run = subprocess.run([sys.executable, 'test.py', '--help'], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0
    for flag in ('--eval_data', '--benchmark_all_eval', '--data_filtering_off', '--baiduCTC',
                 '--saved_model', '--character', '--sensitive', '--PAD', '--rgb'):
        assert flag in run.stdout


def test_attn_validation_loss_reads_every_decoding_step(tmp_path, make_lmdb):
    """Attn inference may stop at [s], but the validation loss must be upstream's: computed
    over all batch_max_length + 1 greedy steps."""
    import argparse
    from dataset import AlignCollate, hierarchical_dataset
    torch.manual_seed(0)
    opt = argparse.Namespace(Transformation='None', FeatureExtraction='VGG', SequenceModeling='None',
                             Prediction='Attn', num_fiducial=20, imgH=32, imgW=100, input_channel=1,
                             output_channel=16, hidden_size=16, batch_max_length=25, character='가나다라',
                             sensitive=False, data_filtering_off=False, PAD=False, workers=0, rgb=False)
    opt = finish_common_options(opt)
    converter = make_converter(opt)
    model = Model(opt).eval()
    with torch.no_grad():  # make [s] likely early, so early stopping would truncate
        model.Prediction.generator.bias[1] += 3.0
    make_lmdb(str(tmp_path / 'data'), ['가나다라가나다라가나', '가'])
    data, _ = hierarchical_dataset(str(tmp_path / 'data'), opt)
    loader = torch.utils.data.DataLoader(data, batch_size=2, collate_fn=AlignCollate(32, 100))
    criterion = torch.nn.CrossEntropyLoss(ignore_index=0)
    with torch.no_grad():
        loss = test_script.validation(model, criterion, loader, converter, opt)[0]
        images, labels = next(iter(loader))
        full = model(images, test_script.empty_text_input(2, opt, images.device), is_train=False,
                     stop_at_eos=False)
        expected = test_script.validation_loss(criterion, images, labels, converter, opt, full)
    assert loss == pytest.approx(float(expected), rel=1e-6)


def test_baidu_ctc_targets_are_the_labels_concatenated():
    text = torch.tensor([[3, 4, 0, 0], [5, 0, 0, 0]])
    assert test_script.flat_targets(text, torch.IntTensor([2, 1])).tolist() == [3, 4, 5]


def test_validation_data_left_empty_by_filtering_fails_naming_the_folder(tmp_path, make_lmdb):
    import argparse
    make_lmdb(str(tmp_path / 'valid'), ['서울', '부산'])
    opt = finish_common_options(argparse.Namespace(
        character='0123456789abcdefghijklmnopqrstuvwxyz', sensitive=False, rgb=False, input_channel=1,
        batch_max_length=25, data_filtering_off=False, imgH=32, imgW=100, PAD=False, workers=0))
    with pytest.raises(ValueError, match=r'valid: no sample is left after filtering'):
        test_script.make_eval_loader(str(tmp_path / 'valid'), opt, 2)


def test_options_built_without_save_errors_still_evaluate(learned_model, tmp_path, monkeypatch):
    """DTRB code builds its own option namespace (no --save_errors) and calls test()."""
    monkeypatch.chdir(tmp_path)
    opt = finish_common_options(test_script.build_parser().parse_args(
        eval_argv(learned_model.args, learned_model.lmdb, learned_model.checkpoint)))
    del opt.save_errors
    opt.num_gpu = 0
    assert test_script.test(opt) == 100.0
    assert not any(name.endswith('.csv') for _, _, files in os.walk('result') for name in files)


# ------------------------------------------------------------------------------------------
# --ensemble


def test_ensemble_evaluates_each_images_more_confident_reading(learned_model, constant_model, tmp_path,
                                                               monkeypatch, make_lmdb, capsys):
    monkeypatch.chdir(tmp_path)
    # reads 'A' everywhere with confidence 0.048: below the learned model's on its words, above
    # its reading of a blank image; its alphabet differs, so --saved_model's flags must not reach it
    constant = constant_model('CTC', 'abcdefghijklmnopqrsA', 'A', describe=True)
    labels = list(LEARNED_WORDS) + ['A', 'A']
    lmdb_path = make_lmdb(tmp_path / 'eval', labels, image_texts=list(LEARNED_WORDS) + ['', ''])
    alone = test_script.main(eval_argv(learned_model.args, lmdb_path, learned_model.checkpoint))
    assert alone == pytest.approx(400 / 6)
    capsys.readouterr()
    argv = eval_argv(learned_model.args, lmdb_path, learned_model.checkpoint, '--ensemble', constant.checkpoint,
                     '--save_errors')
    assert test_script.main(argv) == 100.0
    out = capsys.readouterr().out.splitlines()
    summary = (f'ensemble: the most confident of 2 models kept per image (4 from {learned_model.checkpoint}, '
               f'2 from {constant.checkpoint})')
    assert out[-4:-1] == ['100.000', 'CER 0.0000\t jamo_1-NED 1.0000', summary]
    result = os.path.join('.', 'result', test_script.result_name(learned_model.checkpoint))
    rows = read_csv(f'{result}/predictions.csv')[1:]
    assert [row[3] for row in rows] == labels
    assert [float(row[4]) for row in rows[4:]] == pytest.approx([constant.probability ** VGG_STEPS] * 2, rel=1e-4)
    with open(f'{result}/log_evaluation.txt', encoding='utf-8') as f:
        assert f.read().endswith(f'100.000\nCER 0.0000\t jamo_1-NED 1.0000\n{summary}\n')


def test_benchmark_all_eval_with_an_ensemble(learned_model, constant_model, tmp_path, monkeypatch, make_lmdb,
                                             capsys):
    monkeypatch.chdir(tmp_path)
    constant = constant_model('CTC', 'abcdefghijklmnopqrsA', 'A', describe=True)
    for i, name in enumerate(test_script.BENCHMARK_SETS):
        make_lmdb(tmp_path / 'evaluation' / name, [LEARNED_WORDS[i % 4], 'A'], image_texts=[LEARNED_WORDS[i % 4], ''])
    argv = eval_argv(learned_model.args, 'evaluation', learned_model.checkpoint, '--benchmark_all_eval',
                     '--ensemble', constant.checkpoint)
    assert test_script.main(argv) == 100.0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith('accuracy: IIIT5k_3000: 100.000\t') and 'total_accuracy: 100.000\t' in out[-2]
    assert out[-1] == (f'ensemble: the most confident of 2 models kept per image (10 from '
                       f'{learned_model.checkpoint}, 10 from {constant.checkpoint})')


def test_ensemble_rule_likelihood_evaluates_and_says_so(learned_model, tmp_path, monkeypatch, capsys):
    import json
    from model import config_path
    monkeypatch.chdir(tmp_path)
    # the learned model read 128 wide and padded: the same words, less sure of them
    shutil.copy(learned_model.checkpoint, 'wide.pth')
    config = json.loads(config_path(learned_model.checkpoint).read_text(encoding='utf-8'))
    config.update(imgW=128, PAD=True)
    config_path('wide.pth').write_text(json.dumps(config), encoding='utf-8')
    argv = eval_argv(learned_model.args, learned_model.lmdb, learned_model.checkpoint, '--ensemble', 'wide.pth',
                     '--ensemble_rule', 'likelihood')
    assert test_script.main(argv) == 100.0
    # both read each word alike, so the more confident of the two readings is kept
    assert capsys.readouterr().out.splitlines()[-1] == (
        f'ensemble: the likeliest reading of 2 models kept per image (4 from {learned_model.checkpoint}, 0 from wide.pth)')
