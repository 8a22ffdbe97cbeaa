"""lexicon.py: word lists read as users write them, and CTC readings rescored against them: a
doubtful word becomes the lexicon word the frames support, a clear one stays as read, numbers
and Latin are left alone, and the flags fail with one line. The shipped model reading rendered
images with a lexicon is tested in test_korean_models.py."""
import math
import types
import unicodedata

import pytest
import torch

from conftest import ctc_frames as frames
from conftest import greedy_reading as greedy
from conftest import small_checkpoint
from lexicon import COMPOUND, ENTRY, UNKNOWN, Lexicon, lexicon_for, read_lexicon_file, read_with_lexicon
from utils import CTCLabelConverter, InputError

ALPHABET = '백벡배반다가3 '


def test_a_word_list_is_read_nfc_with_blank_lines_and_frequency_columns_ignored(tmp_path):
    path = tmp_path / 'words.txt'
    decomposed = unicodedata.normalize('NFD', '백반')
    path.write_text(f'{decomposed}\t1234\n\n  가다  \n', encoding='utf-8')
    assert read_lexicon_file(path) == ['백반', '가다']
    assert Lexicon(read_lexicon_file(path)).kind('백반') == ENTRY


@pytest.mark.parametrize('content, expected', [
    ('백반\n두 단어\n', 'words.txt, line 2: \'두 단어\' holds a space'),
    (b'\xeb\xb0\xb1\n\xff\n', 'words.txt, line 2: not UTF-8 text'),
    ('\n\n', 'words.txt: no word in it'),
])
def test_a_bad_word_list_is_one_line_naming_the_file_and_line(tmp_path, content, expected):
    path = tmp_path / 'words.txt'
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding='utf-8')
    with pytest.raises((InputError, ValueError)) as raised:
        read_lexicon_file(path)
    message = str(raised.value)
    assert '\n' not in message and message.startswith(str(tmp_path)) and expected in message


def test_a_token_is_an_entry_a_compound_of_two_or_unknown():
    lexicon = Lexicon(['김포', '공항', '학교', '에서', '가'])
    assert lexicon.kind('공항') == ENTRY
    assert lexicon.kind('김포공항') == COMPOUND and lexicon.kind('학교에서') == COMPOUND
    assert lexicon.kind('가공항') == UNKNOWN  # a compound's first part has two syllables or more
    assert lexicon.kind('공항가') == COMPOUND and lexicon.kind('김포가다') == UNKNOWN


def test_near_finds_the_entries_one_jamo_edit_away():
    lexicon = Lexicon(['할매', '메뉴', '하', '할', '학교', '백반'])
    assert lexicon.near('학매') == {'할매'}     # a final consonant replaced
    assert lexicon.near('베뉴') == {'메뉴'}     # an initial replaced (빼뉴 is two: ㅃ and ㅐ)
    assert lexicon.near('학굥') == {'학교'}     # a jamo dropped (the final ㅇ)
    assert lexicon.near('배반') == {'백반'}     # a jamo added (the final ㄱ)
    assert lexicon.near('학') == {'하', '할'}   # a final dropped or replaced
    assert lexicon.near('할매') == set()        # an entry is not its own neighbour
    assert lexicon.near('벡반') == {'백반'} and lexicon.near('빅밴') == set()  # two edits are too many


def test_a_lexicon_word_the_alternatives_missed_is_found_one_jamo_away():
    converter = CTCLabelConverter(ALPHABET + '학할매')
    # 할 is not among the first frame's four likeliest characters, but 할매 is one jamo from 학매
    log_probs = frames([{'학': 0.5, '백': 0.15, '벡': 0.15, '배': 0.15, '할': 0.02}, {'': 0.9}, {'매': 0.95}],
                       converter)
    text, confidence = greedy(log_probs, converter)
    assert text == '학매'
    assert read_with_lexicon(log_probs, text, confidence, converter, Lexicon(['할매']), 4.0)[0] == '할매'


def test_a_doubtful_word_becomes_the_lexicon_word_and_its_confidence_the_ratio():
    converter = CTCLabelConverter(ALPHABET)
    log_probs = frames([{'벡': 0.6, '백': 0.35}, {'': 0.9}, {'반': 0.95}, {'': 0.9}], converter)
    text, confidence = greedy(log_probs, converter)
    assert text == '벡반'
    lexicon = Lexicon(['백반'])
    new_text, new_confidence = read_with_lexicon(log_probs, text, confidence, converter, lexicon, 4.0)
    assert new_text == '백반'
    # 백 takes the first frame's place: the CTC probability ratio of the two readings is 0.35 / 0.6
    assert new_confidence == pytest.approx(confidence * 0.35 / 0.6, rel=1e-2)
    # weight 0: an unknown word need not lose anything to stay as read
    assert read_with_lexicon(log_probs, text, confidence, converter, lexicon, 0.0) == (text, confidence)


def test_a_clearly_read_word_stays_even_when_the_lexicon_lacks_it():
    converter = CTCLabelConverter(ALPHABET)
    log_probs = frames([{'벡': 0.97, '백': 0.005}, {'': 0.9}, {'반': 0.95}, {'': 0.9}], converter)
    text, confidence = greedy(log_probs, converter)
    # log(0.005 / 0.97) = -5.3 nats: more than the weight 4 an unknown word pays
    assert read_with_lexicon(log_probs, text, confidence, converter, Lexicon(['백반']), 4.0) == (text, confidence)
    # a larger weight trusts the lexicon more
    assert read_with_lexicon(log_probs, text, confidence, converter, Lexicon(['백반']), 8.0)[0] == '백반'


