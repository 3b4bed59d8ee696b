#!/usr/bin/env python3
"""Builds the image suite's fixtures and pushes them to a registry.

  fixtures.py push URL OUT.json [ESCAPE_DIR]

Writes every image directly as OCI (or Docker schema-2) blobs and manifests
(tar layers made with tarfile, so hostile entries are exact; zstd through the
zstd tool) and pushes them with the distribution API (monolithic uploads).
OUT.json records digests the tests need.  ESCAPE_DIR is the host directory
the hostile symlink layer points at.  Offline and deterministic."""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
D_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
D_CONFIG = "application/vnd.docker.container.image.v1+json"
D_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

URL = sys.argv[2]
OUT = {}


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def req(method, url, data=None, ctype=None):
    r = urllib.request.Request(url, data=data, method=method)
    if ctype:
        r.add_header("Content-Type", ctype)
    return urllib.request.urlopen(r)


def push_blob(repo, data):
    d = sha(data)
    loc = req("POST", f"{URL}/v2/{repo}/blobs/uploads/").headers["Location"]
    if loc.startswith("/"):
        loc = URL + loc
    req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d, data, "application/octet-stream")
    return {"digest": d, "size": len(data)}


def push_manifest(repo, ref, obj, mtype):
    data = json.dumps(obj, separators=(",", ":")).encode()
    req("PUT", f"{URL}/v2/{repo}/manifests/{ref}", data, mtype)
    return {"mediaType": mtype, "digest": sha(data), "size": len(data)}


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, **kw):
    return (name, kind, data, mode, kw)


def make_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data, mode, kw in entries:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.mode = mode
            ti.mtime = 1700000000
            for k, v in kw.items():
                setattr(ti, k, v)
            if kind == tarfile.REGTYPE:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()


def compress(tar, how):
    if how == "none":
        return tar
    if how == "gzip":
        return gzip.compress(tar, mtime=0)
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=tar, stdout=subprocess.PIPE, check=True).stdout


def image(repo, tag, layers, docker=False, arch="amd64", config_extra=None, push=True):
    """layers: list of (entries, compression).  Returns the manifest descriptor."""
    descs, diff_ids = [], []
    for entries, how in layers:
        tar = make_tar(entries)
        blob = compress(tar, how)
        diff_ids.append(sha(tar))
        d = push_blob(repo, blob)
        d["mediaType"] = D_GZIP if docker else {"zstd": OCI_ZSTD, "gzip": OCI_GZIP, "none": OCI_TAR}[how]
        descs.append(d)
    config = {"architecture": arch, "os": "linux",
              "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["sh"], "WorkingDir": "/"},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config.update(config_extra or {})
    cdata = json.dumps(config, sort_keys=True).encode()
    c = push_blob(repo, cdata)
    c["mediaType"] = D_CONFIG if docker else OCI_CONFIG
    mtype = D_MANIFEST if docker else OCI_MANIFEST
    man = {"schemaVersion": 2, "mediaType": mtype, "config": c, "layers": descs}
    return push_manifest(repo, tag, man, mtype)


def busybox_layer():
    bb = open("/bin/busybox", "rb").read()
    e = [entry("bin/", tarfile.DIRTYPE, mode=0o755), entry("bin/busybox", data=bb, mode=0o755),
         entry("etc/", tarfile.DIRTYPE, mode=0o755), entry("etc/os-release", data=b"ID=fixture\n"),
         entry("tmp/", tarfile.DIRTYPE, mode=0o1777)]
    for tool in ("sh", "echo", "cat", "ls", "true"):
        e.append(entry("bin/" + tool, tarfile.SYMTYPE, linkname="busybox", mode=0o777))
    return e


def dynamic_layer(prog):
    """prog and every library it loads (from ldd), at their own paths."""
    paths = [prog]
    for line in subprocess.run(["ldd", prog], capture_output=True, text=True, check=True).stdout.splitlines():
        for word in line.split():
            if word.startswith("/"):
                paths.append(word)
    e, dirs = [], set()
    for p in paths:
        parts = p.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i]) + "/"
            if d not in dirs:
                dirs.add(d)
                e.append(entry(d, tarfile.DIRTYPE, mode=0o755))
        e.append(entry(p.strip("/"), data=open(os.path.realpath(p), "rb").read(), mode=0o755))
    return e


