"""The Hangul character sets our alphabets are made of.

KS X 1001 (the Korean national character set behind EUC-KR and cp949) encodes 2,350 of the
11,172 modern Hangul syllables; they are the ones that occur in ordinary text, and the ones
most Korean fonts actually draw. Unicode puts all 11,172 in U+AC00..U+D7A3.
"""
from __future__ import annotations

import string

FIRST_SYLLABLE, LAST_SYLLABLE = 0xAC00, 0xD7A3
DIGITS = string.digits
LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
ASCII_PUNCTUATION = string.punctuation
# punctuation Korean captions, headlines and signs use beyond ASCII
KOREAN_PUNCTUATION = '·…‘’“”「」『』〈〉《》※→○△□☆★♥℃㎏㎞㎜'


def ksx1001_syllables() -> str:
    """The 2,350 Hangul syllables of KS X 1001, in Unicode (= dictionary) order.

    They are EUC-KR's rows 0xB0..0xC8, cells 0xA1..0xFE; decoding those byte pairs gives
    exactly the set, so no table has to be shipped.
    """
    chars = []
    for lead in range(0xB0, 0xC9):
        for trail in range(0xA1, 0xFF):
            chars.append(bytes([lead, trail]).decode('euc_kr'))
    return ''.join(sorted(chars))


def modern_syllables() -> str:
    """All 11,172 modern Hangul syllables, U+AC00..U+D7A3."""
    return ''.join(chr(c) for c in range(FIRST_SYLLABLE, LAST_SYLLABLE + 1))


def is_hangul_syllable(ch: str) -> bool:
    return FIRST_SYLLABLE <= ord(ch) <= LAST_SYLLABLE


def standard_alphabets() -> dict[str, str]:
    """The alphabet files shipped in korean/alphabets/, by file stem.

    Latin letters are lower case because labels are lower-cased unless --sensitive; the
    ``_cased`` variant adds upper case for case-sensitive training (--sensitive keeps a file).
    """
    base_punct = ASCII_PUNCTUATION + KOREAN_PUNCTUATION
    ks = ksx1001_syllables()
    return {
        'ksx1001': DIGITS + LOWER + ks + base_punct,
        'ksx1001_with_space': DIGITS + LOWER + ks + base_punct + ' ',
        'ksx1001_cased': DIGITS + LOWER + UPPER + ks + base_punct,
        'hangul_11172': DIGITS + LOWER + modern_syllables() + base_punct,
        'hangul_11172_with_space': DIGITS + LOWER + modern_syllables() + base_punct + ' ',
    }
