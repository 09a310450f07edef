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
PIXEL_SHUFFLE = 4
# Training captions name the subject "a <identity words> character" (bot.prompt_builder
# with stickerworld's subject words); the learned concept takes the same slot.
CONCEPT_PHRASE = "a {} character"
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
    """SD 1.5's block layout, scaled down: cross-attention in the two upper levels and the
    mid block, a plain level at the bottom, working on 16 x 16 x 48 "latents" (64-px
    pixels folded 4 x 4 into channels, see DiffusionBackbone.pixel_shuffle).

    Self-attention on full 64 x 64 pixels cost 2.8 s per adaptation step on this CPU;
    at 16 x 16 it costs milliseconds. The shallowest cross-attention layers are the
    16 x 16 ones (`down_blocks.0`, `up_blocks.2`), SEAL's "Layer 0" of this model."""
    side = BUILTIN_RESOLUTION // PIXEL_SHUFFLE
    return dict(
        sample_size=side,
        in_channels=3 * PIXEL_SHUFFLE**2,
        out_channels=3 * PIXEL_SHUFFLE**2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(48, 96, 96),
        layers_per_block=1,
        attention_head_dim=24,
        cross_attention_dim=TEXT_HIDDEN,
        norm_num_groups=16,
    )


def noise_scheduler() -> DDPMScheduler:
    """v-prediction: an under-trained small model then draws blurry shapes rather than
    noise, and a cosine schedule suits small images."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction", clip_sample=False
    )


def build_random_builtin(seed: int = 0):
    """Untrained builtin components from configs (tests and the pre-training fallback)."""
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(vocabulary_corpus())
    text_encoder = CLIPTextModel(text_encoder_config(len(tokenizer)))
    unet = UNet2DConditionModel(**unet_config())
    return tokenizer, text_encoder, unet, noise_scheduler()
