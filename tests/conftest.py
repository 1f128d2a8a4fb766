"""Shared test fixtures. Tests run offline: the hub is unreachable on CI, and must not be needed.

LongBench rows come from the offline slice bundled in the package, nothing beside the repository:
`longbench_dir` is that slice written out as a folder of <dataset>.jsonl (for the tests of folder
sources), and $LAZYBENCH_LONGBENCH_DIR is cleared so that a developer's environment cannot change
what the default source is (tests of the override set it themselves).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("LAZYBENCH_LONGBENCH_DIR", None)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests explore fresh examples on every local run; CI replays a fixed set (a red CI must
# be reproducible); `explore` searches ten times wider. Pick with HYPOTHESIS_PROFILE.
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=400, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def longbench_dir(tmp_path_factory) -> Path:
    """The bundled offline slice as a folder of LongBench <dataset>.jsonl files (byte-identical)."""
    from lazybench.tasks import write_offline_slice

    return write_offline_slice(tmp_path_factory.mktemp("longbench"))


@pytest.fixture(scope="session")
def smollm2():
    """The real offline model (SmolLM2-135M-Instruct), converted once into the lazybench cache."""
    from lazybench.models import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A saved 4-layer random-init Llama with SmolLM2's tokenizer, for runner tests."""
    from lazybench.runner.testing import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def tiny(tiny_model, longbench_dir, tmp_path) -> list[str]:
    """Overrides of a tiny run (seconds) writing under tmp_path/runs."""
    from lazybench.runner.testing import tiny_overrides

    return tiny_overrides(tiny_model, longbench_dir, tmp_path / "runs")


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if anything tries to load model weights."""

    def boom(*args, **kwargs):
        raise AssertionError("model weights were loaded")

    monkeypatch.setattr("lazybench.models.load_model", boom)
