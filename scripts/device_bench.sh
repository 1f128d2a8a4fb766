#!/usr/bin/env bash
# The prepared GPU check for a lent device: one call, right the first time (docs/gpu.md).
#
#   bash scripts/device_bench.sh                       # on the GPU machine (writes $OUT, or results/bench/gpu)
#   DRY=1 bash scripts/device_bench.sh                 # anywhere: every command parses its arguments, nothing runs
#   DEVICE=cpu SHAPES=tiny bash scripts/device_bench.sh   # anywhere: the same steps on a toy shape, in seconds
#
# Steps, in order, each under `timeout` and inside one overall budget (BUDGET_S, default 450 s):
#   smoke    torch sees CUDA; a tiny random Llama runs baseline and LazyLLM (prefill + one decode
#            step) on the device in bf16. If this fails the script stops at once: nothing else could work.
#   host     python -m lazybench.bench.host: host-device syncs and ops launched per step
#   ttft     python -m lazybench.bench.ttft per model x prompt length (Llama-2-7B and XGen-7B shapes,
#            random bf16 weights, 3.5k and 7.5k tokens), masked and gathered decode reads
#   runner   one row through the real runner: lazybench with a random-weight Llama-2-7B shape
#   overhead python -m lazybench.bench.overhead (engine vs plain forward), if time is left
# A failed or timed-out step is a line in the report and the script goes on. Results are written as
# soon as each is measured: a kill keeps everything measured so far.
#
# Output folder ($OUT when set, else results/bench/gpu), at most 8 files as the device tool returns them:
#   device_bench.md   the report: versions, one status line per step, each step's table as it lands
#   device_bench.log  everything the commands printed
#   ttft.csv          every TTFT row, a model column first, appended per model x length
#   raw.tar.gz        every file the commands wrote (tables, the runner's run directory), re-packed after
#                     each step (only when $OUT is set; otherwise they sit in raw/)
#
# Settings (environment): PYTHON (python3), DEVICE (cuda), SHAPES (7b | tiny), DRY (0 | 1),
# BUDGET_S (450), MAX_STEP_S (a cap on every step's own limit), STEPS ("smoke host ttft runner overhead"), DATA_DIR (LongBench folder for the
# runner row; default: shared/longbench in the checkout if present, else lazybench's own default),
# WHEELS (folder of extra wheels to install first, default wheels/).
set -uo pipefail

PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SHAPES=${SHAPES:-7b}
DRY=${DRY:-0}
BUDGET_S=${BUDGET_S:-450}
STEPS=${STEPS:-smoke host ttft runner overhead}
WHEELS=${WHEELS:-wheels}
if [ "$DEVICE" = cuda ]; then DTYPE=${DTYPE:-bfloat16}; else DTYPE=${DTYPE:-float32}; fi

dir=${OUT:-results/bench/gpu}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -n "${OUT:-}" ]; then  # the device tool returns only $OUT's top files: raw files are packed
  raw=$(mktemp -d)
  pack=1
  trap 'rm -rf "$raw"' EXIT
else
  raw=$dir/raw
  pack=0
  mkdir -p "$raw"
fi
report=$dir/device_bench.md
log=$dir/device_bench.log
csv=$dir/ttft.csv
: >"$report"
: >"$log"
rm -f "$csv"

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false
start=$(date +%s)
deadline=$((start + BUDGET_S))
failures=0

case "$SHAPES" in
  7b)
    TTFT_UNITS="llama2-7b:3500 xgen-7b:3500 xgen-7b:7500"
    TTFT_ARGS="--repeats 3 --warmups 2 --decode-steps 8"
    OVERHEAD_ARGS="--model llama2-7b --lengths 3500 --rounds 6 --warmups 2 --decode-steps 8"
    RUNNER_SHAPE=llama2-7b RUNNER_TOKENS=3500 RUNNER_NEW=8
    LIMIT_TTFT=150 LIMIT_RUNNER=180 ;;
  tiny)
    TTFT_UNITS="tiny-llama:64 tiny-llama:128"
    TTFT_ARGS="--repeats 1 --warmups 0 --decode-steps 2"
    OVERHEAD_ARGS="--model tiny-llama --lengths 64 --rounds 2 --warmups 0 --decode-steps 2"
    RUNNER_SHAPE=tiny-llama RUNNER_TOKENS=256 RUNNER_NEW=4
    LIMIT_TTFT=60 LIMIT_RUNNER=90 ;;
  *) echo "device_bench: SHAPES must be 7b or tiny, got '$SHAPES'" >&2; exit 2 ;;
