"""One inference path: a checkpoint and its configuration in, (text, confidence) out.

demo.py, test.py, train.py, export.py and the Python API share it, so images become text in one
place: the model is built from the checkpoint's configuration (or the flags of a DTRB command
line), images are preprocessed exactly as training read them (``dataset.AlignCollate``: grey or
RGB, bicubic resize or --PAD), batched, run (Attn stops once every sequence emitted [s]) and
greedily decoded.

    from inference import Recognizer
    recognizer = Recognizer.from_checkpoint('saved_models/korean/best_accuracy.pth')
    recognizer.read(['sign.jpg', pil_image, numpy_array])  # [('약국', 0.97), ...]

Several models read together as an :class:`Ensemble` (demo.py and test.py ``--ensemble``): each
image is read by every model, at each model's own size, and keeps the most confident reading.

Evaluation over LMDB datasets lives here too (:func:`make_eval_loader`, :func:`validation`,
:func:`validation_loss`): train.py validates and test.py evaluates through the same function,
so the scripts import a module rather than each other.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.data
from PIL import Image

from dataset import AlignCollate, hierarchical_dataset
from lexicon import lexicon_for, lexicon_weight, line_log_likelihoods, read_with_lexicon
from model import Model, baidu_ctc_cost, load_checkpoint, read_model_config
from pattern import pattern_for, read_with_pattern
from utils import (MODEL_OPTION_DEFAULTS, OVERRIDABLE_OPTIONS, Averager, AttnLabelConverter, InputError,
                   RecognitionMetrics, autocast_dtype, finish_common_options, make_converter,
                   normalized_similarity, pick_device, reading_min_aspect, reading_vertical)

CASE_INSENSITIVE_ALNUM = frozenset('0123456789abcdefghijklmnopqrstuvwxyz')


@dataclass
class Prediction:
    text: str
    confidence: float
    model: int = 0  # which model of an :class:`Ensemble` read it (0: --saved_model, or the only one)


def empty_text_input(batch_size: int, opt, device) -> torch.Tensor:
    """The text tensor inference feeds the model: [GO] everywhere (index 0)."""
    return torch.zeros(batch_size, opt.batch_max_length + 1, dtype=torch.long, device=device)


def run_model(model, image: torch.Tensor, opt, stop_at_eos: bool = True,
              amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Inference logits [B, T, num_class] for a batch of images. Attn may stop decoding once
    every sequence has emitted [s] unless ``stop_at_eos`` is False (the validation loss reads
    every step, so it needs them all, as upstream computed them). ``amp_dtype`` runs the model
    under autocast in that precision (--amp); the logits come back float32 either way."""
    text_for_pred = empty_text_input(image.size(0), opt, image.device)
    image = image.contiguous(memory_format=torch.channels_last)  # the model's layout
    with torch.autocast(image.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        if 'CTC' in opt.Prediction:
            preds = model(image, text_for_pred)
        else:
            preds = model(image, text_for_pred, is_train=False, stop_at_eos=stop_at_eos)
    return preds.float()


def decode_predictions(preds: torch.Tensor, converter, opt) -> list[Prediction]:
    """Greedy decode logits into texts with confidences; with --lexicon (CTC), each reading is
    rescored against the word list (lexicon.py); with --pattern (CTC), forced into its form
    (pattern.py).

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
        lexicon, pattern = lexicon_for(opt), pattern_for(opt, converter)
        if lexicon is not None or pattern is not None:
            log_probs = preds.float().log_softmax(2).cpu()
        if lexicon is not None:
            weight = lexicon_weight(opt)
        for k, (text, probs) in enumerate(zip(texts, max_prob)):
            confidence = float(probs.cumprod(dim=0)[-1]) if text else 0.0
            if lexicon is not None:
                text, confidence = read_with_lexicon(log_probs[k], text, confidence, converter, lexicon, weight)
            if pattern is not None:
                text, confidence = read_with_pattern(log_probs[k], text, confidence, converter, pattern)
            results.append(Prediction(text, confidence))
        return results
    eos = converter.dict[AttnLabelConverter.EOS]
    for row, probs in zip(index.tolist(), max_prob):
        steps = row.index(eos) if eos in row else len(row)
        text = ''.join(converter.character[i] for i in row[:steps])
        confidence = float(probs[:steps].cumprod(dim=0)[-1]) if steps else 0.0
        results.append(Prediction(text, confidence))
    return results


def print_model_parameters(opt) -> None:
    print('model input parameters', opt.imgH, opt.imgW, opt.num_fiducial, opt.input_channel,
          opt.output_channel, opt.hidden_size, opt.num_class, opt.batch_max_length,
          opt.Transformation, opt.FeatureExtraction, opt.SequenceModeling, opt.Prediction)


def load_model_for_inference(opt, device, verbose: bool = True):
    """Build the model from the options and load --saved_model strictly; ``verbose`` prints
    upstream's two lines (the scripts keep them, the Python API does not)."""
    model = Model(opt)
    if verbose:
        print_model_parameters(opt)
        print('loading pretrained model from %s' % opt.saved_model)
    load_checkpoint(model, opt.saved_model)
    # channels-last convolutions: the same arithmetic, 1.3x faster for TPS-ResNet on a CPU
    model = model.to(device).to(memory_format=torch.channels_last)
    if opt.num_gpu > 1:
        model = torch.nn.DataParallel(model)
    model.eval()
    return model


def as_pil_image(image, mode: str) -> Image.Image:
    """A path, PIL image or numpy array (H x W grey, H x W x 3 RGB, uint8) as a PIL image of
    ``mode``, as training decoded its images."""
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as opened:
            return opened.convert(mode)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            raise ValueError(f'expected a uint8 array of H x W or H x W x 3, got {image.dtype} {image.shape}')
        image = Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    if not isinstance(image, Image.Image):
        raise TypeError(f'expected a path, a PIL image or a numpy array, got {type(image).__name__}')
    return image.convert(mode)


class _MeanOverHeight(torch.nn.Module):
    """What ``AdaptiveAvgPool2d((None, 1))`` computes on [B, W, C, H], in operations every
    exporter knows (ONNX has no adaptive pooling whose output size follows the input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=3, keepdim=True)


class ExportableModel(torch.nn.Module):
    """A trained model as an image-to-logits function for ONNX and TorchScript: images
    [B, C, imgH, imgW] (preprocessed as :class:`Recognizer` does) -> logits [B, T, num_class].
    Attn runs all batch_max_length + 1 greedy steps (a graph has no early exit); the decoded text
    is the same, since decoding cuts at the first [s]."""

    def __init__(self, model: torch.nn.Module, opt: argparse.Namespace):
        super().__init__()
        import copy
        from model import unwrap_model
        self.model = copy.deepcopy(unwrap_model(model)).eval()
        self.model.AdaptiveAvgPool = _MeanOverHeight()
        self.is_ctc = 'CTC' in opt.Prediction
        self.steps = opt.batch_max_length + 1

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        text = torch.zeros(image.size(0), self.steps, dtype=torch.long, device=image.device)
        if self.is_ctc:
            return self.model(image, text)
        return self.model(image, text, is_train=False, stop_at_eos=False)


class MissingDependency(InputError, ImportError):
    """An optional package a command needs is not installed; the message says which."""


class OnnxRuntimeModel:
    """An exported .onnx file run by ONNX Runtime, called like the torch model on image batches."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError:
            raise MissingDependency(f'{path}: running an ONNX model needs ONNX Runtime, which is not '
                                    'installed (pip install onnxruntime)') from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads  # a fair comparison with torch's thread count
        self.session = onnxruntime.InferenceSession(os.fspath(path), options, providers=['CPUExecutionProvider'])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.session.run(None, {self.input_name: image.detach().cpu().numpy()})[0]
        return torch.from_numpy(logits)


def is_onnx_file(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith('.onnx')


class BatchReader:
    """``read(images)`` for a reader with ``mode`` (the PIL mode images are decoded to),
    ``collate`` (a batch of (PIL image, item) to model input and items) and ``predict`` (model
    input to a list of :class:`Prediction`): :class:`Recognizer` and :class:`Ensemble`."""

    def read(self, images: Iterable, batch_size: int = 64) -> list[tuple[str, float]]:
        """(text, confidence) for each image, in order."""
        images = list(images)
        results: list[tuple[str, float]] = []
        for start in range(0, len(images), batch_size):
            batch = [(as_pil_image(image, self.mode), None) for image in images[start:start + batch_size]]
            tensors, _ = self.collate(batch)
            results += [(p.text, p.confidence) for p in self.predict(tensors)]
        return results


class Recognizer(BatchReader):
    """A trained recogniser: ``read(images)`` returns (text, confidence) pairs.

    ``opt`` is a finished option namespace (``utils.finish_common_options``) describing the model;
    :meth:`from_checkpoint` builds it from the checkpoint's configuration."""

    def __init__(self, opt: argparse.Namespace, device: torch.device | None = None, verbose: bool = False):
        self.opt = opt
        self.device = device or pick_device()
        self.converter = make_converter(opt)
        lexicon_for(opt)  # bad --lexicon / --pattern flags or files fail before the model is loaded
        pattern_for(opt, self.converter)
        if not hasattr(opt, 'num_gpu'):
            opt.num_gpu = 0
        if is_onnx_file(opt.saved_model):
            if getattr(opt, 'amp', False):
                raise InputError(f'--amp: {opt.saved_model} is an ONNX file, which ONNX Runtime runs in the '
                                 'precision it was exported in; --amp applies to .pth checkpoints')
            self.device = torch.device('cpu')
            self.onnx = OnnxRuntimeModel(opt.saved_model)
            self.model = None
        else:
            self.onnx = None
            self.model = load_model_for_inference(opt, self.device, verbose=verbose)
        self.amp_dtype = autocast_dtype(opt, self.device)
        self.collate = AlignCollate(imgH=opt.imgH, imgW=opt.imgW, keep_ratio_with_pad=opt.PAD,
                                    min_aspect=reading_min_aspect(opt), vertical=reading_vertical(opt))
        self.mode = 'RGB' if opt.rgb else 'L'

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: torch.device | None = None,
                        amp: bool = False, min_aspect: float = 0.0, vertical: float = 0.0,
                        lexicon: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
                        lexicon_weight: float | None = None, pattern: str | None = None,
                        **flags) -> 'Recognizer':
        """Load ``path``; ``flags`` are the model flags of a DTRB command line (needed only for a
        checkpoint without a configuration beside it), e.g. ``Transformation='TPS'``. ``amp``
        reads in mixed precision (bfloat16 on the CPU, float16 on CUDA), as demo.py --amp:
        faster where the hardware has it, and a few predictions may differ from float32.
        ``min_aspect`` widens narrow images before reading, as demo.py --min_aspect (4 for
        licence-plate crops). ``vertical`` lays images that many times taller than wide out left
        to right before reading, as demo.py --vertical (1.2 for vertical signs). ``lexicon`` (a
        word-list path or several) rescores CTC readings against it, ``lexicon_weight`` nats
        apart, as demo.py --lexicon / --lexicon_weight.
        ``pattern`` (a regular expression, or ``'plate'``) forces every CTC reading into that
        form, as demo.py --pattern."""
        unknown = sorted(set(flags) - set(MODEL_OPTION_DEFAULTS))
        if unknown:
            raise TypeError(f'unknown model flags {unknown}; expected some of {sorted(MODEL_OPTION_DEFAULTS)}')
        values = {flag: None for flag in MODEL_OPTION_DEFAULTS}
        values.update(flags, saved_model=os.fspath(path))
        opt = finish_common_options(argparse.Namespace(**values), read_model_config(path))
        opt.amp = amp
        opt.min_aspect = min_aspect
        opt.vertical = vertical
        if isinstance(lexicon, (str, os.PathLike)):
            lexicon = [lexicon]
        opt.lexicon = [os.fspath(p) for p in lexicon] if lexicon is not None else None
        opt.lexicon_weight = lexicon_weight
        opt.pattern = pattern
        return cls(opt, device)

    def predict(self, tensors: torch.Tensor) -> list[Prediction]:
        """Predictions for a preprocessed batch [B, C, imgH, imgW] (what AlignCollate makes)."""
        return self.predict_with_logits(tensors)[0]

    @torch.no_grad()
    def predict_with_logits(self, tensors: torch.Tensor) -> tuple[list[Prediction], torch.Tensor]:
        """:meth:`predict`'s predictions and the logits [B, T, num_class] they were decoded from."""
        if self.onnx is not None:
            preds = self.onnx(tensors)
        else:
            preds = run_model(self.model, tensors.to(self.device), self.opt, amp_dtype=self.amp_dtype)
        return decode_predictions(preds, self.converter, self.opt), preds


class EnsembleCollate:
    """Preprocess a batch of (PIL image, item) once for each model of an :class:`Ensemble`, as
    that model learnt to read: its own size, padding and colour mode."""

    def __init__(self, members: list[Recognizer]):
        self.readers = [(member.collate, member.mode) for member in members]

    def __call__(self, batch):
        tensors = []
        for collate, mode in self.readers:
            member_batch = [(image if image.mode == mode else image.convert(mode), item) for image, item in batch]
            tensors.append(collate(member_batch)[0])
        return tensors, [item for _, item in batch]


ENSEMBLE_RULES = ('confidence', 'likelihood')


def most_confident(candidates: list[Prediction], among: Iterable[int] | None = None) -> int:
    """The index of the most confident of ``candidates`` (only those ``among``, when given); on a
    tie, the first."""
    among = range(len(candidates)) if among is None else among
    return max(among, key=lambda k: (candidates[k].confidence, -k))


def likeliest_reading(candidates: list[Prediction], log_probs: list[torch.Tensor], index: dict[str, int]) -> int:
    """Which of ``candidates`` (one model's reading each) the models together find likeliest: each
    distinct text scored by the sum over the models of its CTC log-likelihood under their frames
    (``log_probs``, [T, num_class] each, over every alignment, not only the greedy one), so that
    every model weighs every other model's reading. Of the models that read the kept text, the
    most confident; on a tie, the first."""
    texts = list(dict.fromkeys(candidate.text for candidate in candidates))
    if len(texts) > 1:
        scores = {text: sum(line_log_likelihoods(frames, [text], index)[0] for frames in log_probs) for text in texts}
        best_text = max(texts, key=lambda text: (scores[text], -texts.index(text)))
    else:
        best_text = texts[0]
    return most_confident(candidates, [k for k, candidate in enumerate(candidates) if candidate.text == best_text])


class Ensemble(BatchReader):
    """Several trained recognisers read every image, and each image keeps one of their readings
    (the first model's on a tie). Models that go wrong on different images read more together
    than either alone: README's model card measures the shipped pair. Each model reads the image
    at its own size (a 48-high and a 64-high model pair well), from its own configuration;
    ``read``, ``collate`` and ``predict`` work as :class:`Recognizer`'s do.

    ``rule`` picks the reading kept: ``'confidence'`` (the default) the most confident one, its
    confidence compared as it is (a product of per-step probabilities), so the models should be
    of one kind and trained on similar data; ``'likelihood'`` the one the models together find
    likeliest (:func:`likeliest_reading`), for CTC models of one alphabet."""

    def __init__(self, members: list[Recognizer], rule: str = 'confidence'):
        if not members:
            raise ValueError('an ensemble needs at least one model')
        if rule not in ENSEMBLE_RULES:
            raise ValueError(f'unknown ensemble rule {rule!r}; expected one of {", ".join(ENSEMBLE_RULES)}')
        if rule == 'likelihood':
            for member in members:
                if 'CTC' not in member.opt.Prediction:
                    raise InputError(f'--ensemble_rule likelihood: {member.opt.saved_model} is an '
                                     f'{member.opt.Prediction} model; the rule scores readings by their CTC '
                                     'likelihood, so every model must be CTC (use --ensemble_rule confidence)')
                if member.converter.character != members[0].converter.character:
                    raise InputError(f'--ensemble_rule likelihood: {member.opt.saved_model} has another alphabet '
                                     f'than {members[0].opt.saved_model}; the rule scores each reading under '
                                     'every model, so they need one alphabet (use --ensemble_rule confidence)')
        self.rule = rule
        self.members = members
        self.collate = EnsembleCollate(members)
        # the images are decoded once, in colour if any model reads colour
        self.mode = 'RGB' if any(member.mode == 'RGB' for member in members) else 'L'
        self.readings_kept = [0] * len(members)

    @classmethod
    def from_checkpoints(cls, paths: Iterable[str | os.PathLike], device: torch.device | None = None,
                         rule: str = 'confidence', **options) -> 'Ensemble':
        """Load each of ``paths`` as :meth:`Recognizer.from_checkpoint` does, with the same
        ``options`` (``amp``, ``min_aspect``, ``vertical``, ``lexicon``, ``lexicon_weight``,
        ``pattern``, or model flags every checkpoint shares); ``rule`` as --ensemble_rule."""
        return cls([Recognizer.from_checkpoint(path, device, **options) for path in paths], rule)

    def predict(self, tensors: list[torch.Tensor]) -> list[Prediction]:
        """The kept predictions for one batch preprocessed by :attr:`collate` (a tensor per model);
        each one's ``model`` says whose reading it is."""
        outputs = [member.predict_with_logits(batch) for member, batch in zip(self.members, tensors)]
        if self.rule == 'likelihood':
            log_probs = [logits.float().log_softmax(2).cpu() for _, logits in outputs]
            index = self.members[0].converter.dict
        kept = []
        for i, candidates in enumerate(zip(*(predictions for predictions, _ in outputs))):
            if self.rule == 'likelihood':
                best = likeliest_reading(list(candidates), [frames[i] for frames in log_probs], index)
            else:
                best = most_confident(list(candidates))
            kept.append(Prediction(candidates[best].text, candidates[best].confidence, best))
            self.readings_kept[best] += 1
        return kept

    def summary(self) -> str:
        """One line: how many readings each model gave."""
        counts = ', '.join(f'{n:,} from {member.opt.saved_model}' for n, member in zip(self.readings_kept, self.members))
        kept = 'the most confident' if self.rule == 'confidence' else 'the likeliest reading'
        return f'ensemble: {kept} of {len(self.members)} models kept per image ({counts})'


def add_ensemble_option(parser: argparse.ArgumentParser) -> None:
    """--ensemble and --ensemble_rule, the same flags in test.py and demo.py."""
    parser.add_argument('--ensemble', nargs='+', default=[], metavar='CHECKPOINT',
                        help='more checkpoints (.pth or .onnx, each with its configuration beside it) to '
                             'read every image too; each image keeps the most confident reading, '
                             '--saved_model\'s on a tie (e.g. the shipped 48- and 64-high models)')
    parser.add_argument('--ensemble_rule', choices=ENSEMBLE_RULES, default='confidence',
                        help='with --ensemble, the reading kept: the most confident (default), or the one '
                             'the models together find likeliest (CTC models of one alphabet)')


def check_ensemble_flags(args: argparse.Namespace) -> None:
    """Raises InputError for --ensemble_rule likelihood without --ensemble (before any model loads)."""
    if getattr(args, 'ensemble_rule', 'confidence') != 'confidence' and not getattr(args, 'ensemble', None):
        raise InputError(f'--ensemble_rule {args.ensemble_rule} is given without --ensemble; add the checkpoints '
                         'to read beside --saved_model')


def ensemble_member_options(args: argparse.Namespace, path: str) -> argparse.Namespace:
    """The finished options of one --ensemble checkpoint: the command's reading flags (--amp,
    --lexicon, --pattern, --min_aspect, --vertical, --batch_max_length, ...) and the checkpoint's
    own model configuration. ``args`` is the parsed command line before ``finish_common_options``: its
    model flags describe --saved_model, so they are not applied here.

    Raises InputError for a missing file or a checkpoint without a configuration beside it."""
    if not os.path.isfile(path):
        raise InputError(f'--ensemble {path}: no such file; expected a .pth or .onnx checkpoint')
    config = read_model_config(path)
    if config is None:
        raise InputError(f'--ensemble {path}: no configuration beside it ({os.path.splitext(path)[0]}.json or '
                         'opt.txt); an --ensemble checkpoint must describe itself, since the model flags '
                         'describe --saved_model')
    member = argparse.Namespace(**vars(args))
    for flag in MODEL_OPTION_DEFAULTS:
        if flag not in OVERRIDABLE_OPTIONS:
            setattr(member, flag, None)
    member.saved_model = path
    member.ensemble = []
    return finish_common_options(member, config)


def finish_reading_options(args: argparse.Namespace) -> argparse.Namespace:
    """demo.py's and test.py's parsed command line finished: --saved_model's options
    (``utils.finish_common_options`` with its configuration), holding in ``ensemble_options``
    those of each --ensemble checkpoint, built first, while the model flags still say which the
    user typed (they describe --saved_model only)."""
    check_ensemble_flags(args)
    ensemble_options = [ensemble_member_options(args, path) for path in args.ensemble]
    opt = finish_common_options(args, read_model_config(args.saved_model))
    opt.ensemble_options = ensemble_options
    return opt


def make_reader(opt: argparse.Namespace, device: torch.device, verbose: bool = True) -> 'Recognizer | Ensemble':
    """demo.py's and test.py's reader: a :class:`Recognizer` of --saved_model, or with --ensemble
    (``opt.ensemble_options``, from :func:`finish_reading_options`) an :class:`Ensemble` with
    --saved_model first. Raises InputError where a model reads colour and --saved_model grey: the
    images are decoded as --saved_model reads them, so that model would get grey images."""
    members = getattr(opt, 'ensemble_options', None) or []
    for member in members:
        if member.rgb and not opt.rgb:
            raise InputError(f'--ensemble {member.saved_model} reads colour images and --saved_model '
                             f'{opt.saved_model} grey ones; give the colour model as --saved_model')
    first = Recognizer(opt, device, verbose=verbose)
    if not members:
        return first
    return Ensemble([first] + [Recognizer(member, device, verbose=verbose) for member in members],
                    getattr(opt, 'ensemble_rule', 'confidence'))


# ------------------------------------------------------------------ evaluation over LMDB datasets


def validation_loss(criterion, image, labels, converter, opt, preds) -> torch.Tensor:
    """Upstream's loss of the inference logits ``preds`` against ``labels``: CTC over every
    step, or cross-entropy of the Attn steps against the encoded labels after [GO]."""
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


def score_predictions(labels: list[str], predictions: list[Prediction], opt,
                      metrics: RecognitionMetrics | None = None) -> tuple[int, float]:
    """(number right, sum of normalised edit similarities) of a batch, scored as upstream (see
    :func:`comparable`); ``metrics``, when given, gets every sample."""
    n_correct, norm_ED = 0, 0.0
    for gt, prediction in zip(labels, predictions):
        # a label longer than the model can emit (possible with --data_filtering_off) is a miss
        fits = len(gt) <= opt.batch_max_length
        gt_c, pred_c = comparable(gt, opt), comparable(prediction.text, opt)
        correct = fits and pred_c == gt_c
        n_correct += correct
        norm_ED += normalized_similarity(gt_c, pred_c)
        if metrics is not None:
            metrics.add(gt_c, pred_c, prediction.confidence, correct)
    return n_correct, norm_ED


def evaluate_loader(read_batch, evaluation_loader, opt, metrics: RecognitionMetrics | None = None):
    """The scoring loop :func:`validation` and :func:`ensemble_validation` share. ``read_batch``
    takes a loader batch's inputs and labels and returns its predictions and the seconds the
    model took. Returns upstream's tuple without its loss: (accuracy %, norm_ED, predictions of
    the last batch, their confidences, the last batch's labels, total forward time in seconds,
    number of samples)."""
    n_correct = 0
    norm_ED = 0.0
    length_of_data = 0
    infer_time = 0.0
    preds_str: list[str] = []
    confidence_score_list: list[float] = []
    labels: list[str] = []
    for inputs, labels in evaluation_loader:
        length_of_data += len(labels)
        predictions, seconds = read_batch(inputs, labels)
        infer_time += seconds
        preds_str = [p.text for p in predictions]
        confidence_score_list = [p.confidence for p in predictions]
        correct, similarity = score_predictions(labels, predictions, opt, metrics)
        n_correct += correct
        norm_ED += similarity
    accuracy = n_correct / float(length_of_data) * 100 if length_of_data else 0.0
    norm_ED = norm_ED / float(length_of_data) if length_of_data else 0.0
    return accuracy, norm_ED, preds_str, confidence_score_list, labels, infer_time, length_of_data


def validation(model, criterion, evaluation_loader, converter, opt, metrics: RecognitionMetrics | None = None,
               amp_dtype: torch.dtype | None = None):
    """Evaluate over a loader. Returns upstream's tuple: (valid loss, accuracy %, norm_ED,
    predictions of the last batch, their confidences, the last batch's labels, total forward
    time in seconds, number of samples). ``metrics``, when given, gets every sample's label
    and prediction as scored (see :func:`comparable`), confidence and correctness; the tuple
    stays upstream's because DTRB users unpack it. ``amp_dtype``: see :func:`run_model`
    (test.py --amp; train.py validates in float32 whatever precision it trains in)."""
    device = next(model.parameters()).device
    valid_loss_avg = Averager()

    def read_batch(image_tensors, labels):
        image = image_tensors.to(device)
        start_time = time.time()
        preds = run_model(model, image, opt, stop_at_eos=False, amp_dtype=amp_dtype)
        seconds = time.time() - start_time
        valid_loss_avg.add(validation_loss(criterion, image, labels, converter, opt, preds))
        return decode_predictions(preds, converter, opt), seconds

    scores = evaluate_loader(read_batch, evaluation_loader, opt, metrics)
    return (valid_loss_avg.val(),) + scores


def ensemble_validation(ensemble: Ensemble, evaluation_loader, opt, metrics: RecognitionMetrics | None = None):
    """:func:`validation` for an :class:`Ensemble` over a loader whose collate is the ensemble's:
    the same tuple, with a loss of nan (the models' losses are of different models and the kept
    reading has none)."""
    def read_batch(tensors, labels):
        start_time = time.time()
        predictions = ensemble.predict(tensors)
        return predictions, time.time() - start_time

    return (float('nan'),) + evaluate_loader(read_batch, evaluation_loader, opt, metrics)


def make_eval_loader(root: str, opt, batch_size: int, shuffle: bool = False, collate=None):
    """The datasets under ``root`` (every leaf LMDB, filtered as --data_filtering_off says), their
    log text and a loader over them, preprocessed as training reads images (or by ``collate``,
    e.g. an :class:`Ensemble`'s)."""
    min_aspect = reading_min_aspect(opt)  # bad flags fail before the datasets are opened
    vertical = reading_vertical(opt)
    eval_data, eval_data_log = hierarchical_dataset(root=root, opt=opt)
    if len(eval_data) == 0:
        raise ValueError(f'{root}: no sample is left after filtering (every label is longer than '
                         f'--batch_max_length {opt.batch_max_length} or holds characters outside '
                         '--character); check --character, or use --data_filtering_off')
    loader = torch.utils.data.DataLoader(
        eval_data, batch_size=batch_size, shuffle=shuffle, num_workers=int(opt.workers),
        collate_fn=collate or AlignCollate(imgH=opt.imgH, imgW=opt.imgW, keep_ratio_with_pad=opt.PAD,
                                           min_aspect=min_aspect, vertical=vertical),
        pin_memory=torch.cuda.is_available())
    return eval_data, eval_data_log, loader
