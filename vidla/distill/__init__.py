"""VidLanKD in vidla (SPEC 5.3): a text-only student distilled from the text tower of a trained vidla model.

    from vidla.distill import DistillTrainer, load_distill_config, load_student
    config = load_distill_config(None, ["teacher=runs/demo/hta/model.safetensors", "corpus=[corpus.txt]"])
    DistillTrainer(config).run()                        # output_dir/student.safetensors
    student = load_student("runs/distill/student.safetensors")
    features = student.encode(token_ids)                # [B, width]
"""

import importlib
from typing import Any

# Imported on first use, so that `vidla --help` does not pay for the trainer's imports.
_EXPORTS = {
    "DistillConfig": "config", "LossSection": "config", "load_distill_config": "config", "mlm_only": "config",
    "CRDLoss": "losses", "DistillHead": "losses", "nst_loss": "losses", "nt_xent_loss": "losses",
    "MaskingConfig": "masking", "mask_tokens": "masking",
    "StudentConfig": "student", "TextStudent": "student", "load_student": "student", "save_student": "student",
    "TextTeacher": "teacher", "load_teacher": "teacher", "DistillTrainer": "trainer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vidla.distill' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vidla.distill.{_EXPORTS[name]}"), name)
