"""pattern.py: patterns parsed as the regular expressions users know, the Korean plate form, CTC
readings forced into a pattern's form (the likeliest matching path, its probability as the
confidence), and the flags failing with one line. The shipped model reading rendered plates with
--pattern plate is tested in test_korean_models.py."""
import itertools
import random
import re
import types
import unicodedata

import pytest
import torch

from conftest import ctc_frames as frames
from conftest import greedy_reading as greedy
from conftest import small_checkpoint
from pattern import NAMED_PATTERNS, compile_pattern, constrained_path, pattern_for, read_with_pattern
from utils import CTCLabelConverter, InputError

ALPHABET = '0123456789가나다바구서울ab -'


def automaton_of(pattern, alphabet=ALPHABET, sensitive=True):
    return compile_pattern(pattern, {ch: i + 1 for i, ch in enumerate(alphabet)}, sensitive)


def matches(automaton, text, alphabet=ALPHABET):
    return automaton.matches([alphabet.index(ch) + 1 for ch in text])


def emitted(rows):
    """One frame per character, each sure of it but for a 0.1 share of the blank."""
    return [{ch: 0.9, '': 0.05} for ch in rows]


def test_the_plate_pattern_takes_the_korean_plate_forms():
    plate = automaton_of('plate')
    for text in ('12가3456', '123나4567', '서울12바3456', '서울99구0000'):
        assert matches(plate, text), text
    for text in ('1가3456', '1234가5678', '12가345', '12가34567', '12 가3456', '12a3456', '12울3456',
                 '울서12가3456', '가3456', ''):
        assert not matches(plate, text), text
    assert NAMED_PATTERNS['plate'].startswith('(서울|부산|')


@pytest.mark.parametrize('pattern', [
    'a', 'a|b', 'ab*', '(ab)+', 'a?b{2}', '[ab]{1,3}1', '[^a ]+', r'.\d', 'a{2,}', '(a|)b', r'\s?가',
    '[a-b1]*-?', '(가|나다)?[0-9]{2}', r'a\-b', '[-a]b', '(a(b|1)*)?',
])
def test_patterns_match_what_python_regular_expressions_match(pattern):
    # the subset pattern.py reads means what it means in Python's re, over the model's alphabet
    letters = 'ab1 가나다-'
    automaton = automaton_of(pattern)
    rng = random.Random(pattern)
    texts = [''.join(t) for n in range(4) for t in itertools.product(letters, repeat=n)]
    texts += [''.join(rng.choice(letters) for _ in range(rng.randint(4, 7))) for _ in range(300)]
    wrong = [t for t in texts if matches(automaton, t) != bool(re.fullmatch(pattern, t))]
    assert not wrong, wrong[:10]


def test_a_case_insensitive_model_reads_capitals_in_a_pattern_as_its_small_letters():
    assert matches(automaton_of('AB', sensitive=False), 'ab')


def test_a_decomposed_hangul_pattern_is_read_nfc():
    # typed on macOS, 서울 arrives as six jamo, which no class of the model is
    assert matches(automaton_of(unicodedata.normalize('NFD', '서울[0-9]')), '서울1')


@pytest.mark.parametrize('pattern, expected', [
    ('[0-9', "--pattern '[0-9': at character 5, the end: expected ] closing the class"),
    ('(12', "--pattern '(12': at character 4, the end: expected ) closing the group"),
    ('12)', "--pattern '12)': at character 3, ')': expected an opening ( for this ) or more pattern"),
    ('*1', "--pattern '*1': at character 1, '*': expected a character, class or group before the repetition"),
    ('1{3,1}', "--pattern '1{3,1}': at character 2, '{': expected {m,n} with m <= n, not 3 > 1"),
    ('1{2', "--pattern '1{2': at character 4, the end: expected } closing the repetition {m,n}"),
    ('1{x}', "--pattern '1{x}': at character 3, 'x': expected a number in {m,n}"),
    ('1{101}', "--pattern '1{101}': at character 3, '1': expected a repetition count of at most 100"),
    ('[9-0]', "--pattern '[9-0]': at character 3, '-': expected a range low-high, not 9-0"),
    ('1\\', "--pattern '1\\\\': at character 3, the end: expected a character after \\"),
    ('漢字', "--pattern '漢字': no reading of this model can match it; the model's alphabet lacks '字漢'"),
    ('()', "--pattern '()': no reading of this model can match it; it matches only the empty reading"),
    ('', '--pattern is empty; expected a regular expression or a name: plate'),
])
def test_a_bad_pattern_is_one_line_naming_where_and_what_was_expected(pattern, expected):
    with pytest.raises(InputError) as raised:
        automaton_of(pattern)
    assert str(raised.value) == expected


def test_a_reading_that_matches_stays_as_read_with_its_confidence():
    converter = CTCLabelConverter(ALPHABET)
    log_probs = frames(emitted('12가3456'), converter)
    text, confidence = greedy(log_probs, converter)
    assert read_with_pattern(log_probs, text, confidence, converter, automaton_of('plate')) == (text, confidence)


