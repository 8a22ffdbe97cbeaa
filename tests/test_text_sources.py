"""korean/text_sources.py: every source produces what it claims, the mixer is deterministic and
honours the alphabet, length, exclusions and weights, and files are read with clear errors."""
from __future__ import annotations

import collections
import datetime
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from korean import text_sources
from korean.hangul import is_hangul_syllable, ksx1001_syllables, standard_alphabets
from korean.text_sources import (BUILTIN_SOURCES, WORDS_FILE, ExcludeRule, FileTextSource, LabelFilter,
                                 TextFileError, TextMixer, build_word_list, builtin_words, load_vocab,
                                 normalize_label, parse_weighted_list, read_text_lines, read_word_list,
                                 split_words)
from utils import Alphabet

REPO = Path(__file__).resolve().parent.parent
KS_ALPHABET = standard_alphabets()['ksx1001_with_space']
KS_SYLLABLES = ksx1001_syllables()


def labels_from(source: str, n: int, seed: int = 0, **kwargs) -> list[str]:
    return TextMixer({source: 1}, seed=seed, alphabet=KS_ALPHABET, **kwargs).take(n)


# ----------------------------------------------------------------------------------------------
# the built-in word list


def test_builtin_word_list_is_large_distinct_nfc_and_within_ks_x_1001():
    words = read_word_list(WORDS_FILE)
    raw_lines = WORDS_FILE.read_text(encoding='utf-8').splitlines()
    assert len(words) >= 3000
    assert len(raw_lines) == len(set(raw_lines)) == len(words)  # one distinct word a line
    ks = set(KS_SYLLABLES)
    alphabet = Alphabet(KS_ALPHABET)
    for word in words:
        assert unicodedata.normalize('NFC', word) == word
        assert ' ' not in word
        assert all(ch in ks for ch in word if is_hangul_syllable(ch)), word
        assert alphabet.keeps(word, 25), word
    # mostly Hangul words, as a Korean list should be
    assert sum(all(is_hangul_syllable(c) for c in w) for w in words) > 0.95 * len(words)


def test_word_list_is_the_union_of_the_vocabulary_files():
    # words.txt is built from korean/data/vocab/*.txt; this catches an edit to one but not the other
    assert builtin_words() == build_word_list(load_vocab())
    vocab = load_vocab()
    assert {'places', 'teams', 'surnames', 'given_names', 'shop_types', 'food', 'weather'} <= set(vocab)


# ----------------------------------------------------------------------------------------------
# built-in sources

WEEKDAY = '월화수목금토일'
TIME = r'(?:(?:오전|오후) )?(?:\d{1,2}:\d{2}|\d{1,2}시(?: \d{1,2}분)?)'
DATE_FORMS = [
    r'(?P<y>\d{4})\.(?P<m>\d{2})\.(?P<d>\d{2})', r'(?P<y>\d{4})\.(?P<m>\d{1,2})\.(?P<d>\d{1,2})\.',
    r'(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})', r'(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})',
    r'(?P<yy>\d{2})\.(?P<m>\d{2})\.(?P<d>\d{2})', r'(?P<m>\d{1,2})월 (?P<d>\d{1,2})일',
    r'(?P<y>\d{4})년 (?P<m>\d{1,2})월 (?P<d>\d{1,2})일', r'(?P<y>\d{4})년 (?P<m>\d{1,2})월 (?P<d>\d{1,2})일\((?P<w>.)\)',
    r'(?P<m>\d{1,2})월 (?P<d>\d{1,2})일\((?P<w>.)\)', r'(?P<m>\d{1,2})월 (?P<d>\d{1,2})일 (?P<w>.)요일',
    r'(?P<m>\d{1,2})\.(?P<d>\d{1,2})\((?P<w>.)\)', r'(?P<m>\d{2})/(?P<d>\d{2})', r'(?P<y>\d{4})년 (?P<m>\d{1,2})월',
    r'(?P<y>\d{4})년', r'(?P<m>\d{1,2})월', TIME, r'(?P<m>\d{1,2})월 (?P<d>\d{1,2})일 ' + TIME,
]


