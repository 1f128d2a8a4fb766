"""lm-evaluation-harness backend: the ``lazyllm`` model and the lazybench LongBench tasks.

Importing this package registers the model ``lazyllm`` with lm-eval (lm-eval 0.4.13 has no plugin
discovery for external models, so the registration has to be imported). From Python::

    import lazybench.lm_eval_backend  # registers "lazyllm"
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager
    from lazybench.lm_eval_backend import TASKS_DIR

    simple_evaluate(model="lazyllm", model_args="pretrained=smollm2-135m,method=lazyllm,max_length=2000",
                    tasks=["lazybench_longbench"], task_manager=TaskManager(include_path=str(TASKS_DIR)))

From the shell, ``python -m lazybench.lm_eval_backend`` is lm-eval's own CLI with the registration
imported and the include path added (see docs/lm_eval.md).
"""

from lazybench.lm_eval_backend.args import (
    MODEL_NAME,
    SamplingNotSupportedError,
    arg_value,
    cut_at_stop,
    lm_method_entry,
    lm_model_node,
)
from lazybench.lm_eval_backend.model import LazyLLMLM
from lazybench.lm_eval_backend.tasks import OVERALL_GROUP, TASKS_DIR, render, stale_files, write_include_dir

__all__ = [
    "MODEL_NAME",
    "OVERALL_GROUP",
    "TASKS_DIR",
    "LazyLLMLM",
    "SamplingNotSupportedError",
    "arg_value",
    "cut_at_stop",
    "lm_method_entry",
    "lm_model_node",
    "render",
    "stale_files",
    "write_include_dir",
]
