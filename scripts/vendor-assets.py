"""Re-download the vendored browser assets from npm and rewrite their manifest (for upgrades).

    .venv/bin/python scripts/vendor-assets.py                       # refetch the pinned versions
    .venv/bin/python scripts/vendor-assets.py swagger-ui=5.36.0     # move one package to a version

The manifest (services/api/static/vendor/manifest.json) says which packages, versions and files;
this script fetches each package with `npm pack`, copies those files into
``vendor/<name>@<version>/``, records their sha256 and licence, and removes folders of versions
no longer pinned. Not run by the tests: they check the committed files against the manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from services.api.static import MANIFEST_PATH, VENDOR_DIR, Manifest, VendoredFile, VendoredPackage


def fetch(pkg: VendoredPackage, workdir: Path) -> Path:
    """`npm pack` the pinned version into `workdir`; the unpacked package folder."""
    spec = f"{pkg.package}@{pkg.version}"
    out = subprocess.run(
        ["npm", "pack", spec, "--silent", "--pack-destination", str(workdir)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    tarball = workdir / out.stdout.strip().splitlines()[-1]
    target = workdir / pkg.name
    with tarfile.open(tarball) as tar:
        tar.extractall(target, filter="data")
    return target / "package"


def vendor(pkg: VendoredPackage, workdir: Path) -> VendoredPackage:
    """Copy the package's files into place; the package with its new hashes and licence."""
    source = fetch(pkg, workdir)
    dest = VENDOR_DIR / pkg.folder
    shutil.rmtree(dest, ignore_errors=True)
    files = []
    for item in pkg.files:
        data = (source / item.path).read_bytes()  # a file the package lacks is an error
        (dest / item.path).parent.mkdir(parents=True, exist_ok=True)
        (dest / item.path).write_bytes(data)
        files.append(VendoredFile(path=item.path, sha256=hashlib.sha256(data).hexdigest()))
    meta = json.loads((source / "package.json").read_text())
    # A package.json without a licence field (htmx-ext-sse) keeps the one the manifest names.
    licence = str(meta.get("license") or pkg.license)
    return pkg.model_copy(update={"files": files, "license": licence})


def main(argv: list[str]) -> None:
    pins = dict(arg.split("=", 1) for arg in argv)
    manifest = Manifest.model_validate_json(MANIFEST_PATH.read_bytes())
    unknown = set(pins) - {pkg.name for pkg in manifest.packages}
    if unknown:
        raise SystemExit(f"not in the manifest: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory() as tmp:
        packages = [
            vendor(pkg.model_copy(update={"version": pins.get(pkg.name, pkg.version)}), Path(tmp))
            for pkg in manifest.packages
        ]
    kept = {pkg.folder for pkg in packages}
    for folder in VENDOR_DIR.iterdir():
        if folder.is_dir() and folder.name not in kept:
            shutil.rmtree(folder)
    updated = Manifest(packages=packages)
    MANIFEST_PATH.write_text(updated.model_dump_json(indent=2) + "\n")
    for pkg in packages:
        print(f"{pkg.name}: {pkg.package}@{pkg.version} ({len(pkg.files)} files)")


if __name__ == "__main__":
    main(sys.argv[1:])
