"""The host path stays fit for a GPU: few device reads per step, few ops, nothing traced or allocated
inside a clock, importance scores in fp32. Counts are deterministic (timings are never asserted).

The sync counts are the CPU proxy of lazybench.bench.syncs (ops whose CUDA kernels make the host
wait); the targets are those of issue 10 on the benchmark's 32-layer compute-free Llama.
"""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_model

import lazybench.bench.ttft as ttft
from lazybench.bench.host import build_rows, count_ops, main, row_matched_ms
from lazybench.bench.host_configs import RowsGeneration, compute_free_model
from lazybench.bench.syncs import HostOpCounter, sync_kind
from lazybench.engine import Generation, LazyEngine, Schedule, TokenPolicy, generate
from lazybench.engine.attention import last_query_scores
from lazybench.engine.policy import grouped_logits
from lazybench.methods.lazyllm import LazyLLMPolicy

MODEL = compute_free_model(torch.device("cpu"), torch.float32, layers=32)
SMALL = compute_free_model(torch.device("cpu"), torch.float32, layers=8)  # where depth does not matter
IDS = torch.randint(3, 256, (64,), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def counts() -> dict[tuple[str, str], dict]:
    rows = count_ops(
        MODEL, IDS, decode_steps=3, configs=("engine-baseline", "lazyllm-default", "static"), warmup=False
    )
    return {(r["config"], r["phase"]): r for r in rows}


def test_lazyllm_syncs_within_budget(counts) -> None:
    prefill, decode = counts[("lazyllm-default", "prefill")], counts[("lazyllm-default", "decode step")]
    assert prefill["step_syncs_max"] <= 6
    assert decode["step_syncs_max"] <= 8
    # what is left is one read per decode boundary (3): how many rows go on after revival
    assert decode["step_sync_kinds"] == "itemx3"
    assert counts[("engine-baseline", "decode step")]["step_syncs_max"] == 0
    assert counts[("static", "decode step")]["step_syncs_max"] <= 1
    # the loop's one read per step: the greedy token (no upload of it back: it stays on the device)
    for row in counts.values():
        assert row["loop_syncs"] == 1


def test_lazyllm_launches_within_budget(counts) -> None:
    base = counts[("engine-baseline", "decode step")]["step_ops"]
    assert counts[("lazyllm-default", "decode step")]["step_ops"] <= 1.15 * base
    assert counts[("static", "decode step")]["step_ops"] <= 1.15 * base
    assert (
        counts[("lazyllm-default", "prefill")]["step_ops"]
        <= 1.15 * counts[("engine-baseline", "prefill")]["step_ops"]
    )
    # LazyLLM really pruned and revived: fewer rows than the baseline in prefill, more in decoding
    assert (
        counts[("lazyllm-default", "prefill")]["row_layers"]
        < counts[("engine-baseline", "prefill")]["row_layers"]
    )
    assert counts[("lazyllm-default", "decode step")]["row_layers"] > 32


def test_sync_proxy_classifies_the_usual_culprits() -> None:
    x, mask = torch.arange(10), torch.arange(10) > 4
    seen = []

    class Recorder(HostOpCounter):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(sync_kind(func, args, kwargs or {}, accelerator=False))
            return func(*args, **(kwargs or {}))

    def kinds(fn) -> list[str]:
        seen.clear()
        with Recorder():
            fn()
        return [k for k in seen if k]

    assert kinds(lambda: x[mask]) == ["index[bool]"]
    assert kinds(lambda: int(x[3])) in (["item"], ["_local_scalar_dense"])
    assert kinds(lambda: bool(mask.any())) in (["is_nonzero"], ["item"], ["_local_scalar_dense"])
    assert kinds(lambda: mask.nonzero()) == ["nonzero"]
    assert kinds(lambda: torch.isin(x, torch.arange(50))) == ["isin(unique)"]
    assert kinds(lambda: x.index_fill_(0, torch.arange(2), 1)) == []
    assert kinds(lambda: torch.nonzero_static(mask, size=5)) == []
    assert kinds(lambda: x.__setitem__(torch.arange(2), 0)) == ["upload(scalar)"]
    assert kinds(lambda: x.__setitem__(mask, 0)) == []  # masked_fill_ underneath
    with HostOpCounter() as counter:
        x.tolist()
    assert counter.take()["loop"].syncs["tolist"] == 1


def test_invariant_checks_read_the_device_only_when_asked() -> None:
    def decode_syncs(check: bool) -> float:
        engine = LazyEngine(SMALL, LazyLLMPolicy(), check_invariants=check)
        counter = HostOpCounter()
        generation = Generation(engine, IDS, 3)
        with counter:
            generation.advance()
            counter.take()
            generation.advance()
            return sum(t.n_syncs for t in counter.take().values())

    assert decode_syncs(True) > decode_syncs(False)


def test_tracing_reads_nothing_inside_the_step() -> None:
    engine = LazyEngine(SMALL, LazyLLMPolicy(), check_invariants=False)
    counter = HostOpCounter()
    generation = Generation(engine, IDS, 4, trace=True)
    with counter:
        while not generation.done:
            generation.advance()
    tallies = counter.take()
    assert "tolist" not in tallies["loop"].syncs
    # the trace becomes lists when the result is made, after the clocks
    result = generation.result()
    assert result.trace and all(isinstance(t.active, list) for t in result.trace)
    assert sum(len(t.revived) for t in result.trace) > 0
    assert result.tokens == generate(LazyEngine(SMALL, LazyLLMPolicy()), IDS, 4).tokens


def test_ttft_benchmark_times_untraced_generations(monkeypatch) -> None:
    calls = []
    real = ttft.generate

    def recording(engine, ids, max_new_tokens, **options):
        calls.append((max_new_tokens, options.get("trace", False)))
        return real(engine, ids, max_new_tokens, **options)

    monkeypatch.setattr(ttft, "generate", recording)
    model = tiny_model("llama", num_layers=6)
    ids = {24: torch.randint(3, 256, (24,), generator=torch.Generator().manual_seed(0))}
    ttft.run_benchmark(model, ids, repeats=2, warmups=0, decode_steps=2, log=lambda *a: None)
    n_engines = len(ttft.bench_engines(model, ("masked",)))
    traced = [c for c in calls if c[1]]
    assert len(traced) == n_engines  # one accounting run per configuration, outside the rounds
    assert len(calls) - len(traced) == 2 * n_engines  # the timed ones


def test_importance_logits_are_fp32_products() -> None:
    gen = torch.Generator().manual_seed(0)
    q = (torch.randn(1, 8, 3, 64, generator=gen) * 4).bfloat16()
    k = (torch.randn(1, 2, 300, 64, generator=gen) * 4).bfloat16()
    scores = last_query_scores(None, q, k, 64**-0.5, None)
    assert scores.dtype == torch.float32
    ref = torch.softmax(
        (q[0, :, -1].float().reshape(2, 4, 64) @ k[0].float().transpose(-1, -2)) * 64**-0.5, dim=-1
    ).mean(dim=(0, 1))
    assert torch.allclose(scores, ref, atol=1e-7, rtol=1e-5)
    # bf16 products cast afterwards would differ by far more than fp32 rounding
    cast = torch.softmax(
        (q[0, :, -1].reshape(2, 4, 64) @ k[0].transpose(-1, -2)).float() * 64**-0.5, dim=-1
    ).mean(dim=(0, 1))
    assert (cast - ref).abs().max() > 100 * (scores - ref).abs().max()
    logits = grouped_logits(q, k, 64**-0.5, None)
    assert logits.dtype == torch.float32
    full = (q[0].float().reshape(2, 4, 3, 64) @ k[0].float()[:, None].transpose(-1, -2)) * 64**-0.5
    assert torch.allclose(logits, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_kv_buffers_are_allocated_and_zeroed_before_the_first_step(family: str) -> None:
    model = tiny_model(family, num_layers=4)
    config = model.config
    generation = Generation(LazyEngine(model, LazyLLMPolicy()), torch.arange(3, 23), 3)
    state = generation.state
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    expected = (1, config.num_key_value_heads, 23, head_dim)
    assert all(k is not None and tuple(k.shape) == expected for k in state.keys)
    assert all(not k.any() and not v.any() for k, v in zip(state.keys, state.values))
    assert state.kv_bytes() == 2 * 4 * 23 * config.num_key_value_heads * head_dim * 4
    pointers = [k.data_ptr() for k in state.keys]
    while not generation.done:
        generation.advance()
    assert [k.data_ptr() for k in state.keys] == pointers  # no step allocated its own


def test_decode_read_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="decode_read"):
        LazyEngine(MODEL, TokenPolicy(), decode_read="scatter")
    full = LazyEngine(MODEL, LazyLLMPolicy(Schedule.full()), decode_read="gather")
    assert full.decode_read == "gather"


def test_host_command_writes_its_table(tmp_path) -> None:
    main(["--layers", "8", "--prompt-tokens", "16", "--decode-steps", "1", "--rounds", "1", "--repeats", "2",
          "--out", str(tmp_path), "--tag", "h"])  # fmt: skip
    text = (tmp_path / "h.md").read_text()
    for config in ("plain-hf", "engine-baseline", "lazyllm-default", "lazyllm-aggressive", "static"):
        assert f"| {config} | prefill |" in text and f"| {config} | decode step |" in text
    for rows in (2, 4, 8, 16):
        assert f"| engine-baseline-x{rows} | decode step |" in text
    assert "| host / row-matched | host / one row + row slope |" in text
    assert "timed 2 times: medians [min–max]" in text and "| 1 [1–1] |" in text


def test_row_references_compute_their_rows_and_match_by_layer() -> None:
    """The row reference computes R new positions at every layer of every decode step with the
    engine baseline (the greedy token repeated), its prompt cut to the same mean decode context;
    the per-layer rows of each config's decode steps are kept for the row-matched times."""
    ids = IDS[:40]
    four = RowsGeneration(LazyEngine(SMALL, TokenPolicy()), ids, 3, rows=4)
    while not four.done:
        four.advance()
    assert four.ids.numel() == 40 - round(3 * 3 / 2)  # two decode steps: mean context as one row's
    assert four.state.length == four.ids.numel() + 2 * 4
    counts = count_ops(
        SMALL, ids, decode_steps=2, configs=("engine-baseline-x4", "lazyllm-default"), warmup=False
    )
    by = {(r["config"], r["phase"]): r for r in counts}
    assert ("engine-baseline-x4", "prefill") not in by  # the baseline's prefill, not shown twice
    assert by[("engine-baseline-x4", "decode step")]["row_layers"] == 4 * 8  # 4 rows at each of 8 layers
    lazy = by[("lazyllm-default", "decode step")]
    assert len(lazy["_layer_rows"]) == 2 * 8 and sum(lazy["_layer_rows"]) / 2 == lazy["row_layers"]
    assert "_layer_rows" not in by[("lazyllm-default", "prefill")]


def test_row_matched_times_interpolate_the_references() -> None:
    times = {"engine-baseline": {"decode_ms": 1.0}, "engine-baseline-x2": {"decode_ms": 2.0},
             "engine-baseline-x4": {"decode_ms": 3.0}, "engine-baseline-x8": {"decode_ms": 5.0},
             "engine-baseline-x16": {"decode_ms": 9.0}}  # fmt: skip
    assert row_matched_ms([1.0, 1.0], times) == 1.0
    assert row_matched_ms([1.0, 3.0], times) == (1.0 + 2.5) / 2  # halfway between 2 and 4 rows
    assert row_matched_ms([20.0], times) == 11.0  # past 16 rows: the last segment's line
    # the slope reading lowers the references by the 1->2 jump's excess over the 2->4 slope (1 - 0.5)
    assert row_matched_ms([3.0], times, path_as_rows=False) == 2.0
    assert row_matched_ms([1.0], times, path_as_rows=False) == 1.0
    # a config whose every layer computes one row is timed against the baseline alone, either way
    counts = [
        dict(config=c, phase="decode step", step_ops=10, _layer_rows=[1, 1]) for c in ("engine-baseline", "x")
    ]
    rows = build_rows(counts, {**times, "x": {"decode_ms": 1.2}})
    assert (
        rows[1]["host_vs_baseline"] == rows[1]["host_vs_row_matched"] == rows[1]["host_vs_row_slope"] == 1.2
    )


@pytest.mark.parametrize("q_len", [1, 5])
def test_packed_sdpa_equals_transformers_sdpa(q_len: int) -> None:
    """Masked rows under grouped KV heads, packed per KV head, give transformers' SDPA output."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from lazybench.engine.attention import packed_sdpa

    gen = torch.Generator().manual_seed(3)
    module = MODEL.model.layers[0].self_attn  # 4 query heads over 2 KV heads
    query = torch.randn(1, 4, q_len, 16, generator=gen)
    key, value = torch.randn(1, 2, 30, 16, generator=gen), torch.randn(1, 2, 30, 16, generator=gen)
    q_pos = torch.arange(30 - q_len, 30) - torch.arange(q_len).flip(0) * 3  # revived rows, the newest last
    k_pos = torch.arange(30)
    mask = (k_pos[None, :] <= q_pos[:, None]) & (torch.rand(30, generator=gen) > 0.3) | (
        k_pos == q_pos[:, None]
    )
    mask = mask[None, None]
    ours, _ = packed_sdpa(module, query, key, value, mask, scaling=0.25, dropout=0.0)
    theirs, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.25, dropout=0.0)
    assert ours.shape == theirs.shape == (1, q_len, 4, 16)
    assert torch.allclose(ours, theirs, atol=1e-6)
