"""Evaluate a trained model on LMDB datasets (DTRB's test.py, same flags and output)."""
from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.data
from nltk.metrics.distance import edit_distance

from dataset import AlignCollate, hierarchical_dataset
from model import Model, config_path, load_checkpoint, read_model_config
from utils import (AttnLabelConverter, Averager, add_common_options, configure_cuda, finish_common_options,
                   make_converter, pick_device, run_script)

BENCHMARK_SETS = ['IIIT5k_3000', 'SVT', 'IC03_860', 'IC03_867', 'IC13_857', 'IC13_1015',
                  'IC15_1811', 'IC15_2077', 'SVTP', 'CUTE80']
CASE_INSENSITIVE_ALNUM = frozenset('0123456789abcdefghijklmnopqrstuvwxyz')


@dataclass
class Prediction:
    text: str
    confidence: float


def baidu_ctc_loss_class():
    """warp-ctc's CTCLoss for --baiduCTC (a third-party binding we do not ship); checked when
    the options are parsed, so a missing binding stops the run before any data loads."""
    try:
        from warpctc_pytorch import CTCLoss as BaiduCTCLoss  # optional binding
    except ImportError:
        raise SystemExit('--baiduCTC needs the warp-ctc binding (module warpctc_pytorch), which '
                         'is not installed; drop --baiduCTC to use torch.nn.CTCLoss') from None
    return BaiduCTCLoss


def ctc_loss_function(opt):
    if getattr(opt, 'baiduCTC', False):
        return baidu_ctc_loss_class()()
    return torch.nn.CTCLoss(zero_infinity=True)


