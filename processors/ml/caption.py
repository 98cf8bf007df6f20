"""Captions: an AI description of a photo, or of a video's sampled frames.

Any image-to-text generator transformers loads: a `VisionEncoderDecoderModel` (ViT + GPT-2, as
nlpconnect/vit-gpt2-image-captioning) or BLIP (Salesforce/blip-image-captioning-base) through
`AutoModelForImageTextToText`. Frames of one video are captioned in one batch; the video's
caption is its distinct frame captions in time order.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

MAX_NEW_TOKENS = 30


class Captioner:
    def __init__(self, choice: Any) -> None:
        from transformers import AutoConfig

        from processors.ml.clip import model_id_of
        from processors.ml.models import model_path, pretrained_kwargs

        path, kwargs = model_path(choice.model), pretrained_kwargs(choice.model)
        config = AutoConfig.from_pretrained(path, **kwargs)
        if config.model_type == "vision-encoder-decoder":
            from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

            self.model = VisionEncoderDecoderModel.from_pretrained(path, **kwargs)
            self.image_processor = AutoImageProcessor.from_pretrained(path, **kwargs)
            self.tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        else:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self.model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
            processor = AutoProcessor.from_pretrained(path, **kwargs)
            self.image_processor = processor.image_processor
            self.tokenizer = processor.tokenizer
        self.model = self.model.to(choice.device).eval()
        self.device = choice.device
        self.batch_size = choice.batch_size
        self.model_id = model_id_of(choice.model)

    def caption(self, images: list[Image.Image], max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
        """One caption per image, in order, `batch_size` images per generate call (greedy)."""
        import torch

        from processors.ml.models import batches

        out: list[str] = []
        for batch in batches(images, self.batch_size):
            pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                sequences = self.model.generate(pixel_values=pixels.to(self.device),
                                                max_new_tokens=max_new_tokens, num_beams=1,
                                                do_sample=False)
            out += [" ".join(t.split()) for t in self.tokenizer.batch_decode(sequences, skip_special_tokens=True)]
        return out


def process_caption(job: Any, model: str | None = None, device: str | None = None,
                    batch_size: str | None = None, threads: str | None = None) -> dict[str, Any]:
    from processors.ml import skipped_reason
    from processors.ml.images import NoPictures, job_images
    from processors.ml.models import cached, choice_for

    choice = choice_for("process_caption", model, device, batch_size, threads)
    if not choice.model:
        return {"skipped": skipped_reason("process_caption")}
    try:
        images = job_images(job)
    except NoPictures as e:
        return {"skipped": str(e)}
    captioner = cached("caption", choice.model, choice.device, lambda: Captioner(choice))
    captions = captioner.caption(images)
    distinct = list(dict.fromkeys(c for c in captions if c))
    return {"model": captioner.model_id, "caption": "; ".join(distinct), "frames": captions}
