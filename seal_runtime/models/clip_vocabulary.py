"""A CLIP tokenizer written by hand, in CLIP's own file layout, for models built offline.

OpenAI CLIP's `vocab.json` starts with the 256 byte characters of GPT-2's byte-to-unicode
table, then the same 256 with `</w>` (end of word), then one entry per BPE merge in rank
order, then `<|startoftext|>` and `<|endoftext|>`; `merges.txt` starts with a
`#version: 0.2` line. `CLIPTokenizer.from_pretrained(folder)` reads exactly these two
files, as it does for Stable Diffusion 1.5's `tokenizer/` folder.

The real vocabulary (49,408 entries) cannot be downloaded here, so the merges are learned
on a short word list (standard BPE: merge the most frequent adjacent pair until every
listed word is one token). Any other text still encodes, as single byte tokens.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"

# Words of sticker prompts (the bot's vocabulary and the adaptation templates), so prompts
# tokenize into whole words as they would with CLIP's real vocabulary.
STICKER_WORDS = ["a", "an", "of", "the", "in", "on", "with", "and", "sticker", "picture", "drawing", "showing", "cute", "character", "photo", "happy", "sad", "angry", "surprised", "sleepy", "love", "smiling", "face", "crying", "tears", "heart", "eyes", "standing", "waving", "jumping", "thumbs", "up", "sitting", "dancing", "full", "body", "close", "upper", "wide", "shot", "bold", "outline", "flat", "shaded", "pastel", "plain", "background", "beach", "forest", "night", "sky", "city", "room", "white", "transparent", "simple", "centred", "centered", "style", "colours", "colors", "cartoon"]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP's reversible byte -> printable character table."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def learn_merges(words: Iterable[str]) -> list[tuple[str, str]]:
    """BPE merges, in rank order, that make each word a single token (ties broken by the pair)."""
    table = bytes_to_unicode()
    spelled = {}
    for word in dict.fromkeys(w.lower() for w in words):
        symbols = [table[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        spelled[word] = symbols
    merges: list[tuple[str, str]] = []
    while True:
        pairs = Counter(pair for symbols in spelled.values() for pair in pairwise(symbols))
        if not pairs:
            return merges
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        for word, symbols in spelled.items():
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            spelled[word] = merged


def write_clip_tokenizer(folder: Path, words: Iterable[str] = STICKER_WORDS, *, max_length: int = 77) -> None:
    """Write vocab.json, merges.txt and the tokenizer configs of SD 1.5's tokenizer folder."""
    folder.mkdir(parents=True, exist_ok=True)
    merges = learn_merges(words)
    byte_chars = list(bytes_to_unicode().values())
    entries = [*byte_chars, *(c + "</w>" for c in byte_chars), *("".join(m) for m in merges), BOS, EOS]
    vocab = {entry: index for index, entry in enumerate(dict.fromkeys(entries))}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "do_lower_case": True,
              "add_prefix_space": False, "errors": "replace", **special}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
