"""The builtin model's tokenizer, trained here (stickerworld is the only place that trains).

A real byte-pair tokenizer in CLIP's format (`</w>` word ends, start/end tokens), trained on
the prompt vocabulary and the training captions, because no pretrained CLIP vocabulary can
be downloaded here. It ships with the weights (`seal_runtime/models/builtin_model/tokenizer`).
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from transformers import PreTrainedTokenizerFast

from seal_runtime.models.builtin_architecture import MAX_PROMPT_TOKENS

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train a CLIP-style BPE tokenizer on `corpus` (prompts or words)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=EOS_TOKEN, end_of_word_suffix="</w>"))
    # CLIP lower-cases and drops nothing but whitespace; we also fold punctuation to
    # spaces so "beach," and "beach" are one token, as in the prompt parser.
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Lowercase(), normalizers.Replace(Regex(r"[^a-z0-9'<>\- ]"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS_TOKEN, EOS_TOKEN],
        end_of_word_suffix="</w>",
        initial_alphabet=list(string.ascii_lowercase + string.digits),
        show_progress=False,
    )
    # Every character also as a one-letter word, so any unknown word still spells out.
    alphabet_words = " ".join(string.ascii_lowercase + string.digits)
    tok.train_from_iterator([*corpus, alphabet_words], trainer)
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    bos, eos = tok.token_to_id(BOS_TOKEN), tok.token_to_id(EOS_TOKEN)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A {EOS_TOKEN}", special_tokens=[(BOS_TOKEN, bos), (EOS_TOKEN, eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=MAX_PROMPT_TOKENS,
    )


def vocabulary_corpus() -> list[str]:
    """Every phrase and synonym of the prompt schema, plus one caption per value."""
    from bot.schema.prompt_builder import build_prompt
    from bot.schema.sticker_request import StickerRequest
    from bot.schema.vocabulary import ALL_VOCABULARIES

    corpus = []
    for vocabulary in ALL_VOCABULARIES:
        for value in vocabulary.values:
            corpus.extend([value.phrase, *value.spellings()])
    corpus.append(build_prompt(StickerRequest()))
    return corpus
