"""Tiny models of the real architectures, built from configs with random weights and saved the
way a hub download is laid out, so the tests drive the real `from_pretrained` loading code.

No hub is reachable here: tokenizers are built locally (a word-level tokenizer over a small
vocabulary made with the `tokenizers` library), image processors from their classes. Every model
is seeded, so two builds give the same weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    GPT2Config,
    PretrainedConfig,
    PreTrainedTokenizerFast,
    TrOCRConfig,
    ViTConfig,
    ViTImageProcessor,
    ViTModel,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
    YolosConfig,
    YolosForObjectDetection,
    YolosImageProcessor,
)

from processors.ml.species import load_labels

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
WORDS = (
    "a photo of the an and with in on at red green blue black white dog cat bird tree flower "
    "car house person face text sign sunset beach mountain city street snow water sky"
).split()


def vocabulary() -> list[str]:
    """Specials, the test words, and every word of the shipped species labels."""
    words = dict.fromkeys(WORDS)
    for label in load_labels():
        for word in re.findall(r"[\w']+|[^\w\s]", label.prompt.lower()):
            words.setdefault(word)
    return SPECIALS + [w for w in words if w not in SPECIALS]


def build_tokenizer(out: Path, max_length: int = 32) -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", model_max_length=max_length,
    )
    fast.save_pretrained(out)
    return fast


def build_clip(out: Path, *, hidden: int = 32, layers: int = 2, image_size: int = 32,
               patch: int = 8, projection: int = 16, seed: int = 0) -> Path:
    """A CLIP (ViT image tower + causal text tower) with a local tokenizer and image processor."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
            num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=32,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
            num_attention_heads=4, image_size=image_size, patch_size=patch,
        ),
        projection_dim=projection,
    )
    CLIPModel(config).eval().save_pretrained(out)
    CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
    ).save_pretrained(out)
    return out


def build_trocr(out: Path, seed: int = 1) -> Path:
    """A TrOCR-style recogniser: ViT encoder, TrOCR decoder, for text-line crops."""
    return _build_vit_encoder_decoder(out, seed, lambda tokenizer: TrOCRConfig(
        vocab_size=len(tokenizer), d_model=32, decoder_layers=2, decoder_attention_heads=4,
        decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id))


def build_captioner(out: Path, seed: int = 2) -> Path:
    """A ViT + GPT-2 captioner (VisionEncoderDecoder), the nlpconnect/vit-gpt2 layout."""
    return _build_vit_encoder_decoder(out, seed, lambda tokenizer: GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=64,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))


def _build_vit_encoder_decoder(out: Path, seed: int,
                               decoder_for: Callable[[PreTrainedTokenizerFast], PretrainedConfig]) -> Path:
    """A tiny ViT encoder with the decoder `decoder_for` configures for the saved tokenizer, as a
    VisionEncoderDecoder model with its tokenizer and image processor in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out)
    torch.manual_seed(seed)
    encoder = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, image_size=32, patch_size=8)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder_for(tokenizer))
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    VisionEncoderDecoderModel(config=config).eval().save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def build_face_models(out: Path, seed: int = 3, label: str = "face") -> Path:
    """A face detector (YOLOS, one label `face`) and a face embedder (ViT), in `detector/` and
    `embedder/` of one directory: the layout `DARKROOM_MODEL_FACE` names."""
    torch.manual_seed(seed)
    detector = YolosConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, image_size=[64, 64], patch_size=16,
                           num_detection_tokens=6, num_labels=1, id2label={0: label},
                           label2id={label: 0})
    YolosForObjectDetection(detector).eval().save_pretrained(out / "detector")
    YolosImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}).save_pretrained(out / "detector")
    embedder = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, image_size=32, patch_size=8)
    ViTModel(embedder).eval().save_pretrained(out / "embedder")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out / "embedder")
    return out


def build_all(root: Path) -> dict[str, Path]:
    """Every task's model under `root`; the species task reuses the CLIP model (zero-shot)."""
    clip = build_clip(root / "clip")
    return {
        "clip": clip,
        "species": clip,
        "ocr": build_trocr(root / "ocr"),
        "face": build_face_models(root / "face"),
        "caption": build_captioner(root / "caption"),
    }


_BUILT: dict[str, dict[str, Path]] = {}


def models_once(root: Path) -> dict[str, Path]:
    """Build every tiny model once per test session (the first caller's root is kept)."""
    if "all" not in _BUILT:
        _BUILT["all"] = build_all(root)
    return _BUILT["all"]


def text_image(lines: list[tuple[int, int, str]], size: tuple[int, int] = (640, 240)) -> Image.Image:
    """Black text on white at (x, y): a page for the OCR detector."""
    from PIL import ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=28)
    for x, y, text in lines:
        draw.text((x, y), text, fill="black", font=font)
    return image


def coloured_images(n: int, size: int = 48) -> list[Image.Image]:
    """n distinct small pictures (colour blocks and stripes), deterministic."""
    import numpy as np

    rng = np.random.default_rng(42)
    out = []
    for _ in range(n):
        array = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        array[: size // 2] = rng.integers(0, 256, size=3, dtype=np.uint8)
        out.append(Image.fromarray(array, "RGB"))
    return out
