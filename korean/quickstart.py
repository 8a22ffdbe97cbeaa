"""A Korean text recogniser from nothing, in one command, on a laptop CPU.

    python korean/quickstart.py

1. splits the built-in Korean word list into training words and two held-out lists
   (validation words, test words) that training never sees, and draws training labels from
   wordfreq's Korean words with the held-out words left out (text_sources.py lexicon_words);
2. renders a training LMDB with the training fonts (Nanum, Alee, Lexi) and a validation LMDB
   of the held-out validation words in the same fonts (--data render: no training LMDB, train.py
   renders a new image for every draw with the same fonts, styles and texts);
3. renders a test LMDB of the held-out test words in *other* Korean fonts (Un fonts and
   Baekmuk), so the score measures reading new words in new fonts;
4. trains a CPU-sized None-VGG-None-CTC model with train.py under --time_limit, what is left
   of --time_budget_min (15 minutes, counted from scripts/setup.sh's start when it ran just
   before, as in README's first command): train.py measures its speed as it goes and trains as
   many steps as fit, so a slower machine trains fewer steps and still ends in time (in mixed
   precision where the hardware computes it: --precision); then
   evaluates it with test.py (on the test set also with wordfreq's Korean words as --lexicon),
   runs demo.py on sample test images and writes a PNG contact sheet of images with their
   predictions.

Every step runs the project's own commands (printed as they run), so what the quickstart does
is what a user would type. All outputs go under --output_dir (default quickstart_output/);
the model lands in saved_models/<exp_name>/ as with any train.py run.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils import cpu_computes_bfloat16, pick_device, usable_cpu_count  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
ALPHABET = 'korean/alphabets/ksx1001.txt'
TRAIN_FONT_DIRS = ['/usr/share/fonts/truetype/nanum', '/usr/share/fonts/truetype/alee',
                   '/usr/share/fonts/truetype/lexi']
TEST_FONT_DIRS = ['/usr/share/fonts/truetype/unfonts-core', '/usr/share/fonts/truetype/baekmuk']
FONT_PACKAGES = ('fonts-nanum fonts-nanum-extra fonts-alee fonts-lexi-gulim fonts-lexi-saebom '
                 'fonts-unfonts-core fonts-baekmuk')

# The recipe, chosen by measurement on 2 CPU cores (see README, "The quickstart recipe").
TRAIN_SOURCES = 'words:2,syllables:1,numbers:0.2,dates:0.2,scores:0.2,prices:0.2,digits:0.2'
# Beside those, labels drawn from wordfreq's 26,000 Korean words (text_sources.py lexicon_words,
# the held-out words left out) make most training texts: on the built-in 2,791 words alone the
# model learnt the words more than their syllables and read unseen words worse.
LEXICON_WEIGHT = 6
LEXICON_LABELS = 100000
TRAIN_STYLES = 'document:2,caption:1,scene:1'
TEST_STYLES = 'document:2,caption:1,scene:1'
MODEL_FLAGS = ['--Transformation', 'None', '--FeatureExtraction', 'VGG', '--SequenceModeling', 'None',
               '--Prediction', 'CTC', '--output_channel', '128']
TRAIN_FLAGS = ['--adam', '--lr', '0.003', '--lr_schedule', 'cosine', '--batch_size', '64']
DEFAULTS = dict(train_images=60000, valid_images=600, test_images=1000, demo_images=16)


@dataclass
class StageClock:
    """Wall time of each stage, for the closing summary."""
    started: float = field(default_factory=time.time)
    stages: list[tuple[str, float]] = field(default_factory=list)
    _last: float = field(default_factory=time.time)

    def lap(self, name: str) -> None:
        now = time.time()
        self.stages.append((name, now - self._last))
        self._last = now

    def total(self) -> float:
        return time.time() - self.started

    def count_from(self, started: float, name: str) -> None:
        """Count what ran before this process (from ``started`` until now) as the first stage."""
        self.stages.insert(0, (name, self._last - started))
        self.started = started


# ----------------------------------------------------------------------------------------------
# sizing training by wall time

DEFAULT_BUDGET_MIN = 15.0
# train.py's --num_iter when --num_iter is not given: more than a CPU does in the budget, so
# train.py's --time_limit lowers it to what fits at the speed it measures (the cosine schedule
# follows), on a fast machine and on one half as fast alike
NUM_ITER_CAP = 50_000
VAL_INTERVAL = 500
# the part of the budget kept for what is not training: train.py's start-up (datasets, the
# render source's label pool, the first validation) and the evaluation and demo processes
# (about 45 s on a 2-core machine restricted to one core)
RESERVE_FRACTION = 0.1
# training gets at least this long, even when rendering used up the budget
MIN_TRAIN_S = 30.0
# README's first command is scripts/setup.sh followed by the quickstart, and its 15 minutes are the
# whole command's: setup.sh writes when it started and finished into this file, and a quickstart
# that starts at most SETUP_CHAIN_GAP_S after setup finished counts its budget from setup's start
SETUP_TIMES = REPO_ROOT / '.venv' / 'setup_times'
SETUP_CHAIN_GAP_S = 60.0

DATA_MODE_TEXT = {'lmdb': 'a fixed LMDB rendered before training (--data lmdb)',
                  'render': 'rendered on the fly, a new image every draw (--data render)'}
DATA_MODES = tuple(DATA_MODE_TEXT)
DEFAULT_DATA_MODE = 'lmdb'


PRECISIONS = ('auto', 'amp', 'float32')


def precision_flags(precision: str, has_cuda: bool, cpu_bfloat16: bool) -> list[str]:
    """train.py's --amp or nothing. ``auto`` trains with --amp where the hardware computes half
    precision (a CUDA GPU; a CPU with AVX-512 BF16 or AMX, where it measured 1.5x the steps of
    float32 in the same time and a far better model, see README) and in float32 elsewhere, where
    bfloat16 is emulated and slower."""
    if precision == 'auto':
        return ['--amp'] if has_cuda or cpu_bfloat16 else []
    return ['--amp'] if precision == 'amp' else []


def training_time_limit(budget_s: float, elapsed_s: float) -> float:
    """train.py's --time_limit in minutes: what is left of the budget less its reserve for
    start-up and evaluation. train.py measures its own speed as it trains and lowers
    --num_iter to what fits, so a slower machine trains fewer steps instead of running late."""
    left_s = budget_s - elapsed_s - budget_s * RESERVE_FRACTION
    return max(left_s, MIN_TRAIN_S) / 60


def setup_started_just_before(path: Path, now: float) -> float | None:
    """When scripts/setup.sh finished at most SETUP_CHAIN_GAP_S before ``now`` (as in README's
    first command, ``setup.sh && quickstart.py``), the time it started; else None. The file holds
    two Unix times, setup's start and end."""
    try:
        started, finished = (float(word) for word in path.read_text(encoding='ascii').split())
    except (OSError, ValueError, UnicodeDecodeError):  # no setup run here, or not setup.sh's file
        return None
    if started <= finished <= now and now - finished <= SETUP_CHAIN_GAP_S:
        return started
    return None