def parse_date_label(label: str) -> dict:
    """Parse a date label with the forms above and check it is a real date (and weekday)."""
    for form in DATE_FORMS:
        match = re.fullmatch(form, label)
        if not match:
            continue
        g = {k: v for k, v in match.groupdict().items() if v is not None}
        year = int(g['y']) if 'y' in g else (1900 + int(g['yy']) if int(g.get('yy', 0)) >= 50 else 2000 + int(g['yy'])
                                               if 'yy' in g else None)
        if 'm' in g:
            assert 1 <= int(g['m']) <= 12, label
        if 'd' in g:
            date = datetime.date(year or 2024, int(g['m']), int(g['d']))  # raises on 2월 30일
            if 'w' in g and year is not None:
                assert WEEKDAY[date.weekday()] == g['w'], label
        for hour, minute in re.findall(r'(\d{1,2}):(\d{2})', label):
            assert 0 <= int(hour) <= 23 and 0 <= int(minute) <= 59, label
        return g
    raise AssertionError(f'not a date/time form: {label!r}')


def test_dates_are_real_dates_in_korean_forms():
    labels = labels_from('dates', 400, seed=3)
    parsed = [parse_date_label(label) for label in labels]
    assert sum('w' in g for g in parsed) > 20  # weekdays appear and were checked
    assert any('년' in label for label in labels) and any('오후' in label for label in labels)
    assert any(re.fullmatch(r'\d{4}\.\d{2}\.\d{2}', label) for label in labels)


def won_value(label: str) -> int:
    """The amount of a price label: 12,000원 / 3만5천원 / 1억 2천만원 / 정가 9,900원."""
    text = re.sub(r'^(?:정가|판매가|할인가|1인|월|단돈|특가|개당) ', '', label)
    assert text.endswith('원'), label
    text = text[:-1].replace(' ', '')
    total = 0
    for number, unit in re.findall(r'([\d,]+)(억|천만|만|천)?', text):
        value = int(number.replace(',', ''))
        total += value * {'억': 10**8, '천만': 10**7, '만': 10**4, '천': 10**3, '': 1}[unit]
    assert re.fullmatch(r'(?:[\d,]+(?:억|천만|만|천)?)+', text), label
    return total


def test_prices_end_with_won_and_have_a_positive_amount():
    labels = labels_from('prices', 300, seed=4)
    assert all(label.endswith('원') for label in labels)
    assert all(won_value(label) > 0 for label in labels)
    assert any(re.fullmatch(r'\d{1,3}(,\d{3})+원', label) for label in labels)  # 12,000원
    assert any(re.fullmatch(r'\d+만\d천원', label) for label in labels)  # 3만5천원


def test_scores_look_like_scores():
    labels = labels_from('scores', 300, seed=5)
    assert any(re.fullmatch(r'\d+:\d+', label) for label in labels)
    assert any(re.fullmatch(r'\d+-\d+', label) for label in labels)
    assert any(re.fullmatch(r'\d+회[초말]', label) for label in labels)
    assert any(re.fullmatch(r'\d+세트', label) for label in labels)
    assert any(re.fullmatch(r'\d+승 \d+패', label) for label in labels)
    assert all(re.search(r'\d|무사', label) for label in labels)


def test_digits_are_digit_strings():
    labels = labels_from('digits', 200)
    assert all(label.isdigit() and label.isascii() for label in labels)
    assert {len(label) for label in labels} == set(range(1, 11))


def test_numbers_hold_digits_and_stay_in_the_alphabet():
    labels = labels_from('numbers', 300)
    assert all(re.search(r'\d', label) for label in labels)
    assert any(re.fullmatch(r'010-\d{4}-\d{4}', label) for label in labels)
    assert any(label.endswith('%') for label in labels)


def test_syllable_source_deals_every_syllable_equally_often():
    mixer = TextMixer({'syllables': 1}, seed=7, alphabet=KS_ALPHABET)
    counts: collections.Counter[str] = collections.Counter()
    while sum(counts.values()) < 3 * len(KS_SYLLABLES):
        label = next(mixer)
        assert 1 <= len(label) <= 10
        counts.update(label)
    assert set(counts) == set(KS_SYLLABLES)  # full coverage, nothing else
    assert max(counts.values()) - min(counts.values()) <= 1


