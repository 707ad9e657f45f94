#!/usr/bin/env python3
"""check_manifests.py DIST_DIR: every package manager's view of a release must
name files that scripts/dist really wrote, and their hashes must be theirs.

Each installer's templates are expanded here the way that installer does it
(read from its source; the places are named below), against the files in
DIST_DIR and the entries inside the archives:

- cargo-binstall (cargo-bins/cargo-binstall: binstalk-fetchers
  gh_crate_meta.rs `Context`, binstalk-bins lib.rs `BinFile::new`,
  binstalk-types package_formats.rs `PkgFmt::extensions`): Cargo.toml's
  [package.metadata.binstall] with its per-target overrides; `{ key }`
  placeholders (leon syntax), `{ archive-suffix }` tried for every extension
  of the pkg-fmt, `{ binary-ext }` ".exe" when the target contains
  "windows"; exactly one candidate URL must be a file here, and bin-dir must
  be a file in it.
- aqua (aquaproj/aqua: pkg/config/package.go `RenderAsset`, `renderSrc`,
  windows_ext.go): DIST_DIR/aqua-registry.yaml for kcc's own layout, and the
  Go kcc's own entry (pkgs/ryodocx/kube-credential-cache in
  aquaproj/aqua-registry, restated below) against the Go names
  scripts/go-compat-assets wrote; `replacements`, `overrides` (format),
  `.exe` completion of files on Windows, the checksum file's line.
- the Go kcc's asdf plugin (ryodocx/kube-credential-cache bin/download,
  bin/scripts/utils.bash): ..._$(uname -s)_$(uname -m).tar.gz holding
  kcc-cache and kcc-injector at its root.
- Scoop: DIST_DIR/kcc.json's url, hash and extract_dir against the zip, and
  its `bin` aliases.

Exits 1 naming every mismatch. Run by .ci/packages.
"""
import hashlib
import json
import os
import re
import sys
import tarfile
import tomllib
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import pkglib  # noqa: E402
import yaml  # noqa: E402

TOOL = "check_manifests"
problems = []


def problem(msg):
    problems.append(msg)
    print(f"{TOOL}: FAIL: {msg}", file=sys.stderr)


def ok(msg):
    print(f"{TOOL}: ok: {msg}")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def entries(path):
    """{member name: 'file' | 'link' | 'dir'} of a .tar.gz or .zip."""
    out = {}
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                out[info.filename.rstrip("/")] = "dir" if info.is_dir() else "file"
    else:
        with tarfile.open(path) as t:
            for m in t.getmembers():
                out[m.name.rstrip("/")] = "dir" if m.isdir() else "link" if m.issym() or m.islnk() else "file"
    return out


def tar_link_target(path, member):
    with tarfile.open(path) as t:
        m = t.getmember(member)
        return m.linkname if m.issym() else None


# --- cargo-binstall -------------------------------------------------------

# PkgFmt::extensions (binstalk-types package_formats.rs).
BINSTALL_EXTENSIONS = {
    "tar": [".tar"],
    "tbz2": [".tbz2", ".tar.bz2", ".tbz", ".tar.bz"],
    "tgz": [".tgz", ".tar.gz"],
    "txz": [".txz", ".tar.xz"],
    "tzstd": [".tzstd", ".tzst", ".tar.zst"],
    "zip": [".zip"],
}


def leon_render(template, values):
    """leon's `{ key }` placeholders (whitespace inside the braces optional,
    `\\{` an escaped brace); a key without a value is an error, as in leon."""
    def sub(m):
        if m.group(0).startswith("\\"):
            return m.group(0)[1:]
        key = m.group(1)
        if values.get(key) is None:
            raise KeyError(key)
        return values[key]
    return re.sub(r"\\[{}]|\{\s*([A-Za-z0-9_-]+)\s*\}", sub, template)


def check_binstall(project, dist, found):
    cargo = tomllib.load(open(os.path.join(ROOT, "Cargo.toml"), "rb"))
    meta = cargo["package"].get("metadata", {}).get("binstall")
    if not meta:
        return problem("Cargo.toml has no [package.metadata.binstall]")
    bins = [b["name"] for b in cargo.get("bin", [])] or [cargo["package"]["name"]]
    repo = cargo["package"].get("repository", pkglib.PLACEHOLDER_REPOSITORY)
    for a in found:
        m = dict(meta)
        m.update(meta.get("overrides", {}).get(a.triple, {}))
        fmt = m.get("pkg-fmt", "tgz")
        is_windows = "windows" in a.triple
        base = {"name": cargo["package"]["name"], "version": project.version, "target": a.triple, "repo": repo,
                "binary-ext": ".exe" if is_windows else ""}
        hits = []
        for ext in BINSTALL_EXTENSIONS[fmt]:
            values = dict(base, **{"archive-suffix": ext, "archive-format": ext[1:], "format": ext[1:]})
            try:
                url = leon_render(m["pkg-url"], values)
            except KeyError as e:
                return problem(f"binstall pkg-url names {{ {e.args[0]} }}, which cargo-binstall has no value for")
            prefix = f"{repo}/releases/download/v{project.version}/"
            if url.startswith(prefix) and os.path.isfile(os.path.join(dist, url[len(prefix):])):
                hits.append(url[len(prefix):])
        if hits != [a.file_name]:
            problem(f"binstall for {a.triple}: the pkg-url candidates found {hits or 'no file'} in {dist}, "
                    f"not exactly '{a.file_name}'")
            continue
        members = entries(os.path.join(dist, a.file_name))
        for b in bins:
            path = leon_render(m["bin-dir"], dict(base, bin=b))
            if members.get(path) != "file":
                problem(f"binstall for {a.triple}: bin-dir '{path}' is not a file in {a.file_name}")
            else:
                ok(f"binstall {a.triple}: {a.file_name} -> {path}")