def flat_targets(text: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """warp-ctc takes every label's indices concatenated in one 1-D IntTensor."""
    return torch.cat([row[:int(n)] for row, n in zip(text.cpu(), length.cpu())]).int()


def baidu_ctc_cost(criterion, preds, text, length) -> torch.Tensor:
    """Upstream's --baiduCTC loss: raw logits [T, B, C], flat targets, divided by the batch."""
    preds_size = torch.IntTensor([preds.size(1)] * preds.size(0))
    return criterion(preds.permute(1, 0, 2), flat_targets(text, length), preds_size,
                     length.cpu().int()) / preds.size(0)


def make_criterion(opt, device):
    if 'CTC' in opt.Prediction:
        return ctc_loss_function(opt).to(device)
    return torch.nn.CrossEntropyLoss(ignore_index=0).to(device)  # index 0 is [GO]


def empty_text_input(batch_size: int, opt, device) -> torch.Tensor:
    """The text tensor inference feeds the model: [GO] everywhere (index 0)."""
    return torch.zeros(batch_size, opt.batch_max_length + 1, dtype=torch.long, device=device)


def run_model(model, image: torch.Tensor, opt, stop_at_eos: bool = True) -> torch.Tensor:
    """Inference logits [B, T, num_class] for a batch of images. Attn may stop decoding once
    every sequence has emitted [s] unless ``stop_at_eos`` is False (the validation loss reads
    every step, so it needs them all, as upstream computed them)."""
    text_for_pred = empty_text_input(image.size(0), opt, image.device)
    if 'CTC' in opt.Prediction:
        return model(image, text_for_pred)
    return model(image, text_for_pred, is_train=False, stop_at_eos=stop_at_eos)


def decode_predictions(preds: torch.Tensor, converter, opt) -> list[Prediction]:
    """Greedy decode logits into texts with confidences.

    Confidence is the product of the per-step maximum softmax probability: over every step for
    CTC, over the steps before the first [s] for Attn. An Attn prediction without [s] is kept
    whole (upstream cut its last character); an empty prediction has confidence 0.
    """
    max_prob, index = F.softmax(preds, dim=2).max(dim=2)
    max_prob, index = max_prob.float().cpu(), index.cpu()
    results = []
    if 'CTC' in opt.Prediction:
        sizes = [preds.size(1)] * preds.size(0)
        texts = converter.decode(index, sizes)
        for text, probs in zip(texts, max_prob):
            confidence = float(probs.cumprod(dim=0)[-1]) if text else 0.0
            results.append(Prediction(text, confidence))
        return results
    eos = converter.dict[AttnLabelConverter.EOS]
    for row, probs in zip(index.tolist(), max_prob):
        steps = row.index(eos) if eos in row else len(row)
        text = ''.join(converter.character[i] for i in row[:steps])
        confidence = float(probs[:steps].cumprod(dim=0)[-1]) if steps else 0.0
        results.append(Prediction(text, confidence))
    return results


def validation_loss(criterion, image, labels, converter, opt, preds) -> torch.Tensor:
    text_for_loss, length_for_loss = converter.encode(labels, batch_max_length=opt.batch_max_length)
    text_for_loss, length_for_loss = text_for_loss.to(image.device), length_for_loss.to(image.device)
    if 'CTC' in opt.Prediction:
        if opt.baiduCTC:
            return baidu_ctc_cost(criterion, preds, text_for_loss, length_for_loss)
        preds_size = torch.IntTensor([preds.size(1)] * image.size(0))
        return criterion(preds.log_softmax(2).permute(1, 0, 2), text_for_loss, preds_size, length_for_loss)
    preds = preds[:, :text_for_loss.shape[1] - 1, :]
    target = text_for_loss[:, 1:]
    return criterion(preds.contiguous().view(-1, preds.shape[-1]), target.contiguous().view(-1))


def comparable(text: str, opt) -> str:
    """With both --sensitive and --data_filtering_off upstream scores case-insensitively on
    0-9a-z only (the usual benchmark protocol)."""
    if opt.sensitive and opt.data_filtering_off:
        return ''.join(ch for ch in text.lower() if ch in CASE_INSENSITIVE_ALNUM)
    return text


def normalized_edit_similarity(gt: str, pred: str) -> float:
    """ICDAR 2019 norm_ED for one sample: 0 when either side is empty."""
    if not gt or not pred:
        return 0.0
    return 1 - edit_distance(pred, gt) / max(len(gt), len(pred))


def validation(model, criterion, evaluation_loader, converter, opt):
    """Evaluate over a loader. Returns upstream's tuple: (valid loss, accuracy %, norm_ED,
    predictions of the last batch, their confidences, the last batch's labels, total forward
    time in seconds, number of samples)."""
    device = next(model.parameters()).device
    n_correct = 0
    norm_ED = 0.0
    length_of_data = 0
    infer_time = 0.0
    valid_loss_avg = Averager()
    preds_str: list[str] = []
    confidence_score_list: list[float] = []
    labels: list[str] = []

    for image_tensors, labels in evaluation_loader:
        batch_size = image_tensors.size(0)
        length_of_data += batch_size
        image = image_tensors.to(device)

        start_time = time.time()
        preds = run_model(model, image, opt, stop_at_eos=False)
        infer_time += time.time() - start_time

        valid_loss_avg.add(validation_loss(criterion, image, labels, converter, opt, preds))
        predictions = decode_predictions(preds, converter, opt)
        preds_str = [p.text for p in predictions]
        confidence_score_list = [p.confidence for p in predictions]

        for gt, pred in zip(labels, preds_str):
            # a label longer than the model can emit (possible with --data_filtering_off) is a miss
            fits = len(gt) <= opt.batch_max_length
            gt_c, pred_c = comparable(gt, opt), comparable(pred, opt)
            if fits and pred_c == gt_c:
                n_correct += 1
            norm_ED += normalized_edit_similarity(gt_c, pred_c)

    accuracy = n_correct / float(length_of_data) * 100 if length_of_data else 0.0
    norm_ED = norm_ED / float(length_of_data) if length_of_data else 0.0
    return (valid_loss_avg.val(), accuracy, norm_ED, preds_str, confidence_score_list, labels,
            infer_time, length_of_data)


def make_eval_loader(root: str, opt, batch_size: int, shuffle: bool = False):
    eval_data, eval_data_log = hierarchical_dataset(root=root, opt=opt)
    if len(eval_data) == 0:
        raise ValueError(f'{root}: no sample is left after filtering (every label is longer than '
                         f'--batch_max_length {opt.batch_max_length} or holds characters outside '
                         '--character); check --character, or use --data_filtering_off')
    loader = torch.utils.data.DataLoader(
        eval_data, batch_size=batch_size, shuffle=shuffle, num_workers=int(opt.workers),
        collate_fn=AlignCollate(imgH=opt.imgH, imgW=opt.imgW, keep_ratio_with_pad=opt.PAD),
        pin_memory=torch.cuda.is_available())
    return eval_data, eval_data_log, loader


def benchmark_all_eval(model, criterion, converter, opt, calculate_infer_time=False):
    """Evaluate the ten standard benchmarks under --eval_data and log per-set results."""
    evaluation_batch_size = 1 if calculate_infer_time else opt.batch_size
    list_accuracy = []
    total_forward_time = 0.0
    total_evaluation_data_number = 0
    total_correct_number = 0.0
    dashed_line = '-' * 80
    with open(f'./result/{opt.exp_name}/log_all_evaluation.txt', 'a', encoding='utf-8') as log:
        print(dashed_line)
        log.write(dashed_line + '\n')
        for name in BENCHMARK_SETS:
            eval_data, eval_data_log, loader = make_eval_loader(
                os.path.join(opt.eval_data, name), opt, evaluation_batch_size)
            _, accuracy, norm_ED, _, _, _, infer_time, length_of_data = validation(
                model, criterion, loader, converter, opt)
            list_accuracy.append(f'{accuracy:0.3f}')
            total_forward_time += infer_time
            total_evaluation_data_number += len(eval_data)
            total_correct_number += accuracy * length_of_data
            log.write(eval_data_log)
            print(f'Acc {accuracy:0.3f}\t normalized_ED {norm_ED:0.3f}')
            log.write(f'Acc {accuracy:0.3f}\t normalized_ED {norm_ED:0.3f}\n')
            print(dashed_line)
            log.write(dashed_line + '\n')

        averaged_forward_time = total_forward_time / total_evaluation_data_number * 1000
        total_accuracy = total_correct_number / total_evaluation_data_number
        params_num = sum(np.prod(p.size()) for p in model.parameters())
        evaluation_log = 'accuracy: '
        for name, accuracy in zip(BENCHMARK_SETS, list_accuracy):
            evaluation_log += f'{name}: {accuracy}\t'
        evaluation_log += f'total_accuracy: {total_accuracy:0.3f}\t'
        evaluation_log += f'averaged_infer_time: {averaged_forward_time:0.3f}\t# parameters: {params_num / 1e6:0.3f}'
        print(evaluation_log)
        log.write(evaluation_log + '\n')
    return total_accuracy


def print_model_parameters(opt) -> None:
    print('model input parameters', opt.imgH, opt.imgW, opt.num_fiducial, opt.input_channel,
          opt.output_channel, opt.hidden_size, opt.num_class, opt.batch_max_length,
          opt.Transformation, opt.FeatureExtraction, opt.SequenceModeling, opt.Prediction)


def load_model_for_inference(opt, device):
    """Build the model from the options and load --saved_model strictly."""
    model = Model(opt)
    print_model_parameters(opt)
    print('loading pretrained model from %s' % opt.saved_model)
    load_checkpoint(model, opt.saved_model)
    model = model.to(device)
    if opt.num_gpu > 1:
        model = torch.nn.DataParallel(model)
    model.eval()
    return model


def result_name(saved_model: str) -> str:
    """Upstream's result folder name: the checkpoint path after its first '/', joined by '_'
    (empty for a bare file name, so its results go straight into ./result/, as upstream)."""
    return '_'.join(saved_model.replace(os.sep, '/').split('/')[1:])


def test(opt):
    device = pick_device()
    converter = make_converter(opt)
    model = load_model_for_inference(opt, device)
    opt.exp_name = result_name(opt.saved_model)
    os.makedirs(f'./result/{opt.exp_name}', exist_ok=True)
    shutil.copy(opt.saved_model, f'./result/{opt.exp_name}/')
    if config_path(opt.saved_model).is_file():
        shutil.copy(config_path(opt.saved_model), f'./result/{opt.exp_name}/')
    criterion = make_criterion(opt, device)

    with torch.no_grad():
        if opt.benchmark_all_eval:
            return benchmark_all_eval(model, criterion, converter, opt)
        _, eval_data_log, loader = make_eval_loader(opt.eval_data, opt, opt.batch_size)
        _, accuracy, norm_ED, _, _, _, _, length_of_data = validation(model, criterion, loader, converter, opt)
        with open(f'./result/{opt.exp_name}/log_evaluation.txt', 'a', encoding='utf-8') as log:
            log.write(eval_data_log)
            print(f'{accuracy:0.3f}')
            log.write(f'{accuracy:0.3f}\n')
    return accuracy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Evaluate a text recogniser on LMDB datasets.')
    parser.add_argument('--eval_data', required=True, help='path to evaluation dataset')
    parser.add_argument('--benchmark_all_eval', action='store_true', help='evaluate 10 benchmark evaluation datasets')
    add_common_options(parser, saved_model_required=True)
    parser.add_argument('--data_filtering_off', action='store_true', help='for data_filtering_off mode')
    parser.add_argument('--baiduCTC', action='store_true', help='use the warp-ctc CTC loss (needs warpctc_pytorch)')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    opt = finish_common_options(args, read_model_config(args.saved_model))
    if opt.baiduCTC:
        baidu_ctc_loss_class()
    configure_cuda(opt)
    return test(opt)


if __name__ == '__main__':
    run_script(main)
