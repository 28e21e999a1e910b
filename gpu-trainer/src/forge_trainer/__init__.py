"""forge-trainer: LoRA fine-tuning on chat JSONL (PEFT), packed and resumable, for CPU or CUDA. Never imports forge."""

__version__ = "0.1.0"
