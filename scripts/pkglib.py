"""pkglib: what the package-manifest generators (scripts/brew-formula,
scripts/scoop-manifest, scripts/aqua-registry) and their checks
(pkg/tests/check_manifests.py) share: the project's fields from Cargo.toml,
the release URL, SHA256SUMS, and which archives scripts/dist left in a
directory.

Each generator takes whatever kcc-<version>-<triple> archives are there
(x86_64 Linux and Windows today, aarch64 Linux when that build exists), so a
new target needs no change here beyond its row in TRIPLES.
"""
import hashlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The same placeholder scripts/krew-manifest uses until Cargo.toml names the
# repository, so every manifest of one release points at the same place.
PLACEHOLDER_REPOSITORY = "https://github.com/kube-credential-cache/kcc"

# Rust target triple -> (Go's GOOS, Go's GOARCH, archive extension, executable).
TRIPLES = {
    "x86_64-unknown-linux-gnu": ("linux", "amd64", ".tar.gz", "kcc"),
    "aarch64-unknown-linux-gnu": ("linux", "arm64", ".tar.gz", "kcc"),
    "x86_64-apple-darwin": ("darwin", "amd64", ".tar.gz", "kcc"),
    "aarch64-apple-darwin": ("darwin", "arm64", ".tar.gz", "kcc"),
    "x86_64-pc-windows-gnu": ("windows", "amd64", ".zip", "kcc.exe"),
}


def fail(tool, msg):
    print(f"{tool}: {msg}", file=sys.stderr)
    sys.exit(1)


def cargo_field(text, name):
    """The first `name = "..."` of Cargo.toml's [package] table."""
    package = text.split("\n[", 1)[0]
    m = re.search(rf'^{re.escape(name)}\s*=\s*"([^"]*)"', package, re.M)
    return m.group(1) if m else None


class Project:
    """Cargo.toml's package fields and where a release's files are downloaded."""

    def __init__(self, tool):
        cargo = open(os.path.join(ROOT, "Cargo.toml"), encoding="utf-8").read()
        self.name = cargo_field(cargo, "name")
        self.version = cargo_field(cargo, "version")
        self.description = cargo_field(cargo, "description")
        self.license = cargo_field(cargo, "license")
        repository = cargo_field(cargo, "repository")
        if not repository:
            repository = PLACEHOLDER_REPOSITORY
            print(f"{tool}: note: no `repository` in Cargo.toml; using '{repository}' (set it, or "
                  "KCC_RELEASE_URL and KCC_HOMEPAGE)", file=sys.stderr)
        self.repository = repository.rstrip("/")
        self.homepage = os.environ.get("KCC_HOMEPAGE") or cargo_field(cargo, "homepage") or self.repository
        self.release_url = (os.environ.get("KCC_RELEASE_URL")
                            or f"{self.repository}/releases/download/v{self.version}").rstrip("/")

    def url(self, file_name):
        return f"{self.release_url}/{file_name}"


def read_sums(tool, dist, sums_name="SHA256SUMS"):
    """SHA256SUMS as {file name: lowercase hex digest}."""
    sums = {}
    try:
        for line in open(os.path.join(dist, sums_name), encoding="utf-8"):
            digest, name = line.split(None, 1)
            sums[name.strip().lstrip("*")] = digest.lower()
    except FileNotFoundError:
        fail(tool, f"no {sums_name} in '{dist}': run scripts/dist first")
    return sums


def checked_digest(tool, dist, sums, file_name):
    """The file's sha256, which must be its SHA256SUMS line: a manifest never
    carries a hash that was not checked against the file it names."""
    if file_name not in sums:
        fail(tool, f"'{file_name}' has no line in '{dist}/SHA256SUMS': run scripts/dist again")
    with open(os.path.join(dist, file_name), "rb") as f:
        actual = hashlib.sha256(f.read()).hexdigest()
    if actual != sums[file_name]:
        fail(tool, f"'{file_name}' does not match its SHA256SUMS line: run scripts/dist again")
    return actual


class Archive:
    """One kcc-<version>-<triple> release archive scripts/dist wrote."""

    def __init__(self, version, triple):
        self.triple = triple
        self.goos, self.goarch, self.ext, self.exe = TRIPLES[triple]
        self.folder = f"kcc-{version}-{triple}"
        self.file_name = self.folder + self.ext


def archives(tool, dist, version):
    """The binary archives present in dist (each listed in SHA256SUMS), in
    TRIPLES order."""
    sums = read_sums(tool, dist)
    found = []
    for triple in TRIPLES:
        archive = Archive(version, triple)
        if archive.file_name in sums:
            found.append(archive)
    return found


def source_archive_name(version):
    """The source tarball scripts/dist writes (`git archive`), which the
    Homebrew formula builds from."""
    return f"kcc-{version}.tar.gz"
