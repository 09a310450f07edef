"""A local model's identity: a hash of what it computes with, not of where it lies.

The model id is part of every embedding cache key. Taken from the folder name, two
different models in folders both called `sd15` would share cached concepts, and
replacing a folder's weights would keep serving concepts learned on the old ones. So a
local diffusers folder is identified by a SHA-256 over its configs, tokenizer files and
weight files (relative path, size and content of each, in a fixed order).

Hashing reads every weight file once at start-up (about a second per 1-2 GB on a
server disk); it happens while the model loads anyway.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# What decides a model's output: configs, tokenizer vocabularies and weights.
IDENTITY_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".model")
CHUNK = 4 * 2**20


def identity_files(folder: Path) -> list[Path]:
    """The files that make up the model, in a fixed order (hidden folders and files skipped)."""
    folder = Path(folder)
    files = [path for path in folder.rglob("*")
             if path.is_file() and path.suffix in IDENTITY_SUFFIXES
             and not any(part.startswith(".") for part in path.relative_to(folder).parts)]
    return sorted(files, key=lambda path: path.relative_to(folder).as_posix())


def model_fingerprint(folder: Path) -> str:
    """Hex SHA-256 over the model's configs and weights (see the module docstring)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    files = identity_files(folder)
    if not files:
        raise ValueError(f"{folder} holds no model files (configs or weights)")
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def local_model_id(folder: Path, kind: str = "sd") -> str:
    return f"{kind}-{model_fingerprint(folder)[:16]}"