# --- aqua -------------------------------------------------------------------

AQUA_ARCHIVE_EXTS = ["tar.gz", "tgz", "zip", "tar.xz", "tar.bz2", "tar.zst"]


def aqua_render(template, values):
    """The Go-template forms aqua's registry entries use here; any other
    action is an error (so an entry using one is noticed, not misread)."""
    def sub(m):
        expr = m.group(1).strip()
        if expr == "trimV .Version":
            return values["Version"].removeprefix("v")
        if re.fullmatch(r"\.\w+", expr) and expr[1:] in values:
            return values[expr[1:]]
        raise ValueError(f"unsupported template action '{{{{{expr}}}}}'")
    return re.sub(r"\{\{(.*?)\}\}", sub, template)


def aqua_resolve(pkg, goos, goarch, version):
    """(asset, {file name: path inside the archive}) for one platform."""
    rep = pkg.get("replacements", {})
    fmt = pkg.get("format", "")
    for o in pkg.get("overrides", []):
        if o.get("goos", goos) == goos and o.get("goarch", goarch) == goarch:
            fmt = o.get("format", fmt)
            rep = {**rep, **o.get("replacements", {})}
    values = {"Version": f"v{version}", "OS": rep.get(goos, goos), "Arch": rep.get(goarch, goarch),
              "GOOS": goos, "GOARCH": goarch, "Format": fmt}
    asset = aqua_render(pkg["asset"], values)
    without_ext = asset
    for ext in AQUA_ARCHIVE_EXTS:
        if asset.endswith("." + ext):
            without_ext = asset[: -len(ext) - 1]
            break
    files = {}
    for f in pkg.get("files", [{"name": pkg.get("repo_name")}]):
        src = aqua_render(f["src"], dict(values, Asset=asset, AssetWithoutExt=without_ext, FileName=f["name"])) \
            if f.get("src") else f["name"]
        # windows_ext.go completeWindowsExtToFileSrc: ".exe" when the src has no extension
        # (its extension computed with the version removed).
        if goos == "windows" and os.path.splitext(src.replace(version, ""))[1] == "":
            src += ".exe"
        files[f["name"]] = (src, f.get("link"))
    return asset, files


def check_aqua_entry(label, pkg, dist, version, envs, sums_name, expect_links):
    sums = pkglib.read_sums(TOOL, dist, sums_name)
    for env in envs:
        goos, goarch = env.split("/")
        try:
            asset, files = aqua_resolve(pkg, goos, goarch, version)
        except ValueError as e:
            problem(f"{label} {env}: {e}")
            continue
        path = os.path.join(dist, asset)
        if not os.path.isfile(path):
            problem(f"{label} {env}: asset '{asset}' is not a file scripts/dist wrote")
            continue
        if sums.get(asset) != sha256(path):
            problem(f"{label} {env}: '{asset}' has no matching line in {sums_name}")
            continue
        members = entries(path)
        for name, (src, link) in files.items():
            if members.get(src) not in ("file", "link"):
                problem(f"{label} {env}: file '{name}' is '{src}', which is not in {asset}")
            elif expect_links and name != "kcc" and link != name:
                problem(f"{label} {env}: '{name}' runs '{src}' without `link: {name}`, so kcc would not "
                        "know which personality it is")
            else:
                ok(f"{label} {env}: {asset} -> {name} = {src}" + (f" (link {link})" if link else ""))


# The Go kcc's entry in aquaproj/aqua-registry (pkgs/ryodocx/kube-credential-cache/registry.yaml).
GO_KCC_AQUA = {
    "type": "github_release",
    "repo_owner": "ryodocx",
    "repo_name": "kube-credential-cache",
    "asset": "kube-credential-cache_{{trimV .Version}}_{{.OS}}_{{.Arch}}.{{.Format}}",
    "format": "tar.gz",
    "replacements": {"amd64": "x86_64", "darwin": "Darwin", "linux": "Linux", "windows": "Windows"},
    "overrides": [{"goos": "windows", "format": "zip"}],
    "files": [{"name": "kcc-cache"}, {"name": "kcc-injector"}],
    "checksum": {"type": "github_release", "asset": "checksums.txt", "algorithm": "sha256"},
}

