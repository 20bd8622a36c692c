"""Reads delivered shards the way a training job would, and prints what it found as JSON on stdout.

Usage: read_shards.py SHARD...   Every member through the standard library's tarfile, and every sample through
the webdataset package (a pure-Python reader from PyPI): {"tarfile": {name: md5}, "webdataset": {key.ext: md5},
"samples": N}. A name seen twice is an error (exit 1).
"""
import hashlib
import json
import sys
import tarfile

import webdataset as wds


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def main(paths: list[str]) -> int:
    by_tarfile: dict[str, str] = {}
    for path in paths:
        with tarfile.open(path, mode="r:") as archive:
            for member in archive:
                if not member.isfile():
                    raise SystemExit(f"{path}: {member.name} is not a regular file")
                if member.name in by_tarfile:
                    raise SystemExit(f"{member.name} is in two shards")
                by_tarfile[member.name] = md5(archive.extractfile(member).read())
    by_wds: dict[str, str] = {}
    samples = 0
    for sample in wds.WebDataset(paths, shardshuffle=False, empty_check=False):
        samples += 1
        for ext, value in sample.items():
            if ext.startswith("__"):
                continue
            name = f"{sample['__key__']}.{ext}"
            if name in by_wds:
                raise SystemExit(f"webdataset gave {name} twice (a sample split between shards?)")
            by_wds[name] = md5(value)
    json.dump({"tarfile": by_tarfile, "webdataset": by_wds, "samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
