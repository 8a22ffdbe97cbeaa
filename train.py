"""Train a scene-text recogniser on LMDB datasets (DTRB's train.py, same flags, files and output)."""
from __future__ import annotations

import argparse
import math
import os
import random
import time

import numpy as np
import torch

from dataset import Batch_Balanced_Dataset
from model import Model, init_weights, load_checkpoint, save_checkpoint
from test import (baidu_ctc_cost, baidu_ctc_loss_class, make_criterion, make_eval_loader,
                  print_model_parameters, validation)
from utils import (Averager, add_common_options, configure_cuda, cut_at_eos, finish_common_options,
                   make_converter, model_config, pick_device, run_script)

CHECKPOINT_EVERY = 100_000  # upstream writes iter_{N}.pth every 1e5 iterations


def configure_threads(opt) -> None:
    """On the CPU, give torch the cores the DataLoader workers leave free: torch's OpenMP threads
    collapse when they compete with busy worker processes for the same cores."""
    if torch.cuda.is_available():
        return
    if opt.num_threads > 0:
        torch.set_num_threads(opt.num_threads)
    elif 'OMP_NUM_THREADS' not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - int(opt.workers)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)


def resume_iteration(saved_model: str) -> int:
    """Upstream continues from N when the checkpoint's name ends in ``_<N>.pth``
    (the text after the last '_' and before the next '.' is a number)."""
    tail = saved_model.split('_')[-1].split('.')[0]
    return int(tail) if tail.isdigit() else 0


def write_options(opt, path: str) -> None:
    opt_log = '------------ Options -------------\n'
    for k, v in vars(opt).items():
        if k == 'alphabet':  # derived from character and sensitive, both listed
            continue
        opt_log += f'{str(k)}: {str(v)}\n'
    opt_log += '---------------------------------------\n'
    print(opt_log)
    with open(path, 'a', encoding='utf-8') as opt_file:
        opt_file.write(opt_log)


def make_optimizer(opt, parameters):
    if opt.adam:
        return torch.optim.Adam(parameters, lr=opt.lr, betas=(opt.beta1, 0.999))
    return torch.optim.Adadelta(parameters, lr=opt.lr, rho=opt.rho, eps=opt.eps)


WARMUP_FRACTION = 0.1
WARMUP_START = 0.04  # the learning rate starts at 4 % of --lr