def test_only_the_unknown_hangul_words_of_a_line_are_rescored():
    converter = CTCLabelConverter(ALPHABET)
    # '벡반 3 벡' : the number stays, and the last word (a doubtful 벡 whose second reading 백
    # is no lexicon word either) stays as read
    log_probs = frames([{'벡': 0.6, '백': 0.35}, {'': 0.9}, {'반': 0.95}, {' ': 0.95}, {'3': 0.5, '가': 0.45},
                        {' ': 0.95}, {'벡': 0.6, '배': 0.39}], converter)
    text, confidence = greedy(log_probs, converter)
    assert text == '벡반 3 벡'
    new_text, _ = read_with_lexicon(log_probs, text, confidence, converter, Lexicon(['백반', '가']), 4.0)
    assert new_text == '백반 3 벡'
    # a word already in the lexicon is never changed, however doubtful
    assert read_with_lexicon(log_probs, text, confidence, converter, Lexicon(['벡반', '백반', '배']), 4.0)[0] \
        == '벡반 3 배'


def test_the_best_of_several_lexicon_words_wins():
    converter = CTCLabelConverter(ALPHABET)
    log_probs = frames([{'벡': 0.5, '백': 0.3, '배': 0.15}, {'': 0.9}, {'다': 0.9}], converter)
    text, confidence = greedy(log_probs, converter)
    assert read_with_lexicon(log_probs, text, confidence, converter, Lexicon(['백다', '배다']), 4.0)[0] == '백다'
    assert read_with_lexicon(log_probs, text, confidence, converter, Lexicon(['배다']), 4.0)[0] == '배다'


def options(tmp_path, **values):
    defaults = dict(lexicon=None, lexicon_weight=None, Prediction='CTC', saved_model='model.pth')
    defaults.update(values)
    return types.SimpleNamespace(**defaults)


def test_the_flags_are_checked_with_one_line(tmp_path):
    words = tmp_path / 'words.txt'
    words.write_text('백반\n', encoding='utf-8')
    assert lexicon_for(options(tmp_path)) is None
    assert len(lexicon_for(options(tmp_path, lexicon=[str(words)]))) == 1
    cases = [
        (dict(lexicon_weight=3.0), '--lexicon_weight 3 is given without --lexicon'),
        (dict(lexicon=[str(words)], lexicon_weight=-1.0), '--lexicon_weight -1: expected 0 or a positive'),
        (dict(lexicon=[str(words)], Prediction='Attn'), '--lexicon rescores CTC readings; model.pth is an Attn'),
        (dict(lexicon=[str(tmp_path / 'none.txt')]), f'--lexicon {tmp_path / "none.txt"}: no such file'),
    ]
    for values, expected in cases:
        with pytest.raises(InputError, match='^' + expected.replace('.', r'\.').replace('-', r'\-')):
            lexicon_for(options(tmp_path, **values))


def test_an_edited_word_list_is_read_again(tmp_path):
    words = tmp_path / 'words.txt'
    words.write_text('백반\n', encoding='utf-8')
    assert len(lexicon_for(options(tmp_path, lexicon=[str(words)]))) == 1
    words.write_text('백반\n배다\n', encoding='utf-8')
    assert len(lexicon_for(options(tmp_path, lexicon=[str(words)]))) == 2


def test_demo_with_a_lexicon_and_an_attn_model_stops_with_one_line(tmp_path):
    import demo
    checkpoint = small_checkpoint(tmp_path, ('None', 'VGG', 'BiLSTM', 'Attn'))
    words = tmp_path / 'words.txt'
    words.write_text('서울\n', encoding='utf-8')
    with pytest.raises(SystemExit) as raised:
        from utils import run_script
        run_script(demo.main, ['--image_folder', str(tmp_path), '--saved_model', str(checkpoint),
                               '--lexicon', str(words)])
    assert str(raised.value) == f'error: --lexicon rescores CTC readings; {checkpoint} is an Attn model'


def test_rescoring_is_exact_ctc_over_every_alignment():
    # the ratio read_with_lexicon reports is that of torch's CTC loss of the two lines
    converter = CTCLabelConverter(ALPHABET)
    log_probs = frames([{'벡': 0.5, '백': 0.4}, {'벡': 0.5, '백': 0.4}, {'': 0.9}, {'반': 0.95}], converter)
    text, confidence = greedy(log_probs, converter)
    new_text, new_confidence = read_with_lexicon(log_probs, text, confidence, converter, Lexicon(['백반']), 4.0)

    def ctc_log_likelihood(line):
        target = torch.tensor([[converter.dict[ch] for ch in line]])
        return -float(torch.nn.functional.ctc_loss(log_probs.unsqueeze(1), target, [len(log_probs)], [len(line)],
                                                   reduction='sum'))
    assert new_text == '백반'
    expected = confidence * math.exp(ctc_log_likelihood('백반') - ctc_log_likelihood('벡반'))
    assert new_confidence == pytest.approx(expected, rel=1e-4)


def test_a_lexicon_word_the_model_cannot_spell_is_no_candidate():
    converter = CTCLabelConverter(ALPHABET)
    log_probs = frames([{'벡': 0.6, '백': 0.35}, {'': 0.9}, {'반': 0.95}], converter)
    text, confidence = greedy(log_probs, converter)
    # 뱩반 is one jamo from 벡반, but 뱩 is not in the model's alphabet
    assert read_with_lexicon(log_probs, text, confidence, converter, Lexicon(['뱩반']), 4.0) == (text, confidence)