esac

say() { echo "$*" | tee -a "$log" >>"$report"; }
has_step() { [[ " $STEPS " == *" $1 "* ]]; }
repack() { if [ "$pack" = 1 ]; then tar -czf "$dir/raw.tar.gz.tmp" -C "$raw" . 2>>"$log" && mv "$dir/raw.tar.gz.tmp" "$dir/raw.tar.gz"; fi; }

# run NAME LIMIT CMD...: CMD under timeout (clipped to the budget left), output to the log and the
# console, one status line in the report; returns CMD's status (124: timed out, 90: no time left).
run() {
  local name=$1 limit=$2
  shift 2
  local left=$((deadline - $(date +%s)))
  if ((left < 20)); then
    say "- [skipped] $name: out of the ${BUDGET_S} s budget"
    failures=$((failures + 1))
    return 90
  fi
  ((limit > left)) && limit=$left
  [ -n "${MAX_STEP_S:-}" ] && ((limit > MAX_STEP_S)) && limit=$MAX_STEP_S
  echo "=== $name (limit ${limit} s): $*" | tee -a "$log"
  local t0=$SECONDS rc steplog=$raw/step.log
  : >"$steplog"
  if command -v timeout >/dev/null; then
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$log" "$steplog"
    rc=${PIPESTATUS[0]}
  else
    "$@" 2>&1 | tee -a "$log" "$steplog"
    rc=${PIPESTATUS[0]}
  fi
  local took=$((SECONDS - t0))
  if [ "$rc" = 0 ]; then
    say "- [ok] $name (${took} s)"
  else
    local why="exit status $rc"
    [ "$rc" = 124 ] && why="timed out after ${limit} s"
    say "- [FAILED] $name: $why (${took} s); last lines: $(tail -n 3 "$steplog" | tr '\n' ' ' | cut -c1-400)"
    failures=$((failures + 1))
  fi
  return "$rc"
}

# bench NAME LIMIT MODULE ARGS...: run a benchmark command (`python -m MODULE ARGS`); returns 0 when it
# measured something. With DRY=1 the command is only queued: at the end one Python process parses
# every queued command's arguments with that module's own argparse parser (imports paid once).
queue=$raw/dry_commands
: >"$queue"
bench() {
  local name=$1 limit=$2
  shift 2
  if [ "$DRY" = 1 ]; then
    { printf '%s' "$name"; printf '\x1f%s' "$@"; printf '\n'; } >>"$queue"
    return 1
  fi
  run "$name" "$limit" "$PY" -m "$@"
}
argcheck=$raw/argcheck.py
cat >"$argcheck" <<'EOF'
import argparse, contextlib, io, runpy, sys

class Parsed(Exception):
    pass

original = argparse.ArgumentParser.parse_args

def parse(self, args=None, namespace=None):
    raise Parsed(original(self, args, namespace))

argparse.ArgumentParser.parse_args = parse
queue, out = sys.argv[1], sys.argv[2]
lines = []
for entry in open(queue, encoding="utf-8").read().splitlines():
    name, module, *args = entry.split("\x1f")
    sys.argv = [module, *args]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        status = f"- [FAILED] {name}: {module} finished without parsing its arguments"
    except Parsed as parsed:
        print(f"arguments parse: {module} {vars(parsed.args[0])}")
        status = f"- [ok] {name} (arguments parse)"
    except SystemExit:
        why = (err.getvalue().strip().splitlines() or ["?"])[-1]
        status = f"- [FAILED] {name}: arguments do not parse: {why}"
    except Exception as error:  # the module does not import, say
        status = f"- [FAILED] {name}: {type(error).__name__}: {error}"
    print(status)
    lines.append(status)
open(out, "w", encoding="utf-8").write("".join(line + "\n" for line in lines))
sys.exit(any(line.startswith("- [FAILED]") for line in lines))
EOF

# ---------------------------------------------------------------------------------------------
say "# Device benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say ""
say "device $DEVICE, dtype $DTYPE, shapes $SHAPES, budget ${BUDGET_S} s, dry run $DRY, python $PY, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
say ""

