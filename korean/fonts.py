"""Korean fonts: finding them, and knowing which characters each one really draws.

A font's character map is not a reliable answer. Several Korean fonts map all 11,172
syllables but draw *empty* glyphs outside the 2,350 of KS X 1001, and a font lacking a glyph
draws its ``.notdef`` glyph (often a box) instead. So a character counts as drawn ("has ink")
in a font when its rendering is non-empty AND differs from the rendering of a code point no
font has (U+10FFFD, a private-use plane's last character), which is the font's .notdef.

Checking a character costs ~60 microseconds per font; results are cached in memory and in a
JSON file (``~/.cache/korean-str/font_ink.json``, or ``$KOREAN_STR_CACHE/font_ink.json``) keyed
by font path, size and modification time, so the check runs once per machine.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Sequence

from PIL import Image, ImageFont

logger = logging.getLogger(__name__)

FONT_SUFFIXES = ('.ttf', '.otf', '.ttc')
DEFAULT_FONT_DIRS = ('/usr/share/fonts', '/usr/local/share/fonts', '~/.fonts', '~/.local/share/fonts')
# common syllables a font must draw to count as a Korean font
HANGUL_PROBE = '가나다한글의는이'
MISSING_CODE_POINT = '\U0010FFFD'
CHECK_SIZE = 32
CACHE_VERSION = 1
FONT_CACHE_SIZE = 192  # (path, size) -> FreeTypeFont objects kept open per process (~0.3 MB each)


def default_cache_dir() -> Path:
    """Where the ink cache lives: ``$KOREAN_STR_CACHE`` or ``~/.cache/korean-str``."""
    env = os.environ.get('KOREAN_STR_CACHE')
    return Path(env).expanduser() if env else Path.home() / '.cache' / 'korean-str'


def _mask_signature(font: ImageFont.FreeTypeFont, text: str) -> tuple | None:
    """What ``text`` looks like in ``font``: None when it leaves no ink, else its mask size and
    pixels (enough to tell a glyph from the .notdef glyph)."""
    mask = font.getmask(text, mode='L')
    width, height = mask.size
    if width == 0 or height == 0 or mask.getbbox() is None:
        return None
    return (width, height, Image.Image()._new(mask).tobytes())


def _draws(font: ImageFont.FreeTypeFont, ch: str, notdef: tuple | None) -> bool:
    signature = _mask_signature(font, ch)
    return signature is not None and signature != notdef


def _font_key(path: Path, size: int) -> str:
    stat = path.stat()
    return f'{path}|{size}|{stat.st_mtime_ns}|{stat.st_size}'


def draws_hangul(path: str | os.PathLike, probe: str = HANGUL_PROBE) -> bool:
    """True when the font file draws every syllable of ``probe`` (a few common syllables).
    A file FreeType cannot open is not a Korean font (logged)."""
    try:
        font = ImageFont.truetype(str(path), CHECK_SIZE)
    except OSError as e:
        logger.warning('%s: cannot be opened as a font (%s); skipped', path, e)
        return False
    notdef = _mask_signature(font, MISSING_CODE_POINT)
    return all(_draws(font, ch, notdef) for ch in probe)


def _font_files_under(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder] if folder.suffix.lower() in FONT_SUFFIXES else []
    return [p for p in folder.rglob('*') if p.suffix.lower() in FONT_SUFFIXES and p.is_file()]


def _fc_list_korean() -> list[Path] | None:
    """Korean font files according to fontconfig, or None when fc-list is unavailable."""
    if shutil.which('fc-list') is None:
        return None
    try:
        out = subprocess.run(['fc-list', ':lang=ko', 'file'], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        logger.warning('fc-list failed (%s); scanning font folders instead', e)
        return None
    paths = []
    for line in out.splitlines():
        path = line.strip().rstrip(':').strip()
        if path and Path(path).suffix.lower() in FONT_SUFFIXES:
            paths.append(Path(path))
    return paths


def find_korean_fonts(dirs: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """Font files that draw Hangul, sorted by path.

    Without ``dirs``: the installed Korean fonts, as ``fc-list :lang=ko file`` lists them when
    fc-list exists, otherwise every .ttf/.otf/.ttc under /usr/share/fonts,
    /usr/local/share/fonts, ~/.fonts and ~/.local/share/fonts. With ``dirs``: every font file
    under those folders (recursively; a font file itself may be given too). Either way a
    font is kept only when it actually draws common Hangul syllables (see :func:`draws_hangul`).
    A folder that does not exist raises FileNotFoundError.
    """
    if dirs is None:
        candidates = _fc_list_korean()
        if candidates is None:
            candidates = []
            for d in DEFAULT_FONT_DIRS:
                folder = Path(d).expanduser()
                if folder.is_dir():
                    candidates.extend(_font_files_under(folder))
    else:
        candidates = []
        for d in dirs:
            folder = Path(d).expanduser()
            if not folder.exists():
                raise FileNotFoundError(f'font folder {str(d)!r} does not exist')
            candidates.extend(_font_files_under(folder))
    unique = sorted({p.resolve() for p in candidates})
    fonts = [p for p in unique if draws_hangul(p)]
    for p in unique:
        if p not in fonts:
            logger.info('%s: draws no Hangul; not used', p)
    return fonts


class FontBank:
    """A set of fonts with per-character ink coverage.

    * ``paths``: the usable fonts, in the given order. A font that cannot be opened or draws
      none of a few common Hangul syllables is left out, with the reason in ``excluded``
      (``{path: reason}``) and in the log; ``require_hangul=False`` keeps fonts without Hangul
      (for Latin-only alphabets).
    * :meth:`font` returns a cached ``ImageFont.FreeTypeFont`` per (path, size).
    * :meth:`draws` / :meth:`fonts_for` answer from the ink cache (see the module docstring),
      checking characters not seen before on the fly.

    The bank pickles without its open fonts, so it can be handed to worker processes.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], cache_dir: str | os.PathLike | None = None,
                 require_hangul: bool = True, use_disk_cache: bool = True):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.use_disk_cache = use_disk_cache
        self.excluded: dict[Path, str] = {}
        self.paths: list[Path] = []
        # per font: characters checked -> drawn?
        self._ink: list[dict[str, bool]] = []
        self._notdef: list[tuple | None] = []
        self._keys: list[str] = []
        self._char_masks: dict[str, int] = {}  # character -> bit i set when font i draws it
        self._fonts: OrderedDict[tuple[int, int], ImageFont.FreeTypeFont] = OrderedDict()
        self._dirty = False
        disk = self._read_disk_cache()
        for raw in paths:
            path = Path(raw).expanduser().resolve()
            if path in self.paths or path in self.excluded:
                continue
            try:
                check_font = ImageFont.truetype(str(path), CHECK_SIZE)
                key = _font_key(path, CHECK_SIZE)
            except OSError as e:
                self._exclude(path, f'cannot be opened as a font ({e})')
                continue
            cached = disk.get(key, {})
            ink = {ch: True for ch in cached.get('ink', '')}
            ink.update({ch: False for ch in cached.get('no_ink', '')})
            notdef = _mask_signature(check_font, MISSING_CODE_POINT)
            if require_hangul and not all(
                    ink[ch] if ch in ink else _draws(check_font, ch, notdef) for ch in HANGUL_PROBE):
                self._exclude(path, f'draws none or only some of the common syllables {HANGUL_PROBE!r}')
                continue
            self.paths.append(path)
            self._ink.append(ink)
            self._notdef.append(notdef)
            self._keys.append(key)
            self._fonts[(len(self.paths) - 1, CHECK_SIZE)] = check_font
        if not self.paths:
            if not self.excluded:
                raise ValueError('FontBank: no fonts given')
            reasons = '; '.join(f'{p}: {why}' for p, why in self.excluded.items())
            raise ValueError(f'no usable Korean font among the given fonts: {reasons}')

    # -- pickling: open fonts stay behind, workers reopen them lazily
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_fonts'] = OrderedDict()
        return state

    def _exclude(self, path: Path, reason: str) -> None:
        self.excluded[path] = reason
        logger.warning('font %s excluded: %s', path, reason)

    def __len__(self) -> int:
        return len(self.paths)

    def font(self, index: int, size: int) -> ImageFont.FreeTypeFont:
        """The font ``paths[index]`` at ``size`` pixels, opened once per process."""
        key = (index, size)
        font = self._fonts.get(key)
        if font is None:
            font = ImageFont.truetype(str(self.paths[index]), size)
            self._fonts[key] = font
            if len(self._fonts) > FONT_CACHE_SIZE:
                self._fonts.popitem(last=False)
        else:
            self._fonts.move_to_end(key)
        return font

    def draws(self, index: int, ch: str) -> bool:
        """True when font ``index`` puts ink for ``ch`` that is not its .notdef glyph."""
        ink = self._ink[index]
        if ch not in ink:
            ink[ch] = _draws(self.font(index, CHECK_SIZE), ch, self._notdef[index])
            self._dirty = True
        return ink[ch]

    def _char_mask(self, ch: str) -> int:
        mask = self._char_masks.get(ch)
        if mask is None:
            mask = 0
            for i in range(len(self.paths)):
                if self.draws(i, ch):
                    mask |= 1 << i
            self._char_masks[ch] = mask
        return mask

    def font_mask(self, text: str) -> int:
        """Bit i is set when font i draws every non-space character of ``text``."""
        mask = (1 << len(self.paths)) - 1
        for ch in set(text):
            if not ch.isspace():
                mask &= self._char_mask(ch)
                if not mask:
                    break
        return mask

    def indices_for(self, text: str) -> list[int]:
        """Indices of the fonts that draw every non-space character of ``text``."""
        mask = self.font_mask(text)
        return [i for i in range(len(self.paths)) if mask >> i & 1]

    def fonts_for(self, text: str) -> list[Path]:
        """The font files that draw every non-space character of ``text`` (none: empty list)."""
        return [self.paths[i] for i in self.indices_for(text)]

    def undrawable(self, text: str) -> list[str]:
        """The distinct non-space characters of ``text`` that no font of the bank draws."""
        return [ch for ch in dict.fromkeys(text) if not ch.isspace() and not self._char_mask(ch)]

    def coverage(self, index: int, characters: Iterable[str]) -> str:
        """The characters of ``characters`` font ``index`` draws, in order."""
        return ''.join(ch for ch in characters if self.draws(index, ch))

    def precompute(self, characters: Iterable[str]) -> None:
        """Check every character for every font now (and save the cache), so later lookups,
        including those of worker processes given this bank, cost nothing."""
        chars = [ch for ch in dict.fromkeys(characters) if not ch.isspace()]
        for ch in chars:
            self._char_mask(ch)
        self.save_cache()

    # -- disk cache
    @property
    def cache_file(self) -> Path:
        return self.cache_dir / 'font_ink.json'

    def _read_disk_cache(self) -> dict[str, dict[str, str]]:
        if not self.use_disk_cache or not self.cache_file.is_file():
            return {}
        try:
            data = json.loads(self.cache_file.read_text(encoding='utf-8'))
        except (OSError, ValueError) as e:
            logger.warning('font ink cache %s unreadable (%s); rebuilding it', self.cache_file, e)
            return {}
        if not isinstance(data, dict) or data.get('version') != CACHE_VERSION:
            return {}
        return data.get('fonts', {})

    def save_cache(self) -> None:
        """Merge this bank's ink results into the cache file (atomically). Errors writing the
        cache are logged, never raised: the cache only saves time."""
        if not self.use_disk_cache or not self._dirty:
            return
        try:
            fonts = self._read_disk_cache()
            for key, ink in zip(self._keys, self._ink):
                entry = fonts.get(key, {})
                known = {ch: True for ch in entry.get('ink', '')}
                known.update({ch: False for ch in entry.get('no_ink', '')})
                known.update(ink)
                fonts[key] = {'ink': ''.join(sorted(c for c, v in known.items() if v)),
                              'no_ink': ''.join(sorted(c for c, v in known.items() if not v))}
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_file.with_name(f'.{self.cache_file.name}.tmp{os.getpid()}')
            tmp.write_text(json.dumps({'version': CACHE_VERSION, 'fonts': fonts}, ensure_ascii=False),
                           encoding='utf-8')
            os.replace(tmp, self.cache_file)
            self._dirty = False
        except OSError as e:
            logger.warning('could not write the font ink cache %s: %s', self.cache_file, e)
