"""Shared fixtures: word images rendered with a real Korean font, real LMDB datasets written by
create_lmdb_dataset's LmdbWriter, and one tiny recogniser trained once per session by the real
train.py (used by the train, test and demo tests)."""
from __future__ import annotations

import contextlib
import io
import math
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence

import pytest
from PIL import Image, ImageDraw, ImageFont

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

KOREAN_FONT = '/usr/share/fonts/truetype/nanum/NanumGothic.ttf'

ACCURACY_LINE = re.compile(r'\d+\.\d{3}')
METRICS_LINE = re.compile(r'CER (\d+\.\d{4}|inf)\t jamo_1-NED \d+\.\d{4}')


def run_torchrun_two_processes(argv: Sequence[str], *, timeout: float, cwd=None) -> subprocess.CompletedProcess:
    """Run ``argv`` (a script and its arguments) as a real 2-process job under torchrun on this
    machine, one OpenMP thread per process so the two share the cores without collapsing."""
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                           *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))


def accuracy_line(out: str) -> str:
    """test.py's upstream accuracy line, checked to be the last but one line printed, with the
    CER / jamo 1-NED line after it."""
    lines = out.strip().splitlines()
    assert len(lines) >= 2 and ACCURACY_LINE.fullmatch(lines[-2]) and METRICS_LINE.fullmatch(lines[-1]), \
        f'test.py did not end with its accuracy and metrics lines:\n{out[-2000:]}'
    return lines[-2]

# The architecture every script test uses: DTRB's VGG-BiLSTM-CTC at a size that trains in seconds.
TINY_CTC = ['--Transformation', 'None', '--FeatureExtraction', 'VGG', '--SequenceModeling', 'BiLSTM',
            '--Prediction', 'CTC', '--output_channel', '32', '--hidden_size', '32']

# The session model learns these words (Hangul, mixed case, a digit and '-', which upstream's
# regular-expression alphabet mishandled) from an alphabet file, case-sensitively.
LEARNED_WORDS = ('가나', '다라마', 'Ab7', '바-사')
LEARNED_ALPHABET = '가나다라마바사-AaBb7'


@pytest.fixture(scope='session')
def korean_font() -> ImageFont.FreeTypeFont:
    """NanumGothic at 24 px (Debian's fonts-nanum, installed by scripts/setup.sh)."""
    if not os.path.isfile(KOREAN_FONT):
        raise FileNotFoundError(f'{KOREAN_FONT} is missing: install the fonts-nanum package '
                                '(scripts/setup.sh does)')
    return ImageFont.truetype(KOREAN_FONT, 24)


@pytest.fixture(scope='session')
def render_word(korean_font) -> Callable[..., bytes]:
    """``render_word(text, fmt='PNG', size=(100, 32), mode='L')``: the encoded bytes of an image
    of ``text`` in black on white. The same arguments always give the same bytes."""
    def render(text: str, fmt: str = 'PNG', size: tuple[int, int] = (100, 32), mode: str = 'L') -> bytes:
        image = Image.new(mode, size, 'white')
        ImageDraw.Draw(image).text((4, 2), text, fill='black', font=korean_font)
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **({'quality': 95} if fmt == 'JPEG' else {}))
        return buffer.getvalue()
    return render


@pytest.fixture(scope='session')
def make_lmdb(render_word) -> Callable[..., str]:
    """``make_lmdb(path, labels, image_texts=None)``: write a real LMDB dataset at ``path`` with
    one sample per label; sample i shows ``image_texts[i]`` (default: the label itself).
    Returns the folder as a string."""
    from create_lmdb_dataset import LmdbWriter

    def make(path, labels: Sequence[str], image_texts: Sequence[str] | None = None) -> str:
        texts = list(labels) if image_texts is None else list(image_texts)
        if len(texts) != len(labels):
            raise ValueError(f'{len(labels)} labels but {len(texts)} image texts')
        with LmdbWriter(path) as writer:
            for text, label in zip(texts, labels):
                writer.add(render_word(text), label)
        return str(path)
    return make


