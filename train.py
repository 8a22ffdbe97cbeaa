"""Train a scene-text recogniser on LMDB datasets (DTRB's train.py, same flags, files and output)."""
from __future__ import annotations

import argparse
import csv
import io
import math
import os
import random
import signal
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from dataset import Batch_Balanced_Dataset
from inference import make_eval_loader, print_model_parameters, validation
from model import (TRAINING_STATE_NAME, Model, baidu_ctc_cost, baidu_ctc_loss_class, init_weights,
                   load_checkpoint, load_training_state, make_criterion, read_model_config,
                   restore_training_state, save_checkpoint, save_training_state, training_state_path, unwrap_model)
from utils import (Averager, DistributedContext, InputError, add_amp_options, add_common_options,
                   add_vertical_option, autocast_dtype, check_amp_flags, configure_cuda, cut_at_eos,
                   finish_common_options, init_distributed, make_converter, model_config, reading_mismatch,
                   run_script, usable_cpu_count, write_text_atomically)

CHECKPOINT_EVERY = 100_000  # upstream writes iter_{N}.pth every 1e5 iterations


def configure_threads(opt, processes: int = 1) -> None:
    """On the CPU, give torch the cores the DataLoader workers leave free, shared among the
    ``processes`` a torchrun job runs on this machine: torch's OpenMP threads collapse when they
    compete with busy worker processes for the same cores."""
    if torch.cuda.is_available():
        return
    if opt.num_threads > 0:
        torch.set_num_threads(opt.num_threads)
    elif 'OMP_NUM_THREADS' not in os.environ:
        free = usable_cpu_count() - int(opt.workers) * processes
        torch.set_num_threads(max(1, free // processes))


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


# with --time_limit, how often (as a share of the limit) the run checks that --num_iter still
# fits at its measured speed, and lowers it when not
FIT_CHECK_FRACTION = 0.05


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


def iterations_that_fit(iteration: int, step_s: float, left_s: float) -> int:
    """The absolute iteration a run at ``iteration`` reaches in the ``left_s`` seconds it has
    left, at ``step_s`` seconds a step (validations included)."""
    return iteration + max(0, int(left_s / max(step_s, 1e-9)))


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
        preds = preds.float().log_softmax(2).permute(1, 0, 2)  # float32 under --amp too
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


def build_model(opt, ctx):
    model = Model(opt)
    if ctx.is_main:
        print_model_parameters(opt)
    init_weights(model)
    if opt.saved_model != '':
        if ctx.is_main:
            print(f'loading pretrained model from {opt.saved_model}')
        report = load_checkpoint(model, opt.saved_model, finetune=opt.FT)
        if opt.FT and ctx.is_main:
            print(report.summary())
        mismatch = reading_mismatch(opt, read_model_config(opt.saved_model))
        if mismatch and ctx.is_main:
            print(mismatch)
    model = training_layout(model.to(ctx.device))
    if ctx.distributed:
        device_ids = [ctx.local_rank] if ctx.device.type == 'cuda' else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    elif opt.num_gpu > 1:
        model = torch.nn.DataParallel(model)
    model.train()
    if ctx.is_main:
        print('Model:')
        print(model)
    return model


# Convolutions run faster on channels-last tensors (oneDNN on CPUs, tensor cores on GPUs):
# measured 1.05-1.1x per step on a 2-core CPU for VGG/ResNet-BiLSTM-CTC (bench/train_speed.py).
# Checkpoints are unaffected: they are saved contiguous.
CHANNELS_LAST = True


def training_layout(x):
    """A model or image batch in the memory layout training uses."""
    return x.to(memory_format=torch.channels_last) if CHANNELS_LAST else x


NONFINITE_LIMIT = 5  # non-finite steps in a row after which training stops


class StopRequest:
    """Ctrl-C (SIGINT) and SIGTERM (a cluster's preemption, torchrun passing one on) ask the
    loop to stop after the step under way, which then saves everything. A second Ctrl-C stops
    at once, as usual."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name


class TrainingLog:
    """The metrics of every validation as ``metrics.csv``, TensorBoard event files in
    ``tensorboard/`` and ``training_curves.png``, all in the experiment folder. A resumed run
    drops what was logged after the iteration it resumes from, so each file reads as one run."""

    FIELDS = ('iteration', 'train_loss', 'valid_loss', 'accuracy', 'norm_ED', 'best_accuracy',
              'best_norm_ED', 'lr', 'images_per_s', 'elapsed_s')

    def __init__(self, save_dir: str, start_iter: int):
        self.csv_path = os.path.join(save_dir, 'metrics.csv')
        self.png_path = os.path.join(save_dir, 'training_curves.png')
        self.rows = [row for row in self._read_rows() if start_iter and row['iteration'] <= start_iter]
        from torch.utils.tensorboard import SummaryWriter  # slow to import: only when training
        self.writer = SummaryWriter(os.path.join(save_dir, 'tensorboard'),
                                    purge_step=start_iter + 1 if start_iter else None)

    def _read_rows(self) -> list[dict]:
        if not os.path.isfile(self.csv_path):
            return []
        with open(self.csv_path, encoding='utf-8', newline='') as f:
            return [{key: (int(v) if key == 'iteration' else float(v)) for key, v in row.items()}
                    for row in csv.DictReader(f)]

    def add(self, row: dict) -> None:
        self.rows.append(row)
        for key in self.FIELDS[1:]:
            self.writer.add_scalar(f'train/{key}', row[key], row['iteration'])
        self.writer.flush()
        write_text_atomically(self.csv_path, self._csv_text())
        self._plot()

    def _csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.FIELDS, lineterminator='\n')
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()

    def _plot(self) -> None:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        iterations = [row['iteration'] for row in self.rows]
        figure, axes = plt.subplots(2, 2, figsize=(10, 7))
        panels = [(('train_loss', 'valid_loss'), 'loss'), (('accuracy', 'best_accuracy'), 'accuracy %'),
                  (('norm_ED', 'best_norm_ED'), 'norm_ED'), (('lr',), 'learning rate')]
        for axis, (keys, title) in zip(axes.flat, panels):
            for key in keys:
                axis.plot(iterations, [row[key] for row in self.rows], marker='.', label=key)
            axis.set_title(title)
            axis.set_xlabel('iteration')
            axis.grid(alpha=0.3)
            axis.legend()
        figure.tight_layout()
        tmp = f'{self.png_path}.tmp{os.getpid()}.png'
        figure.savefig(tmp, dpi=80)
        plt.close(figure)
        os.replace(tmp, self.png_path)

    def close(self) -> None:
        self.writer.close()


def optimizer_name(opt) -> str:
    return 'Adam' if opt.adam else 'Adadelta'


class NonFiniteLoss(InputError):
    """Training stopped: the loss or the gradients were not finite too many steps in a row."""


def train_step(model, criterion, optimizer, scaler, image, labels, converter, opt, ctx, amp_dtype):
    """One optimisation step. Returns the loss, or None when the loss or the gradient norm is
    not finite in any process: then no weight changes, in every process alike."""
    with torch.autocast(ctx.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        cost = training_loss(model, criterion, image, labels, converter, opt)
    if not ctx.all_agree(bool(torch.isfinite(cost))):
        return None
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(cost).backward()
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
    # with a GradScaler an infinite norm only means the scale is too high: it skips and adapts
    if not scaler.is_enabled() and not bool(torch.isfinite(grad_norm)):
        return None
    scaler.step(optimizer)
    scaler.update()
    return cost


def train(opt, ctx=None):
    """Train until opt.num_iter; returns (best_accuracy, best_norm_ED)."""
    ctx = ctx or DistributedContext()
    device = ctx.device
    save_dir = f'./saved_models/{opt.exp_name}'
    if not opt.data_filtering_off and ctx.is_main:
        print('Filtering the images containing characters which are not in opt.character')
        print('Filtering the images whose label is longer than opt.batch_max_length')

    opt.select_data = opt.select_data.split('-')
    opt.batch_ratio = opt.batch_ratio.split('-')
    train_dataset = Batch_Balanced_Dataset(opt, ctx.rank, ctx.world_size)
    valid_loader = None
    if ctx.is_main:
        # upstream shuffles validation so the printed samples vary between validations
        _, valid_dataset_log, valid_loader = make_eval_loader(opt.valid_data, opt, opt.batch_size,
                                                              shuffle=True)
        with open(f'{save_dir}/log_dataset.txt', 'a', encoding='utf-8') as log:
            log.write(valid_dataset_log)
            print('-' * 80)
            log.write('-' * 80 + '\n')

    converter = make_converter(opt)
    config = model_config(opt)
    model = build_model(opt, ctx)
    criterion = make_criterion(opt, device)
    loss_avg = Averager()

    filtered_parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(opt, filtered_parameters)
    if ctx.is_main:
        print('Trainable params num : ', sum(int(np.prod(p.size())) for p in filtered_parameters))
        print('Optimizer:')
        print(optimizer)
        write_options(opt, f'{save_dir}/opt.txt')

    amp_dtype = autocast_dtype(opt, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    best_accuracy, best_norm_ED = -1.0, -1.0
    if opt.resume:
        state_file = training_state_path(opt.resume)
        state = load_training_state(state_file)
        scheduler = make_scheduler(opt, optimizer, 0)
        progress = restore_training_state(
            state, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
            data=train_dataset, config=config, optimizer_name=optimizer_name(opt), source=str(state_file))
        start_iter = progress['iteration']
        best_accuracy, best_norm_ED = progress['best_accuracy'], progress['best_norm_ED']
        loss_avg.sum, loss_avg.n_count = progress['loss_sum'], progress['loss_count']
        if ctx.is_main:
            print(f'resuming from {state_file}: iteration {start_iter}, optimizer, learning-rate '
                  'schedule, RNG and data position restored')
    else:
        start_iter = resume_iteration(opt.saved_model) if opt.saved_model else 0
        if start_iter and ctx.is_main:
            print(f'continue to train, start_iter: {start_iter}')
        scheduler = make_scheduler(opt, optimizer, start_iter)
    start_time = time.time()
    iteration = start_iter
    metrics = TrainingLog(save_dir, start_iter) if ctx.is_main else None
    interval_start, interval_iterations = time.time(), 0
    nonfinite_streak = 0
    bar = tqdm(total=opt.num_iter, initial=start_iter, desc='train', unit='it', file=sys.stderr,
               dynamic_ncols=True, mininterval=1.0, disable=not ctx.is_main)

    def save_state(path_iteration: int) -> None:
        progress = {'iteration': path_iteration, 'best_accuracy': best_accuracy,
                    'best_norm_ED': best_norm_ED, 'loss_sum': loss_avg.sum, 'loss_count': loss_avg.n_count}
        save_training_state(f'{save_dir}/{TRAINING_STATE_NAME}', model=model, optimizer=optimizer,
                            scheduler=scheduler, scaler=scaler, data=train_dataset, progress=progress,
                            config=config, optimizer_name=optimizer_name(opt))

    time_limit_s = opt.time_limit * 60 if opt.time_limit else None
    stopped_by_time = False
    requested_iter = opt.num_iter
    next_fit_check_s = time_limit_s * FIT_CHECK_FRACTION if time_limit_s else None
    speed_origin = None  # (elapsed s, iteration) once the first validation is behind
    with StopRequest() as stop:
        while iteration < opt.num_iter:
            if not ctx.all_agree(stop.signal_name is None):
                break
            try:
                image_tensors, labels = train_dataset.get_batch()
            except RuntimeError:
                if stop.signal_name is None:  # a terminal's Ctrl-C also stops the loader's workers
                    raise
                break
            image = training_layout(image_tensors.to(device, non_blocking=True))
            cost = train_step(model, criterion, optimizer, scaler, image, labels, converter, opt, ctx,
                              amp_dtype)
            scheduler.step()
            if cost is None:
                nonfinite_streak += 1
                print(f'warning: iteration {iteration + 1}: the loss or its gradients are not finite; '
                      'skipping this step', file=sys.stderr)
                if nonfinite_streak >= NONFINITE_LIMIT:
                    bar.close()
                    raise NonFiniteLoss(
                        f'iteration {iteration + 1}: the loss or its gradients were not finite for '
                        f'{NONFINITE_LIMIT} iterations in a row, so training stopped; the last good '
                        f'checkpoints are kept in {save_dir}/ (best_accuracy.pth, {TRAINING_STATE_NAME}). '
                        'Lower --lr or --grad_clip, or check the data')
            else:
                nonfinite_streak = 0
                loss_avg.add(cost)
                bar.set_postfix(loss=f'{float(cost.detach()):.4f}', refresh=False)
            bar.update(1)
            interval_iterations += 1

            # --time_limit ends the run like a last --num_iter: validated, saved and resumable
            if time_limit_s is not None and iteration + 1 < opt.num_iter:
                # one clock for every process (the slowest), so all take the same decisions
                elapsed_s = ctx.largest(time.time() - start_time)
                stopped_by_time = elapsed_s >= time_limit_s
                if speed_origin is None and iteration > start_iter:
                    # the speed is measured after the first validation, which is no step's cost
                    speed_origin = (elapsed_s, iteration + 1)
                elif not stopped_by_time and elapsed_s >= next_fit_check_s and speed_origin is not None:
                    next_fit_check_s += time_limit_s * FIT_CHECK_FRACTION
                    step_s = (elapsed_s - speed_origin[0]) / max(iteration + 1 - speed_origin[1], 1)
                    fitting = min(requested_iter,
                                  iterations_that_fit(iteration + 1, step_s, time_limit_s - elapsed_s))
                    if fitting != opt.num_iter:
                        # the cosine schedule reads opt.num_iter, so it now ends at the deadline
                        opt.num_iter = fitting
                        bar.total = fitting
            # a run --time_limit shortened validates its last iteration: its best model is there
            last_of_shortened = iteration + 1 == opt.num_iter < requested_iter
            validation_due = ((iteration + 1) % opt.valInterval == 0 or iteration == 0 or stopped_by_time
                              or last_of_shortened)
            validated = False
            if validation_due and ctx.is_main:
                images_per_s = interval_iterations * opt.batch_size * ctx.world_size / max(
                    time.time() - interval_start, 1e-9)
                elapsed_time = time.time() - start_time
                inner = unwrap_model(model)
                inner.eval()
                with torch.no_grad():
                    valid_loss, accuracy, norm_ED, preds, confidences, valid_labels, _, _ = validation(
                        inner, criterion, valid_loader, converter, opt)
                inner.train()
                if accuracy > best_accuracy:
                    best_accuracy = accuracy
                    save_checkpoint(model, f'{save_dir}/best_accuracy.pth', config)
                if norm_ED > best_norm_ED:
                    best_norm_ED = norm_ED
                    save_checkpoint(model, f'{save_dir}/best_norm_ED.pth', config)
                train_loss = loss_avg.val()
                report = format_validation(iteration, opt, train_loss, valid_loss, elapsed_time,
                                           accuracy, norm_ED, best_accuracy, best_norm_ED)
                loss_avg.reset()
                samples = format_samples(valid_labels, preds, confidences, opt)
                tqdm.write(report, file=sys.stdout)
                tqdm.write(samples, file=sys.stdout)
                with open(f'{save_dir}/log_train.txt', 'a', encoding='utf-8') as log:
                    log.write(report + '\n')
                    log.write(samples + '\n')
                metrics.add({'iteration': iteration + 1, 'train_loss': train_loss, 'valid_loss': valid_loss,
                             'accuracy': accuracy, 'norm_ED': norm_ED, 'best_accuracy': best_accuracy,
                             'best_norm_ED': best_norm_ED, 'lr': optimizer.param_groups[0]['lr'],
                             'images_per_s': images_per_s, 'elapsed_s': elapsed_time})
                validated = True
            elif validation_due:
                loss_avg.reset()  # the other processes keep the main process's loss bookkeeping

            if (iteration + 1) % CHECKPOINT_EVERY == 0 and ctx.is_main:
                save_checkpoint(model, f'{save_dir}/iter_{iteration + 1}.pth', config)
            iteration += 1
            if validated:
                save_state(iteration)
                interval_start, interval_iterations = time.time(), 0
            if stopped_by_time:
                break
        bar.close()

        if stop.signal_name is not None:
            if ctx.is_main:
                path = f'{save_dir}/iter_{iteration}.pth'
                save_checkpoint(model, path, config)
                save_state(iteration)
                verb = 'interrupted' if stop.signal_name == 'SIGINT' else f'stopped by {stop.signal_name}'
                print(f'\n{verb} at iteration {iteration}; the model is saved in {path}.\n'
                      f'Resume with the same command plus --saved_model {path}\n'
                      f'or, to continue exactly (optimizer, schedule, RNG and data position), '
                      f'plus --resume {save_dir}')
            metrics and metrics.close()
            ctx.wait_for_all()
            raise SystemExit(130 if stop.signal_name == 'SIGINT' else 143)

    if metrics:
        metrics.close()
    if ctx.is_main:
        print('end the training')
        if opt.num_iter < requested_iter:
            print(f'--time_limit {opt.time_limit:g} min: --num_iter lowered from {requested_iter} to '
                  f'{opt.num_iter} at the measured speed, so the learning-rate schedule ends in time')
        if stopped_by_time:
            print(f'stopped by --time_limit {opt.time_limit:g} min at iteration {iteration} of '
                  f'{opt.num_iter}; continue with --resume {save_dir}')
        checkpoints = 'best_accuracy.pth, best_norm_ED.pth'
        if opt.save_last:
            save_checkpoint(model, f'{save_dir}/last.pth', config)
            checkpoints += f', last.pth (iteration {iteration})'
        print(f'best accuracy {best_accuracy:0.3f} and best norm_ED {best_norm_ED:0.2f} after '
              f'{iteration} iterations ({time.time() - start_time:0.1f} s); checkpoints in {save_dir}/: '
              f'{checkpoints}')
        print(f'metrics: {save_dir}/metrics.csv, {save_dir}/training_curves.png, TensorBoard: '
              f'tensorboard --logdir {save_dir}/tensorboard; train longer with a larger --num_iter '
              f'plus --resume {save_dir}')
    ctx.wait_for_all()
    return best_accuracy, best_norm_ED


def positive_minutes(value: str) -> float:
    """argparse type for --time_limit: a number of minutes, 0 meaning no limit."""
    try:
        minutes = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number of minutes, got {value!r}') from None
    if not (minutes >= 0 and math.isfinite(minutes)):
        raise argparse.ArgumentTypeError(f'expected a number of minutes of at least 0, got {value}')
    return minutes


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
                        help='torch CPU threads per process (0: the cores the --workers leave free)')
    parser.add_argument('--resume', default='',
                        help=f'continue exactly from a training state: {TRAINING_STATE_NAME} or the '
                             'experiment folder holding it (model, optimizer, schedule, AMP scaler, '
                             'best scores, RNG and data position); --num_iter may be raised')
    parser.add_argument('--augment', action='store_true',
                        help='training-time augmentation of every source (rotation, perspective, contrast, '
                             'blur, noise, JPEG; probabilities in README), seeded per draw so --resume '
                             'stays exact; off by default, as upstream')
    parser.add_argument('--augment_glyphs', action='store_true',
                        help='training-time glyph-shape augmentation of every source, for fonts the model '
                             'never saw: strokes made heavier or lighter, letters bent by a smooth warp '
                             '(probabilities in README); before --augment\'s operations when both are given')
    parser.add_argument('--render_font_dir', action='append', default=[],
                        help='--select_data render: draw with the fonts under this folder (repeatable; '
                             'default: every installed Korean font)')
    parser.add_argument('--render_text', default=None,
                        help='--select_data render: the generator\'s text sources as name:weight,... '
                             '(default: its --source default)')
    parser.add_argument('--render_exclude_file', action='append', default=[],
                        help='--select_data render: labels never to render, one per line (repeatable), '
                             'e.g. held-out test words')
    parser.add_argument('--time_limit', type=positive_minutes, default=0,
                        help='train for at most this many minutes of wall time: every 5%% of it the run '
                             'sets --num_iter to what fits at its measured speed, never above the --num_iter '
                             'given (so --lr_schedule '
                             'cosine ends at the deadline), and stops at the deadline in any case, '
                             'validated, saved and resumable; 0: no limit (upstream)')
    parser.add_argument('--save_last', action='store_true',
                        help='also write last.pth (and last.json) with the weights of the last iteration '
                             'when the run ends, for a run whose validation set does not stand for what it '
                             'is judged on (best_accuracy.pth keeps the best validated weights)')
    add_amp_options(parser, 'float16 with a GradScaler; the CTC loss and attention softmax '
                                    'stay float32')
    # training images and validation images are laid out as demo.py and test.py --vertical read them
    add_vertical_option(parser)
    return parser


def check_resume_flags(opt) -> None:
    if opt.resume and opt.saved_model:
        raise ValueError('--resume and --saved_model both given: --resume continues a training state '
                         '(weights included), --saved_model starts from weights alone; give one')


def main(argv=None):
    opt = finish_common_options(build_parser().parse_args(argv))
    check_resume_flags(opt)
    check_amp_flags(opt)
    if opt.baiduCTC:
        baidu_ctc_loss_class()
    if not opt.exp_name:
        opt.exp_name = f'{opt.Transformation}-{opt.FeatureExtraction}-{opt.SequenceModeling}-{opt.Prediction}'
        opt.exp_name += f'-Seed{opt.manualSeed}'
    ctx = init_distributed()
    try:
        if not ctx.is_main:  # one process speaks for the run
            sys.stdout = open(os.devnull, 'w', encoding='utf-8')
        os.makedirs(f'./saved_models/{opt.exp_name}', exist_ok=True)
        seed_everything(opt.manualSeed)
        configure_cuda(opt)
        if ctx.distributed:
            opt.num_gpu = 1 if ctx.device.type == 'cuda' else 0  # one device per process
        elif opt.num_gpu > 1:
            print('------ Use multi-GPU setting ------')
            print('if you stuck too long time with multi-GPU setting, try to set --workers 0')
            opt.workers = opt.workers * opt.num_gpu
            opt.batch_size = opt.batch_size * opt.num_gpu
        configure_threads(opt, int(os.environ.get('LOCAL_WORLD_SIZE', '1')))
        return train(opt, ctx)
    except KeyboardInterrupt:
        raise SystemExit(f'\ninterrupted again: stopped at once, without saving; the last training '
                         f'state is in ./saved_models/{opt.exp_name}/{TRAINING_STATE_NAME}') from None
    finally:
        ctx.close()


if __name__ == '__main__':
    run_script(main)