if compgen -G "$WHEELS/*.whl" >/dev/null; then  # packages the image lacks (docs/gpu.md), carried as wheels
  devdeps=$(mktemp -d)
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$devdeps" "$WHEELS"/*.whl >>"$log" 2>&1; then
    export PYTHONPATH="$PWD:$devdeps${PYTHONPATH#"$PWD"}"
    say "- [ok] installed $(ls "$WHEELS"/*.whl | wc -l) wheel(s) from $WHEELS/"
  else
    say "- [FAILED] installing the wheels in $WHEELS/ (see the log); going on without them"
  fi
fi

if has_step smoke; then
  smoke_device=$DEVICE smoke_dtype=$DTYPE
  [ "$DRY" = 1 ] && smoke_device=cpu smoke_dtype=float32  # a dry run has no GPU: check the snippet on CPU
  if ! run "smoke ($smoke_device, $smoke_dtype)" 150 "$PY" - "$smoke_device" "$smoke_dtype" <<'EOF'; then
import importlib.util, sys, time

t0 = time.perf_counter()
device, dtype_name = sys.argv[1], sys.argv[2]
import torch, transformers

print(f"torch {torch.__version__} (cuda {torch.version.cuda}), transformers {transformers.__version__}, python {sys.version.split()[0]}")
if device.startswith("cuda"):
    if not torch.cuda.is_available():
        sys.exit("SMOKE FAILED: torch sees no CUDA device (torch.cuda.is_available() is False)")
    print(f"GPU: {torch.cuda.get_device_name()}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
from transformers import LlamaConfig, LlamaForCausalLM

from lazybench.methods import GenerationRequest, build_method
from lazybench.models import resolve_dtype

dtype = resolve_dtype(dtype_name, torch.device(device))
config = LlamaConfig(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=6,
                     num_attention_heads=4, num_key_value_heads=2)
torch.manual_seed(0)
model = LlamaForCausalLM(config).to(device=device, dtype=dtype).eval()
request = GenerationRequest(prompt_ids=list(range(3, 259)), max_new_tokens=2)
with torch.inference_mode():
    for name in ("baseline", "lazyllm"):
        result = build_method(name).run(model, request)
        print(f"{name}: ttft {result.ttft_s * 1000:.1f} ms, tokens {result.tokens}, pruned {result.pruned}")
        if len(result.tokens) != 2 or result.pruned != (name == "lazyllm"):
            sys.exit(f"SMOKE FAILED: {name} gave {result.tokens}, pruned {result.pruned}")
missing = [m for m in ("hydra", "omegaconf", "pandas", "rouge_score") if importlib.util.find_spec(m) is None]
if missing:
    print(f"note: the runner row needs {', '.join(missing)} (carry wheels, docs/gpu.md); it will fail without")
print(f"SMOKE OK in {time.perf_counter() - t0:.1f} s")
EOF
    say ""
    say "ABORTED: the smoke step failed, so no later step could work; see device_bench.log"
    repack
    exit 1
  fi
  grep -E "^(torch|GPU|note)" "$log" | sed 's/^/  /' >>"$report"
  repack
fi

if has_step host; then
  if [ -f lazybench/bench/host.py ]; then
    mkdir -p "$raw/host"
    bench "host syncs and ops per step" 90 lazybench.bench.host --device "$DEVICE" --dtype "$DTYPE" --out "$raw/host"
    for f in "$raw"/host/*.md; do [ -f "$f" ] && { echo; cat "$f"; } >>"$report"; done
  else
    say "- [absent] host: lazybench/bench/host.py is not in this checkout"
  fi
  repack
fi

if has_step ttft; then
  read_flag=()
  if grep -q -- "--decode-read" lazybench/bench/ttft.py; then
    read_flag=(--decode-read both)
  else
    say "- [note] this ttft.py has no --decode-read: decode reads measured one way only"
  fi
  for unit in $TTFT_UNITS; do
    model=${unit%%:*} tokens=${unit##*:} tag=ttft_${unit%%:*}_${unit##*:}
    # shellcheck disable=SC2086  # TTFT_ARGS is a list of options
    if bench "ttft $model, $tokens tokens" "$LIMIT_TTFT" lazybench.bench.ttft --model "$model" --device "$DEVICE" \
      --dtype "$DTYPE" --lengths "$tokens" $TTFT_ARGS "${read_flag[@]}" --out "$raw" --tag "$tag"; then
      { echo; cat "$raw/$tag.md"; } >>"$report"
      if [ ! -s "$csv" ]; then head -n 1 "$raw/$tag.csv" | sed 's/^/model,/' >"$csv"; fi
      tail -n +2 "$raw/$tag.csv" | sed "s/^/$model,/" >>"$csv"
    fi
    repack
  done
fi

if has_step runner; then
  shape_dir=$raw/shape_$RUNNER_SHAPE
  data=${DATA_DIR:-}
  [ -z "$data" ] && [ -d shared/longbench ] && data=$PWD/shared/longbench
  overrides=(model=llama2-7b-random "model.name=$shape_dir" "model.id=$RUNNER_SHAPE-random" "model.device=$DEVICE"
    "model.dtype=$DTYPE" "model.max_length=$RUNNER_TOKENS" model.context_limit=null suite.name=device
    "suite.datasets=[hotpotqa]" suite.limit=1 "suite.max_new_tokens_cap=$RUNNER_NEW" warmups=1
    timing.prefill_repeats=3 "output_dir=$raw/runs" name=runner progress=false plot=false ${data:+"data_dir=$data"})
  missing=$("$PY" -c 'import importlib.util as u; print(*[m for m in ("hydra", "omegaconf", "rouge_score") if u.find_spec(m) is None])' 2>>"$log")
  if [[ " $missing " == *" rouge_score "* ]]; then
    overrides+=(fidelity=false)
    say "- [note] rouge_score is not installed: the runner row runs without fidelity (docs/gpu.md: wheels)"
  fi
  if [[ " $missing " == *" hydra "* || " $missing " == *" omegaconf "* ]]; then
    say "- [FAILED] runner: hydra-core/omegaconf are not installed here; carry them as wheels (docs/gpu.md)"
    failures=$((failures + 1))
  else
    runner_cmd=("$PY" -m lazybench.cli "${overrides[@]}")
    # a dry run composes and validates everything (tokenizer, config, data, prompts) except the GPU
    [ "$DRY" = 1 ] && runner_cmd+=(model.device=cpu dry_run=true)
    if run "shape $RUNNER_SHAPE (config and tokenizer, no weights)" 60 "$PY" -m lazybench.runner.testing shape \
      "$RUNNER_SHAPE" "$shape_dir" &&
      run "runner: lazybench, random $RUNNER_SHAPE on $DEVICE, one row, baseline + lazyllm" "$LIMIT_RUNNER" \
        "${runner_cmd[@]}" && [ "$DRY" != 1 ]; then
      "$PY" - "$raw/runs/runner/records.jsonl" >>"$report" 2>>"$log" <<'EOF'
import json, sys

records = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
base = next(r["ttft_s"] for r in records if r["method"] == "baseline")
print("\n| method | prompt tokens | TTFT s (median) | TTFT samples s | spread | TTFT x | decode ms/step | new tokens |")
print("|---|---:|---:|---|---:|---:|---:|---:|")
for r in records:
    samples = ", ".join(f"{s:.4f}" for s in r.get("ttft_samples_s") or [r["ttft_s"]])
    step = r["decode_step_mean_s"]
    print(f"| {r['method_label']} | {r['prompt_tokens']} | {r['ttft_s']:.4f} | {samples} | {r.get('ttft_spread') or 0:.3f} "
          f"| {base / r['ttft_s']:.2f} | {'' if step is None else f'{step * 1000:.2f}'} | {r['new_tokens']} |")
EOF
    fi
  fi
  repack
fi

if has_step overhead; then
  # shellcheck disable=SC2086
  bench "overhead (engine vs plain forward)" 90 lazybench.bench.overhead $OVERHEAD_ARGS --device "$DEVICE" \
    --dtype "$DTYPE" --out "$raw" --tag overhead && { echo; cat "$raw/overhead.md"; } >>"$report"
  repack
fi

if [ "$DRY" = 1 ] && [ -s "$queue" ]; then
  run "argument check of $(wc -l <"$queue") queued benchmark command(s)" 150 "$PY" "$argcheck" "$queue" "$raw/argcheck.md"
  cat "$raw/argcheck.md" >>"$report" 2>/dev/null
  repack
fi

say ""
say "finished in $(($(date +%s) - start)) s with $failures failed or skipped step(s)"
[ "$failures" = 0 ]