def repeated_flag(flag: str, values) -> list[str]:
    """``flag`` given once for each of ``values``, as the commands' repeatable flags take them."""
    return [part for value in values for part in (flag, str(value))]


def lexicon_labels_cmd(output: Path, seed: int, exclude: list[Path]) -> list[str]:
    """text_sources.py lexicon_words: the lexicon's training labels, held-out words left out."""
    return ([python(), 'korean/text_sources.py', 'lexicon_words', '--output', str(output), '--seed', str(seed),
             '--num', str(LEXICON_LABELS), '--character', ALPHABET] + repeated_flag('--exclude_file', exclude))


def lexicon_text_source(lexicon: Path) -> str:
    """The lexicon file as a weighted text source (``PATH:WEIGHT``), for the generator's
    --text_file and train.py's --render_text alike."""
    return f'{lexicon}:{LEXICON_WEIGHT:g}'


def training_data_flags(mode: str, data: Path, exclude: list[Path], lexicon: Path) -> list[str]:
    """train.py's data flags: the rendered LMDB, or rendering on the fly with the same
    fonts, styles and texts (held-out words excluded)."""
    if mode == 'lmdb':
        return ['--train_data', str(data / 'train'), '--select_data', '/', '--batch_ratio', '1']
    flags = ['--train_data', str(data / 'train'), '--select_data', f'render:{TRAIN_STYLES}',
             '--batch_ratio', '1', '--render_text', f'{TRAIN_SOURCES},{lexicon_text_source(lexicon)}']
    return flags + repeated_flag('--render_font_dir', TRAIN_FONT_DIRS) + repeated_flag('--render_exclude_file', exclude)


