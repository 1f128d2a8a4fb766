"""lm-eval hooks for the lazybench LongBench tasks (loaded by `!function utils.<name>`)."""

from lazybench.lm_eval_backend.tasks import doc_to_text, load_longbench, process_results

__all__ = ["doc_to_text", "load_longbench", "process_results"]
