"""utils.py: alphabet files, the Alphabet's filtering and cleaning (upstream's regular-expression
semantics where that regex is well-formed, set semantics where it is not), the CTC and Attn label
converters, the loss averager, the Korean metrics (CER, jamo 1-NED), the options the three
scripts share and the processes of a torchrun job waiting for each other."""
import argparse
import json
import os
import random
import re
import string
import unicodedata

import pytest
import torch

from conftest import REPO, run_torchrun_two_processes
from utils import (DEFAULT_CHARACTER, SENSITIVE_CHARACTER, Alphabet, AlphabetFileError,
                   AttnLabelConverter, Averager, CTCLabelConverter, RecognitionMetrics, add_common_options,
                   align, cut_at_eos, edit_distance, finish_common_options, jamo, load_character,
                   make_converter, normalized_similarity, read_alphabet_file, run_script,
                   write_alphabet_file, write_text_atomically)

torch.set_num_threads(1)

HANGUL_AND_DIGITS = '0123456789가나다라마바사아자차카타파하한국어글'


def nfd(text):
    return unicodedata.normalize('NFD', text)


def parse(argv):
    parser = argparse.ArgumentParser()
    add_common_options(parser, saved_model_required=False)
    return parser.parse_args(['--Transformation', 'None', '--FeatureExtraction', 'VGG',
                              '--SequenceModeling', 'BiLSTM', '--Prediction', 'CTC'] + argv)


# ------------------------------------------------------------------------------------------
# alphabet files


def test_alphabet_file_bom_crlf_space_and_empty_lines(tmp_path):
    path = tmp_path / 'ko.txt'
    path.write_bytes('\ufeff가\r\n나\r\n\r\n \r\na\n\n-\n'.encode('utf-8'))
    assert read_alphabet_file(path) == '가나 a-'


def test_alphabet_file_lines_are_nfc(tmp_path):
    path = tmp_path / 'ko.txt'
    path.write_text(nfd('한') + '\n' + nfd('글') + '\n', encoding='utf-8')
    assert read_alphabet_file(path) == '한글'


def test_alphabet_file_line_with_two_characters_names_file_and_line(tmp_path):
    path = tmp_path / 'ko.txt'
    path.write_text('가\n나\n다라\n', encoding='utf-8')
    with pytest.raises(AlphabetFileError) as info:
        read_alphabet_file(path)
    message = str(info.value)
    assert str(path) in message and 'line 3' in message and "'다라'" in message


def test_alphabet_file_duplicate_names_both_lines(tmp_path):
    path = tmp_path / 'ko.txt'
    path.write_text('가\n나\n\n가\n', encoding='utf-8')
    with pytest.raises(AlphabetFileError) as info:
        read_alphabet_file(path)
    message = str(info.value)
    assert str(path) in message and 'line 4' in message and 'line 1' in message


def test_alphabet_file_not_utf8(tmp_path):
    path = tmp_path / 'cp949.txt'
    path.write_bytes('가\n나\n'.encode('cp949'))
    with pytest.raises(AlphabetFileError) as info:
        read_alphabet_file(path)
    assert str(path) in str(info.value) and 'UTF-8' in str(info.value)


def test_alphabet_file_without_characters(tmp_path):
    path = tmp_path / 'empty.txt'
    path.write_text('\n\n', encoding='utf-8')
    with pytest.raises(AlphabetFileError, match='no characters'):
        read_alphabet_file(path)


def test_write_then_read_alphabet_file(tmp_path):
    path = tmp_path / 'out.txt'
    write_alphabet_file(path, ['가', ' ', '-', ']', 'A'])
    assert read_alphabet_file(path) == '가 -]A'
    assert [p.name for p in tmp_path.iterdir()] == ['out.txt']  # no temporary file left behind


def test_load_character_string_file_and_mistyped_path(tmp_path, monkeypatch):
    assert load_character(DEFAULT_CHARACTER) == DEFAULT_CHARACTER
    assert load_character(nfd('가나다')) == nfd('가나다')  # one class per character, as given
    path = tmp_path / 'ko.txt'
    path.write_text('가\n나\n', encoding='utf-8')
    assert load_character(str(path)) == '가나'
    monkeypatch.chdir(tmp_path)
    assert load_character('ko.txt') == '가나'  # relative to the working directory
    for typo in ('ko_typo.txt', str(tmp_path / 'KO.TXT'), 'chars.alphabet'):
        with pytest.raises(FileNotFoundError, match=re.escape(typo)):
            load_character(typo)