# `uname -s`, `uname -m` on each platform the asdf plugin runs on.
UNAME = {("linux", "amd64"): ("Linux", "x86_64"), ("linux", "arm64"): ("Linux", "aarch64"),
         ("darwin", "amd64"): ("Darwin", "x86_64"), ("darwin", "arm64"): ("Darwin", "arm64")}


def check_aqua(project, dist, found):
    path = os.path.join(dist, "aqua-registry.yaml")
    try:
        reg = yaml.safe_load(open(path, encoding="utf-8"))
    except FileNotFoundError:
        return problem(f"no {path}: scripts/aqua-registry did not run")
    pkg = reg["packages"][0]
    envs = sorted({f"{a.goos}/{a.goarch}" for a in found})
    if sorted(pkg.get("supported_envs", [])) != envs:
        problem(f"aqua-registry.yaml supported_envs {pkg.get('supported_envs')} are not the archives' {envs}")
    check_aqua_entry("aqua (kcc)", pkg, dist, project.version, envs, pkg["checksum"]["asset"], True)
    check_aqua_entry("aqua (Go kcc's entry)", GO_KCC_AQUA, dist, project.version, envs, "checksums.txt", False)
    for a in found:
        if (a.goos, a.goarch) not in UNAME:
            continue
        s, m = UNAME[a.goos, a.goarch]
        asset = f"kube-credential-cache_{project.version}_{s}_{m}.tar.gz"
        p = os.path.join(dist, asset)
        if not os.path.isfile(p):
            problem(f"asdf (Go kcc's plugin) on {s} {m}: no {asset}")
            continue
        members = entries(p)
        for name in ("kcc-cache", "kcc-injector"):
            if members.get(name) != "link" or tar_link_target(p, name) != "kcc" or members.get("kcc") != "file":
                problem(f"asdf on {s} {m}: {asset} does not hold {name} -> kcc beside kcc at its root")
        ok(f"asdf (Go kcc's plugin) {s} {m}: {asset} holds kcc-cache, kcc-injector -> kcc")


# --- Scoop ------------------------------------------------------------------

def check_scoop(project, dist, found):
    windows = [a for a in found if a.goos == "windows"]
    path = os.path.join(dist, "kcc.json")
    if not windows:
        return ok("scoop: no Windows zip here, no manifest expected")
    try:
        manifest = json.load(open(path, encoding="utf-8"))
    except FileNotFoundError:
        return problem(f"no {path}: scripts/scoop-manifest did not run")
    if manifest.get("version") != project.version:
        problem(f"kcc.json version {manifest.get('version')!r} is not {project.version!r}")
    want_bin = ["kcc.exe", ["kcc.exe", "kcc-cache", "cache"], ["kcc.exe", "kcc-injector", "inject"]]
    if manifest.get("bin") != want_bin:
        problem(f"kcc.json bin is {manifest.get('bin')}, not {want_bin}")
    for a in windows:
        arch = {"amd64": "64bit", "arm64": "arm64"}[a.goarch]
        entry = manifest.get("architecture", {}).get(arch)
        if not entry:
            problem(f"kcc.json has no architecture.{arch} for {a.file_name}")
            continue
        if entry["url"].rsplit("/", 1)[-1] != a.file_name:
            problem(f"kcc.json {arch} url '{entry['url']}' does not name {a.file_name}")
        if entry["hash"] != sha256(os.path.join(dist, a.file_name)):
            problem(f"kcc.json {arch} hash is not {a.file_name}'s sha256")
        members = entries(os.path.join(dist, a.file_name))
        exe = f"{entry.get('extract_dir')}/kcc.exe"
        if members.get(exe) != "file":
            problem(f"kcc.json {arch}: extract_dir '{entry.get('extract_dir')}' has no kcc.exe in {a.file_name}")
        else:
            ok(f"scoop {arch}: {a.file_name} (hash matches) -> {exe}; shims kcc, kcc-cache, kcc-injector")


def main():
    if len(sys.argv) != 2:
        print("usage: pkg/tests/check_manifests.py DIST_DIR", file=sys.stderr)
        sys.exit(2)
    dist = sys.argv[1]
    project = pkglib.Project(TOOL)
    found = pkglib.archives(TOOL, dist, project.version)
    if not found:
        pkglib.fail(TOOL, f"no kcc-{project.version}-<triple> archive in '{dist}': run scripts/dist")
    check_binstall(project, dist, found)
    check_aqua(project, dist, found)
    check_scoop(project, dist, found)
    if problems:
        print(f"{TOOL}: {len(problems)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print(f"{TOOL}: every manifest names files scripts/dist wrote, with their hashes")


if __name__ == "__main__":
    main()
