"""The dashboard's own assets and the vendored ones, each pinned by hash.

An own asset (``static/<name>``) is served at ``/ui/static/<sha256[:16]>/<name>``: the URL
changes with the bytes, so a response is cached for good and a stale page never mixes versions.
Every ``<script>`` and ``<link>`` also carries a Subresource Integrity hash, so a browser
refuses bytes that are not the ones the page was rendered with.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from services.api.static import manifest

STATIC_DIR = Path(__file__).parent / "static"
URL_PREFIX = "/ui/static"
HASH_CHARS = 16


@dataclass(frozen=True, slots=True)
class Asset:
    """One file a page loads: where, and the integrity value its tag carries."""

    url: str
    integrity: str


def _integrity(digest: bytes) -> str:
    return "sha256-" + base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class OwnAsset:
    """A file of ``static/``: its bytes' hash and its path on disk."""

    name: str
    sha256: str
    path: Path

    @property
    def asset(self) -> Asset:
        """Its hashed URL and integrity value."""
        url = f"{URL_PREFIX}/{self.sha256[:HASH_CHARS]}/{self.name}"
        return Asset(url, _integrity(bytes.fromhex(self.sha256)))


@functools.cache
def own_assets() -> dict[str, OwnAsset]:
    """Every file of ``static/`` by name, hashed once (they are part of the code)."""
    found = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and not path.name.startswith((".", "_")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[path.name] = OwnAsset(path.name, digest, path)
    return found


def own(name: str) -> Asset:
    """The URL and integrity of own asset `name` (KeyError when there is none)."""
    return own_assets()[name].asset


def lookup(digest: str, name: str) -> Path | None:
    """The file served at ``<digest>/<name>``, or None (unknown, or another version's hash)."""
    found = own_assets().get(name)
    if found is None or found.sha256[:HASH_CHARS] != digest:
        return None
    return found.path


def vendored(name: str, path: str) -> Asset:
    """The URL and integrity of a vendored file (`services.api.static`'s manifest)."""
    assets = manifest()
    pkg = next(p for p in assets.packages if p.name == name)
    item = next(f for f in pkg.files if f.path == path)
    return Asset(assets.url(name, path), _integrity(bytes.fromhex(item.sha256)))