def main():
    escape = sys.argv[4] if len(sys.argv) > 4 else "/nonexistent"
    bb = busybox_layer()
    OUT["busybox"] = image("test/busybox", "latest", [(bb, "gzip")])["digest"]

    l1 = [entry("a.txt", data=b"layer one\n"), entry("d/", tarfile.DIRTYPE, mode=0o755),
          entry("d/x", data=b"x\n"), entry("d/y", data=b"y\n"),
          entry("suid", data=b"#!/bin/sh\n", mode=0o4755), entry("sgid", data=b"g\n", mode=0o2755),
          entry("hl", tarfile.LNKTYPE, linkname="a.txt"), entry("ln", tarfile.SYMTYPE, linkname="a.txt"),
          entry("ro/", tarfile.DIRTYPE, mode=0o555), entry("ro/f", data=b"in a read-only dir\n"),
          entry("keep.txt", data=b"kept\n"),
          entry("xa", data=b"x\n", pax_headers={"SCHILY.xattr.user.test": "kept",
                                                 "SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
                                                 "SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                                 "SCHILY.xattr.user.overlay.opaque": "y"})]
    l2 = [entry(".wh.a.txt", data=b""), entry("d/", tarfile.DIRTYPE, mode=0o755),
          entry("d/.wh..wh..opq", data=b""), entry("d/new", data=b"new\n"),
          entry("dev/", tarfile.DIRTYPE, mode=0o755),
          entry("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
          entry("dev/sda", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0),
          entry("fifo", tarfile.FIFOTYPE, mode=0o644)]
    OUT["layers"] = image("test/layers", "latest", [(l1, "gzip"), (l2, "zstd")])["digest"]
    OUT["layers_v2s2"] = image("test/layers", "v2s2", [(l1, "gzip")], docker=True)["digest"]

    # An index: an attestation entry first (it must be skipped), then
    # amd64 and arm64 images.
    arm = image("test/multi", "arm64-only", [([entry("arch", data=b"arm64\n")], "gzip")], arch="arm64")
    amd = image("test/multi", "amd64-only", [(bb, "gzip")])
    att = image("test/multi", "att", [([entry("attestation.json", data=b"{}")], "gzip")], arch="unknown",
                config_extra={"os": "unknown"})
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        dict(att, platform={"os": "unknown", "architecture": "unknown"},
             annotations={"vnd.docker.reference.type": "attestation-manifest"}),
        dict(amd, platform={"os": "linux", "architecture": "amd64"}),
        dict(arm, platform={"os": "linux", "architecture": "arm64", "variant": "v8"})]}
    OUT["multi_index"] = push_manifest("test/multi", "latest", idx, OCI_INDEX)["digest"]
    OUT["multi_amd64"] = amd["digest"]
    OUT["multi_arm64"] = arm["digest"]
    darm = image("test/multi", "d-arm64", [([entry("arch", data=b"arm64\n")], "gzip")], docker=True, arch="arm64")
    damd = image("test/multi", "d-amd64", [(bb, "gzip")], docker=True)
    dl = {"schemaVersion": 2, "mediaType": D_LIST, "manifests": [
        dict(damd, platform={"os": "linux", "architecture": "amd64"}),
        dict(darm, platform={"os": "linux", "architecture": "arm64", "variant": "v8"})]}
    OUT["multi_list"] = push_manifest("test/multi", "list", dl, D_LIST)["digest"]
    OUT["multi_list_amd64"] = damd["digest"]

    # Hostile layers.
    OUT["evil_traversal"] = image("evil/traversal", "latest",
                                  [([entry("ok", data=b"ok\n"), entry("../escape-traversal", data=b"pwned\n")],
                                    "gzip")])["digest"]
    OUT["evil_absolute"] = image("evil/absolute", "latest",
                                 [([entry(escape + "/escape-absolute", data=b"pwned\n")], "gzip")])["digest"]
    OUT["evil_symlink"] = image("evil/symlink", "latest",
                                [([entry("link", tarfile.SYMTYPE, linkname=escape, mode=0o777),
                                   entry("link/escape-symlink", data=b"pwned\n")], "gzip")])["digest"]
    OUT["evil_hardlink"] = image("evil/hardlink", "latest",
                                 [([entry("hl", tarfile.LNKTYPE, linkname="../../../../../../etc/passwd")],
                                   "gzip")])["digest"]
    OUT["evil_hardlink_abs"] = image("evil/hardlink-abs", "latest",
                                     [([entry("hl", tarfile.LNKTYPE, linkname="/etc/passwd")], "gzip")])["digest"]
    OUT["evil_dotdot_inner"] = image("evil/dotdot", "latest",
                                     [([entry("a/", tarfile.DIRTYPE, mode=0o755),
                                        entry("a/../../escape-dotdot", data=b"pwned\n")], "gzip")])["digest"]

    OUT["plain_tar"] = image("test/plain-tar", "latest", [([entry("plain", data=b"uncompressed\n")], "none")])["digest"]
    # A layer bigger than the tests' size limit (2 MB of content).
    OUT["big"] = image("test/big", "latest", [([entry("big", data=b"\0" * (2 << 20))], "gzip")])["digest"]
    # An image whose layer blob the test corrupts in the registry's storage.
    t = image("test/tampered", "latest", [([entry("f", data=b"genuine content\n")], "gzip")])
    OUT["tampered"] = t["digest"]
    man = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{URL}/v2/test/tampered/manifests/latest", headers={"Accept": OCI_MANIFEST})).read())
    OUT["tampered_layer"] = man["layers"][0]["digest"]
    # A private image for the token server's policy.
    OUT["private"] = image("private/busybox", "latest", [(bb, "gzip")])["digest"]
    # Images that sandboxes run: a second layer adds a marker and whites out
    # one of busybox's links; the config names Env, Entrypoint, Cmd, WorkingDir.
    run_l2 = [entry("etc/", tarfile.DIRTYPE, mode=0o755), entry("etc/marker", data=b"from-the-image\n"),
              entry("bin/", tarfile.DIRTYPE, mode=0o755), entry("bin/.wh.ls", data=b""),
              entry("srv/", tarfile.DIRTYPE, mode=0o755), entry("srv/here", data=b"workdir\n")]
    OUT["run"] = image("test/run", "latest", [(bb, "gzip"), (run_l2, "gzip")],
                       config_extra={"config": {"Env": ["PATH=/bin:/usr/bin", "FOO=from-image"],
                                                "Entrypoint": ["echo"], "Cmd": ["default", "cmd"],
                                                "WorkingDir": "/srv"}})["digest"]
    # What `--image auto` names, served through a docker.io mirror.
    for repo, tag, which in (("library/node", "22-alpine", "node"), ("library/python", "3.12-alpine", "python"),
                             ("library/alpine", "3.20", "alpine")):
        OUT["auto_" + which] = image(repo, tag, [(bb, "gzip"), ([entry("etc/", tarfile.DIRTYPE, mode=0o755),
                                                                 entry("etc/which", data=which.encode() + b"\n")],
                                                                "gzip")])["digest"]
    # A glibc (Debian) image: the host's bash with the libraries it links.
    OUT["glibc"] = image("test/glibc", "latest", [(dynamic_layer("/bin/bash"), "gzip")])["digest"]
    # A musl (Alpine-style) image: a program linked against musl's dynamic loader.
    if shutil.which("musl-gcc"):
        with tempfile.TemporaryDirectory() as t:
            open(t + "/hello.c", "w").write('#include <stdio.h>\nint main(void){puts("hello from musl");return 0;}\n')
            subprocess.run(["musl-gcc", "-o", t + "/hello", t + "/hello.c"], check=True)
            musl = [entry("bin/", tarfile.DIRTYPE, mode=0o755),
                    entry("bin/hello", data=open(t + "/hello", "rb").read(), mode=0o755),
                    entry("lib/", tarfile.DIRTYPE, mode=0o755),
                    entry("lib/ld-musl-x86_64.so.1", data=open(os.path.realpath("/lib/ld-musl-x86_64.so.1"), "rb").read(),
                          mode=0o755)]
        OUT["musl"] = image("test/musl", "latest", [(musl, "gzip")])["digest"]
    json.dump(OUT, open(sys.argv[3], "w"), indent=1)


if __name__ == "__main__":
    main()