def test_chars_source_covers_digits_latin_and_punctuation_too():
    alphabet = '가나다0123abc-·'
    counts = collections.Counter(''.join(TextMixer({'chars': 1}, seed=1, alphabet=alphabet).take(40)))
    assert set(counts) == set(alphabet)


def test_words_come_from_the_builtin_list():
    words = set(builtin_words())
    assert all(label in words for label in labels_from('words', 300))


def test_captions_are_composed_from_the_vocabulary_by_templates():
    labels = labels_from('captions', 800, seed=11)
    vocab = load_vocab()
    teams, places, shops = set(vocab['teams']), set(vocab['places']), set(vocab['shop_types'])
    assert len(set(labels)) > 600
    assert all(len(label) <= 25 for label in labels)
    assert any(label.endswith(' 날씨') and label[:-3] in places for label in labels)
    assert any(label.startswith('[속보] ') for label in labels)
    assert any(label.endswith(' 기자') for label in labels)
    assert any(any(label.endswith(shop) and label != shop for shop in shops) for label in labels)
    assert any(label.split(' ')[0] in teams and label.split(' ')[-1] in ('승리', '역전승', '우승') for label in labels)


def test_plates_have_the_korean_plate_forms_and_real_plate_letters():
    from korean.text_sources import PLATE_LETTERS, PlateSource
    regions = '|'.join(PlateSource.REGIONS)
    forms = {'two digits': r'\d{2}([가-힣])\d{4}', 'three digits': r'\d{3}([가-힣])\d{4}',
             'regional': f'(?:{regions})' + r'\d{2}([가-힣])\d{4}'}
    seen = collections.Counter()
    commercial_regional = 0
    for label in labels_from('plates', 600, seed=3):
        matches = {name: re.fullmatch(pattern, label) for name, pattern in forms.items()}
        [(form, match)] = [(name, m) for name, m in matches.items() if m]
        seen[form] += 1
        assert match.group(1) in PLATE_LETTERS, label
        commercial_regional += form == 'regional' and match.group(1) in PlateSource.COMMERCIAL_LETTERS
    assert min(seen.values()) > 50, seen
    assert commercial_regional > 30  # the yellow plates of buses, taxis and lorries


def test_scorebugs_hold_two_teams_and_their_scores():
    teams = set(load_vocab()['teams'])
    labels = labels_from('scorebugs', 300, seed=4)
    assert len(set(labels)) > 250
    for label in labels:
        words = label.split(' ')
        assert sum(word in teams for word in words) == 2, label
        assert sum(word.isdigit() for word in words) >= 2, label


def test_every_builtin_source_respects_alphabet_length_and_nfc():
    alphabet = Alphabet(KS_ALPHABET)
    for source in BUILTIN_SOURCES:
        for label in TextMixer({source: 1}, seed=2, alphabet=KS_ALPHABET, max_length=12).take(150):
            assert alphabet.keeps(label, 12), (source, label)
            assert unicodedata.normalize('NFC', label) == label
            assert label == label.strip() and '  ' not in label and '\t' not in label


# ----------------------------------------------------------------------------------------------
# the mixer


def test_mixer_is_deterministic_for_a_seed():
    a = TextMixer(seed=42, alphabet=KS_ALPHABET).take(300)
    assert a == TextMixer(seed=42, alphabet=KS_ALPHABET).take(300)
    assert a != TextMixer(seed=43, alphabet=KS_ALPHABET).take(300)


def test_mixer_follows_the_weights():
    mixer = TextMixer('digits:3,dates:1', seed=0, alphabet=KS_ALPHABET)
    sources = collections.Counter(mixer.next_labeled()[1] for _ in range(2000))
    assert 2.6 < sources['digits'] / sources['dates'] < 3.4
    assert dict(mixer.produced) == dict(sources)


def test_mixer_rejects_an_unknown_source_by_name():
    with pytest.raises(ValueError, match="'headlines'.*not a built-in source"):
        TextMixer({'headlines': 1})


