"""Evaluate a trained model on LMDB datasets (DTRB's test.py, same flags and output)."""
from __future__ import annotations

import argparse
import csv
import io
import os
import shutil

import numpy as np
import torch

# validation, validation_loss and make_eval_loader live in inference.py (train.py imports them
# from there); they are imported back here, with the other names test.py has exposed, because
# DTRB code does `from test import validation`
from dataset import AlignCollate, hierarchical_dataset  # noqa: F401
from inference import (CASE_INSENSITIVE_ALNUM, Ensemble, Prediction, add_ensemble_option,  # noqa: F401
                       comparable, decode_predictions, empty_text_input, ensemble_validation,
                       finish_reading_options, load_model_for_inference, make_eval_loader, make_reader,
                       print_model_parameters, run_model, validation, validation_loss)
from lexicon import add_lexicon_options, lexicon_for, lexicon_weight
from model import (baidu_ctc_cost, baidu_ctc_loss_class, config_path, flat_targets,  # noqa: F401
                   make_criterion, read_model_config)
from pattern import add_pattern_options, pattern_for
from utils import (Averager, InputError, RecognitionMetrics, add_amp_options, add_common_options,  # noqa: F401
                   add_min_aspect_option, add_vertical_option, align, autocast_dtype, check_amp_flags, configure_cuda,
                   finish_common_options, make_converter, normalized_similarity, pick_device, reading_vertical,
                   run_script, write_text_atomically)

BENCHMARK_SETS = ['IIIT5k_3000', 'SVT', 'IC03_860', 'IC03_867', 'IC13_857', 'IC13_1015',
                  'IC15_1811', 'IC15_2077', 'SVTP', 'CUTE80']
MAX_SHEET_ERRORS = 48  # a contact sheet taller than this is no longer read image by image
PREDICTIONS_CSV, CONFUSIONS_CSV, WORST_ERRORS_PNG = 'predictions.csv', 'confusions.csv', 'worst_errors.png'


def sample_sources(eval_data) -> list[tuple[str, int]]:
    """(LMDB folder, LMDB index) of every sample of a :func:`make_eval_loader` dataset, in the
    order an unshuffled loader yields them."""
    return [(os.path.normpath(dataset.root), int(index)) for dataset in eval_data.datasets
            for index in dataset.filtered_index_list]


