"""Fetch Korean font families that Debian does not package, from the npm registry.

Google Fonts' Korean families (Gowun Batang, Song Myung, Hahmlet, Gothic A1, IBM Plex Sans KR,
hand-written and display faces...) are published on npm by Fontsource, one package per family,
each with a ``korean`` file that draws all 11,172 Hangul syllables, Latin letters and digits. The
npm registry is reachable where PyPI and Debian are, so these are the new designs a training run
can add to the Debian packages (stage 14 of the shipped model's build script does).

Every package is pinned to a version and its npm integrity hash (SHA-512), so the same fonts,
and so the same rendered images, come back on every machine. Each chosen weight's WOFF file is
unpacked to a TrueType file (fontTools), because the renderer reads TrueType and OpenType files:

    python korean/fetch_fonts.py --output data/fonts

writes ``data/fonts/<family>/<family>-<weight>.ttf`` (38 files of 25 families, about 100 MB) and
skips the files already there. All of them are under the SIL Open Font License 1.1.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import sys
import tarfile
from pathlib import Path
from typing import Sequence

import requests
from fontTools.ttLib import TTFont
from tqdm import tqdm

DEFAULT_REGISTRY = 'https://registry.npmjs.org'
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

# (Fontsource package name, version, weights taken, npm integrity). Families whose Hangul Debian
# already packages (Nanum, Noto, the Baedal-Minjok faces) are left out, and so is any relative of
# the test fonts (Un, Baekmuk). Of a family with many weights, a light one, the regular and a bold.
FAMILIES: tuple[tuple[str, str, tuple[int, ...], str], ...] = (
    ('bagel-fat-one', '5.3.0', (400,),
     'sha512-rT3HoY0O7+rfK8WA4ddkIc+6ushm/yjbdoc5l7jo58Si6S2XPUae8whLdLqFcrcXF9DGLaxin9FNAUaAKX5N+A=='),
    ('black-and-white-picture', '5.3.0', (400,),
     'sha512-0KLSpLa6F2ZKu88nlwZFtl5Xs1IZuJOypj+7hc5m5MTEc+Rz+XpIuroQtflhVw7Mk6VLXHwAEJ3vjhrt6zLcDw=='),
    ('black-han-sans', '5.3.0', (400,),
     'sha512-HZtn51La10fZU1DdnbY06YcvLxF9NAkNk/GdA6rKDWPztH9zWLqVcfVvCKNmosBuFrhToGbw/pMNJ/TjdC296Q=='),
    ('cute-font', '5.2.8', (400,),
     'sha512-WwkCWEwKavcfDMhMfC2RyZWHOXxOuJHp/1bp4r580qx4RjlVL2Sic/iKvkqXGZfUM0kcup9V0J3bD1yBXzlY6Q=='),
    ('diphylleia', '5.2.7', (400,),
     'sha512-drxZBgXhZWMvVTx6JV8SNArAcP/Fkt1VMgXFCqnMlNTq345fshSaT88ObgqLpX+jyYuzl6LSen9MQeUPblKjiw=='),
    ('dongle', '5.2.7', (300, 400, 700),
     'sha512-oq/C+mEjjDNVQZLxBFbDNjjAW5qa2BbBMsfeaJl9iuOuXGjYUR9q3xPcJg+xQ9WVGJbbBm/BwrRhApK5yqZtuw=='),
    ('east-sea-dokdo', '5.3.0', (400,),
     'sha512-enU97VwzWkYoPpeSBZaltrS431FQSwOyVTlyqxduhGGnNAho9hRGmP0ENxxMm5NTS6r4sqaWQ9AKVsJVNSMXYg=='),
    ('gaegu', '5.3.0', (300, 400, 700),
     'sha512-eSVEXay02/DAB5BtH/gpsujvpT78EjO6XVuNA1ap1G+xvr3zokU2HoLoaW+CfzykRuVgDQ2oZ1oe7VAlmGZt/A=='),
    ('gamja-flower', '5.3.0', (400,),
     'sha512-/Y9xHzyJ3+BaltHRDKT+Iwg439M3CkGtDXVQlOysoDSYg35M3a/QYSvX0+mqupE+KQYBtm46wXS4V8BiFJ5udw=='),
    ('gasoek-one', '5.3.0', (400,),
     'sha512-8nKTHRL1+Wk0iNG5XBQvvNbTw5Y51TRhqIrrS8oKmZ/Lbc8lxlsp6ZG7Y7qYuu15ueqxOsqbeHQw1AgxZNjqSQ=='),
    ('gothic-a1', '5.3.0', (200, 400, 700),
     'sha512-0HmmE3YQgdcXkVZd/pRTw7MOc9PffY7tNrR/dovEGO00cno/4ImiHxEXdJoq80Bs2jC52wuvuFRcepJ38mksEw=='),
    ('gowun-batang', '5.3.0', (400, 700),
     'sha512-wWDwzFKhKbk7l94OFQjZTH6x9PjqErCXBsXQ+h/SopIOosN2LjAN5W22Zua4unCmOIK2hc1fI6jNrB4OqYh6Qg=='),
    ('gowun-dodum', '5.3.0', (400,),
     'sha512-1ToMkUzML1E0TIpvV81t1geh+1npARWbdTPwCDZZwqQxD1p/HnngbjOwiXe8Y+gkhlRThyl/HiNgY9fCMpm9OQ=='),
    ('grandiflora-one', '5.3.0', (400,),
     'sha512-NCCvd6e+SjC25zFqCEQ655ZWS8oxgZmag59mjhSr6UVSY9OmxGchuPdNpih/Fa0i1H6RpK5HN25SnIGSLDkx2A=='),
    ('gugi', '5.3.0', (400,),
     'sha512-ntP6y/AXG1l/gLKmY5nw8y30DiZyB3ycCPKCBtU8B4WjNOzDcr9rLTn8kcbz0FfS4ol/0+WQc+aLGnEkCgtZtg=='),
    ('hahmlet', '5.3.0', (200, 400, 700),
     'sha512-2zUpCMK7RQMu29Zp7bwVh5Z+DaQxsM2IPqcv63xLg0W2LJcMm7nRNSIBkQkrD8HhNsfGO5Y1MEsbWvwlhu6eGw=='),
    ('hi-melody', '5.3.0', (400,),
     'sha512-XrJgNcORA0hIA0IQmEj0xYeRAGFUHD9sQ0BGxxz4h+SauHeQRTuqU0tC+azJpvInW0Qwz8qevawYy6EtGo687A=='),
    ('ibm-plex-sans-kr', '5.3.0', (200, 400, 700),
     'sha512-Malq1TQAnpPHASG76fAthnCY0E41py2r7pZ5JEjgmGfA5tVGz7gwBfvrkhPvT3ZmyMobQrJakHhKZVuXQp7FjQ=='),
    ('moirai-one', '5.3.0', (400,),
     'sha512-0Xd9UkVMUecSaWw0ze76W8jASmnQTqMALxzsp5rwRBjo4K75X7eHcQIi6nAMZ17hLTmouMpoPRRY9G72QcJySA=='),
    ('orbit', '5.3.0', (400,),
     'sha512-klcxZ7B7d/7KtN0P2b7lHDnWwuhAnHFz0hTkykeYE7S4ULocgXIxPsN5NZXXo2Jz3JxIGCIzYswORqkYw/mCgw=='),
    ('poor-story', '5.3.0', (400,),
     'sha512-L6FR+YlMi++oUpL59d9I3WrhPR8puj/LKGJtYWfpIZteQR/gLjaVHmohlXjMGoXR3pNtKrDFeP2xbmykBRo6HA=='),
    ('single-day', '5.3.1', (400,),
     'sha512-6RFVF1vwMlJyEWBo/0XfZW57jRYbihIxbtBJze6sfWBhFZZRZ3t1fZbzm85JwKG5bsNZmggQuqckkIUTGJrIow=='),
    ('song-myung', '5.2.8', (400,),
     'sha512-GZXFd5ezAKXEfoAeI+VAqYBAdPhzDamMpYPi1UlBcSq+l78KFkH5x1sTzwo5auQup6xTz/SS15DyesnKPZ0W7g=='),
    ('stylish', '5.3.1', (400,),
     'sha512-pBOwKe5jwbbQ4VfG1orOHtOflD0OYxSZ5O7nQJWRXCrc6fRt0yhS9b6oCrRGA979nynLpjIFAlqKZpRjkjafLA=='),
    ('sunflower', '5.3.1', (300, 500, 700),
     'sha512-tFgwZGfY9NGj58jcUCwToDT+3Hs8LO/8sd5LnJ+4ZTxBg8Lw1WvSHjRjyH1m3mpUUH66Z5i/dWG7/LzP0ovlBQ=='),
)


class FetchError(Exception):
    """A package could not be fetched or did not hold what was expected (one line)."""


def tarball_url(registry: str, name: str, version: str) -> str:
    return f'{registry.rstrip("/")}/@fontsource/{name}/-/{name}-{version}.tgz'


def font_paths(output: Path, name: str, weights: Sequence[int]) -> list[Path]:
    return [output / name / f'{name}-{weight}.ttf' for weight in weights]


def check_integrity(data: bytes, integrity: str, url: str) -> None:
    """npm's integrity string is ``sha512-`` and the base64 digest of the tarball."""
    algorithm, _, expected = integrity.partition('-')
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode('ascii')
    if actual != expected:
        raise FetchError(f'{url}: integrity {algorithm}-{actual[:16]}... does not match the pinned '
                         f'{integrity[:23]}...; the registry served another file')