def lr_factor(iteration: int, num_iter: int, schedule: str) -> float:
    """Multiplier of --lr at an (absolute) iteration. ``none`` is upstream's constant rate;
    ``cosine`` warms up linearly over the first 10 % of --num_iter, then decays along a cosine
    to 0 at --num_iter: short runs (the CPU quickstart) converge much faster with it."""
    if schedule == 'none':
        return 1.0
    warmup = max(1, int(num_iter * WARMUP_FRACTION))
    if iteration < warmup:
        return WARMUP_START + (1 - WARMUP_START) * iteration / warmup
    progress = min(1.0, (iteration - warmup) / max(1, num_iter - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(opt, optimizer, start_iter: int):
    # counted from the absolute iteration, so a resumed run continues the same curve
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(start_iter + step, opt.num_iter, opt.lr_schedule))


def training_loss(model, criterion, image, labels, converter, opt) -> torch.Tensor:
    text, length = converter.encode(labels, batch_max_length=opt.batch_max_length)
    text, length = text.to(image.device), length.to(image.device)
    if 'CTC' in opt.Prediction:
        preds = model(image, text)
        if opt.baiduCTC:
            return baidu_ctc_cost(criterion, preds, text, length)
        preds_size = torch.IntTensor([preds.size(1)] * image.size(0))
        preds = preds.log_softmax(2).permute(1, 0, 2)
        return criterion(preds, text, preds_size, length)
    preds = model(image, text[:, :-1])  # teacher forcing: [GO] + characters
    target = text[:, 1:]  # characters + [s], without [GO]
    return criterion(preds.view(-1, preds.shape[-1]), target.contiguous().view(-1))


def format_validation(iteration, opt, train_loss, valid_loss, elapsed, accuracy, norm_ED,
                      best_accuracy, best_norm_ED) -> str:
    loss_log = (f'[{iteration + 1}/{opt.num_iter}] Train loss: {train_loss:0.5f}, '
                f'Valid loss: {valid_loss:0.5f}, Elapsed_time: {elapsed:0.5f}')
    current = f'{"Current_accuracy":17s}: {accuracy:0.3f}, {"Current_norm_ED":17s}: {norm_ED:0.2f}'
    best = f'{"Best_accuracy":17s}: {best_accuracy:0.3f}, {"Best_norm_ED":17s}: {best_norm_ED:0.2f}'
    return f'{loss_log}\n{current}\n{best}'


def format_samples(labels, preds, confidences, opt) -> str:
    dashed_line = '-' * 80
    head = f'{"Ground Truth":25s} | {"Prediction":25s} | Confidence Score & T/F'
    out = f'{dashed_line}\n{head}\n{dashed_line}\n'
    for gt, pred, confidence in zip(labels[:5], preds[:5], confidences[:5]):
        if 'Attn' in opt.Prediction:
            gt, pred = cut_at_eos(gt), cut_at_eos(pred)
        out += f'{gt:25s} | {pred:25s} | {confidence:0.4f}\t{str(pred == gt)}\n'
    return out + dashed_line


def build_model(opt, device):
    model = Model(opt)
    print_model_parameters(opt)
    init_weights(model)
    if opt.saved_model != '':
        print(f'loading pretrained model from {opt.saved_model}')
        report = load_checkpoint(model, opt.saved_model, finetune=opt.FT)
        if opt.FT:
            print(report.summary())
    model = model.to(device)
    if opt.num_gpu > 1:
        model = torch.nn.DataParallel(model)
    model.train()
    print('Model:')
    print(model)
    return model


def train(opt):
    """Train until opt.num_iter; returns (best_accuracy, best_norm_ED)."""
    device = pick_device()
    save_dir = f'./saved_models/{opt.exp_name}'
    if not opt.data_filtering_off:
        print('Filtering the images containing characters which are not in opt.character')
        print('Filtering the images whose label is longer than opt.batch_max_length')

    opt.select_data = opt.select_data.split('-')
    opt.batch_ratio = opt.batch_ratio.split('-')
    train_dataset = Batch_Balanced_Dataset(opt)
    # upstream shuffles validation so the printed samples vary between validations
    _, valid_dataset_log, valid_loader = make_eval_loader(opt.valid_data, opt, opt.batch_size,
                                                          shuffle=True)
    with open(f'{save_dir}/log_dataset.txt', 'a', encoding='utf-8') as log:
        log.write(valid_dataset_log)
        print('-' * 80)
        log.write('-' * 80 + '\n')

    converter = make_converter(opt)
    model = build_model(opt, device)
    criterion = make_criterion(opt, device)
    loss_avg = Averager()

    filtered_parameters = [p for p in model.parameters() if p.requires_grad]
    print('Trainable params num : ', sum(int(np.prod(p.size())) for p in filtered_parameters))
    optimizer = make_optimizer(opt, filtered_parameters)
    print('Optimizer:')
    print(optimizer)
    write_options(opt, f'{save_dir}/opt.txt')

    start_iter = resume_iteration(opt.saved_model) if opt.saved_model else 0
    if start_iter:
        print(f'continue to train, start_iter: {start_iter}')
    scheduler = make_scheduler(opt, optimizer, start_iter)
    start_time = time.time()
    best_accuracy, best_norm_ED = -1.0, -1.0
    iteration = start_iter

    try:
        while iteration < opt.num_iter:
            image_tensors, labels = train_dataset.get_batch()
            image = image_tensors.to(device)
            cost = training_loss(model, criterion, image, labels, converter, opt)
            model.zero_grad()
            cost.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_avg.add(cost)

            if (iteration + 1) % opt.valInterval == 0 or iteration == 0:
                elapsed_time = time.time() - start_time
                model.eval()
                with torch.no_grad():
                    valid_loss, accuracy, norm_ED, preds, confidences, valid_labels, _, _ = validation(
                        model, criterion, valid_loader, converter, opt)
                model.train()
                if accuracy > best_accuracy:
                    best_accuracy = accuracy
                    save_checkpoint(model, f'{save_dir}/best_accuracy.pth', model_config(opt))
                if norm_ED > best_norm_ED:
                    best_norm_ED = norm_ED
                    save_checkpoint(model, f'{save_dir}/best_norm_ED.pth', model_config(opt))
                report = format_validation(iteration, opt, loss_avg.val(), valid_loss, elapsed_time,
                                           accuracy, norm_ED, best_accuracy, best_norm_ED)
                loss_avg.reset()
                samples = format_samples(valid_labels, preds, confidences, opt)
                print(report)
                print(samples)
                with open(f'{save_dir}/log_train.txt', 'a', encoding='utf-8') as log:
                    log.write(report + '\n')
                    log.write(samples + '\n')

            if (iteration + 1) % CHECKPOINT_EVERY == 0:
                save_checkpoint(model, f'{save_dir}/iter_{iteration + 1}.pth', model_config(opt))
            iteration += 1
    except KeyboardInterrupt:
        path = f'{save_dir}/iter_{iteration}.pth'
        save_checkpoint(model, path, model_config(opt))
        print(f'\ninterrupted at iteration {iteration}; the model is saved in {path}.\n'
              f'Resume with the same command plus --saved_model {path}')
        raise SystemExit(130)

    print('end the training')
    print(f'best accuracy {best_accuracy:0.3f} and best norm_ED {best_norm_ED:0.2f} after '
          f'{iteration} iterations ({time.time() - start_time:0.1f} s); checkpoints in {save_dir}/: '
          'best_accuracy.pth, best_norm_ED.pth')
    return best_accuracy, best_norm_ED


def positive_int(value: str) -> int:
    """argparse type for counts that must be at least 1 (a zero --valInterval used to end in
    a ZeroDivisionError traceback after the datasets had loaded)."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f'expected an integer of at least 1, got {value}')
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Train a text recogniser on LMDB datasets.')
    parser.add_argument('--exp_name', help='Where to store logs and models')
    parser.add_argument('--train_data', required=True, help='path to training dataset')
    parser.add_argument('--valid_data', required=True, help='path to validation dataset')
    parser.add_argument('--manualSeed', type=int, default=1111, help='for random seed setting')
    parser.add_argument('--num_iter', type=positive_int, default=300000, help='number of iterations to train for')
    parser.add_argument('--valInterval', type=positive_int, default=2000, help='Interval between each validation')
    parser.add_argument('--FT', action='store_true',
                        help='fine-tune: load every tensor of --saved_model whose name and shape match')
    parser.add_argument('--adam', action='store_true', help='Whether to use adam (default is Adadelta)')
    parser.add_argument('--lr', type=float, default=1, help='learning rate, default=1.0 for Adadelta')
    parser.add_argument('--beta1', type=float, default=0.9, help='beta1 for adam. default=0.9')
    parser.add_argument('--rho', type=float, default=0.95, help='decay rate rho for Adadelta. default=0.95')
    parser.add_argument('--eps', type=float, default=1e-8, help='eps for Adadelta. default=1e-8')
    parser.add_argument('--grad_clip', type=float, default=5, help='gradient clipping value. default=5')
    parser.add_argument('--baiduCTC', action='store_true', help='use the warp-ctc CTC loss (needs warpctc_pytorch)')
    parser.add_argument('--select_data', type=str, default='MJ-ST',
                        help='select training data (default is MJ-ST, which means MJ and ST used as training data)')
    parser.add_argument('--batch_ratio', type=str, default='0.5-0.5',
                        help='assign ratio for each selected data in the batch')
    parser.add_argument('--total_data_usage_ratio', type=str, default='1.0',
                        help='total data usage ratio, this ratio is multiplied to total number of data.')
    parser.add_argument('--data_filtering_off', action='store_true', help='for data_filtering_off mode')
    add_common_options(parser, saved_model_required=False)
    parser.add_argument('--lr_schedule', choices=['none', 'cosine'], default='none',
                        help='none: constant --lr (upstream); cosine: warm up over the first 10%% of '
                             '--num_iter, then cosine decay to 0')
    parser.add_argument('--num_threads', type=int, default=0,
                        help='torch CPU threads (0: the cores the --workers leave free)')
    return parser


def main(argv=None):
    opt = finish_common_options(build_parser().parse_args(argv))
    if opt.baiduCTC:
        baidu_ctc_loss_class()
    if not opt.exp_name:
        opt.exp_name = f'{opt.Transformation}-{opt.FeatureExtraction}-{opt.SequenceModeling}-{opt.Prediction}'
        opt.exp_name += f'-Seed{opt.manualSeed}'
    os.makedirs(f'./saved_models/{opt.exp_name}', exist_ok=True)
    seed_everything(opt.manualSeed)
    configure_cuda(opt)
    if opt.num_gpu > 1:
        print('------ Use multi-GPU setting ------')
        print('if you stuck too long time with multi-GPU setting, try to set --workers 0')
        opt.workers = opt.workers * opt.num_gpu
        opt.batch_size = opt.batch_size * opt.num_gpu
    configure_threads(opt)
    return train(opt)


if __name__ == '__main__':
    run_script(main)
