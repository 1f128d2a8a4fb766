"""The `lazybench` console command: verbs, the Hydra app (a full tiny run), and how bad input is reported."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lazybench import cli
from lazybench.conf_groups import (
    check_group_choices,
    check_method_keys,
    default_option,
    group_options,
    model_node,
)
from lazybench.runner import RunConfigError, conf_dir
from lazybench.runner.testing import tiny_overrides


def lazybench_cmd() -> list[str]:
    script = Path(sys.executable).parent / "lazybench"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lazybench.cli"]


def run_cli(*args, timeout=120):
    return subprocess.run(
        [*lazybench_cmd(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def test_cli_runs_and_prints_the_category_table(tiny_model, longbench_dir, tmp_path):
    overrides = tiny_overrides(tiny_model, longbench_dir, tmp_path / "runs")
    proc = run_cli(
        *overrides, "plot=true", "progress=true", "warmups=1", "method.schedule.keep=[0.8,0.5,0.2]"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "| category | method | rows | score | TTFT x |" in out
    assert (
        "| overall | baseline | 4 |" in out
        and "| overall | lazyllm[depth[0.3:0.8,0.6:0.5,0.9:0.2]] | 4 |" in out
    )
    assert "8 new records" in out
    # the printed table says where its rows came from (here a local folder copy)
    assert f"rows: folder {longbench_dir}, 4 rows\n" in out
    run_dir = tmp_path / "runs" / "tiny-tiny"
    for name in (
        "records.jsonl",
        "config.yaml",
        "run.json",
        "summary.md",
        "speed_accuracy.png",
        ".hydra/config.yaml",
    ):
        assert (run_dir / name).is_file(), name
    assert "4/4" in proc.stderr and "TTFT x" in proc.stderr  # the tqdm bar: rows done/total, running speedup


def test_cli_config_error_is_one_line_and_exit_2(tiny_model, longbench_dir, tmp_path, monkeypatch, capsys):
    # cli.main() in-process (the console script's entry point) saves a subprocess start
    from hydra.core.global_hydra import GlobalHydra

    def boom(*args, **kwargs):
        raise AssertionError("model loaded although the config is invalid")

    monkeypatch.setattr("lazybench.models.load_model", boom)
    overrides = tiny_overrides(tiny_model, longbench_dir, tmp_path / "runs")
    # no Hydra logging handlers: they would outlive pytest's captured streams
    argv = ["lazybench", *overrides, "method.schedule.keep=[0.4,0.7,0.1]"]
    argv += ["hydra/job_logging=none", "hydra/hydra_logging=none", f"hydra.run.dir={tmp_path / 'hydra'}"]
    monkeypatch.setattr(sys, "argv", argv)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    GlobalHydra.instance().clear()
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
    finally:
        GlobalHydra.instance().clear()
        root.handlers[:] = handlers
        root.setLevel(level)
    assert exc.value.code == cli.EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "lazybench: error: method: bad schedule for method 'lazyllm'" in err
    assert "must not increase" in err and "Traceback" not in err
    assert not any((tmp_path / "runs").rglob("records.jsonl"))


def test_cli_unknown_config_name_is_one_line_listing_the_options():
    """The console script end to end: lazybench's own line and exit 2, not Hydra's report."""
    proc = run_cli("model=nope", timeout=60)
    assert proc.returncode == cli.EXIT_CONFIG_ERROR
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lazybench: error: unknown model config 'nope'")
    for name in ("llama2-7b-chat", "smollm2-135m", "xgen-7b-8k-inst"):
        assert name in lines[0]
    assert "Could not find" not in proc.stderr


def test_cli_prints_the_composed_config_without_running():
    proc = run_cli("--cfg", "job", "experiment=paper_xgen", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "name: Salesforce/xgen-7b-8k-inst" in proc.stdout and "warmups: 5" in proc.stdout


def test_task_reports_config_errors_as_exit_2(capsys):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {"methods": ["nosuchmethod"], "method": None, "repeats": 1, "seed": 0, "warmups": 0}
    )
    with pytest.raises(SystemExit) as exc:
        cli.task(cfg)
    assert exc.value.code == cli.EXIT_CONFIG_ERROR
    assert "lazybench: error: methods[0]: unknown method 'nosuchmethod'" in capsys.readouterr().err


def test_slurm_launcher_without_the_plugin_is_a_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if "submitit" in name else real(name, *a)
    )
    for launcher in ("slurm", "submitit_slurm", "submitit_local"):
        with pytest.raises(RunConfigError, match=rf"^hydra/launcher={launcher} needs .*lazybench\[slurm\]"):
            cli._check_launcher_plugins(["-m", f"hydra/launcher={launcher}"])
    cli._check_launcher_plugins(["hydra/launcher=joblib"])


# ---------------------------------------------------------------------------------------------
# verbs


def call_main(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def test_help_lists_every_verb(capsys):
    code, out, _ = call_main(["--help"], capsys)
    assert code == 0
    assert {"run", "analyze", "rescore", "profile", "lengths", "lm-eval", "bench"} <= set(cli.VERBS)
    for verb in cli.VERBS.values():
        assert f"  {verb.name} " in out and verb.summary in out
    assert "--hydra-help" in out and "lazybench VERB --help" in out


def test_every_verb_names_a_function():
    for verb in cli.VERBS.values():
        assert callable(verb.function()), verb.name


def test_dispatch_on_the_first_argument():
    run = cli.VERBS["run"]
    assert cli._split([]) == (run, [])
    assert cli._split(["run", "--cfg", "job"]) == (run, ["--cfg", "job"])
    for argv in (
        ["model=x"],
        ["-m", "seed=1,2"],
        ["--cfg", "job"],
        ["+foo=1"],
        ["~experiment"],
        ["--hydra-help"],
    ):
        assert cli._split(argv) == (run, argv)
    assert cli._split(["profile", "--limit", "1"]) == (cli.VERBS["profile"], ["--limit", "1"])
    assert cli._split(["analyse", "runs/x"]) == (None, ["analyse", "runs/x"])


def test_unknown_verb_is_one_line(capsys):
    code, _, err = call_main(["analyse", "runs/x"], capsys)
    assert code == cli.EXIT_CONFIG_ERROR
    assert err.count("\n") == 1 and "unknown verb 'analyse' (did you mean 'analyze'?)" in err


@pytest.mark.parametrize(
    ("verb", "usage"),
    [("profile", "lazybench profile"), ("rescore", "lazybench rescore"), ("bench", "lazybench bench")],
)
def test_verb_help_is_the_verbs_own(verb, usage, capsys):
    code, out, _ = call_main([verb, "--help"], capsys)
    assert code == 0 and out.startswith(f"usage: {usage}")


def test_lm_eval_verb_passes_its_arguments_through(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr("lazybench.lm_eval_backend.__main__.main", lambda argv: seen.append(argv) or 0)
    argv = [
        "--model",
        "lazyllm",
        "--model_args",
        "pretrained=smollm2-135m,schedule.keep=0.7:0.4",
        "--limit",
        "2",
    ]
    code, _, _ = call_main(["lm-eval", *argv], capsys)
    assert code == 0 and seen == [argv]


def test_old_console_scripts_are_aliases_of_the_verbs(monkeypatch):
    import tomllib

    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.pop("lazybench") == "lazybench.cli:main"
    assert set(scripts) == {
        "lazybench-analyze",
        "lazybench-lengths",
        "lazybench-lm-eval",
        "lazybench-profile",
    }
    seen = []
    monkeypatch.setattr(cli, "main", seen.append)
    for name, target in scripts.items():
        module, attr = target.split(":")
        monkeypatch.setattr(sys, "argv", [name, "a", "--b"])
        getattr(importlib.import_module(module), attr)()
        verb = name.removeprefix("lazybench-")
        assert verb in cli.VERBS and seen.pop() == [verb, "a", "--b"], name


# ---------------------------------------------------------------------------------------------
# bench


def test_bench_lists_the_benchmark_modules(capsys):
    modules = cli.bench_modules()
    assert {"ttft", "overhead", "revival"} <= set(modules)
    assert all(modules.values()), "every benchmark has a docstring summary"
    code, out, _ = call_main(["bench", "--help"], capsys)
    assert code == 0 and all(f"  {name} " in out for name in modules)
    code, _, err = call_main(["bench"], capsys)
    assert code == cli.EXIT_CONFIG_ERROR and "usage: lazybench bench NAME" in err


def test_bench_unknown_name_is_one_line(capsys):
    code, _, err = call_main(["bench", "tft"], capsys)
    assert code == cli.EXIT_CONFIG_ERROR
    assert err.count("\n") == 1 and "unknown benchmark 'tft' (did you mean 'ttft'?)" in err


def test_bench_runs_the_module_as_main(tmp_path, monkeypatch, capsys):
    """`lazybench bench NAME ARGS` = `python -m lazybench.bench.NAME ARGS`; helpers without main are not listed."""
    import lazybench.bench

    (tmp_path / "fake_probe.py").write_text(
        '"""A fake benchmark."""\nimport sys\n\n\ndef main(argv=None):\n'
        '    print("argv", sys.argv[0], (argv if argv is not None else sys.argv[1:]))\n\n\n'
        'if __name__ == "__main__":\n    main()\n'
    )
    (tmp_path / "fake_helper.py").write_text('"""Shared helpers, no main."""\n')
    monkeypatch.setattr(lazybench.bench, "__path__", [*lazybench.bench.__path__, str(tmp_path)])
    modules = cli.bench_modules()
    assert modules["fake_probe"] == "A fake benchmark." and "fake_helper" not in modules
    argv0 = sys.argv
    code, out, _ = call_main(["bench", "fake_probe", "--rounds", "3"], capsys)
    assert code == 0 and "argv lazybench bench fake_probe ['--rounds', '3']" in out
    assert sys.argv is argv0
    monkeypatch.delitem(sys.modules, "lazybench.bench.fake_probe", raising=False)


def test_bench_real_module_help(monkeypatch, capsys):
    # as in a fresh `lazybench bench ttft`: the module is not imported yet when runpy runs it as __main__
    monkeypatch.delitem(sys.modules, "lazybench.bench.ttft", raising=False)
    code, out, _ = call_main(["bench", "ttft", "--help"], capsys)
    assert code == 0 and out.startswith("usage: lazybench bench ttft")


# ---------------------------------------------------------------------------------------------
# unknown config-group options: lazybench's one line, before Hydra starts


@pytest.mark.parametrize(
    ("argv", "group", "value"),
    [
        (["model=nope"], "model", "nope"),
        (["suite=smok"], "suite", "smok"),
        (["method=lazyllm2", "warmups=0"], "method", "lazyllm2"),
        (["experiment=paper"], "experiment", "paper"),
        (["-m", "model=smollm2-135m,nope2"], "model", "nope2"),
        (["run", "--cfg", "job", "+suite=x"], "suite", "x"),
    ],
)
def test_unknown_group_option_is_one_line_before_hydra(
    argv, group, value, monkeypatch, capsys, no_model_load
):
    import hydra

    def no_hydra(*args, **kwargs):
        raise AssertionError("Hydra started although the command line names an unknown config")

    monkeypatch.setattr(hydra, "main", no_hydra)
    code, out, err = call_main(argv, capsys)
    assert code == cli.EXIT_CONFIG_ERROR and out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"lazybench: error: unknown {group} config {value!r}")
    where = "the methods registered in lazybench.methods" if group == "method" else f"conf/{group}/*.yaml"
    assert f"({where})" in err
    for option in group_options(group):
        assert option in err


def test_known_group_options_pass_the_check():
    check_group_choices(
        ["model=llama2-7b-chat", "suite=qa,smoke", "experiment=null", "~experiment", "model.name=any/thing",
         "method=glob(*)", "hydra/launcher=joblib", "--cfg", "job", "methods=[baseline,nosuch]"]
    )  # fmt: skip
    check_group_choices(["--config-dir", "/my/configs", "model=mine"])  # other sources: Hydra decides
    with pytest.raises(RunConfigError, match=r"did you mean smollm2-135m\?"):
        check_group_choices(["model=smollm2-13m"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["method=snapkv", "method.nosuch=16"], "method.nosuch=16: method snapkv has no key 'nosuch'"),
        (["method.schedule.kep=[0.5]"], "method lazyllm's schedule has no key 'kep' (did you mean keep?)"),
        (["method.window=16"], "method lazyllm has no key 'window'"),  # the default method has none
        (["experiment=protocol_cpu_long", "method.window=3"], "method baseline has no key 'window'"),
        (["-m", "method=snapkv,h2o", "method.window=3"], "method h2o has no key 'window'"),
    ],
)
def test_unknown_method_key_is_one_line_before_hydra(argv, message, monkeypatch, capsys, no_model_load):
    import hydra

    def no_hydra(*args, **kwargs):
        raise AssertionError("Hydra started although a method key is unknown")

    monkeypatch.setattr(hydra, "main", no_hydra)
    code, out, err = call_main(argv, capsys)
    assert code == cli.EXIT_CONFIG_ERROR and out == ""
    assert err.count("\n") == 1 and err.startswith("lazybench: error: ") and message in err, err


def test_known_method_keys_pass_the_check():
    check_method_keys(["method=snapkv", "method.window=16", "method.label=w16", "+method.repeats=2"])
    check_method_keys(["method.schedule.keep=[0.5,0.2,0.1]", "method=lazyllm", "~method.label"])
    check_method_keys(["experiment=schedule_search", "method.schedule.unit=layer"])
    check_method_keys(["-m", "method=snapkv,streamingllm", "method.window=8,16"])
    check_method_keys(["method=nosuch", "method.window=1"])  # the unknown option is check_group_choices's


def test_cli_method_param_without_plus_dry_run(tiny_model, longbench_dir, tmp_path):
    """The console script end to end: a method's parameter is set without `+` (its node comes from the
    class through Hydra's ConfigStore) and the dry run describes that method."""
    overrides = tiny_overrides(tiny_model, longbench_dir, tmp_path / "runs")
    proc = run_cli(*overrides, "method=snapkv", "method.window=16", "method.label=w16", "dry_run=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "methods: baseline, w16" in proc.stdout
    proc = run_cli("--cfg", "job", "-p", "method", "method=snapkv", "method.window=16", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (
        "name: snapkv" in proc.stdout and "window: 16" in proc.stdout and "budget_tokens: 1024" in proc.stdout
    )


# ---------------------------------------------------------------------------------------------
# the model node outside Hydra (the profiler's --model)


def test_model_node_reads_conf_model_as_the_runner_does():
    from omegaconf import OmegaConf

    from lazybench.runner.config import model_spec

    node = model_node("llama2-7b-chat", ["model.device=cpu", "model.max_length=300"])
    assert node.name == "meta-llama/Llama-2-7b-chat-hf" and node.chat_style == "llama2"
    assert node.max_length == 300 and node.device == "cpu"
    spec = model_spec(OmegaConf.create({"model": node}))
    assert spec.name == "meta-llama/Llama-2-7b-chat-hf" and spec.dtype == "bfloat16"
    # a name that is no config key: the default model config with model.name replaced
    other = model_node("some/hub-model")
    default = OmegaConf.load(conf_dir() / "model" / f"{default_option('model')}.yaml")
    assert other.name == "some/hub-model" and other.chat_style == default.chat_style
    with pytest.raises(RunConfigError, match="bad model override 'model.nosuch=1'"):
        model_node("smollm2-135m", ["model.nosuch=1"])
    with pytest.raises(RunConfigError, match="bad model override 'max_length=3'"):
        model_node("smollm2-135m", ["max_length=3"])