def test_a_source_that_can_never_pass_the_alphabet_is_a_clear_error():
    mixer = TextMixer({'digits': 1}, alphabet='가나다')
    with pytest.raises(RuntimeError, match="'digits'.*outside alphabet"):
        mixer.take(1)


def test_parse_weighted_list():
    assert parse_weighted_list('words:4,captions,dates:0.5') == [('words', 4.0), ('captions', 1.0), ('dates', 0.5)]
    assert parse_weighted_list('C:/data/news.txt:2') == [('C:/data/news.txt', 2.0)]
    with pytest.raises(ValueError, match="'words' is listed twice"):
        parse_weighted_list('words:1,words:2')
    with pytest.raises(ValueError, match='positive weight'):
        parse_weighted_list('words:0')
    with pytest.raises(ValueError, match="weight of 'words'"):
        parse_weighted_list('words:-1')


def test_labels_are_nfc_even_when_the_file_is_nfd(tmp_path):
    path = tmp_path / 'nfd.txt'
    path.write_text(unicodedata.normalize('NFD', '한국 방송\n서울\n'), encoding='utf-8')
    labels = TextMixer({str(path): 1}, alphabet=KS_ALPHABET).take(20)
    assert set(labels) == {'한국 방송', '서울'}
    assert normalize_label(unicodedata.normalize('NFD', ' 한글\t 날씨 ')) == '한글 날씨'


# ----------------------------------------------------------------------------------------------
# text files


def test_file_lines_are_filtered_to_alphabet_and_length_with_counts(tmp_path):
    path = tmp_path / 'headlines.txt'
    path.write_text('서울 날씨 맑음\n\nTokyo 날씨\n' + '가' * 30 + '\n부산 폭우\n', encoding='utf-8')
    source = FileTextSource(path, LabelFilter(Alphabet(KS_ALPHABET, sensitive=True), 25, ExcludeRule()), 'lines')
    assert source.texts == ['서울 날씨 맑음', '부산 폭우']
    assert source.stats['rejected'] == {'outside alphabet': 1, 'too long': 1}
    assert 'T' in source.stats['missing_characters']


def test_file_words_and_phrases_splits(tmp_path):
    path = tmp_path / 'news.txt'
    path.write_text('정부 내일부터 전기요금 인상 발표 예정 ☃ 국회 논란\n', encoding='utf-8')
    label_filter = LabelFilter(Alphabet(KS_ALPHABET), 12, ExcludeRule())
    words = FileTextSource(path, label_filter, 'words')
    assert words.texts == ['정부', '내일부터', '전기요금', '인상', '발표', '예정', '국회', '논란']
    phrases = FileTextSource(path, label_filter, 'phrases')
    line = '정부 내일부터 전기요금 인상 발표 예정 ☃ 국회 논란'
    import random
    rng = random.Random(0)
    for _ in range(200):
        phrase = phrases.sample(rng)
        assert len(phrase) <= 12 and '☃' not in phrase
        assert phrase in line  # consecutive words of the line
        assert len(phrase.split(' ')) <= 4


def test_a_file_with_nothing_usable_says_why(tmp_path):
    path = tmp_path / 'long.txt'
    path.write_text('아주 긴 헤드라인 문장이 여기에 있습니다 그리고 계속 이어집니다 끝없이\n', encoding='utf-8')
    with pytest.raises(TextFileError, match=r'long\.txt.*1 too long.*--text_split phrases'):
        TextMixer({str(path): 1}, alphabet=KS_ALPHABET)


def test_a_non_utf8_file_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / 'cp949.txt'
    path.write_bytes('첫 줄\n'.encode('utf-8') + '둘째 줄\n'.encode('cp949'))
    with pytest.raises(TextFileError, match=r'cp949\.txt, line 2: not UTF-8'):
        read_text_lines(path)


# ----------------------------------------------------------------------------------------------
# exclusion and splitting


