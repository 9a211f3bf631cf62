"""Browser assets vendored from npm and served by the API itself, so its pages work offline.

``vendor/manifest.json`` pins each package (npm name and version) and the sha256 of every file
taken from it; the files live in ``vendor/<name>@<version>/`` beside their licence. Because the
version is part of every URL, a response can be cached for good. ``scripts/vendor-assets.py``
re-downloads the pinned packages and rewrites the manifest (for upgrades).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import BaseModel, Field

#: Where the vendored packages and their manifest live.
VENDOR_DIR = Path(__file__).parent / "vendor"
MANIFEST_PATH = VENDOR_DIR / "manifest.json"
#: The URL prefix the API serves ``VENDOR_DIR`` under.
URL_PREFIX = "/static/vendor"


class VendoredFile(BaseModel):
    """One file taken from a package."""

    path: str = Field(description="Path inside the npm package (and inside its folder here).")
    sha256: str = Field(description="Hex sha256 of the file's bytes.")


class VendoredPackage(BaseModel):
    """One pinned npm package and the files taken from it."""

    name: str = Field(description="Short name: the folder prefix and the lookup key.")
    package: str = Field(description="The npm package the files come from.")
    version: str = Field(description="The exact npm version pinned.")
    license: str = Field(description="The package's licence (SPDX), its text is vendored too.")
    files: list[VendoredFile] = Field(description="Every file taken, licence files included.")

    @property
    def folder(self) -> str:
        """The folder of this version, relative to ``VENDOR_DIR`` (and to ``URL_PREFIX``)."""
        return f"{self.name}@{self.version}"


class Manifest(BaseModel):
    """Every vendored package."""

    packages: list[VendoredPackage] = Field(description="The pinned packages.")

    def files(self) -> dict[str, Path]:
        """Every vendored file: its path relative to ``VENDOR_DIR`` -> where it is on disk."""
        return {
            f"{pkg.folder}/{item.path}": VENDOR_DIR / pkg.folder / item.path
            for pkg in self.packages
            for item in pkg.files
        }

    def url(self, name: str, path: str) -> str:
        """The URL of file `path` of package `name` (KeyError when the manifest has no such)."""
        for pkg in self.packages:
            if pkg.name == name and any(item.path == path for item in pkg.files):
                return f"{URL_PREFIX}/{pkg.folder}/{path}"
        raise KeyError(f"{name}/{path} is not vendored (see {MANIFEST_PATH.name})")


@functools.cache
def manifest() -> Manifest:
    """The manifest, read once (it is part of the code, not configuration)."""
    return Manifest.model_validate_json(MANIFEST_PATH.read_bytes())
