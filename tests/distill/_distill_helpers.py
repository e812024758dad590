"""Shared by the distillation tests: a tiny student config and corpus."""

TINY_STUDENT = ["student.width=32", "student.layers=1", "student.heads=2", "student.mlp_dim=64",
                "student.context_length=24", "batch_size=8", "log_every=1", "optim.warmup_steps=1"]
TEXTS = ["a red square moves left, then a blue circle grows",
         "first we see the red square going left; after that the blue circle getting bigger",
         "a sharp, funny and touching film", "a dull, plodding mess that never comes alive",
         "it starts with a green triangle appearing and a white circle shrinking"]