def test_exclude_modes():
    assert ExcludeRule(['서울'], 'label').matches('서울')
    assert not ExcludeRule(['서울'], 'label').matches('서울 날씨')
    assert ExcludeRule(['서울'], 'token').matches('서울 날씨')
    assert not ExcludeRule(['서울'], 'token').matches('서울역')
    assert ExcludeRule(['서울'], 'substring').matches('서울역 3번 출구')
    assert ExcludeRule(['KBO'], 'token').matches('kbo 리그')
    assert not ExcludeRule(['서울'], 'substring').matches('부산')


def test_mixer_never_produces_excluded_labels(tmp_path):
    held_out = builtin_words()[::7]
    rule = ExcludeRule(held_out, 'token')
    mixer = TextMixer('words:1,captions:1', seed=3, alphabet=KS_ALPHABET, exclude=held_out)
    labels = mixer.take(3000)
    assert not any(rule.matches(label) for label in labels)
    # without the exclusion the same stream does contain held-out words
    free = TextMixer('words:1,captions:1', seed=3, alphabet=KS_ALPHABET).take(3000)
    assert sum(rule.matches(label) for label in free) > 300


def test_split_words_is_disjoint_complete_and_seeded():
    words = builtin_words()
    train, test = split_words(words, 0.1, seed=1)
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(words)
    assert len(test) == round(len(words) * 0.1)
    assert (train, test) == split_words(reversed(words), 0.1, seed=1)  # input order does not matter
    assert split_words(words, 0.1, seed=2)[1] != test
    assert split_words(['가', '나'], 0.1, seed=0)[1] != []  # at least one test word


def test_cli_split_and_sample(tmp_path, capsys):
    words = tmp_path / 'words.txt'
    words.write_text('\n'.join(['사과', '배', '포도', '수박', '참외', '딸기', '귤', '감', '자두', '밤']) + '\n',
                     encoding='utf-8')
    text_sources.main(['split', '--input', str(words), '--test_fraction', '0.3', '--seed', '1',
                       '--train_out', str(tmp_path / 'tr.txt'), '--test_out', str(tmp_path / 'te.txt')])
    assert '7 ->' in capsys.readouterr().out
    train, test = read_word_list(tmp_path / 'tr.txt'), read_word_list(tmp_path / 'te.txt')
    assert (train, test) == split_words(read_word_list(words), 0.3, seed=1)
    text_sources.main(['sample', '--source', f'{tmp_path / "tr.txt"}:1,{words}:1', '-n', '30',
                       '--exclude_file', str(tmp_path / 'te.txt')])
    printed = capsys.readouterr().out.split()
    assert len(printed) == 30 and set(printed) <= set(train)
    with pytest.raises(SystemExit):
        text_sources.main(['sample', '--source', 'nonsense'])
    assert "unknown text source 'nonsense'" in capsys.readouterr().err


def test_script_runs_from_the_repo_root():
    run = subprocess.run([sys.executable, 'korean/text_sources.py', '--help'], capture_output=True, text=True,
                         cwd=REPO)
    assert run.returncode == 0 and 'syllables' in run.stdout


def test_a_text_file_gives_the_same_labels_wherever_it_lies(tmp_path):
    for folder in ('a', 'b/c'):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / 'words.txt').write_text('사과\n배\n포도\n수박\n참외\n', encoding='utf-8')
    first = TextMixer(f'{tmp_path / "a" / "words.txt"}:1,dates:1', seed=5, alphabet=KS_ALPHABET).take(50)
    second = TextMixer(f'{tmp_path / "b" / "c" / "words.txt"}:1,dates:1', seed=5, alphabet=KS_ALPHABET).take(50)
    assert first == second


# ----------------------------------------------------------------------------------------------
# the Korean lexicon (wordfreq) behind lexicon_words


