"""The builtin model: a small text-to-image model made of SD-1.5's component types.

It has the same parts as Stable Diffusion 1.5 — a CLIP text encoder with a BPE
tokenizer, a `UNet2DConditionModel` with cross-attention in down, mid and up
blocks, a DDPM noise schedule — so the SEAL code runs on it unchanged. It works
in pixel space (no VAE) at a small resolution so it trains and samples on a laptop
CPU. The tokenizer is a real byte-pair tokenizer trained on the prompt vocabulary,
in CLIP's format (`</w>` word ends, start/end tokens), because no pretrained CLIP
vocabulary can be downloaded here.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"

# Sizes of the builtin model; the trained weights shipped in seal_runtime/builtin_model
# carry their own configs, these are used to build it from scratch.
BUILTIN_RESOLUTION = 64
TEXT_HIDDEN = 128
MAX_PROMPT_TOKENS = 48


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
    from bot.prompt_builder import build_prompt
    from bot.sticker_request import StickerRequest
    from bot.vocabulary import ALL_VOCABULARIES

    corpus = []
    for vocabulary in ALL_VOCABULARIES:
        for value in vocabulary.values:
            corpus.extend([value.phrase, *value.spellings()])
    corpus.append(build_prompt(StickerRequest()))
    return corpus


def text_encoder_config(vocab_size: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=TEXT_HIDDEN * 4,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=MAX_PROMPT_TOKENS,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )


def unet_config() -> dict:
    """Three resolutions (64, 32, 16); cross-attention at 32 and 16 and in the mid block.

    Self-attention over all 64 x 64 = 4096 pixels costs seconds per step on a CPU, so
    the full-resolution level has convolutions only (measured: 2.8 s per adaptation
    step with attention there). The shallowest attention layers are then the 32 x 32
    ones (`down_blocks.1`, `up_blocks.1`), which SEAL's layer restriction treats as
    SD's 64 x 64 "Layer 0"."""
    return dict(
        sample_size=BUILTIN_RESOLUTION,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        attention_head_dim=8,
        cross_attention_dim=TEXT_HIDDEN,
        norm_num_groups=8,
    )


def noise_scheduler() -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon", clip_sample=False
    )


def build_random_builtin(seed: int = 0):
    """Untrained builtin components from configs (tests and the pre-training fallback)."""
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(vocabulary_corpus())
    text_encoder = CLIPTextModel(text_encoder_config(len(tokenizer)))
    unet = UNet2DConditionModel(**unet_config())
    return tokenizer, text_encoder, unet, noise_scheduler()