def parse_steps_run(train_output: str, num_iter: int) -> int:
    """The iterations train.py ran: all of --num_iter, or where --time_limit stopped it."""
    stopped = re.search(r'stopped by --time_limit \S+ min at iteration (\d+) of', train_output)
    if stopped:
        return int(stopped.group(1))
    lowered = re.search(r'--time_limit \S+ min: --num_iter lowered from \d+ to (\d+)', train_output)
    return int(lowered.group(1)) if lowered else num_iter


def python() -> str:
    return sys.executable


def run(cmd: list[str], capture: bool = False) -> str:
    """Run one of the project's commands from the repo root, echoing it first; stop the
    quickstart with its exit status if it fails. With ``capture`` its stdout is printed as it
    comes and returned too (stderr, where progress bars go, is left alone)."""
    shown = ' '.join(c if ' ' not in c else repr(c) for c in cmd)
    print(f'\n$ {shown}', flush=True)
    lines = []
    with subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE if capture else None, text=True,
                          bufsize=1) as proc:
        for line in proc.stdout or ():
            sys.stdout.write(line)
            lines.append(line)
    if proc.returncode != 0:
        raise SystemExit(f'quickstart: step failed (exit {proc.returncode}): {shown}')
    return ''.join(lines)


def check_fonts() -> None:
    missing = [d for d in TRAIN_FONT_DIRS + TEST_FONT_DIRS if not os.path.isdir(d)]
    if missing:
        raise SystemExit(f'quickstart: Korean fonts missing ({", ".join(missing)}); install the Debian '
                         f'packages {FONT_PACKAGES} (scripts/setup.sh does it when run as root)')


def write_word_splits(out: Path, seed: int) -> tuple[Path, Path, int]:
    """Hold out validation and test words from the built-in list; return their files."""
    from korean.text_sources import builtin_words, split_words, write_lines_atomically
    rest, test_words = split_words(builtin_words(), test_fraction=0.1, seed=seed)
    train_words, valid_words = split_words(rest, test_fraction=0.06, seed=seed + 1)
    valid_file, test_file = out / 'heldout_valid_words.txt', out / 'heldout_test_words.txt'
    write_lines_atomically(valid_file, valid_words)
    write_lines_atomically(test_file, test_words)
    print(f'words: {len(train_words)} for training, {len(valid_words)} held out for validation, '
          f'{len(test_words)} held out for testing')
    return valid_file, test_file, len(train_words)


def generate_cmd(output: Path, num_images: int, seed: int, workers: int, font_dirs: list[str],
                 styles: str, sources: str | None = None, text_file: Path | str | None = None,
                 exclude: list[Path] = ()) -> list[str]:
    cmd = [python(), 'korean/generate_word_images.py', '--output', str(output), '--format', 'lmdb',
           '--num_images', str(num_images), '--seed', str(seed), '--workers', str(workers),
           '--character', ALPHABET, '--styles', styles, '--overwrite']
    cmd += repeated_flag('--font_dir', font_dirs)
    if sources:
        cmd += ['--source', sources]
    if text_file:
        cmd += ['--text_file', str(text_file)]
    return cmd + repeated_flag('--exclude_file', exclude)


def parse_accuracy(test_output: str) -> float:
    """test.py's accuracy: its last line that is a number with three decimals (upstream's
    accuracy line; the CER / jamo 1-NED line now follows it)."""
    for line in reversed(test_output.strip().splitlines()):
        if re.fullmatch(r'\d+\.\d{3}', line.strip()):
            return float(line)
    raise ValueError(f'test.py printed no accuracy line:\n{test_output[-2000:]}')


