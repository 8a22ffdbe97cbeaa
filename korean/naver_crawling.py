"""Collect Korean news headlines from Naver's news sections, to render training images from.

Run ``python korean/naver_crawling.py --help`` from the repository root. For each section
(100 정치, 101 경제, 102 사회, 103 생활/문화, 104 세계, 105 IT/과학) the crawler fetches
``{base_url}/section/{sid}`` with ``requests``, picks the headline items and their titles with
configurable CSS selectors, cleans each title (:func:`clean_title`) and writes, in
``--output_dir``:

* ``backup/YYMMDD_HHMM.txt``: this run's cleaned titles, de-duplicated within the run
  (a second run in the same minute gets ``YYMMDD_HHMM_1.txt``, never overwriting the first);
* ``headlines.txt``: every title ever collected, first-seen order, each title once; a run only
  appends titles the file does not hold yet;
* ``words.txt``: the whitespace-separated words of ``headlines.txt``, each once, first-seen order.

All three are UTF-8, one entry a line, written atomically (temporary file + ``os.replace``). A
run that collects nothing writes nothing, so earlier data is never truncated.

Naver changes its markup from time to time. The selectors are flags holding any CSS selector
soupsieve reads, matched on BeautifulSoup's tree of the page. When a page yields no items, the
summary says so and names the flags to update. A hostile or broken server cannot hold the
crawl: each page has a total deadline (``--page_deadline``) and a size cap
(``--max_page_mb``); a page breaking either fails with a message and the crawl goes on.
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import logging
import os
import re
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Collection, Iterable, Sequence
from urllib.parse import urlencode

import requests
import soupsieve
import urllib3
from bs4 import BeautifulSoup, NavigableString, Tag
from tqdm import tqdm

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    # lets `python korean/naver_crawling.py` import the top-level `utils`
    sys.path.insert(0, REPO_ROOT)

from utils import decode_utf8, load_character  # noqa: E402

logger = logging.getLogger(__name__)

SECTIONS: dict[str, str] = {
    '100': '정치',
    '101': '경제',
    '102': '사회',
    '103': '생활/문화',
    '104': '세계',
    '105': 'IT/과학',
}
DEFAULT_BASE_URL = 'https://news.naver.com'
DEFAULT_ITEM_SELECTOR = 'li.sa_item'
# tried in order inside each item; the first that yields non-blank text is the title
DEFAULT_TITLE_SELECTORS = ('a.sa_text_title strong.sa_text_strong', 'a.sa_text_title')
DEFAULT_PAGE_PARAM = 'page'
DEFAULT_OUTPUT_DIR = os.path.join(REPO_ROOT, 'korean', 'crawled')
DEFAULT_CHARACTER = os.path.join(REPO_ROOT, 'korean', 'alphabets', 'ksx1001_with_space.txt')
DEFAULT_USER_AGENT = ('korean-text-recognition-toolkit/1.0 naver_crawling.py '
                      '(headline collection for OCR training; requests)')
HEADLINES_FILE = 'headlines.txt'
WORDS_FILE = 'words.txt'
BACKUP_DIR = 'backup'
BACKUP_TIME_FORMAT = '%y%m%d_%H%M'
# a Naver section page is a few hundred kB; these bound a server that drips or floods
DEFAULT_PAGE_DEADLINE = 60.0
DEFAULT_MAX_PAGE_MB = 5.0
DEFAULT_MAX_PAGE_BYTES = int(DEFAULT_MAX_PAGE_MB * 1e6)
READ_CHUNK_BYTES = 64 * 1024
SELECTOR_HINT = ('Naver may have changed its markup: open the page and update '
                 '--item_selector / --title_selector')


# --------------------------------------------------------------------------------------------
# HTML and CSS selectors (BeautifulSoup + soupsieve)
# --------------------------------------------------------------------------------------------

# Python's own html.parser keeps the crawler free of compiled dependencies; it does not apply
# HTML5's implied end tags (an unclosed <li> contains the next one), which Naver's markup,
# closing every tag, never relies on.
HTML_PARSER = 'html.parser'
# text inside these never belongs to a headline
NON_TEXT_ELEMENTS = frozenset({'script', 'style', 'template', 'noscript'})


def parse_html(text: str) -> BeautifulSoup:
    """Parse an HTML document; character references are decoded by the parser."""
    return BeautifulSoup(text, HTML_PARSER)


def parse_selector(text: str, flag: str = '--item_selector') -> soupsieve.SoupSieve:
    """Compile one CSS selector (anything soupsieve reads: ``>``, ``[attr]``, ``:nth-child``...);
    raise ValueError naming ``flag`` and soupsieve's first line of complaint."""
    if not text.strip():
        raise ValueError(f'{flag}: empty CSS selector; expected e.g. "li.sa_item a.sa_text_title"')
    try:
        return soupsieve.compile(text)
    except soupsieve.SelectorSyntaxError as e:
        reason = str(e).splitlines()[0]
        raise ValueError(f'{flag} {text!r} is not a valid CSS selector: {reason}') from None


