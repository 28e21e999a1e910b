"""`forge-trainer`: train, selftest, tiny-model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forge-trainer", description="LoRA fine-tuning on chat JSONL.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a LoRA adapter", epilog="overrides: section.key=value, "
                           "e.g. data.train=train.jsonl train.epochs=2 lora.r=8 output.dir=out")
    train.add_argument("--config", help="YAML file (gpu-trainer/configs/*.yaml)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the latest checkpoint in output.dir (a fresh start if there is none)")
    train.add_argument("overrides", nargs="*", metavar="key=value")
    selftest = sub.add_parser("selftest", help="tiny model + synthetic data, trained briefly: checks an install")
    selftest.add_argument("--out", required=True, type=Path)
    selftest.add_argument("--steps", type=int, default=30)
    tiny = sub.add_parser("tiny-model", help="write a random tiny base model and a trained tokenizer (no download)")
    tiny.add_argument("--out", required=True, type=Path)
    tiny.add_argument("--corpus", type=Path, help="text file to train the tokenizer on (default: built-in)")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--preset", default="tiny", choices=["tiny", "small", "bench"])
    tiny.add_argument("--arch", default="llama", choices=["llama", "qwen2"])
    tiny.add_argument("--tokenizer", default="bpe", choices=["bpe", "sentencepiece"],
                      help="sentencepiece writes tokenizer.model, which llama.cpp's GGUF converter needs")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "tiny-model":
        from forge_trainer import tiny

        path = tiny.build(args.out, preset=args.preset, arch=args.arch, seed=args.seed, corpus_file=args.corpus,
                          tokenizer_kind=args.tokenizer)
        print(f"wrote a {args.preset} {args.arch} model and {args.tokenizer} tokenizer to {path}")
        return 0
    if args.command == "selftest":
        from forge_trainer.selftest import selftest

        return _finish(selftest(args.out, steps=args.steps), args.out / "run")
    from forge_trainer.config import ConfigError, load_config
    from forge_trainer.run import RunExists, train

    try:
        config = load_config(args.config, args.overrides)
        return _finish(train(config, resume=args.resume), Path(config.output.dir).expanduser())
    except (ConfigError, RunExists) as exc:
        print(f"forge-trainer: {exc}", file=sys.stderr)
        return 2


def _finish(code: int, out: Path) -> int:
    status = json.loads((out / "status.json").read_text(encoding="utf-8")) if (out / "status.json").exists() else {}
    if code == 0:
        print(f"succeeded: adapter in {out / 'adapter'}")
    elif status.get("state") == "interrupted":
        print(f"interrupted at step {status.get('step')}; checkpoint saved: rerun with --resume", file=sys.stderr)
    else:
        print(f"forge-trainer: failed: {status.get('error', 'see status.json')}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