def test_a_reading_that_does_not_match_becomes_the_likeliest_path_that_does():
    # 구 where the form wants a digit, the 7 under it second: the plate is 76가7191
    converter = CTCLabelConverter(ALPHABET)
    rows = emitted('76가')
    rows += [{'구': 0.55, '7': 0.4}] + emitted('191')
    log_probs = frames(rows, converter)
    text, confidence = greedy(log_probs, converter)
    assert text == '76가구191'
    new_text, new_confidence = read_with_pattern(log_probs, text, confidence, converter, automaton_of('plate'))
    assert new_text == '76가7191'
    # the path's probability: DTRB's confidence with the 7's 0.4 in place of the 구's 0.55
    assert new_confidence == pytest.approx(0.9 ** 6 * 0.4, rel=1e-5)
    assert new_confidence == pytest.approx(confidence * 0.4 / 0.55, rel=1e-5)


def test_a_character_too_many_is_dropped_and_a_space_too():
    converter = CTCLabelConverter(ALPHABET)
    rows = emitted('12가') + [{' ': 0.6, '': 0.35}] + emitted('3456') + [{'-': 0.5, '': 0.45}]
    log_probs = frames(rows, converter)
    text, confidence = greedy(log_probs, converter)
    assert text == '12가 3456-'
    new_text, new_confidence = read_with_pattern(log_probs, text, confidence, converter, automaton_of('plate'))
    assert new_text == '12가3456'
    assert new_confidence == pytest.approx(0.9 ** 7 * 0.35 * 0.45, rel=1e-5)


def test_a_repeated_character_is_read_through_a_blank_between():
    # CTC collapses 2 2 into one 2; two 2s need a blank between, which the path takes
    converter = CTCLabelConverter(ALPHABET)
    log_probs = frames([{'2': 0.6, '': 0.3}, {'2': 0.6, '': 0.35}, {'2': 0.9}], converter)
    text, confidence = greedy(log_probs, converter)
    assert text == '2'
    new_text, new_confidence = read_with_pattern(log_probs, text, confidence, converter, automaton_of(r'\d{2}'))
    assert new_text == '22'
    assert new_confidence == pytest.approx(0.6 * 0.35 * 0.9, rel=1e-5)


def test_when_no_path_matches_the_greedy_reading_is_kept():
    converter = CTCLabelConverter(ALPHABET)
    log_probs = frames(emitted('12'), converter)  # two frames cannot hold three digits
    text, confidence = greedy(log_probs, converter)
    assert constrained_path(log_probs, automaton_of(r'\d{3}')) is None
    assert read_with_pattern(log_probs, text, confidence, converter, automaton_of(r'\d{3}')) == (text, confidence)


def test_every_reading_of_random_frames_matches_or_is_the_greedy_one():
    converter = CTCLabelConverter(ALPHABET)
    plate = automaton_of('plate')
    torch.manual_seed(0)
    for _ in range(30):
        log_probs = torch.randn(24, len(converter.character)).mul(3).log_softmax(1)
        text, confidence = greedy(log_probs, converter)
        new_text, new_confidence = read_with_pattern(log_probs, text, confidence, converter, plate)
        assert matches(plate, new_text)
        assert 0.0 <= new_confidence <= confidence


def options(**values):
    defaults = dict(pattern=None, lexicon=None, Prediction='CTC', saved_model='model.pth', sensitive=False)
    defaults.update(values)
    return types.SimpleNamespace(**defaults)


def test_the_flags_are_checked_with_one_line(tmp_path):
    converter = CTCLabelConverter(ALPHABET)
    assert pattern_for(options(), converter) is None
    assert matches(pattern_for(options(pattern='plate'), converter), '12가3456')
    with pytest.raises(InputError, match=r'^--pattern constrains CTC readings; model\.pth is an Attn model$'):
        pattern_for(options(pattern='plate', Prediction='Attn'), converter)
    with pytest.raises(InputError, match=r'^--pattern and --lexicon cannot be used together'):
        pattern_for(options(pattern='plate', lexicon=['words.txt']), converter)


@pytest.mark.parametrize('flags, expected', [
    (['--pattern', '[0-9'], "error: --pattern '[0-9': at character 5, the end: expected ] closing the class"),
    (['--pattern', 'plate', '--Prediction', 'Attn'], 'error: --pattern constrains CTC readings; {} is an Attn model'),
])
def test_demo_and_test_stop_with_one_line_before_reading(tmp_path, flags, expected):
    import demo
    import test
    from utils import run_script
    combo = ('None', 'VGG', 'BiLSTM', 'Attn' if 'Attn' in flags else 'CTC')
    checkpoint = small_checkpoint(tmp_path, combo)
    flags = [f for f in flags if f not in ('--Prediction', 'Attn')]
    for main, data_flag in ((demo.main, '--image_folder'), (test.main, '--eval_data')):
        with pytest.raises(SystemExit) as raised:
            run_script(main, [data_flag, str(tmp_path / 'nothing'), '--saved_model', str(checkpoint)] + flags)
        assert str(raised.value) == expected.format(checkpoint)
