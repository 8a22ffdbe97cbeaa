"""korean/naver_crawling.py against a real HTTP server on 127.0.0.1 serving pages written here
(or in tests/data/naver/): normal, empty, 5xx, slow, changed markup. Never contacts the internet."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from conftest import NaverStub, Reply, headline_page
from korean import naver_crawling as nc
from utils import load_character

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / 'tests' / 'data' / 'naver'
ALPHABET_FILE = REPO_ROOT / 'korean' / 'alphabets' / 'ksx1001_with_space.txt'
NORMAL_PAGE = (DATA / 'section_normal.html').read_text(encoding='utf-8')
CHANGED_PAGE = (DATA / 'section_changed.html').read_text(encoding='utf-8')

# what section_normal.html becomes with the default selectors, alphabet and --min_length 5:
# [속보]/(종합)/<인터뷰>/【포토】/（…） dropped, entities decoded, 尹 and 🎉 removed, AI lower-cased
# (the alphabet is lower-case only), the repeated headline kept once, '첫눈' too short
NORMAL_TITLES = [
    '국회, 내년도 예산안 본회의 통과',
    '정부 "반도체 지원 확대"…ai 투자 늘린다',
    '대통령 신년 기자회견 연다',
    '올해 경제 성장률 2.1% 전망',
    '장관 "규제 완화 서두를 것"',
    '지하철 요금 내달부터 인상',
]
BACKUP_NAME = re.compile(r'^\d{6}_\d{4}(_\d+)?\.txt$')


@pytest.fixture
def naver(monkeypatch: pytest.MonkeyPatch):
    for var in ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    with NaverStub() as stub:
        yield stub


def run_cli(naver: NaverStub, out: Path, *extra: str) -> int:
    argv = ['--base_url', naver.url, '--output_dir', str(out), '--character', str(ALPHABET_FILE),
            '--delay', '0', '--backoff', '0', '--timeout', '2', '--no_progress', *extra]
    return nc.main(argv)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding='utf-8').splitlines()


def backups(out: Path) -> list[Path]:
    return sorted((out / 'backup').iterdir())


# ---------------------------------------------------------------------------------- selectors

def test_css_selectors_match_on_the_parsed_page():
    root = nc.parse_html(
        '<div id="main" class="box wide"><ul><li class="sa_item first">one<br>line</li>'
        '<li class="sa_item"><a class="t" href="/b"><img src="x.png"><b>two</b></a></li>'
        '<li class="other">three</li></ul></div><p class="t">outside</p>')

    def texts(selector, scope=root):
        return [nc.element_text(el) for el in nc.parse_selector(selector).select(scope)]
    assert texts('li.sa_item') == ['one line', 'two']
    assert texts('.sa_item.first') == ['one line']
    assert texts('#main ul li a b') == ['two']
    assert texts('div.box.wide .t') == ['two']
    # beyond the old home-made subset: child combinator, attributes, pseudo-classes
    assert texts('ul > li:nth-child(3)') == ['three']
    assert texts('a[href="/b"]') == ['two']
    item = nc.parse_selector('li.sa_item').select(root)[1]
    assert texts('ul a', item) == ['two']  # ancestors above the scope count, as in browsers


def test_title_fallbacks_split_only_at_top_level_commas():
    assert nc.parse_selector_list('h3 a, :is(b, i), a[title="x,y"]') == [
        'h3 a', ':is(b, i)', 'a[title="x,y"]']


@pytest.mark.parametrize('selector', ['li >', 'a[href', 'li:no-such-thing', '', 'li.'])
def test_invalid_selector_is_a_clear_error(selector):
    with pytest.raises(ValueError, match=r'--item_selector.*(not a valid CSS selector|empty)'):
        nc.parse_selector(selector)


def test_script_text_is_never_a_title():
    page = ('<script>document.write("<li class=\\"sa_item\\">가짜</li>")</script>'
            '<li class="sa_item"><a class="sa_text_title">진짜 제목</a></li>')
    found = nc.extract_titles(page, nc.DEFAULT_ITEM_SELECTOR, nc.DEFAULT_TITLE_SELECTORS)
    assert (found.items, found.titles) == (1, ['진짜 제목'])


# ---------------------------------------------------------------------------------- cleaning

def test_clean_title_drops_bracketed_spans_nested_and_full_width():
    alphabet = '가나다라마바사 '
    assert nc.clean_title('[단독(2보)] 가나 (종합)다라', alphabet) == '가나 다라'
    assert nc.clean_title('【가】나 ［다］라 〔마〕바 （사） <가>＜나＞다', alphabet) == '나 라 바 다'
    # quotes of titles of works are content: the brackets go (not in the alphabet), the text stays
    assert nc.clean_title('《가나》 다라', alphabet) == '가나 다라'


def test_clean_title_leaves_text_after_an_unclosed_bracket():
    assert nc.clean_title('가나 (다라 마바', '가나다라마바 (') == '가나 (다라 마바'
    assert nc.clean_title('가나) 다라', '가나다라 ') == '가나 다라'


def test_clean_title_unescapes_normalises_and_filters():
    alphabet = load_character(str(ALPHABET_FILE))
    nfd = unicodedata.normalize('NFD', '한국 뉴스')
    assert nfd != '한국 뉴스'
    assert nc.clean_title(nfd, alphabet) == '한국 뉴스'
    assert nc.clean_title('&quot;AI&quot;&nbsp;시대\u3000😀 開幕 ', alphabet) == '"ai" 시대'
    # whitespace separates words even when the alphabet has no space
    assert nc.clean_title(' 가나\t\n다라 ', '가나다라') == '가나 다라'
    assert nc.clean_title('漢字 🎉', alphabet) == ''


# ---------------------------------------------------------------------------------- crawling

def test_normal_page_writes_backup_cumulative_and_words(naver, tmp_path, capsys):
    naver.routes['/section/100'] = Reply(body=NORMAL_PAGE)
    out = tmp_path / 'crawled'
    assert run_cli(naver, out, '--sections', '100') == 0

    assert lines(out / 'headlines.txt') == NORMAL_TITLES
    [backup] = backups(out)
    assert BACKUP_NAME.match(backup.name)
    assert abs(time.mktime(time.strptime(backup.name[:11], '%y%m%d_%H%M')) - time.time()) < 120
    assert lines(backup) == NORMAL_TITLES
    words = lines(out / 'words.txt')
    assert words[:4] == ['국회,', '내년도', '예산안', '본회의']
    assert len(words) == len(set(words)) == len(' '.join(NORMAL_TITLES).split())
    assert not [p for p in out.rglob('*') if p.name.endswith('.tmp')]

    assert naver.paths() == ['/section/100']
    assert 'naver_crawling.py' in naver.requests[0][2]  # descriptive User-Agent
    summary = capsys.readouterr().out
    # section, pages, items, found (distinct raw), kept, new
    assert re.search(r'100 정치\s+1\s+8\s+7\s+6\s+6\s+ok', summary)
    assert str(out / 'headlines.txt') in summary and str(backup) in summary


def test_cumulative_file_deduplicates_across_runs_in_first_seen_order(naver, tmp_path, capsys):
    out = tmp_path / 'crawled'
    naver.routes['/section/100'] = Reply(body=headline_page('첫째 소식 제목', '둘째 소식 제목'))
    assert run_cli(naver, out, '--sections', '100', '--min_length', '1') == 0
    naver.routes['/section/100'] = Reply(body=headline_page('셋째 소식 제목', '첫째 소식 제목'))
    naver.routes['/section/101'] = Reply(body=headline_page('둘째 소식 제목', '넷째 뉴스'))
    assert run_cli(naver, out, '--sections', '100,101', '--min_length', '1') == 0

    assert lines(out / 'headlines.txt') == ['첫째 소식 제목', '둘째 소식 제목', '셋째 소식 제목', '넷째 뉴스']
    assert lines(out / 'words.txt') == ['첫째', '소식', '제목', '둘째', '셋째', '넷째', '뉴스']
    first, second = backups(out)
    assert first.name != second.name and BACKUP_NAME.match(second.name)
    assert lines(first) == ['첫째 소식 제목', '둘째 소식 제목']
    assert lines(second) == ['셋째 소식 제목', '첫째 소식 제목', '둘째 소식 제목', '넷째 뉴스']
    summary = capsys.readouterr().out
    assert re.search(r'100 정치\s+1\s+2\s+2\s+2\s+1\s+ok', summary)
    assert re.search(r'101 경제\s+1\s+2\s+2\s+2\s+1\s+ok', summary)


def test_nfd_page_and_nfd_cumulative_file_are_one_title(naver, tmp_path):
    out = tmp_path / 'crawled'
    out.mkdir()
    nfd_title = unicodedata.normalize('NFD', '한글 자모 분리 제목')
    (out / 'headlines.txt').write_text(nfd_title + '\n', encoding='utf-8')
    naver.routes['/section/100'] = Reply(
        body=headline_page(nfd_title, unicodedata.normalize('NFD', '새로운 한글 제목')))
    assert run_cli(naver, out, '--sections', '100') == 0
    assert lines(out / 'headlines.txt') == ['한글 자모 분리 제목', '새로운 한글 제목']
    assert all(unicodedata.is_normalized('NFC', w) for w in lines(out / 'words.txt'))


def test_empty_and_changed_pages_report_selector_hint_and_keep_earlier_data(naver, tmp_path, capsys):
    out = tmp_path / 'crawled'
    naver.routes['/section/100'] = Reply(body=NORMAL_PAGE)
    assert run_cli(naver, out, '--sections', '100') == 0
    before = {p: p.read_bytes() for p in out.rglob('*') if p.is_file()}
    capsys.readouterr()

    naver.routes['/section/100'] = Reply(body='')
    naver.routes['/section/101'] = Reply(body=CHANGED_PAGE)
    assert run_cli(naver, out, '--sections', '100,101') == 1  # every section failed

    after = {p: p.read_bytes() for p in out.rglob('*') if p.is_file()}
    assert after == before
    summary = capsys.readouterr().out
    assert re.search(r'100 정치.*FAILED', summary) and re.search(r'101 경제.*FAILED', summary)
    assert 'the page was empty' in summary
    assert "no element matched --item_selector 'li.sa_item'" in summary
    assert summary.count('update --item_selector / --title_selector') == 2
    assert 'Files written: none' in summary


def test_custom_selectors_read_changed_markup(naver, tmp_path):
    out = tmp_path / 'crawled'
    naver.routes['/section/101'] = Reply(body=CHANGED_PAGE)
    code = run_cli(naver, out, '--sections', '101', '--item_selector', 'article.news_card',
                   '--title_selector', 'h3.card_title strong, #headlines h3.card_title a')
    assert code == 0
    assert lines(out / 'headlines.txt') == ['코스피 3년 만에 최고치 경신', '은행 대출 금리 일제히 인하']


def test_items_without_titles_name_the_title_selector(naver, tmp_path, capsys):
    naver.routes['/section/100'] = Reply(body=CHANGED_PAGE)
    assert run_cli(naver, tmp_path, '--sections', '100', '--item_selector', 'article') == 1
    summary = capsys.readouterr().out
    assert "2 items matched --item_selector 'article' but none had text matching --title_selector" in summary


def test_5xx_is_retried_then_the_section_fails_and_the_run_continues(naver, tmp_path, capsys):
    out = tmp_path / 'crawled'
    naver.routes['/section/100'] = Reply(503, 'busy')
    naver.routes['/section/101'] = [Reply(500, 'oops'), Reply(body=headline_page('재시도 후 받은 제목'))]
    naver.routes['/section/102'] = Reply(404, 'gone')
    assert run_cli(naver, out, '--sections', '100,101,102', '--retries', '2') == 0

    assert naver.paths().count('/section/100') == 3  # first attempt + 2 retries
    assert naver.paths().count('/section/101') == 2  # recovered on the retry
    assert naver.paths().count('/section/102') == 1  # 4xx is not retried
    assert lines(out / 'headlines.txt') == ['재시도 후 받은 제목']
    summary = capsys.readouterr().out
    assert re.search(r'100 정치:.*/section/100: HTTP 503.*\(3 attempts\)', summary)
    assert re.search(r'102 사회:.*HTTP 404.*not retried', summary)
    assert '1 of 3 sections ok' in summary


def test_retry_backoff_doubles(naver, tmp_path):
    naver.routes['/section/100'] = Reply(502)
    start = time.monotonic()
    assert run_cli(naver, tmp_path, '--sections', '100', '--retries', '2', '--backoff', '0.1') == 1
    times = [t for t, path, _ in naver.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.2
    assert time.monotonic() - start < 5


def test_slow_server_times_out_and_the_run_continues(naver, tmp_path, capsys):
    out = tmp_path / 'crawled'
    naver.routes['/section/100'] = Reply(body=NORMAL_PAGE, delay=0.8)
    naver.routes['/section/101'] = Reply(body=headline_page('제때 온 경제 뉴스'))
    start = time.monotonic()
    code = run_cli(naver, out, '--sections', '100,101', '--retries', '1', '--timeout', '0.2')
    assert code == 0
    assert time.monotonic() - start < 3
    assert naver.paths() == ['/section/100', '/section/100', '/section/101']
    assert lines(out / 'headlines.txt') == ['제때 온 경제 뉴스']
    assert re.search(r'100 정치:.*timed out after 0.2 s \(2 attempts\)', capsys.readouterr().out)


@pytest.mark.parametrize('drip, timeout', [
    (0.05, '1'),  # every read is quick, so --timeout alone never fires: the page takes minutes
    (4.0, '10'),  # a read that would wait past the deadline is cut at the deadline
])
def test_dripping_server_is_cut_at_the_page_deadline_and_the_run_continues(
        naver, tmp_path, capsys, drip, timeout):
    out = tmp_path / 'crawled'
    naver.routes['/section/100'] = Reply(body=NORMAL_PAGE, drip=drip)
    naver.routes['/section/101'] = Reply(body=headline_page('제때 온 경제 뉴스'))
    start = time.monotonic()
    code = run_cli(naver, out, '--sections', '100,101', '--timeout', timeout, '--retries', '2',
                   '--page_deadline', '1.5')
    elapsed = time.monotonic() - start
    assert code == 0
    assert elapsed < 1.5 + 1.0  # the deadline, plus the second section and start-up
    assert naver.paths() == ['/section/100', '/section/101']  # not retried
    assert lines(out / 'headlines.txt') == ['제때 온 경제 뉴스']
    assert re.search(r'100 정치:.*/section/100: not complete within --page_deadline 1.5 s '
                     r'\([\d,]+ bytes received', capsys.readouterr().out)


def test_oversized_pages_stop_at_the_size_cap_and_the_run_continues(naver, tmp_path, capsys):
    huge = headline_page(*(f'아주 긴 페이지의 제목 {i}' for i in range(40_000)))
    assert len(huge.encode('utf-8')) > 2_000_000
    out = tmp_path / 'crawled'
    naver.routes['/section/100'] = Reply(body=huge)  # announces its size: refused unread
    naver.routes['/section/101'] = Reply(body=huge, content_length=False)  # cut while reading
    naver.routes['/section/102'] = Reply(body=headline_page('알맞은 크기의 사회 뉴스'))
    code = run_cli(naver, out, '--sections', '100,101,102', '--max_page_mb', '0.5')
    assert code == 0
    assert naver.paths() == ['/section/100', '/section/101', '/section/102']
    assert lines(out / 'headlines.txt') == ['알맞은 크기의 사회 뉴스']
    summary = capsys.readouterr().out
    assert re.search(r'100 정치:.*has [\d,]+ bytes \(Content-Length\), more than --max_page_mb 0.5; '
                     r'not downloaded', summary)
    stopped = re.search(r'101 경제:.*larger than --max_page_mb 0.5; stopped reading at ([\d,]+) bytes',
                        summary)
    assert stopped and int(stopped.group(1).replace(',', '')) <= 500_000 + nc.READ_CHUNK_BYTES


def test_delay_spaces_requests(naver, tmp_path):
    for sid in ('100', '101', '102'):
        naver.routes[f'/section/{sid}'] = Reply(body=headline_page(f'{sid}번 섹션 제목'))
    assert run_cli(naver, tmp_path, '--sections', '100,101,102', '--delay', '0.15') == 0
    times = [t for t, _, _ in naver.requests]
    assert len(times) == 3 and all(b - a >= 0.14 for a, b in zip(times, times[1:]))


def test_pages_stop_at_the_cap_or_when_no_new_headlines_come(naver, tmp_path, capsys):
    naver.routes['/section/100'] = Reply(body=headline_page('일 페이지 제목'))
    naver.routes['/section/100?p=2'] = Reply(body=headline_page('일 페이지 제목', '이 페이지 제목'))
    naver.routes['/section/100?p=3'] = Reply(body=headline_page('이 페이지 제목'))
    # a section that ignores the page parameter serves page 1 again
    naver.routes['/section/101'] = Reply(body=headline_page('경제 첫 화면 제목'))
    naver.routes['/section/101?p=2'] = Reply(body=headline_page('경제 첫 화면 제목'))
    out = tmp_path / 'crawled'
    assert run_cli(naver, out, '--sections', '100,101', '--page_param', 'p', '--max_pages', '5') == 0

    assert naver.paths() == ['/section/100', '/section/100?p=2', '/section/100?p=3',
                             '/section/101', '/section/101?p=2']
    assert lines(out / 'headlines.txt') == ['일 페이지 제목', '이 페이지 제목', '경제 첫 화면 제목']
    summary = capsys.readouterr().out
    assert 'page 3 brought no new headlines; stopped' in summary
    assert re.search(r'100 정치\s+3\s+4\s+2\s+2\s+2\s+ok', summary)

    naver.requests.clear()
    assert run_cli(naver, out, '--sections', '100', '--page_param', 'p', '--max_pages', '2') == 0
    assert naver.paths() == ['/section/100', '/section/100?p=2']


def test_min_length_drops_short_titles(naver, tmp_path):
    naver.routes['/section/100'] = Reply(body=headline_page('[포토] 첫눈', '다섯 글자', '여섯 글자다'))
    assert run_cli(naver, tmp_path, '--sections', '100', '--min_length', '6') == 0
    assert lines(tmp_path / 'headlines.txt') == ['여섯 글자다']


def test_damaged_cumulative_file_stops_before_crawling_and_is_kept(naver, tmp_path, capsys):
    damaged = '첫 줄 제목\n'.encode('utf-8') + b'\xff\xfe broken\n'
    (tmp_path / 'headlines.txt').write_bytes(damaged)
    naver.routes['/section/100'] = Reply(body=NORMAL_PAGE)
    assert run_cli(naver, tmp_path, '--sections', '100') == 1
    assert naver.requests == []
    assert (tmp_path / 'headlines.txt').read_bytes() == damaged
    assert f'{tmp_path / "headlines.txt"}, line 2: not UTF-8' in capsys.readouterr().err


@pytest.mark.parametrize('args, message', [
    (['--sections', '100,abc'], "'abc' is not a section id"),
    (['--item_selector', 'ul >'], "--item_selector 'ul >' is not a valid CSS selector"),
    (['--title_selector', 'a, b['], "--title_selector 'b[' is not a valid CSS selector"),
    (['--page_deadline', '0'], '--page_deadline must be a positive number'),
    (['--max_page_mb', '-1'], '--max_page_mb must be a positive number'),
    (['--max_pages', '0'], '--max_pages must be at least 1'),
    (['--character', 'missing_alphabet.txt'], 'no such alphabet file'),
])
def test_bad_arguments_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        nc.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------------- as a script

def test_script_help_runs_from_the_repo_root():
    done = subprocess.run([sys.executable, 'korean/naver_crawling.py', '--help'], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for flag in ('--sections', '--item_selector', '--title_selector', '--max_pages', '--retries',
                 '--page_deadline', '--max_page_mb'):
        assert flag in done.stdout


def test_ctrl_c_saves_what_was_collected(naver, tmp_path):
    naver.routes['/section/100'] = Reply(body=headline_page('중단 전에 받은 제목'))
    naver.routes['/section/101'] = Reply(body=headline_page('받지 못할 제목'), delay=5)
    out = tmp_path / 'crawled'
    env = {**os.environ, 'NO_PROXY': '127.0.0.1,localhost'}
    proc = subprocess.Popen(
        [sys.executable, 'korean/naver_crawling.py', '--base_url', naver.url, '--sections',
         '100,101,102', '--output_dir', str(out), '--delay', '0', '--timeout', '10'],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a job started in the background of a shell inherits SIGINT ignored: restore what a
        # terminal's Ctrl-C reaches
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        while '/section/101' not in naver.paths():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert lines(out / 'headlines.txt') == ['중단 전에 받은 제목']
    assert 'Interrupted by Ctrl-C' in stdout
    assert '/section/102' not in naver.paths()
