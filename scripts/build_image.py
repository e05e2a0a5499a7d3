#!/usr/bin/env python3
"""Writes signet's container image into an OCI image layout, reproducibly, with the standard
library only (no Docker, no buildah).

    python3 scripts/build_image.py --binary target/image/signet --output DIR \
        --epoch 1767225600 --revision GIT_SHA --version 0.1.0 \
        --source https://github.com/signet-dev/signet [--ref-name 0.1.0] \
        [--provenance FILE]

Two layers, each an uncompressed tar gzip-compressed with mtime 0 and no file name:
  1. the runtime: the shared libraries the binary links (as `ldd` lists them, at those paths),
     Debian's CA bundle, /etc/passwd and /etc/group with a non-root user 65532, nsswitch.conf,
     /tmp and the user's home;
  2. signet itself, /usr/local/bin/signet.
Entries are sorted, owned by 0:0 (the home by 65532), dated at --epoch (SOURCE_DATE_EPOCH),
with normalised modes; the config and manifest carry the OCI annotations; nothing names the
build host. The same inputs give the same bytes, so the same digests. Prints the manifest
digest on stdout; with --provenance, also writes the SLSA v1 provenance predicate (what went
in: the binary's and every file's sha256, the Debian package and version each file came from,
the git revision, rustc's and cargo's versions) for `signet attest --type slsaprovenance1`.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

USER_ID = 65532
USER_NAME = "nonroot"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BINARY_PATH = "/usr/local/bin/signet"
HOME = "/home/nonroot"

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def canonical(obj):
    """JSON with sorted keys and no spaces: the same object always gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def linked_libraries(binary):
    """The absolute paths `ldd` lists for binary (the loader included; linux-vdso has none)."""
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    if "not a dynamic executable" in out or "statically linked" in out:
        return []
    paths = []
    for line in out.splitlines():
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        for word in line.split():
            if word.startswith("/") and word not in paths:
                paths.append(word)
    return sorted(paths)


def debian_package(path):
    """(package, version) that installed path, looked up through its real location too
    (Debian's merged /usr: /lib is a link to usr/lib, and dpkg may know either name)."""
    candidates = [path, os.path.realpath(path)]
    for candidate in list(candidates):
        if candidate.startswith("/usr/"):
            candidates.append(candidate[len("/usr") :])
        else:
            candidates.append("/usr" + candidate)
    for candidate in candidates:
        found = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
        if found.returncode != 0:
            continue
        # "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6" (diversions aside)
        for line in found.stdout.splitlines():
            if ": " in line and not line.startswith("diversion"):
                package = line.split(": ", 1)[0].split(",")[0].strip()
                version = subprocess.run(
                    ["dpkg-query", "-W", "-f=${Version}", package],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                return package, version
    return None, None


class Layer:
    """One reproducible tar layer: entries sorted by path, parents made explicit."""

    def __init__(self, epoch):
        self.epoch = epoch
        self.files = {}  # path (no leading slash) → (bytes, mode, uid)
        self.dirs = {}  # path → (mode, uid)

    def add_dir(self, path, mode=0o755, uid=0):
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts)):
            self.dirs.setdefault("/".join(parts[:i]), (0o755, 0))
        self.dirs[path] = (mode, uid)

    def add_file(self, path, data, mode):
        path = path.strip("/")
        parent = os.path.dirname(path)
        if parent and parent not in self.dirs:
            self.add_dir(parent)
        self.files[path] = (data, mode, 0)

    def tar(self):
        raw = io.BytesIO()
        # USTAR: every path here is short; no PAX records, so no extended times or host names.
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
            entries = [(p, None) for p in self.dirs] + [(p, f) for p, f in self.files.items()]
            for path, file in sorted(entries, key=lambda e: e[0]):
                info = tarfile.TarInfo(path)
                info.mtime = self.epoch
                info.uname = info.gname = ""
                if file is None:
                    mode, uid = self.dirs[path]
                    info.type = tarfile.DIRTYPE
                    info.mode = mode
                    info.uid = info.gid = uid
                    archive.addfile(info)
                else:
                    data, mode, uid = file
                    info.size = len(data)
                    info.mode = mode
                    info.uid = info.gid = uid
                    archive.addfile(info, io.BytesIO(data))
        return raw.getvalue()