# ------------------------------------------------------------------------------------------
# Alphabet vs upstream's regular expressions


def upstream_keeps(label, character, batch_max_length):
    if len(label) > batch_max_length:
        return False
    return re.search(f'[^{character}]', label.lower()) is None


def upstream_clean(label, character, sensitive):
    if not sensitive:
        label = label.lower()
    return re.sub(f'[^{character}]', '', label)


def random_labels(pool, count, seed):
    rng = random.Random(seed)
    return [''.join(rng.choice(pool) for _ in range(rng.randint(0, 8))) for _ in range(count)]


@pytest.mark.parametrize('character', [DEFAULT_CHARACTER, HANGUL_AND_DIGITS])
def test_alphabet_matches_upstream_where_its_regex_is_well_formed(character):
    pool = DEFAULT_CHARACTER + 'ABCXYZ' + HANGUL_AND_DIGITS + '!?.,- _()[]한국어글자'
    alphabet = Alphabet(character)
    for label in random_labels(pool, 400, seed=len(character)):
        assert alphabet.keeps(label, 6) == upstream_keeps(label, character, 6), label
        assert alphabet.clean(label) == upstream_clean(label, character, False), label


def test_alphabet_with_regex_metacharacters_uses_set_membership():
    alphabet = Alphabet('a-z]^\\가')
    # upstream's [^a-z]^\가] would read a range a..z and stop the class at ']'
    assert alphabet.keeps('a-z', 25) and alphabet.keeps('^]\\', 25) and alphabet.keeps('가-a', 25)
    assert not alphabet.keeps('b', 25) and not alphabet.keeps('y', 25)
    assert alphabet.clean('a-b]c^d\\e가f') == 'a-]^\\가'
    assert alphabet.missing('ab-cb') == ['b', 'c']
    caret_first = Alphabet('^a')  # upstream: [^^a] — still well-formed but '^' must be a member
    assert caret_first.keeps('^a^', 25) and caret_first.clean('^xa') == '^a'


def test_alphabet_length_limit_and_case():
    alphabet = Alphabet(DEFAULT_CHARACTER)
    assert alphabet.keeps('abcde', 5) and not alphabet.keeps('abcdef', 5)
    assert alphabet.keeps('HeLLo', 25)  # the filter lower-cases, as upstream
    assert alphabet.clean('HeLLo World!') == 'helloworld'
    assert len(alphabet) == 36 and 'a' in alphabet and 'A' not in alphabet


def test_nfd_labels_are_read_as_nfc():
    alphabet = Alphabet('가나다한글')
    label = nfd('한글 가나')
    assert len(label) > len('한글 가나')
    assert alphabet.keeps(nfd('한글가나'), 4)  # counted in syllables, not jamo
    assert alphabet.clean(label) == '한글가나'
    assert alphabet.missing(label) == [' ']


def test_sensitive_keeps_case_and_every_printable_character():
    sensitive = Alphabet(SENSITIVE_CHARACTER, sensitive=True)
    label = 'Hello, World! [a-b] \\^_^ ~'
    assert sensitive.clean(label) == label.replace(' ', '')
    # upstream's regex from string.printable silently drops the backslash: the set keeps it
    assert '\\' not in upstream_clean('a\\b', SENSITIVE_CHARACTER, True)
    assert sensitive.clean('a\\b') == 'a\\b'
    assert Alphabet(SENSITIVE_CHARACTER).clean('AbC') == 'abc'


# ------------------------------------------------------------------------------------------
# label converters


def ctc_path(label, converter, repeat=2):
    """A frame sequence a CTC model could emit for ``label``: every character held for
    ``repeat`` frames and a blank between characters (so doubled letters survive)."""
    path = []
    for ch in label:
        path += [converter.dict[ch]] * repeat + [0]
    return path


def test_ctc_encode_indices_padding_and_lengths():
    converter = CTCLabelConverter('abc가나')
    text, length = converter.encode(['ab', '가나가', ''], batch_max_length=5)
    assert text.dtype == torch.long and tuple(text.shape) == (3, 5)
    assert text.tolist() == [[1, 2, 0, 0, 0], [4, 5, 4, 0, 0], [0, 0, 0, 0, 0]]
    assert length.tolist() == [2, 3, 0]
    assert converter.character[0] == '[CTCblank]' and len(converter.character) == 6


def test_ctc_round_trip_through_model_like_paths():
    converter = CTCLabelConverter(HANGUL_AND_DIGITS)
    labels = ['한국어', '가가', '11', '0하0', '']
    paths = [ctc_path(label, converter) for label in labels]
    width = max(len(p) for p in paths)
    frames = torch.tensor([p + [0] * (width - len(p)) for p in paths])
    assert converter.decode(frames, [width] * len(labels)) == labels


