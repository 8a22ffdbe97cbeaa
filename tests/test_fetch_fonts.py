"""korean/fetch_fonts.py against a real local HTTP server holding real npm-style packages: a
Fontsource-shaped tarball with WOFF files made from NanumGothic, checked by its SHA-512."""
from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import tarfile

import pytest
from fontTools import subset
from fontTools.ttLib import TTFont

from conftest import KOREAN_FONT, NaverStub, Reply, REPO
from korean.fetch_fonts import FAMILIES, FetchError, fetch_fonts, tarball_url
from korean.fonts import FontBank, find_korean_fonts

TEXT = '가나다한글의는이학교서울 0123456789'


def woff_of(text: str) -> bytes:
    """NanumGothic cut down to ``text``'s characters, as a WOFF file (as Fontsource ships them)."""
    font = TTFont(KOREAN_FONT)
    subsetter = subset.Subsetter()
    subsetter.populate(text=text)
    subsetter.subset(font)
    font.flavor = 'woff'
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def npm_package(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w:gz') as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f'package/{name}')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def integrity_of(data: bytes) -> str:
    return 'sha512-' + base64.b64encode(hashlib.sha512(data).digest()).decode('ascii')


@pytest.fixture(scope='module')
def package() -> bytes:
    woff = woff_of(TEXT)
    return npm_package({'package.json': b'{"name": "@fontsource/test-sans"}',
                        'files/test-sans-korean-400-normal.woff': woff,
                        'files/test-sans-korean-700-normal.woff': woff,
                        'files/test-sans-latin-400-normal.woff': woff})


def serve(stub: NaverStub, data: bytes, status: int = 200) -> str:
    path = tarball_url('', 'test-sans', '5.0.0')
    stub.routes[path] = Reply(status, data=data) if status == 200 else Reply(status, 'gone')
    return path


def test_fetched_fonts_are_truetype_files_the_renderer_draws_korean_with(tmp_path, package):
    family = ('test-sans', '5.0.0', (400, 700), integrity_of(package))
    with NaverStub() as stub:
        path = serve(stub, package)
        assert fetch_fonts(tmp_path, [family], registry=stub.url, progress=False) == (2, 2)
        # a second run finds both files and asks the registry nothing
        assert fetch_fonts(tmp_path, [family], registry=stub.url, progress=False) == (0, 2)
    assert stub.paths() == [path]
    fonts = find_korean_fonts([tmp_path])
    assert [p.name for p in fonts] == ['test-sans-400.ttf', 'test-sans-700.ttf']
    assert TTFont(fonts[0]).flavor is None  # plain TrueType, not WOFF
    bank = FontBank(fonts)
    assert bank.font_mask('학교 서울 2024') == 0b11  # both fonts draw every character
    assert bank.font_mask('한국') == 0  # 국 was cut from the font: not drawn, not a box
    assert sorted(p.name for p in tmp_path.rglob('*')) == ['test-sans', 'test-sans-400.ttf', 'test-sans-700.ttf']


def test_a_missing_weight_is_fetched_again_and_nothing_else_is_rewritten(tmp_path, package):
    family = ('test-sans', '5.0.0', (400, 700), integrity_of(package))
    with NaverStub() as stub:
        serve(stub, package)
        fetch_fonts(tmp_path, [family], registry=stub.url, progress=False)
        kept = tmp_path / 'test-sans' / 'test-sans-400.ttf'
        before = kept.stat().st_mtime_ns
        (tmp_path / 'test-sans' / 'test-sans-700.ttf').unlink()
        assert fetch_fonts(tmp_path, [family], registry=stub.url, progress=False) == (1, 2)
    assert kept.stat().st_mtime_ns == before
    assert (tmp_path / 'test-sans' / 'test-sans-700.ttf').exists()


def test_a_package_that_does_not_match_its_pinned_hash_writes_nothing(tmp_path, package):
    family = ('test-sans', '5.0.0', (400,), integrity_of(package + b'x'))
    with NaverStub() as stub:
        serve(stub, package)
        with pytest.raises(FetchError, match=r'test-sans-5\.0\.0\.tgz: integrity sha512-.* does not match the pinned'):
            fetch_fonts(tmp_path, [family], registry=stub.url, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('status, weights, max_bytes, message', [
    (404, (400,), 1 << 20, r'test-sans-5\.0\.0\.tgz: HTTP 404, expected 200'),
    (200, (400,), 1000, r'test-sans-5\.0\.0\.tgz: larger than --max_bytes 1000'),
    (200, (300,), 1 << 20, r'test-sans-5\.0\.0\.tgz: no package/files/test-sans-korean-300-normal\.woff in the package'),
])
def test_bad_answers_stop_with_one_line_naming_the_package(tmp_path, package, status, weights, max_bytes, message):
    family = ('test-sans', '5.0.0', weights, integrity_of(package))
    with NaverStub() as stub:
        serve(stub, package, status)
        with pytest.raises(FetchError, match=message):
            fetch_fonts(tmp_path, [family], registry=stub.url, max_bytes=max_bytes, progress=False)
    assert not list(tmp_path.rglob('*.ttf'))


def test_the_command_reports_an_unreachable_registry_in_one_line(tmp_path):
    with NaverStub() as stub:
        url = stub.url  # a port nothing listens on once the server is closed
    result = subprocess.run([sys.executable, 'korean/fetch_fonts.py', '--output', str(tmp_path), '--registry', url,
                             '--timeout', '5', '--quiet'], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count('\n') == 1
    assert result.stderr.startswith(f'error: {tarball_url(url, *FAMILIES[0][:2])}: ConnectionError')


def test_the_pinned_families_are_none_of_the_test_fonts_or_debian_packaged_ones():
    names = [name for name, *_ in FAMILIES]
    assert len(names) == len(set(names)) == 25
    for banned in ('un', 'baekmuk', 'nanum', 'noto', 'jua', 'do-hyeon', 'yeon-sung', 'kirang', 'hanna'):
        assert not any(name == banned or name.startswith(banned + '-') for name in names), banned
    assert sum(len(weights) for _, _, weights, _ in FAMILIES) == 38
    assert all(integrity.startswith('sha512-') and len(base64.b64decode(integrity[7:])) == 64
               for *_, integrity in FAMILIES)