def ctc_frames(rows, converter):
    """CTC log-probabilities [T, num_class]: each row a {token: probability} dict for one frame,
    the rest of its mass spread evenly over the other classes ('' is the blank)."""
    import torch
    num_class = len(converter.character)
    out = torch.empty(len(rows), num_class)
    for t, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (num_class - len(row))
        probs = torch.full((num_class,), rest)
        for token, p in row.items():
            probs[0 if token == '' else converter.dict[token]] = p
        out[t] = probs.log()
    return out


def greedy_reading(log_probs, converter):
    """The greedy CTC text of those frames and DTRB's confidence (the product of frame maxima)."""
    best = log_probs.argmax(1)
    text = converter.decode(best, [len(best)])[0]
    return text, float(log_probs.max(1).values.sum().exp())


def small_checkpoint(folder, combo, seed=0):
    """A randomly initialised model of ``combo`` at a small size, saved as train.py saves."""
    import export
    import torch
    from model import Model, init_weights, save_checkpoint
    from utils import finish_common_options, make_converter, model_config
    transformation, features, sequence, prediction = combo
    opt = finish_common_options(export.build_parser().parse_args([
        '--saved_model', 'unused', '--output', 'unused', '--Transformation', transformation,
        '--FeatureExtraction', features, '--SequenceModeling', sequence, '--Prediction', prediction,
        '--output_channel', '32', '--hidden_size', '16', '--imgW', '64', '--batch_max_length', '8',
        '--character', '가나다라마바사서울부산역뉴스속보0123456789']))
    make_converter(opt)
    torch.manual_seed(seed)
    model = Model(opt)
    init_weights(model)
    path = folder / f'{"-".join(combo)}.pth'
    save_checkpoint(model, path, model_config(opt))
    return path


@dataclass
class LearnedModel:
    """A model train.py trained until it reads LEARNED_WORDS (see the ``learned_model`` fixture)."""
    workdir: str  # the folder train.py ran in
    data_root: str  # training root holding the LMDB folder ``train``
    lmdb: str  # the LMDB of the four words (training and validation data)
    alphabet_file: str
    checkpoint: str  # saved_models/{exp_name}/best_accuracy.pth, absolute
    exp_dir: str
    stdout: str  # everything train.py printed
    best_accuracy: float
    args: list  # the architecture / alphabet flags test.py and demo.py need to load it


@pytest.fixture(scope='session')
def learned_model(tmp_path_factory, make_lmdb) -> LearnedModel:
    """Train the tiny CTC model on the four LEARNED_WORDS (one rendered image each) with
    train.py's main, 200 Adam iterations, validating on the same LMDB. Seeded, single-threaded:
    it reaches 100% by about iteration 100 for any seed tried."""
    import train

    workdir = tmp_path_factory.mktemp('learned')
    data_root = workdir / 'data'
    lmdb_path = make_lmdb(data_root / 'train', list(LEARNED_WORDS))
    alphabet_file = workdir / 'alphabet.txt'
    alphabet_file.write_text(''.join(ch + '\n' for ch in LEARNED_ALPHABET), encoding='utf-8')
    args = TINY_CTC + ['--character', str(alphabet_file), '--sensitive']
    argv = args + ['--train_data', str(data_root), '--valid_data', lmdb_path, '--select_data', '/',
                   '--batch_ratio', '1', '--batch_size', '4', '--workers', '0', '--num_iter', '200',
                   '--valInterval', '50', '--adam', '--lr', '0.005', '--num_threads', '1']
    out = io.StringIO()
    previous = os.getcwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(out):
            best_accuracy, _ = train.main(argv)
    finally:
        os.chdir(previous)
    exp_dir = workdir / 'saved_models' / 'None-VGG-BiLSTM-CTC-Seed1111'
    return LearnedModel(str(workdir), str(data_root), lmdb_path, str(alphabet_file),
                        str(exp_dir / 'best_accuracy.pth'), str(exp_dir), out.getvalue(),
                        best_accuracy, args)


