"""`vidla train --config FILE [key=value ...] [--resume]` (also under `torchrun --nproc_per_node K -m vidla.cli`)."""

from __future__ import annotations

import argparse


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a VidLA model (one process, or under torchrun)",
        description="Trains with VidLA's two-text contrastive objective. Config: YAML + overrides such as "
                    "steps=100 data.train=clips.jsonl optim.lr=1e-5. The resolved config is saved in "
                    "output_dir/config.yaml.")
    parser.add_argument("--config", help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in output_dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    import logging

    from vidla.train.config import load_train_config
    from vidla.train.loop import Trainer

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_train_config(args.config, args.overrides)
    summary = Trainer(config, resume=args.resume, progress=not args.no_progress).run()
    if summary["rank"] == 0:
        print(f"trained {summary['steps']} steps, final loss {summary['loss']:.4f}; "
              f"model: {summary['output_dir']}/model.safetensors")
    return 0