def split_selector_list(text: str) -> list[str]:
    """Split ``text`` at the commas outside brackets, parentheses and quotes, so each part is
    one fallback selector while ``:is(a, b)`` or ``[title="a,b"]`` stay whole."""
    parts, current, depth, quote = [], [], 0, ''
    for ch in text:
        if quote:
            quote = '' if ch == quote else quote
        elif ch in '"\'':
            quote = ch
        elif ch in '([':
            depth += 1
        elif ch in ')]':
            depth = max(0, depth - 1)
        elif ch == ',' and depth == 0:
            parts.append(''.join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append(''.join(current).strip())
    return parts


def element_text(el: Tag) -> str:
    """The text under ``el`` (scripts, styles, templates excluded); ``<br>`` reads as a space."""
    parts: list[str] = []
    for child in el.children:
        if isinstance(child, Tag):
            if child.name == 'br':
                parts.append(' ')
            elif child.name not in NON_TEXT_ELEMENTS:
                parts.append(element_text(child))
        elif type(child) is NavigableString:  # comments, doctypes and CDATA are subclasses
            parts.append(str(child))
    return ''.join(parts)


# --------------------------------------------------------------------------------------------
# Titles: extraction and cleaning
# --------------------------------------------------------------------------------------------

@dataclass
class PageTitles:
    """What one page held: how many items matched, their raw titles (whitespace collapsed,
    in page order, repeats kept) and how many items had no title."""
    items: int
    titles: list[str]
    items_without_title: int


def _squeeze(text: str) -> str:
    return ' '.join(text.split())


def extract_titles(page: str, item_selector: str | soupsieve.SoupSieve,
                   title_selectors: Sequence[str | soupsieve.SoupSieve]) -> PageTitles:
    """Find the headline items of ``page`` and the title of each.

    The title of an item is the text of the first element matching the first of
    ``title_selectors`` that yields non-blank text inside the item (so a later selector is a
    fallback for items where an earlier one finds nothing).
    """
    if isinstance(item_selector, str):
        item_selector = parse_selector(item_selector)
    items = item_selector.select(parse_html(page))
    selectors = [parse_selector(s, '--title_selector') if isinstance(s, str) else s
                 for s in title_selectors]
    titles: list[str] = []
    missing = 0
    for item in items:
        title = _first_title(item, selectors)
        if title:
            titles.append(title)
        else:
            missing += 1
    return PageTitles(items=len(items), titles=titles, items_without_title=missing)


def _first_title(item: Tag, selectors: Sequence[soupsieve.SoupSieve]) -> str:
    for selector in selectors:
        for el in selector.select(item):
            text = _squeeze(element_text(el))
            if text:
                return text
    return ''


# Bracketed spans that are dropped with their content. In headlines they hold labels and
# annotations, not the sentence: [속보] [단독] (종합) (2보) 【포토】 <인터뷰> （서울=연합뉴스）.
# Kept: 《》 〈〉 「」 『』 ‘’ “”, which quote titles of works or speech, i.e. real content.
BRACKET_PAIRS: dict[str, str] = {
    '(': ')', '[': ']', '<': '>',
    '（': '）', '［': '］', '＜': '＞', '【': '】', '〔': '〕', '〖': '〗',
}
_CLOSERS = frozenset(BRACKET_PAIRS.values())


def drop_bracketed(text: str) -> str:
    """Remove bracketed spans (see :data:`BRACKET_PAIRS`) including nested ones.

    An opening bracket that is never closed, and a closing bracket with no opener, are left in
    place (the alphabet filter then decides about them), so a stray bracket never eats the rest
    of a headline. A bracket closing an outer span also closes unclosed spans inside it.
    """
    removed = [False] * len(text)
    open_spans: list[tuple[int, str]] = []  # (position, expected closer)
    for i, ch in enumerate(text):
        if ch in BRACKET_PAIRS:
            open_spans.append((i, BRACKET_PAIRS[ch]))
        elif ch in _CLOSERS:
            for depth in range(len(open_spans) - 1, -1, -1):
                if open_spans[depth][1] == ch:
                    start = open_spans[depth][0]
                    del open_spans[depth:]
                    removed[start:i + 1] = [True] * (i + 1 - start)
                    break
    return ''.join(ch for ch, gone in zip(text, removed) if not gone)


def clean_title(text: str, alphabet: Collection[str]) -> str:
    """Turn a raw headline into training text.

    In order: HTML entities unescaped (pages double-escape now and then, e.g. ``&amp;quot;``);
    NFC normalisation; bracketed spans dropped (:func:`drop_bracketed`); every run of whitespace
    (including no-break and ideographic spaces) becomes one space, kept even when the alphabet
    has no space, because it separates words; a character outside ``alphabet`` is replaced by
    its lower-case form when only that is in the alphabet (the default Korean alphabets are
    lower-case only), otherwise dropped; finally whitespace is collapsed and stripped again.
    ``alphabet`` is a string of characters or any collection of them.
    """
    members = alphabet if isinstance(alphabet, (set, frozenset)) else frozenset(alphabet)
    text = unicodedata.normalize('NFC', html.unescape(text))
    text = _squeeze(drop_bracketed(text))
    kept: list[str] = []
    for ch in text:
        if ch == ' ' or ch in members:
            kept.append(ch)
        elif ch.lower() in members:
            kept.append(ch.lower())
    return _squeeze(''.join(kept))


def unique(items: Iterable[str]) -> list[str]:
    """``items`` with repeats removed, first-seen order kept."""
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------------

class FetchError(Exception):
    """A page that could not be fetched; the message says why and after how many attempts."""


def section_url(base_url: str, sid: str, page: int = 1, page_param: str = DEFAULT_PAGE_PARAM) -> str:
    """URL of page ``page`` of section ``sid``. Page 1 is the plain section URL; later pages
    add ``{page_param}=N`` to the query string."""
    url = f'{base_url.rstrip("/")}/section/{sid}'
    if page > 1:
        url += ('&' if '?' in url else '?') + urlencode({page_param: page})
    return url


_CHARSET_RE = re.compile(rb'''<meta[^>]+charset=["']?([\w-]+)''', re.IGNORECASE)


def decode_page(content: bytes, content_type: str | None) -> str:
    """Decode a page with the charset of its Content-Type header, else of its ``<meta>``
    charset, else UTF-8 (Naver's). Undecodable bytes become U+FFFD, dropped later by the
    alphabet filter. (requests would assume ISO-8859-1 for text/html without a charset.)"""
    encoding = None
    if content_type:
        m = re.search(r'charset=["\']?([\w-]+)', content_type, re.IGNORECASE)
        if m:
            encoding = m.group(1)
    if encoding is None:
        m = _CHARSET_RE.search(content[:4096])
        if m:
            encoding = m.group(1).decode('ascii')
    try:
        return content.decode(encoding or 'utf-8', errors='replace')
    except LookupError:
        logger.warning('unknown charset %r; decoding as UTF-8', encoding)
        return content.decode('utf-8', errors='replace')


class Fetcher:
    """GETs pages politely: ``delay`` seconds between requests, a descriptive User-Agent,
    ``retries`` further attempts with exponential backoff (``backoff`` * 2**k seconds) after a
    connection error, a timeout, a 5xx or a 429 (Too Many Requests). Other 4xx answers are not
    retried: asking again would not change them.

    ``timeout`` bounds each wait for the server (connecting, then every read), so a server that
    answers and then drips bytes could hold a page for ever; ``page_deadline`` bounds one page
    as a whole, every attempt and backoff included, and ``max_bytes`` bounds its size. A page
    that hits either limit is given up at once, not retried: asking again would drip or
    overflow again."""

    def __init__(self, *, timeout: float = 10.0, retries: int = 3, backoff: float = 1.0,
                 delay: float = 1.0, user_agent: str = DEFAULT_USER_AGENT,
                 page_deadline: float = DEFAULT_PAGE_DEADLINE,
                 max_bytes: int = DEFAULT_MAX_PAGE_BYTES,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.delay = delay
        self.page_deadline = page_deadline
        self.max_bytes = max_bytes
        self.session = session or requests.Session()
        self.session.headers['User-Agent'] = user_agent
        self.sleep = sleep
        self._last_request: float | None = None

    def get(self, url: str) -> str:
        """Return the decoded body of ``url``; raise :class:`FetchError` when every attempt
        failed, the page broke its deadline or size cap, or the server answered with a
        non-retryable error."""
        attempts = self.retries + 1
        reason = ''
        deadline: float | None = None
        for attempt in range(attempts):
            if attempt:
                wait = self.backoff * 2 ** (attempt - 1)
                if time.monotonic() + wait >= deadline:
                    raise FetchError(f'{url}: {reason}; --page_deadline {self.page_deadline:g} s '
                                     f'left no time for another attempt ({_attempts(attempt)})')
                logger.info('retrying %s in %.2f s (%s)', url, wait, reason)
                self.sleep(wait)
            self._wait_politely()
            if deadline is None:
                deadline = time.monotonic() + self.page_deadline
            try:
                return self._fetch_once(url, deadline)
            except _RetryableError as e:
                reason = str(e)
        raise FetchError(f'{url}: {reason} ({_attempts(attempts)})')

    def _wait_politely(self) -> None:
        if self._last_request is not None and self.delay > 0:
            remaining = self.delay - (time.monotonic() - self._last_request)
            if remaining > 0:
                self.sleep(remaining)

    def _fetch_once(self, url: str, deadline: float) -> str:
        read_timeout = min(self.timeout, deadline - time.monotonic())
        if read_timeout <= 0:  # the politeness delay before a retry used up what was left
            raise self._deadline_error(url, 0)
        try:
            response = self.session.get(url, timeout=read_timeout, stream=True)
        except requests.Timeout:
            if read_timeout < self.timeout:
                raise self._deadline_error(url, 0) from None
            raise _RetryableError(f'timed out after {self.timeout:g} s') from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            raise _RetryableError(f'connection error: {_short(e)}') from None
        except requests.RequestException as e:
            raise FetchError(f'{url}: {_short(e)}') from None
        finally:
            self._last_request = time.monotonic()
        with response:
            status = response.status_code
            if status >= 500 or status == 429:
                raise _RetryableError(f'HTTP {status} {response.reason or ""}'.strip())
            if status >= 400:
                raise FetchError(f'{url}: HTTP {status} {response.reason or ""} '
                                 '(client error, not retried)')
            body = self._read_body(response, url, deadline)
            return decode_page(body, response.headers.get('Content-Type'))

    def _read_body(self, response: requests.Response, url: str, deadline: float) -> bytes:
        """Read the body chunk by chunk, each read waiting no longer than the time the deadline
        leaves, and stop as soon as the size cap is passed, so neither a dripping nor a huge
        page can hold the crawl or its memory."""
        declared = response.headers.get('Content-Length', '')
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(f'{url}: the page has {int(declared):,} bytes (Content-Length), more '
                             f'than --max_page_mb {self.max_bytes / 1e6:g}; not downloaded, '
                             'not retried')
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._deadline_error(url, size)
            _set_read_timeout(response, min(self.timeout, remaining))
            try:
                chunk = response.raw.read1(READ_CHUNK_BYTES, decode_content=True)
            except urllib3.exceptions.ReadTimeoutError:
                if deadline - time.monotonic() <= 0 or remaining < self.timeout:
                    raise self._deadline_error(url, size) from None
                raise _RetryableError(f'timed out after {self.timeout:g} s while reading') from None
            except (urllib3.exceptions.HTTPError, OSError) as e:
                raise _RetryableError(f'connection error while reading: {_short(e)}') from None
            if not chunk:
                return b''.join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(f'{url}: the page is larger than --max_page_mb '
                                 f'{self.max_bytes / 1e6:g}; stopped reading at {size:,} bytes, '
                                 'not retried')
            chunks.append(chunk)

    def _deadline_error(self, url: str, received: int) -> FetchError:
        return FetchError(f'{url}: not complete within --page_deadline {self.page_deadline:g} s '
                          f'({received:,} bytes received; the server sends too slowly), '
                          'not retried')


class _RetryableError(Exception):
    """One attempt failed in a way another attempt may not (timeout, connection, 5xx, 429)."""


def _set_read_timeout(response: requests.Response, seconds: float) -> None:
    # the read timeout given to requests is fixed when the request is sent; the socket's own
    # timeout is what each later read obeys, so it is the one that can follow the deadline
    sock = getattr(getattr(response.raw, 'connection', None), 'sock', None)
    if sock is None:
        # http.client lets go of the connection's socket when the server will close it
        # (HTTP/1.0, Connection: close); the response's file object still holds it. Without
        # either, a read may wait the whole --timeout past the deadline, never longer.
        file_object = getattr(getattr(response.raw, '_fp', None), 'fp', None)
        sock = getattr(getattr(file_object, 'raw', None), '_sock', None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _attempts(n: int) -> str:
    return f'{n} attempt{"s" if n > 1 else ""}'


def _short(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + '...'


# --------------------------------------------------------------------------------------------
# Crawling
# --------------------------------------------------------------------------------------------

@dataclass
class CrawlOptions:
    """Everything a crawl needs besides the alphabet; defaults are the CLI's."""
    sections: Sequence[str] = tuple(SECTIONS)
    base_url: str = DEFAULT_BASE_URL
    page_param: str = DEFAULT_PAGE_PARAM
    max_pages: int = 1
    item_selector: str = DEFAULT_ITEM_SELECTOR
    title_selectors: Sequence[str] = DEFAULT_TITLE_SELECTORS
    min_length: int = 5
    delay: float = 1.0
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 1.0
    user_agent: str = DEFAULT_USER_AGENT
    page_deadline: float = DEFAULT_PAGE_DEADLINE
    max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
    progress: bool = True


@dataclass
class SectionResult:
    """The outcome of one section. ``found``: raw titles read (repeats across pages dropped);
    ``kept``: distinct cleaned titles that passed the filters; ``new``: how many of ``kept``
    were in no earlier run and no earlier section of this run. ``error`` is set when the
    section failed; ``notes`` tell what else happened (early stop, a later page failing)."""
    sid: str
    name: str
    pages_fetched: int = 0
    items: int = 0
    found: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    new: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class CrawlReport:
    """Every section's result, plus whether the crawl was cut short by Ctrl-C."""
    sections: list[SectionResult]
    interrupted: bool = False

    def titles(self) -> list[str]:
        """This run's cleaned titles, in crawl order, each once."""
        return unique(t for s in self.sections for t in s.kept)

    @property
    def all_failed(self) -> bool:
        return bool(self.sections) and all(s.failed for s in self.sections)


def crawl_section(fetcher: Fetcher, sid: str, options: CrawlOptions,
                  alphabet: Collection[str], result: SectionResult | None = None) -> SectionResult:
    """Crawl up to ``options.max_pages`` pages of section ``sid`` into ``result``.

    Stops early when a page brings no headline the section's earlier pages did not. The
    section fails when its first page cannot be fetched or yields no title; a later page that
    fails only ends the section, keeping what was read.
    """
    result = result or SectionResult(sid, SECTIONS.get(sid, sid))
    item_selector = parse_selector(options.item_selector)
    title_selectors = [parse_selector(s, '--title_selector') for s in options.title_selectors]
    seen = set(result.found)
    for page in range(1, options.max_pages + 1):
        url = section_url(options.base_url, sid, page, options.page_param)
        try:
            body = fetcher.get(url)
        except FetchError as e:
            if page == 1:
                result.error = str(e)
            else:
                result.notes.append(f'page {page} failed, stopped: {e}')
            break
        result.pages_fetched += 1
        parsed = extract_titles(body, item_selector, title_selectors)
        result.items += parsed.items
        if not parsed.titles:
            problem = _describe_empty_page(body, parsed, options)
            if page == 1:
                result.error = f'{url}: {problem}'
            else:
                result.notes.append(f'page {page}: {problem}; stopped')
            break
        fresh = [t for t in unique(parsed.titles) if t not in seen]
        if not fresh:
            result.notes.append(f'page {page} brought no new headlines; stopped')
            break
        seen.update(fresh)
        result.found.extend(fresh)
        for raw in fresh:
            cleaned = clean_title(raw, alphabet)
            if len(cleaned) >= options.min_length and cleaned not in result.kept:
                result.kept.append(cleaned)
    return result


def _describe_empty_page(body: str, parsed: PageTitles, options: CrawlOptions) -> str:
    if not body.strip():
        return f'the page was empty. {SELECTOR_HINT}'
    if parsed.items == 0:
        return (f'no element matched --item_selector {options.item_selector!r}. {SELECTOR_HINT}')
    titles = ', '.join(repr(s) for s in options.title_selectors)
    return (f'{parsed.items} items matched --item_selector {options.item_selector!r} but none '
            f'had text matching --title_selector {titles}. {SELECTOR_HINT}')


def crawl(options: CrawlOptions, alphabet: Collection[str],
          known_titles: Collection[str] = ()) -> CrawlReport:
    """Crawl every section of ``options`` in turn and return the report.

    ``known_titles`` (the cumulative file's titles) only feed the per-section ``new`` counts.
    A failing section never stops the crawl. Ctrl-C stops it and returns what was collected,
    with ``interrupted`` set, so the caller can still save it.
    """
    members = frozenset(alphabet)
    fetcher = Fetcher(timeout=options.timeout, retries=options.retries, backoff=options.backoff,
                      delay=options.delay, user_agent=options.user_agent,
                      page_deadline=options.page_deadline, max_bytes=options.max_page_bytes)
    report = CrawlReport(sections=[])
    seen_titles = set(known_titles)
    try:
        with tqdm(options.sections, desc='sections', unit='section',
                  disable=not options.progress) as bar:
            for sid in bar:
                result = SectionResult(sid, SECTIONS.get(sid, sid))
                report.sections.append(result)
                bar.set_postfix_str(f'{sid} {result.name}')
                crawl_section(fetcher, sid, options, members, result)
                result.new = _count_new(result.kept, seen_titles)
                if result.failed:
                    logger.warning('section %s (%s) failed: %s', sid, result.name, result.error)
    except KeyboardInterrupt:
        report.interrupted = True
        if report.sections:
            current = report.sections[-1]
            current.new = _count_new(current.kept, seen_titles)
            current.notes.append('interrupted (Ctrl-C)')
        logger.warning('interrupted: saving what was collected so far')
    return report


def _count_new(titles: Iterable[str], seen: set[str]) -> int:
    new = 0
    for title in titles:
        if title not in seen:
            seen.add(title)
            new += 1
    return new


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------

@dataclass
class SavedFiles:
    """Paths written by :func:`save_outputs` (None when nothing was written) and counts."""
    backup: str | None = None
    headlines: str | None = None
    words: str | None = None
    run_titles: int = 0
    total_titles: int = 0
    new_titles: int = 0
    total_words: int = 0
    new_words: int = 0


def read_lines(path: str) -> list[str]:
    """The non-empty lines of a UTF-8 file, NFC-normalised and stripped of surrounding
    whitespace; [] when the file does not exist. Raises ValueError naming the file and line
    when it is not UTF-8, so a damaged file is never silently rewritten."""
    if not os.path.exists(path):
        return []
    with open(path, 'rb') as f:
        raw = f.read()
    text = decode_utf8(raw, path, 'expected one UTF-8 title per line. Fix or move the file; '
                       'it was left untouched.')
    lines = (unicodedata.normalize('NFC', line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def write_lines_atomic(path: str, lines: Sequence[str]) -> None:
    """Write ``lines`` (UTF-8, ``\\n`` after each) to a temporary file beside ``path``, then
    move it over ``path``, so readers and a Ctrl-C never see a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='\n') as f:
            f.writelines(line + '\n' for line in lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def backup_path(output_dir: str, now: dt.datetime) -> str:
    """``{output_dir}/backup/YYMMDD_HHMM.txt``, or ``..._N.txt`` when that name is taken."""
    stem = os.path.join(output_dir, BACKUP_DIR, now.strftime(BACKUP_TIME_FORMAT))
    path, n = f'{stem}.txt', 1
    while os.path.exists(path):
        path, n = f'{stem}_{n}.txt', n + 1
    return path


def words_of(titles: Iterable[str]) -> list[str]:
    """The whitespace-separated words of ``titles``, each once, first-seen order."""
    return unique(word for title in titles for word in title.split())


def save_outputs(titles: Sequence[str], output_dir: str,
                 now: dt.datetime | None = None) -> SavedFiles:
    """Write the run's ``titles`` to the backup, cumulative and word files (module docstring).

    The cumulative file keeps its lines and order and gains the titles it lacks; the word list
    keeps its words and gains those of the cumulative titles it lacks. With no titles nothing
    is written. Existing files are read before anything is written, so an unreadable one stops
    the run before any file changes.
    """
    titles = unique(unicodedata.normalize('NFC', t) for t in titles)
    saved = SavedFiles(run_titles=len(titles))
    headlines_path = os.path.join(output_dir, HEADLINES_FILE)
    words_path = os.path.join(output_dir, WORDS_FILE)
    old_titles = unique(read_lines(headlines_path))
    old_words = unique(read_lines(words_path))
    saved.total_titles, saved.total_words = len(old_titles), len(old_words)
    if not titles:
        return saved
    known = set(old_titles)
    added = [t for t in titles if t not in known]
    all_titles = old_titles + added
    all_words = unique(old_words + words_of(all_titles))

    saved.backup = backup_path(output_dir, now or dt.datetime.now())
    write_lines_atomic(saved.backup, titles)
    write_lines_atomic(headlines_path, all_titles)
    write_lines_atomic(words_path, all_words)
    saved.headlines, saved.words = headlines_path, words_path
    saved.total_titles, saved.new_titles = len(all_titles), len(added)
    saved.total_words, saved.new_words = len(all_words), len(all_words) - len(old_words)
    return saved


# --------------------------------------------------------------------------------------------
# Summary and CLI
# --------------------------------------------------------------------------------------------

def _width(text: str) -> int:
    # Hangul and other wide characters take two terminal columns
    return sum(2 if unicodedata.east_asian_width(ch) in 'WF' else 1 for ch in text)


def _ljust(text: str, width: int) -> str:
    return text + ' ' * max(0, width - _width(text))


def format_summary(report: CrawlReport, saved: SavedFiles | None) -> str:
    """The closing summary: a table per section (pages fetched, items, titles found, kept,
    new, status), the failures with their reasons, notes, and the files written."""
    lines = [_ljust('section', 18) + f'{"pages":>6}{"items":>7}{"found":>7}{"kept":>6}{"new":>6}  status']
    for s in report.sections:
        status = 'FAILED' if s.failed else 'ok'
        lines.append(_ljust(f'{s.sid} {s.name}', 18) + f'{s.pages_fetched:>6}{s.items:>7}'
                     f'{len(s.found):>7}{len(s.kept):>6}{s.new:>6}  {status}')
    failed = [s for s in report.sections if s.failed]
    lines.append(f'{len(report.sections) - len(failed)} of {len(report.sections)} sections ok, '
                 f'{len(report.titles())} distinct titles this run')
    if report.interrupted:
        lines.append('Interrupted by Ctrl-C: sections after the last one listed were not crawled.')
    if failed:
        lines.append('Failures:')
        lines.extend(f'  {s.sid} {s.name}: {s.error}' for s in failed)
    notes = [(s, n) for s in report.sections for n in s.notes]
    if notes:
        lines.append('Notes:')
        lines.extend(f'  {s.sid} {s.name}: {n}' for s, n in notes)
    if saved is None or saved.backup is None:
        lines.append('Files written: none (no titles collected; earlier files left as they were)')
    else:
        lines.append('Files written:')
        lines.append(f'  {saved.backup} ({saved.run_titles} titles)')
        lines.append(f'  {saved.headlines} ({saved.total_titles} titles, {saved.new_titles} new)')
        lines.append(f'  {saved.words} ({saved.total_words} words, {saved.new_words} new)')
    return '\n'.join(lines)


def parse_sections(text: str) -> list[str]:
    """``'100,101'`` -> ``['100', '101']``; repeats dropped. Raises ValueError on an empty or
    non-numeric entry. Section ids outside :data:`SECTIONS` are allowed (Naver may add some)."""
    sids = [part.strip() for part in text.split(',')]
    for sid in sids:
        if not sid.isdigit():
            raise ValueError(f'--sections {text!r}: {sid!r} is not a section id; expected '
                             f'comma-separated numbers such as {",".join(SECTIONS)}')
    return unique(sids)


def parse_selector_list(text: str) -> list[str]:
    """``'a b, c'`` -> ``['a b', 'c']`` (see :func:`split_selector_list`), each checked with
    :func:`parse_selector`."""
    selectors = split_selector_list(text)
    for selector in selectors:
        parse_selector(selector, '--title_selector')
    return selectors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Collect Korean news headlines from Naver news sections into text files '
                    '(backup/YYMMDD_HHMM.txt, headlines.txt, words.txt) to render training '
                    'images from.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--sections', default=','.join(SECTIONS),
                        help='comma-separated section ids: ' +
                             ', '.join(f'{k} {v}' for k, v in SECTIONS.items()))
    parser.add_argument('--base_url', default=DEFAULT_BASE_URL,
                        help='site root; section pages are {base_url}/section/{sid}')
    parser.add_argument('--page_param', default=DEFAULT_PAGE_PARAM,
                        help='query parameter that selects page N (page 1 is the plain URL)')
    parser.add_argument('--max_pages', type=int, default=1,
                        help='pages per section at most; stops early when a page brings no new '
                             'headline (Naver loads more by JavaScript, so often only 1 helps)')
    parser.add_argument('--item_selector', default=DEFAULT_ITEM_SELECTOR,
                        help='CSS selector of one headline item (any CSS selector soupsieve '
                             'reads: tag.class, #id, descendant space, >, [attr], :nth-child...)')
    parser.add_argument('--title_selector', default=', '.join(DEFAULT_TITLE_SELECTORS),
                        help='CSS selector(s) of the title inside an item; comma-separated ones '
                             'are fallbacks tried in order')
    parser.add_argument('--output_dir', default=DEFAULT_OUTPUT_DIR, help='where files are written')
    parser.add_argument('--character', default=DEFAULT_CHARACTER,
                        help='alphabet: the characters themselves or an alphabet file (one '
                             'character per line); other characters are removed from titles')
    parser.add_argument('--min_length', type=int, default=5,
                        help='titles shorter than this after cleaning are dropped')
    parser.add_argument('--delay', type=float, default=1.0, help='seconds between requests')
    parser.add_argument('--timeout', type=float, default=10.0,
                        help='seconds to wait for the server: to connect, then for each read')
    parser.add_argument('--page_deadline', type=float, default=DEFAULT_PAGE_DEADLINE,
                        help='seconds one page may take in all (every attempt and backoff '
                             'included); a page still arriving then is given up, not retried')
    parser.add_argument('--max_page_mb', type=float, default=DEFAULT_MAX_PAGE_MB,
                        help='a page larger than this many megabytes (10^6 bytes) is given up '
                             'without reading further, not retried')
    parser.add_argument('--retries', type=int, default=3,
                        help='extra attempts after a connection error, timeout, 5xx or 429')
    parser.add_argument('--backoff', type=float, default=1.0,
                        help='first retry waits this many seconds, each next one twice as long')
    parser.add_argument('--user_agent', default=DEFAULT_USER_AGENT, help='User-Agent header')
    parser.add_argument('--no_progress', action='store_true', help='hide the progress bar')
    return parser


def options_from_args(args: argparse.Namespace) -> CrawlOptions:
    """Validate parsed CLI arguments and turn them into :class:`CrawlOptions`."""
    if args.max_pages < 1:
        raise ValueError(f'--max_pages must be at least 1, got {args.max_pages}')
    for name in ('timeout', 'page_deadline', 'max_page_mb'):
        if not getattr(args, name) > 0:
            raise ValueError(f'--{name} must be a positive number, got {getattr(args, name)}')
    for name in ('delay', 'backoff', 'retries', 'min_length'):
        if getattr(args, name) < 0:
            raise ValueError(f'--{name} must be >= 0, got {getattr(args, name)}')
    item_selector = args.item_selector.strip()
    parse_selector(item_selector)
    return CrawlOptions(
        sections=parse_sections(args.sections), base_url=args.base_url,
        page_param=args.page_param, max_pages=args.max_pages, item_selector=item_selector,
        title_selectors=parse_selector_list(args.title_selector), min_length=args.min_length,
        delay=args.delay, timeout=args.timeout, retries=args.retries, backoff=args.backoff,
        user_agent=args.user_agent, page_deadline=args.page_deadline,
        max_page_bytes=int(args.max_page_mb * 1e6), progress=not args.no_progress)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the crawler CLI. Returns 0, 1 when every section failed, 130 after Ctrl-C
    (what was collected is still saved); bad arguments exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = options_from_args(args)
        alphabet = load_character(args.character)
    except (ValueError, OSError) as e:
        parser.error(str(e))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    from tqdm.contrib.logging import logging_redirect_tqdm
    with logging_redirect_tqdm():
        try:
            # read before crawling, so a damaged file is reported before minutes of fetching
            known = read_lines(os.path.join(args.output_dir, HEADLINES_FILE))
            read_lines(os.path.join(args.output_dir, WORDS_FILE))
        except (ValueError, OSError) as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        report = crawl(options, alphabet, known_titles=known)
        try:
            saved = save_outputs(report.titles(), args.output_dir)
        except (ValueError, OSError) as e:
            print(format_summary(report, None))
            print(f'error: could not write the outputs: {e}', file=sys.stderr)
            return 1
    print(format_summary(report, saved))
    if report.interrupted:
        return 130
    return 1 if report.all_failed else 0


if __name__ == '__main__':
    sys.exit(main())