def test_compose_lexicon_words_mixes_singles_compounds_and_endings_deterministically():
    entries = ['에서', '사람', '는', '학교', '공원', '올림픽', '도서관', '버스정류장', '가']
    labels = text_sources.compose_lexicon_words(entries, 40, seed=3, max_length=6)
    assert labels == text_sources.compose_lexicon_words(entries, 40, seed=3, max_length=6)
    assert labels != text_sources.compose_lexicon_words(entries, 40, seed=4, max_length=6)
    assert len(labels) == len(set(labels)) == 40 and all(len(label) <= 6 for label in labels)
    stems = [w for w in entries if len(w) >= 2]
    singles = [label for label in labels if label in stems]
    pairs = [label for label in labels if any(label == a + b for a in stems for b in stems)]
    with_ending = [label for label in labels if any(label == a + e for a in stems for e in ('에서', '는', '가'))]
    assert singles and pairs and with_ending
    assert set(singles) | set(pairs) | set(with_ending) == set(labels)
    assert '는' not in labels and '가' not in labels  # one-syllable entries only ever end a label
    excluded = text_sources.compose_lexicon_words(entries, 30, seed=3, max_length=6,
                                                  exclude=lambda label: label == '학교공원' or label == '사람')
    assert '학교공원' not in excluded and '사람' not in excluded
    with pytest.raises(ValueError, match='only 2 distinct labels'):
        text_sources.compose_lexicon_words(['사람', '가'], 5, seed=0, max_length=3)


def test_cli_lexicon_words_writes_real_korean_words_without_held_out_ones(tmp_path, capsys):
    held_out = tmp_path / 'held_out.txt'
    held_out.write_text('사람\n학교\n대통령\n', encoding='utf-8')
    out = tmp_path / 'data' / 'lexicon.txt'  # data/ does not exist yet, as in a fresh clone
    text_sources.main(['lexicon_words', '--output', str(out), '-n', '3000', '--seed', '5',
                       '--exclude_file', str(held_out)])
    report = capsys.readouterr().out
    entries = int(re.search(r'from (\d+) lexicon entries', report).group(1))
    assert entries > 20000  # wordfreq's Korean list: about ten times the built-in word list
    labels = read_word_list(out)
    assert len(labels) == len(set(labels)) == 3000
    assert all(unicodedata.is_normalized('NFC', w) and all(ch in KS_SYLLABLES for ch in w) and len(w) <= 10
               for w in labels)
    assert not {'사람', '학교', '대통령'} & set(labels)
    # real words, not random syllables: common words of the built-in list turn up
    assert len(set(labels) & set(builtin_words())) > 30
    again = tmp_path / 'again.txt'
    text_sources.main(['lexicon_words', '--output', str(again), '-n', '3000', '--seed', '5',
                       '--exclude_file', str(held_out)])
    assert again.read_bytes() == out.read_bytes()


def test_the_lexicon_names_the_package_it_needs(monkeypatch):
    monkeypatch.setitem(sys.modules, 'wordfreq', None)  # import wordfreq now raises ImportError
    with pytest.raises(RuntimeError, match=r'pip install wordfreq==3\.1\.1'):
        text_sources.wordfreq_korean_words()


def test_the_lexicon_warns_when_another_wordfreq_is_installed(monkeypatch, caplog):
    monkeypatch.setattr(text_sources.importlib.metadata, 'version', lambda name: '3.0.2')
    with caplog.at_level('WARNING', logger=text_sources.__name__):
        words = text_sources.wordfreq_korean_words()
    assert words and 'wordfreq 3.0.2 is installed; the lexicon was measured with 3.1.1' in caplog.text


def test_cli_dictionary_writes_wordfreqs_korean_words_then_the_users(tmp_path, capsys):
    names = tmp_path / 'names.txt'
    names.write_text('키움\n사람\n남대문시장\n', encoding='utf-8')
    out = tmp_path / 'data' / 'ko_words.txt'
    text_sources.main(['dictionary', '--output', str(out), '--word_file', str(names)])
    words = read_word_list(out)
    assert capsys.readouterr().out == f'{len(words)} words written to {out}\n'
    assert len(words) == len(set(words)) > 20000
    assert all(unicodedata.is_normalized('NFC', w) for w in words)
    # most frequent first (particles lead wordfreq's list), then the user's words it lacks: 키움
    # and 사람 are wordfreq's already and come once, where wordfreq ranks them
    assert words.index('이') < words.index('사람') < words.index('대통령') < words.index('키움')
    assert words[-1] == '남대문시장' and words.count('키움') == words.count('사람') == 1
    assert words[:-1] == text_sources.wordfreq_korean_words()
