"""Models: CLIP towers, temporal designs, the VidLA two-tower model, checkpoint loading."""

from vidla.models.checkpoints import CheckpointError
from vidla.models.config import (FrameSelectionConfig, ModelConfig, TextConfig, VisionConfig, get_model_config,
                                  list_models)
from vidla.models.factory import create_model, load_model, save_model
from vidla.models.tokenizer import CLIPTokenizer
from vidla.models.vidla import VidLA

__all__ = ["CLIPTokenizer", "CheckpointError", "FrameSelectionConfig", "ModelConfig", "TextConfig", "VidLA",
           "VisionConfig", "create_model", "get_model_config", "list_models", "load_model", "save_model"]
