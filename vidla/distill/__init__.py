"""VidLanKD in vidla (SPEC 5.3): a text-only student distilled from the text tower of a trained vidla model.

    from vidla.distill import DistillTrainer, load_distill_config, load_student
    config = load_distill_config(None, ["teacher=runs/demo/hta/model.safetensors", "corpus=[corpus.txt]"])
    DistillTrainer(config).run()                        # output_dir/student.safetensors
    student = load_student("runs/distill/student.safetensors")
    features = student.encode(token_ids)                # [B, width]
"""

from vidla.distill.config import DistillConfig, LossSection, load_distill_config, mlm_only
from vidla.distill.losses import CRDLoss, DistillHead, nst_loss, nt_xent_loss
from vidla.distill.masking import MaskingConfig, mask_tokens
from vidla.distill.student import StudentConfig, TextStudent, load_student, save_student
from vidla.distill.teacher import TextTeacher, load_teacher
from vidla.distill.trainer import DistillTrainer

__all__ = ["CRDLoss", "DistillConfig", "DistillHead", "DistillTrainer", "LossSection", "MaskingConfig",
           "StudentConfig", "TextStudent", "TextTeacher", "load_distill_config", "load_student", "load_teacher",
           "mask_tokens", "mlm_only", "nst_loss", "nt_xent_loss", "save_student"]