def test_ctc_decode_collapses_repeats_without_a_blank():
    converter = CTCLabelConverter('ab')
    frames = torch.tensor([[1, 1, 2, 2, 1], [1, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    assert converter.decode(frames, [5, 5, 5]) == ['aba', 'aa', '']
    assert converter.decode(frames, [2, 3, 5]) == ['a', 'aa', '']  # only the first length frames


def test_attn_encode_and_round_trip():
    converter = AttnLabelConverter('abc가나')
    text, length = converter.encode(['ab', '가나가', ''], batch_max_length=4)
    assert tuple(text.shape) == (3, 6)
    assert text.tolist() == [[0, 2, 3, 1, 0, 0], [0, 5, 6, 5, 1, 0], [0, 1, 0, 0, 0, 0]]
    assert length.tolist() == [3, 4, 1]
    decoded = converter.decode(text[:, 1:], length)
    assert [cut_at_eos(t) for t in decoded] == ['ab', '가나가', '']
    assert converter.character[:2] == ['[GO]', '[s]']


@pytest.mark.parametrize('converter_class', [CTCLabelConverter, AttnLabelConverter])
def test_unknown_character_is_an_error_naming_it(converter_class):
    converter = converter_class('가나')
    with pytest.raises(ValueError) as info:
        converter.encode(['가x나'], batch_max_length=5)
    assert "'x'" in str(info.value) and "'가x나'" in str(info.value)


def test_cut_at_eos():
    assert cut_at_eos('ab[s]cd[s]') == 'ab'
    assert cut_at_eos('[s]ab') == ''
    assert cut_at_eos('한글') == '한글'  # no [s]: kept whole (upstream dropped the last character)


# ------------------------------------------------------------------------------------------
# Averager, options, converters from options


def test_averager():
    avg = Averager()
    assert avg.val() == 0.0
    avg.add(torch.tensor(1.0))
    avg.add(torch.tensor([2.0, 6.0]))
    assert avg.val() == pytest.approx(3.0)
    avg.reset()
    avg.add(torch.tensor(5.0, requires_grad=True) * 2)
    assert avg.val() == pytest.approx(10.0)


def test_common_option_defaults_are_upstreams():
    opt = finish_common_options(parse([]))
    assert (opt.workers, opt.batch_size, opt.batch_max_length, opt.imgH, opt.imgW) == (4, 192, 25, 32, 100)
    assert (opt.num_fiducial, opt.input_channel, opt.output_channel, opt.hidden_size) == (20, 1, 512, 256)
    assert opt.character == DEFAULT_CHARACTER and opt.saved_model == ''
    assert not (opt.rgb or opt.sensitive or opt.PAD)


def test_sensitive_replaces_a_string_alphabet_but_keeps_a_file(tmp_path):
    opt = finish_common_options(parse(['--sensitive']))
    assert opt.character == string.printable[:-6] and len(opt.character) == 94
    assert opt.alphabet.sensitive and opt.alphabet.clean('AbC!') == 'AbC!'
    path = tmp_path / 'cased.txt'
    path.write_text('가\nA\na\n', encoding='utf-8')
    opt = finish_common_options(parse(['--sensitive', '--character', str(path)]))
    assert opt.character == '가Aa'
    assert opt.alphabet.clean('A가a!') == 'A가a'
    opt = finish_common_options(parse(['--character', str(path)]))
    assert opt.alphabet.clean('A가a!') == 'a가a'


def test_rgb_sets_three_input_channels():
    assert finish_common_options(parse(['--rgb'])).input_channel == 3
    assert finish_common_options(parse([])).input_channel == 1


def test_make_converter_sets_num_class(tmp_path):
    opt = finish_common_options(parse([]))
    assert isinstance(make_converter(opt), CTCLabelConverter) and opt.num_class == 37
    opt.Prediction = 'Attn'
    assert isinstance(make_converter(opt), AttnLabelConverter) and opt.num_class == 38
    path = tmp_path / 'ko.txt'
    path.write_text('가\n나\n다\n', encoding='utf-8')
    opt = finish_common_options(parse(['--character', str(path)]))
    make_converter(opt)
    assert opt.num_class == 4


def test_run_script_turns_bad_input_into_one_line_and_keeps_bugs_loud(tmp_path):
    def bad_input(argv):
        raise FileNotFoundError(f'{argv[0]}: no such file')

    with pytest.raises(SystemExit) as info:
        run_script(bad_input, ['missing.pth'])
    assert str(info.value.code) == 'error: missing.pth: no such file'

    def bug(argv):
        raise RuntimeError('a programming error')

    with pytest.raises(RuntimeError, match='a programming error'):
        run_script(bug, [])
    assert run_script(lambda argv: argv, ['x']) == ['x']


def test_character_string_is_kept_exactly_so_dtrb_class_counts_hold():
    from utils import load_character
    decomposed = 'e\u0301\u1112\u1161'  # NFC would merge these four into two characters
    assert load_character(decomposed) == decomposed


# ------------------------------------------------------------------------------------------
# options filled from a checkpoint's configuration


def parse_bare(argv):
    """What test.py and demo.py parse: no stage flag is required at parse time."""
    parser = argparse.ArgumentParser()
    add_common_options(parser, saved_model_required=True)
    return parser.parse_args(['--saved_model', 'm.pth'] + argv)


def trained_config(**overrides):
    from utils import MODEL_OPTION_DEFAULTS
    config = dict(MODEL_OPTION_DEFAULTS, Transformation='TPS', FeatureExtraction='ResNet',
                  SequenceModeling='BiLSTM', Prediction='Attn', character='가나다Ab', sensitive=True,
                  PAD=True, imgW=160, rgb=True, input_channel=3, config_file='exp/m.json')
    config.update(overrides)
    return config


def test_a_configuration_fills_every_model_flag():
    opt = finish_common_options(parse_bare([]), trained_config())
    assert (opt.Transformation, opt.FeatureExtraction, opt.SequenceModeling, opt.Prediction) == (
        'TPS', 'ResNet', 'BiLSTM', 'Attn')
    assert (opt.imgH, opt.imgW, opt.PAD, opt.rgb, opt.input_channel) == (32, 160, True, True, 3)
    assert opt.character == '가나다Ab' and opt.sensitive and opt.alphabet.clean('AB가') == 'A가'


def test_flags_that_agree_with_the_configuration_are_accepted(tmp_path):
    path = tmp_path / 'ko.txt'
    path.write_text('가\n나\n다\nA\nb\n', encoding='utf-8')
    opt = finish_common_options(parse_bare(
        ['--Transformation', 'TPS', '--FeatureExtraction', 'ResNet', '--SequenceModeling', 'BiLSTM',
         '--Prediction', 'Attn', '--imgW', '160', '--PAD', '--rgb', '--sensitive', '--character', str(path)]),
        trained_config())
    assert opt.imgW == 160 and opt.character == '가나다Ab'


@pytest.mark.parametrize('argv, named', [
    (['--Prediction', 'CTC'], "--Prediction CTC contradicts the checkpoint's configuration (exp/m.json: Prediction = Attn)"),
    (['--imgW', '100'], '--imgW 100 contradicts the checkpoint\'s configuration (exp/m.json: imgW = 160)'),
    (['--hidden_size', '128'], '--hidden_size 128 contradicts the checkpoint\'s configuration (exp/m.json: hidden_size = 256)'),
    (['--character', '0123456789abcdefghijklmnopqrstuvwxyz'], '36 characters'),
])
def test_a_contradicting_flag_stops_naming_both_values(argv, named):
    with pytest.raises(ValueError) as info:
        finish_common_options(parse_bare(argv), trained_config(sensitive=False))
    assert named in str(info.value)


def test_sensitive_and_pad_contradictions_are_named():
    with pytest.raises(ValueError, match=r'--PAD True contradicts .*PAD = False'):
        finish_common_options(parse_bare(['--PAD']), trained_config(PAD=False))
    with pytest.raises(ValueError, match=r'--sensitive contradicts .*sensitive = False'):
        finish_common_options(parse_bare(['--sensitive']), trained_config(sensitive=False))


def test_batch_max_length_may_be_lowered_at_test_time():
    opt = finish_common_options(parse_bare(['--batch_max_length', '5']), trained_config())
    assert opt.batch_max_length == 5
    assert finish_common_options(parse_bare([]), trained_config()).batch_max_length == 25


def test_without_configuration_the_stage_flags_are_required():
    with pytest.raises(ValueError, match=r'required: --Transformation, --FeatureExtraction, '
                                         r'--SequenceModeling, --Prediction \(there is no model '
                                         r'configuration beside m\.pth'):
        finish_common_options(parse_bare([]))


# ------------------------------------------------------------------------------------------
# Korean metrics: CER and jamo-level 1-NED


def test_jamo_splits_syllables_into_initial_medial_final():
    assert jamo('현재') == '\u1112\u1167\u11ab\u110c\u1162'  # ㅎ ㅕ ㄴ(final) ㅈ ㅐ
    assert jamo('경') == '\u1100\u1167\u11bc' and jamo('정') == '\u110c\u1165\u11bc'  # ㄱㅕㅇ, ㅈㅓㅇ
    assert jamo('é각a-7 ') == 'é' + '\u1100\u1161\u11a8' + 'a-7 '  # only syllables are split
    # Unicode's own canonical decomposition of every syllable is the same arithmetic
    for code in range(0xAC00, 0xD7A4):
        assert jamo(chr(code)) == unicodedata.normalize('NFD', chr(code))


def test_edit_distance_and_alignment():
    assert edit_distance('현재', '현새') == 1 and edit_distance('kitten', 'sitting') == 3
    assert edit_distance('', 'ab') == 2 and edit_distance('ab', 'ab') == 0
    assert align('현재', '현새') == [('현', '현'), ('재', '새')]
    assert align('호우경보', '호우정보') == [('호', '호'), ('우', '우'), ('경', '정'), ('보', '보')]
    assert align('xy', 'x') == [('x', 'x'), ('y', '')]
    assert align('다라', '다라마') == [('다', '다'), ('라', '라'), ('', '마')]
    assert align('', '') == []


def test_cer_and_jamo_similarity_hand_computed():
    metrics = RecognitionMetrics()
    metrics.add('현재', '현새')  # 1 of 2 characters; ㅎㅕㄴㅈㅐ vs ㅎㅕㄴㅅㅐ: 1 of 5 jamo
    assert metrics.cer == pytest.approx(1 / 2) and metrics.jamo_similarity == pytest.approx(4 / 5)
    metrics.add('호우경보', '호우정보')  # 1 of 4 characters; 경 ㄱㅕㅇ vs 정 ㅈㅓㅇ: 2 of 9 jamo
    assert metrics.cer == pytest.approx(2 / 6)
    assert metrics.jamo_similarity == pytest.approx((4 / 5 + 7 / 9) / 2)
    assert metrics.summary() == 'CER 0.3333\t jamo_1-NED 0.7889'
    assert metrics.samples == []  # kept only when asked


def test_metrics_with_empty_strings_follow_norm_ed():
    metrics = RecognitionMetrics(keep_samples=True)
    metrics.add('가', '', 0.0, False)  # an empty side scores 0, as norm_ED
    metrics.add('', '', 0.0, True)
    assert metrics.cer == 1.0 and metrics.jamo_similarity == 0.0
    assert metrics.samples == [('가', '', 0.0, False), ('', '', 0.0, True)]
    assert RecognitionMetrics().summary() == 'CER 0.0000\t jamo_1-NED 0.0000'
    nothing_to_read = RecognitionMetrics()
    nothing_to_read.add('', 'x')
    assert nothing_to_read.cer == float('inf')
    assert normalized_similarity('ab', 'a') == 0.5 and normalized_similarity('', '') == 0.0


def test_write_text_atomically_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'out.csv'
    path.write_text('old', encoding='utf-8')
    write_text_atomically(path, '가,나\n')
    assert path.read_text(encoding='utf-8') == '가,나\n'
    assert os.listdir(tmp_path) == ['out.csv']


WAIT_FOR_ALL_SCRIPT = '''
import json, sys, time
sys.path.insert(0, {repo!r})
from utils import init_distributed
ctx = init_distributed()
if ctx.is_main:
    time.sleep(2.0)  # still validating and saving when the other process is done
entered = time.time()
ctx.wait_for_all()
left = time.time()
with open({out!r} + f'/rank{{ctx.rank}}.json', 'w') as f:
    json.dump({{'entered': entered, 'left': left}}, f)
ctx.close()
'''


def test_wait_for_all_holds_every_process_until_the_slowest_arrives(tmp_path):
    """A real 2-process gloo group under torchrun: the process that finished first leaves
    wait_for_all only after the busy main process has entered it, so no process of a run exits
    while the main process still validates and saves."""
    script = tmp_path / 'wait.py'
    script.write_text(WAIT_FOR_ALL_SCRIPT.format(repo=REPO, out=str(tmp_path)), encoding='utf-8')
    run = run_torchrun_two_processes([str(script)], timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    main, other = (json.loads((tmp_path / f'rank{r}.json').read_text()) for r in (0, 1))
    assert other['entered'] < main['entered']  # it arrived first ...
    assert other['left'] >= main['entered']  # ... and waited for the main process