def gzipped(data):
    out = io.BytesIO()
    # mtime 0 and an empty file name: the gzip header names neither the build time nor a path.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as z:
        z.write(data)
    return out.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--output", required=True, help="the OCI layout directory (created)")
    parser.add_argument("--epoch", type=int, required=True, help="SOURCE_DATE_EPOCH")
    parser.add_argument("--revision", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--ref-name", help="index.json ref name (default: the version)")
    parser.add_argument("--provenance", help="write the SLSA v1 provenance predicate here")
    parser.add_argument("--rustc-version", default="")
    parser.add_argument("--cargo-version", default="")
    parser.add_argument("--profile", default="image")
    args = parser.parse_args()

    if os.path.exists(args.output) and os.listdir(args.output):
        sys.exit(f"build_image.py: {args.output} exists and is not empty")
    created = datetime.datetime.fromtimestamp(args.epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )

    # --- what goes in ---------------------------------------------------------------------------
    with open(args.binary, "rb") as f:
        binary = f.read()
    runtime = Layer(args.epoch)
    materials = []  # (path in the image, sha256, package, version)
    for lib in linked_libraries(args.binary):
        with open(lib, "rb") as f:  # follows the link: the image gets the file itself
            data = f.read()
        runtime.add_file(lib, data, 0o755)
        materials.append((lib, sha256(data)) + debian_package(lib))
    with open(CA_BUNDLE, "rb") as f:
        data = f.read()
    runtime.add_file(CA_BUNDLE, data, 0o644)
    materials.append((CA_BUNDLE, sha256(data)) + debian_package("/usr/share/ca-certificates"))
    generated = {
        "/etc/passwd": f"root:x:0:0:root:/root:/sbin/nologin\n"
        f"{USER_NAME}:x:{USER_ID}:{USER_ID}:nonroot:{HOME}:/sbin/nologin\n",
        "/etc/group": f"root:x:0:\n{USER_NAME}:x:{USER_ID}:\n",
        # Files first, then DNS; glibc has both built in, so no libnss_* module is needed.
        "/etc/nsswitch.conf": "hosts: files dns\n",
    }
    for path, text in generated.items():
        runtime.add_file(path, text.encode(), 0o644)
    runtime.add_dir("/tmp", 0o1777)
    runtime.add_dir(HOME, 0o700, USER_ID)
    app = Layer(args.epoch)
    app.add_file(BINARY_PATH, binary, 0o755)

    # --- blobs ----------------------------------------------------------------------------------
    blobs = os.path.join(args.output, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        digest = sha256(data)
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    layers, diff_ids = [], []
    for layer in (runtime, app):
        tar = layer.tar()
        diff_ids.append("sha256:" + sha256(tar))
        layers.append(dict(mediaType=MEDIA_LAYER, **put(gzipped(tar))))

    annotations = {
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.source": args.source,
        "org.opencontainers.image.revision": args.revision,
        "org.opencontainers.image.version": args.version,
        "org.opencontainers.image.title": "signet",
        "org.opencontainers.image.description": "Binary Authorization for any OCI registry",
        "org.opencontainers.image.licenses": "Apache-2.0",
    }
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{USER_ID}:{USER_ID}",
            "Entrypoint": [BINARY_PATH],
            "Cmd": ["--help"],
            "Env": [
                "PATH=/usr/local/bin",
                f"SSL_CERT_FILE={CA_BUNDLE}",
                f"HOME={HOME}",
            ],
            "WorkingDir": HOME,
            "Labels": annotations,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": created, "created_by": "scripts/build_image.py: runtime files"},
            {"created": created, "created_by": "scripts/build_image.py: signet"},
        ],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": dict(mediaType=MEDIA_CONFIG, **put(canonical(config))),
        "layers": layers,
        "annotations": annotations,
    }
    manifest_blob = put(canonical(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            dict(
                mediaType=MEDIA_MANIFEST,
                **manifest_blob,
                platform={"architecture": "amd64", "os": "linux"},
                annotations={"org.opencontainers.image.ref.name": args.ref_name or args.version},
            )
        ],
    }
    with open(os.path.join(args.output, "index.json"), "wb") as f:
        f.write(canonical(index))
    with open(os.path.join(args.output, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))

    # --- provenance -----------------------------------------------------------------------------
    if args.provenance:
        repo = re.sub(r"^https://", "git+https://", args.source)
        dependencies = [
            {
                "uri": f"{repo}@{args.revision}",
                "digest": {"gitCommit": args.revision},
            }
        ]
        for path, digest, package, version in materials:
            entry = {"name": path, "digest": {"sha256": digest}}
            if package:
                entry["uri"] = f"pkg:deb/debian/{package.split(':')[0]}@{version}"
                entry["annotations"] = {"debianPackage": package, "debianVersion": version}
            dependencies.append(entry)
        predicate = {
            "buildDefinition": {
                "buildType": "https://github.com/signet-dev/signet/scripts/build-image.sh@v1",
                "externalParameters": {
                    "revision": args.revision,
                    "version": args.version,
                    "cargoProfile": args.profile,
                    "sourceDateEpoch": args.epoch,
                },
                "internalParameters": {
                    "rustc": args.rustc_version,
                    "cargo": args.cargo_version,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": "https://github.com/signet-dev/signet/scripts/build-image.sh"},
                "byproducts": [
                    {
                        "name": BINARY_PATH,
                        "digest": {"sha256": sha256(binary)},
                    }
                ]
                + [
                    {
                        "name": f"layer {i}",
                        "mediaType": layer["mediaType"],
                        "digest": {"sha256": layer["digest"].split(":", 1)[1]},
                    }
                    for i, layer in enumerate(layers)
                ],
            },
        }
        with open(args.provenance, "wb") as f:
            f.write(json.dumps(predicate, indent=2, sort_keys=True).encode() + b"\n")

    print(manifest_blob["digest"])


if __name__ == "__main__":
    main()