def download(url: str, timeout: float, max_bytes: int) -> bytes:
    """The body of ``url``; ``timeout`` bounds each wait, ``max_bytes`` the size."""
    try:
        with requests.get(url, timeout=timeout, stream=True) as response:
            if response.status_code != 200:
                raise FetchError(f'{url}: HTTP {response.status_code}, expected 200')
            chunks, size = [], 0
            for chunk in response.iter_content(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f'{url}: larger than --max_bytes {max_bytes}')
                chunks.append(chunk)
    except requests.RequestException as e:
        raise FetchError(f'{url}: {type(e).__name__}: {e}') from None
    return b''.join(chunks)


def woff_member(tar: tarfile.TarFile, name: str, weight: int, url: str) -> bytes:
    member = f'package/files/{name}-korean-{weight}-normal.woff'
    try:
        return tar.extractfile(member).read()
    except KeyError:
        raise FetchError(f'{url}: no {member} in the package') from None


def write_truetype(woff: bytes, path: Path) -> None:
    """Unpack a WOFF font to a TrueType file, atomically (a temporary file renamed over it)."""
    font = TTFont(io.BytesIO(woff))
    font.flavor = None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'{path.name}.tmp{os.getpid()}')
    try:
        font.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def fetch_family(output: Path, name: str, version: str, weights: Sequence[int], integrity: str, *,
                 registry: str, timeout: float, max_bytes: int) -> int:
    """Write the family's missing weights; returns how many files were written."""
    missing = [(w, p) for w, p in zip(weights, font_paths(output, name, weights)) if not p.exists()]
    if not missing:
        return 0
    url = tarball_url(registry, name, version)
    data = download(url, timeout, max_bytes)
    check_integrity(data, integrity, url)
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as tar:
        for weight, path in missing:
            write_truetype(woff_member(tar, name, weight, url), path)
    return len(missing)


def fetch_fonts(output: Path, families=FAMILIES, *, registry: str = DEFAULT_REGISTRY,
                timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES,
                progress: bool = True) -> tuple[int, int]:
    """Fetch every family; returns (files written, files in all)."""
    written = 0
    for name, version, weights, integrity in tqdm(families, desc='font families', unit='family',
                                                  disable=not progress):
        written += fetch_family(output, name, version, weights, integrity, registry=registry,
                                timeout=timeout, max_bytes=max_bytes)
    return written, sum(len(weights) for _, _, weights, _ in families)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--output', required=True, help='folder for <family>/<family>-<weight>.ttf')
    parser.add_argument('--registry', default=DEFAULT_REGISTRY, help='npm registry address')
    parser.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT,
                        help='seconds each wait for the registry may take')
    parser.add_argument('--max_bytes', type=int, default=DEFAULT_MAX_BYTES,
                        help='largest package accepted, in bytes')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    try:
        written, total = fetch_fonts(output, registry=args.registry, timeout=args.timeout,
                                     max_bytes=args.max_bytes, progress=not args.quiet)
    except FetchError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{total} fonts of {len(FAMILIES)} families in {output} ({written} fetched, '
          f'{total - written} already there)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
