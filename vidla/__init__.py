"""vidla: video-language alignment at scale (the VidLA system on PyTorch).

    import vidla
    model = vidla.load_model("path/to/clip")          # Hugging Face folder, OpenAI .pt, open_clip, vidla
    text = model.encode_text(["a dog catches a frisbee"])
    video = model.encode_video(frames)                 # [B, T, 3, H, W], CLIP-normalised
"""

__version__ = "0.1.0"

from vidla.models import (  # noqa: E402
    CheckpointError,
    CLIPTokenizer,
    ModelConfig,
    VidLA,
    create_model,
    list_models,
    load_model,
    save_model,
)

from vidla.data import load_benchmark, load_video, preprocess_video, read_clip  # noqa: E402

__all__ = ["CLIPTokenizer", "CheckpointError", "ModelConfig", "VidLA", "__version__", "create_model",
           "list_models", "load_benchmark", "load_model", "load_video", "preprocess_video", "read_clip", "save_model"]