def confusion_counts(samples) -> list[tuple[str, str, int]]:
    """(label character, predicted character, count) over the wrong samples, most frequent
    first; '' is the missing side of an insertion or a deletion."""
    counts: dict[tuple[str, str], int] = {}
    for label, prediction, _, correct in samples:
        if correct:
            continue
        for pair in align(label, prediction):
            if pair[0] != pair[1]:
                counts[pair] = counts.get(pair, 0) + 1
    return [(a, b, n) for (a, b), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def csv_text(header: list[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def save_errors(folder: str, eval_data, metrics: RecognitionMetrics) -> list[str]:
    """--save_errors: write into ``folder`` every sample of ``eval_data`` (evaluated in order
    into ``metrics``) with its prediction, the most confused character pairs and a contact sheet
    of the worst errors (lowest confidence first; none when nothing is wrong). Each file is
    written atomically. Returns the paths written."""
    from korean.contact_sheet import contact_sheet
    sources, samples = sample_sources(eval_data), metrics.samples
    if len(sources) != len(samples):  # only a bug can cause this; a CSV off by one would mislead
        raise RuntimeError(f'{len(sources)} samples in the datasets but {len(samples)} evaluated')
    os.makedirs(folder, exist_ok=True)
    written = [os.path.join(folder, PREDICTIONS_CSV), os.path.join(folder, CONFUSIONS_CSV)]
    write_text_atomically(written[0], csv_text(
        ['lmdb', 'index', 'label', 'prediction', 'confidence', 'correct'],
        [(root, index, label, prediction, f'{confidence:.6f}', correct)
         for (root, index), (label, prediction, confidence, correct) in zip(sources, samples)]))
    write_text_atomically(written[1], csv_text(
        ['label_char', 'predicted_char', 'count'], confusion_counts(samples)))
    wrong = sorted((k for k, sample in enumerate(samples) if not sample[3]), key=lambda k: samples[k][2])
    sheet = os.path.join(folder, WORST_ERRORS_PNG)
    if wrong:
        # the image as the dataset gives it to the model: upstream's blank one when it does not decode
        try:
            contact_sheet([(eval_data[k][0], samples[k][0], samples[k][1]) for k in wrong[:MAX_SHEET_ERRORS]],
                          sheet)
        except RuntimeError as e:  # no Korean font to label the sheet with
            raise InputError(f'{e}; {written[0]} and {written[1]} are written') from None
        written.append(sheet)
    elif os.path.exists(sheet):
        os.unlink(sheet)  # an earlier run's errors would pass for this run's
    return written


def wants_error_report(opt) -> bool:
    """--save_errors, False for an option namespace built without it (DTRB code calling
    test() or benchmark_all_eval() with its own options)."""
    return getattr(opt, 'save_errors', False)


def evaluate_set(root, model, criterion, converter, opt, batch_size, metrics, amp_dtype, ensemble=None):
    """(dataset, its log text, :func:`validation`'s tuple) for the LMDB datasets under ``root``,
    read by ``model``, or by ``ensemble`` (an :class:`Ensemble` whose first model is ``model``)."""
    eval_data, eval_data_log, loader = make_eval_loader(root, opt, batch_size,
                                                        collate=ensemble.collate if ensemble else None)
    if ensemble is not None:
        return eval_data, eval_data_log, ensemble_validation(ensemble, loader, opt, metrics)
    return eval_data, eval_data_log, validation(model, criterion, loader, converter, opt, metrics, amp_dtype)


def benchmark_all_eval(model, criterion, converter, opt, calculate_infer_time=False, ensemble=None):
    """Evaluate the ten standard benchmarks under --eval_data and log per-set results (read by
    ``ensemble``, an :class:`Ensemble`, when given)."""
    evaluation_batch_size = 1 if calculate_infer_time else opt.batch_size
    list_accuracy = []
    total_forward_time = 0.0
    total_evaluation_data_number = 0
    total_correct_number = 0.0
    dashed_line = '-' * 80
    amp_dtype = autocast_dtype(opt, next(model.parameters()).device) if ensemble is None else None
    with open(f'./result/{opt.exp_name}/log_all_evaluation.txt', 'a', encoding='utf-8') as log:
        print(dashed_line)
        log.write(dashed_line + '\n')
        for name in BENCHMARK_SETS:
            metrics = RecognitionMetrics(keep_samples=wants_error_report(opt))
            eval_data, eval_data_log, (_, accuracy, norm_ED, _, _, _, infer_time, length_of_data) = evaluate_set(
                os.path.join(opt.eval_data, name), model, criterion, converter, opt, evaluation_batch_size,
                metrics, amp_dtype, ensemble)
            list_accuracy.append(f'{accuracy:0.3f}')
            total_forward_time += infer_time
            total_evaluation_data_number += len(eval_data)
            total_correct_number += accuracy * length_of_data
            log.write(eval_data_log)
            print(f'Acc {accuracy:0.3f}\t normalized_ED {norm_ED:0.3f}')
            log.write(f'Acc {accuracy:0.3f}\t normalized_ED {norm_ED:0.3f}\n')
            print(metrics.summary())
            log.write(metrics.summary() + '\n')
            if wants_error_report(opt):
                written = save_errors(f'./result/{opt.exp_name}/{name}', eval_data, metrics)
                print(f'errors: {", ".join(written)}')
            print(dashed_line)
            log.write(dashed_line + '\n')

        averaged_forward_time = total_forward_time / total_evaluation_data_number * 1000
        total_accuracy = total_correct_number / total_evaluation_data_number
        models = [model] if ensemble is None else [m.model for m in ensemble.members if m.model is not None]
        params_num = sum(np.prod(p.size()) for m in models for p in m.parameters())
        evaluation_log = 'accuracy: '
        for name, accuracy in zip(BENCHMARK_SETS, list_accuracy):
            evaluation_log += f'{name}: {accuracy}\t'
        evaluation_log += f'total_accuracy: {total_accuracy:0.3f}\t'
        evaluation_log += f'averaged_infer_time: {averaged_forward_time:0.3f}\t# parameters: {params_num / 1e6:0.3f}'
        print(evaluation_log)
        log.write(evaluation_log + '\n')
        if ensemble is not None:
            print(ensemble.summary())
            log.write(ensemble.summary() + '\n')
    return total_accuracy


def result_name(saved_model: str) -> str:
    """Upstream's result folder name: the checkpoint path after its first '/', joined by '_'
    (empty for a bare file name, so its results go straight into ./result/, as upstream)."""
    return '_'.join(saved_model.replace(os.sep, '/').split('/')[1:])


def test(opt):
    device = pick_device()
    converter = make_converter(opt)
    if getattr(opt, 'ensemble_options', None):
        ensemble = make_reader(opt, device)
        model = ensemble.members[0].model  # None for an .onnx --saved_model: the ensemble reads it
    else:
        ensemble, model = None, load_model_for_inference(opt, device)
    opt.exp_name = result_name(opt.saved_model)
    os.makedirs(f'./result/{opt.exp_name}', exist_ok=True)
    shutil.copy(opt.saved_model, f'./result/{opt.exp_name}/')
    if config_path(opt.saved_model).is_file():
        shutil.copy(config_path(opt.saved_model), f'./result/{opt.exp_name}/')
    criterion = make_criterion(opt, device)

    with torch.no_grad():
        if opt.benchmark_all_eval:
            return benchmark_all_eval(model, criterion, converter, opt, ensemble=ensemble)
        metrics = RecognitionMetrics(keep_samples=wants_error_report(opt))
        eval_data, eval_data_log, (_, accuracy, norm_ED, _, _, _, _, length_of_data) = evaluate_set(
            opt.eval_data, model, criterion, converter, opt, opt.batch_size, metrics,
            autocast_dtype(opt, device), ensemble)
        with open(f'./result/{opt.exp_name}/log_evaluation.txt', 'a', encoding='utf-8') as log:
            def report(line: str) -> None:  # printed and logged alike
                print(line)
                log.write(line + '\n')
            log.write(eval_data_log)
            report(f'{accuracy:0.3f}')
            # after upstream's accuracy line, so whatever reads that line still finds it
            report(metrics.summary())
            lexicon = lexicon_for(opt)
            if lexicon is not None:  # the log then says how its figures were read
                report(f'read with --lexicon {" ".join(opt.lexicon)} ({len(lexicon):,} words, '
                       f'--lexicon_weight {lexicon_weight(opt):g})')
            if pattern_for(opt, converter) is not None:
                report(f'read with --pattern {opt.pattern}')
            vertical = reading_vertical(opt)
            if vertical:
                report(f'read with --vertical {vertical:g}')
            if ensemble is not None:
                report(ensemble.summary())
        if wants_error_report(opt):
            written = save_errors(f'./result/{opt.exp_name}', eval_data, metrics)
            print(f'errors: {", ".join(written)}')
    return accuracy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Evaluate a text recogniser on LMDB datasets.')
    parser.add_argument('--eval_data', required=True, help='path to evaluation dataset')
    parser.add_argument('--benchmark_all_eval', action='store_true', help='evaluate 10 benchmark evaluation datasets')
    add_common_options(parser, saved_model_required=True)
    parser.add_argument('--data_filtering_off', action='store_true', help='for data_filtering_off mode')
    parser.add_argument('--baiduCTC', action='store_true', help='use the warp-ctc CTC loss (needs warpctc_pytorch)')
    parser.add_argument('--save_errors', action='store_true',
                        help=f'also write {PREDICTIONS_CSV} (every sample), {CONFUSIONS_CSV} (the most '
                             f'confused character pairs) and {WORST_ERRORS_PNG} (the worst errors) into '
                             'the result folder (one sub-folder per set with --benchmark_all_eval)')
    add_min_aspect_option(parser)
    add_vertical_option(parser)
    add_lexicon_options(parser)
    add_pattern_options(parser)
    add_ensemble_option(parser)
    add_amp_options(parser, 'evaluates what demo.py --amp reads, so its accuracy can be set against '
                            'float32\'s')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    check_amp_flags(args)
    opt = finish_reading_options(args)
    lexicon_for(opt)  # bad --lexicon / --pattern flags or files fail before any data is read
    pattern_for(opt, make_converter(opt))
    if opt.baiduCTC:
        baidu_ctc_loss_class()
    configure_cuda(opt)
    return test(opt)


if __name__ == '__main__':
    run_script(main)