def export_demo_images(lmdb_path: Path, folder: Path, count: int) -> list[tuple[Path, str]]:
    """Copy the first ``count`` test images out of the LMDB as files for demo.py."""
    from PIL import Image
    from dataset import open_lmdb_readonly, read_lmdb_labels
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    labels = read_lmdb_labels(lmdb_path)
    items = []
    with open_lmdb_readonly(lmdb_path).begin() as txn:
        for index in range(1, min(count, len(labels)) + 1):
            image = Image.open(io.BytesIO(txn.get(b'image-%09d' % index))).convert('RGB')
            path = folder / f'test_{index:03d}.png'
            image.save(path)
            items.append((path, labels[index - 1]))
    return items


def parse_demo_output(output: str) -> dict[str, str]:
    """{image path: prediction} from demo.py's printed table."""
    predictions = {}
    for line in output.splitlines():
        parts = line.split('\t')
        if len(parts) == 3 and parts[0].strip() != 'image_path':
            predictions[parts[0].strip()] = parts[1].rstrip()
    return predictions


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output_dir', default='quickstart_output', help='where data and reports go')
    parser.add_argument('--exp_name', default='korean_quickstart', help='saved_models/<exp_name>/')
    parser.add_argument('--train_images', type=int, default=DEFAULTS['train_images'])
    parser.add_argument('--valid_images', type=int, default=DEFAULTS['valid_images'])
    parser.add_argument('--test_images', type=int, default=DEFAULTS['test_images'])
    parser.add_argument('--num_iter', type=int, default=None,
                        help='at most this many training iterations (default: as many as fit in '
                             '--time_budget_min at the speed train.py measures on this machine)')
    parser.add_argument('--time_budget_min', type=float, default=DEFAULT_BUDGET_MIN,
                        help='wall-time budget of the whole quickstart in minutes, counted from '
                             "scripts/setup.sh's start when setup finished just before (README's first "
                             'command)')
    parser.add_argument('--demo_images', type=int, default=DEFAULTS['demo_images'])
    parser.add_argument('--seed', type=int, default=1111)
    parser.add_argument('--workers', type=int, default=usable_cpu_count(), help='rendering processes')
    parser.add_argument('--data', choices=DATA_MODES, default=DEFAULT_DATA_MODE,
                        help='lmdb: render a fixed training LMDB first, then train on it; render: no '
                             'training LMDB, train.py renders a new image for every draw (--select_data render)')
    parser.add_argument('--precision', choices=PRECISIONS, default='auto',
                        help="train.py's precision: amp (--amp: bfloat16 on the CPU, float16 on CUDA), "
                             'float32, or auto: amp where the hardware computes it (a CUDA GPU, a CPU with '
                             'AVX-512 BF16 or AMX), else float32')
    parser.add_argument('--threads', type=int, default=0,
                        help="train.py's --num_threads (0: every core; give 1 on a machine that is busy)")
    args = parser.parse_args(argv)
    if args.num_iter is not None and args.num_iter < 1:
        parser.error(f'--num_iter must be at least 1, got {args.num_iter}')
    if not args.time_budget_min > 0:
        parser.error(f'--time_budget_min must be a positive number of minutes, got {args.time_budget_min}')

    check_fonts()
    clock = StageClock()
    setup_started = setup_started_just_before(SETUP_TIMES, clock.started)
    if setup_started is not None:
        clock.count_from(setup_started, 'setup.sh')
        print(f'scripts/setup.sh ran just before ({clock.stages[0][1]:.0f} s): the {args.time_budget_min:g}-minute '
              'budget counts from its start, so that README\'s first command ends in time')
    out = (REPO_ROOT / args.output_dir) if not os.path.isabs(args.output_dir) else Path(args.output_dir)
    if args.data == 'render' and ',' in str(out):
        parser.error(f'--output_dir {out}: --data render needs a folder without commas (its lexicon file '
                     'goes into train.py --render_text name:weight,...)')
    data = out / 'data'
    data.mkdir(parents=True, exist_ok=True)
    valid_words, test_words, _ = write_word_splits(out, args.seed)
    lexicon = out / 'lexicon_labels.txt'
    run(lexicon_labels_cmd(lexicon, args.seed, [valid_words, test_words]))

    if args.data == 'lmdb':
        run(generate_cmd(data / 'train' / 'synth', args.train_images, args.seed, args.workers,
                         TRAIN_FONT_DIRS, TRAIN_STYLES, sources=TRAIN_SOURCES,
                         text_file=lexicon_text_source(lexicon), exclude=[valid_words, test_words]))
    run(generate_cmd(data / 'valid' / 'heldout_words', args.valid_images, args.seed + 1, args.workers,
                     TRAIN_FONT_DIRS, TRAIN_STYLES, text_file=valid_words))
    run(generate_cmd(data / 'test' / 'unseen_fonts', args.test_images, args.seed + 2, args.workers,
                     TEST_FONT_DIRS, TEST_STYLES, text_file=test_words))
    clock.lap('generate data')

    train_cmd = [python(), 'train.py', '--valid_data', str(data / 'valid'), '--character', ALPHABET,
                 '--workers', '0', '--num_threads', str(args.threads), '--manualSeed', str(args.seed)]
    amp = precision_flags(args.precision, pick_device().type == 'cuda', cpu_computes_bfloat16())
    train_cmd += training_data_flags(args.data, data, [valid_words, test_words], lexicon)
    train_cmd += MODEL_FLAGS + TRAIN_FLAGS + amp
    num_iter = args.num_iter or NUM_ITER_CAP
    interval = min(VAL_INTERVAL, max(1, num_iter // 4))
    limit_min = training_time_limit(args.time_budget_min * 60, clock.total())
    train_out = run(train_cmd + ['--exp_name', args.exp_name, '--num_iter', str(num_iter),
                                 '--valInterval', str(interval), '--time_limit', f'{limit_min:.2f}'], capture=True)
    steps_run = parse_steps_run(train_out, num_iter)
    clock.lap('train')

    model = f'saved_models/{args.exp_name}/best_accuracy.pth'
    common = ['--character', ALPHABET, '--saved_model', model, '--workers', '0'] + MODEL_FLAGS
    test_out = run([python(), 'test.py', '--eval_data', str(data / 'test')] + common, capture=True)
    accuracy = parse_accuracy(test_out)
    valid_out = run([python(), 'test.py', '--eval_data', str(data / 'valid')] + common, capture=True)
    valid_accuracy = parse_accuracy(valid_out)
    # the same test read with a Korean word list (wordfreq's, made without the held-out words)
    words = out / 'ko_words.txt'
    run([python(), 'korean/text_sources.py', 'dictionary', '--output', str(words)])
    lexicon_out = run([python(), 'test.py', '--eval_data', str(data / 'test')] + common + ['--lexicon', str(words)],
                      capture=True)
    lexicon_accuracy = parse_accuracy(lexicon_out)
    clock.lap('evaluate')

    demo_items = export_demo_images(data / 'test' / 'unseen_fonts', out / 'demo_images', args.demo_images)
    demo_out = run([python(), 'demo.py', '--image_folder', str(out / 'demo_images')] + common, capture=True)
    predictions = parse_demo_output(demo_out)
    from korean.contact_sheet import contact_sheet
    sheet = out / 'contact_sheet.png'
    contact_sheet([(path, label, predictions.get(str(path), '')) for path, label in demo_items], sheet, columns=4)
    clock.lap('demo')

    print('\n' + '=' * 80)
    print('Korean quickstart finished')
    for name, seconds in clock.stages:
        print(f'  {name:15s} {seconds / 60:5.1f} min')
    print(f'  {"total":15s} {clock.total() / 60:5.1f} min')
    print(f'training data:  {DATA_MODE_TEXT[args.data]}')
    print(f'precision:      {"mixed (train.py --amp)" if amp else "float32"} (--precision {args.precision})')
    print(f'training steps: {steps_run}' + (f' of --num_iter {num_iter}' if args.num_iter else '')
          + f', within train.py --time_limit {limit_min:.2f} min of the {args.time_budget_min:g}-minute budget')
    print(f'word accuracy, unseen words in unseen fonts (test):   {accuracy:0.3f} %')
    print(f'  the same with a Korean word list (test.py --lexicon): {lexicon_accuracy:0.3f} %')
    print(f'word accuracy, unseen words in training fonts (valid): {valid_accuracy:0.3f} %')
    print(f'model:          {model}')
    print(f'contact sheet:  {sheet.relative_to(REPO_ROOT) if sheet.is_relative_to(REPO_ROOT) else sheet}')
    print('next: train longer (--num_iter), on more data, or on your own images: see README.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