@dataclass
class ConstantModel:
    """A checkpoint whose every prediction step has the same logits (see ``constant_model``)."""
    checkpoint: str
    args: list  # architecture, --character and --batch_max_length flags for test.py / demo.py
    probability: float  # the softmax probability of the favoured class at every step
    num_class: int


@pytest.fixture(scope='session')
def constant_model(tmp_path_factory) -> Callable[..., ConstantModel]:
    """``constant_model(prediction, character, favoured, batch_max_length=25)``: save a tiny
    VGG-BiLSTM checkpoint whose prediction layer ignores the image (zero weights) and whose bias
    is 5 for the class ``favoured`` (a token of the converter: a character, '[CTCblank]',
    '[GO]' or '[s]') and 0 elsewhere. Every step then yields exactly those logits, so a test
    knows the model's output: the favoured token at every step, with softmax probability
    e^5 / (e^5 + num_class - 1). ``describe`` writes its configuration beside it, as train.py
    does."""
    import torch

    import test as test_script
    from model import Model, init_weights, save_checkpoint
    from utils import finish_common_options, make_converter, model_config

    folder = tmp_path_factory.mktemp('constant')

    def make(prediction: str, character: str, favoured: str, batch_max_length: int = 25,
             describe: bool = False) -> ConstantModel:
        args = list(TINY_CTC)
        args[args.index('--Prediction') + 1] = prediction
        args += ['--character', character, '--batch_max_length', str(batch_max_length)]
        opt = finish_common_options(test_script.build_parser().parse_args(
            args + ['--eval_data', 'unused', '--saved_model', 'unused']))
        converter = make_converter(opt)
        model = Model(opt)
        init_weights(model)
        layer = model.Prediction if prediction == 'CTC' else model.Prediction.generator
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.zero_()
            layer.bias[converter.character.index(favoured)] = 5.0
        path = folder / f'{prediction}-{len(list(folder.iterdir()))}.pth'
        save_checkpoint(model, path, model_config(opt) if describe else None)
        probability = math.exp(5.0) / (math.exp(5.0) + opt.num_class - 1)
        return ConstantModel(str(path), args, probability, opt.num_class)
    return make


# ---------------------------------------------------------------------------------------------
# a local Naver-like news site (the crawler's tests and the README's crawl command)


def headline_page(*titles: str) -> str:
    """A section page in today's Naver markup holding ``titles``."""
    items = ''.join(
        f'<li class="sa_item"><div class="sa_text"><a class="sa_text_title" href="/x">'
        f'<strong class="sa_text_strong">{t}</strong></a></div></li>\n' for t in titles)
    return f'<html><body><ul class="sa_list">\n{items}</ul></body></html>'


@dataclass
class Reply:
    status: int = 200
    body: str = ''
    delay: float = 0.0  # seconds before the headers
    drip: float = 0.0  # when set, the body is sent one byte every ``drip`` seconds
    content_length: bool = True  # False: no Content-Length, the body ends when the server closes
    data: bytes = b''  # when set, sent instead of ``body`` (a binary file)


class NaverStub:
    """A local HTTP server: ``routes`` maps a request path (with query) to a Reply, or to a
    list of Replies given one per request (the last one repeats). Records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | list[Reply]] = {}
        self.requests: list[tuple[float, str, str]] = []  # (time, path, user agent)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.requests.append((time.monotonic(), self.path, self.headers.get('User-Agent', '')))
                reply = stub._next_reply(self.path)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.data or reply.body.encode('utf-8')
                try:
                    self.send_response(reply.status)
                    self.send_header('Content-Type', 'text/html; charset=utf-8')
                    if reply.content_length:
                        self.send_header('Content-Length', str(len(body)))
                    self.end_headers()
                    if reply.drip:
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(reply.drip)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout, deadline and size cap tests)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.url = f'http://127.0.0.1:{self.server.server_port}'
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.05},
                                       daemon=True)

    def __enter__(self) -> 'NaverStub':
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next_reply(self, path: str) -> Reply:
        route = self.routes.get(path, Reply(404, 'not found'))
        if isinstance(route, list):
            return route.pop(0) if len(route) > 1 else route[0]
        return route

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]
