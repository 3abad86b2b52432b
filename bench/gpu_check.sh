#!/usr/bin/env bash
# GPU check of the encoder training: the `small` config for a few hundred steps in bf16 on synthetic shards,
# reporting training samples/s and model FLOP utilisation (MFU), in under 5 minutes.
#
#   OUT=/some/dir bash bench/gpu_check.sh          # on a GPU machine, from the repository root
#
# Needs: python with torch (CUDA), numpy, pyarrow. No internet, no sentence-transformers: the frozen text
# features are deterministic stand-ins written to the run's text cache (the text tower's trainable head and
# everything else run as in real training; only the frozen MiniLM forward is skipped, it is cached in real runs too).
# Writes $OUT/gpu_check.json (also printed as the last line), $OUT/run/ (metrics.jsonl, train.log, summary).
#
# Knobs (environment): STEPS=300 BATCH=64 CONFIG=small NPROC=1 SIZE_FACTOR=4 (patches 32x32) N_PATCHES=200
#   WORKERS=6 LIMIT_S=240 (training time limit) PEAK_TFLOPS (bf16 dense peak per GPU; default from the GPU name)
#   ALLOW_CPU=1 (run the same path on CPU, e.g. STEPS=3 BATCH=4 CONFIG=tiny, to test this script; no MFU)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
OUT="${OUT:-$REPO/bench/results/gpu_check}"
STEPS="${STEPS:-300}"; BATCH="${BATCH:-64}"; CONFIG="${CONFIG:-small}"; NPROC="${NPROC:-1}"
SIZE_FACTOR="${SIZE_FACTOR:-4}"; N_PATCHES="${N_PATCHES:-200}"; WORKERS="${WORKERS:-6}"; LIMIT_S="${LIMIT_S:-240}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
T0=$(date +%s)

log() { echo "[gpu_check] $*" >&2; }
fail() {
  echo "[gpu_check] FAIL: $*" >&2
  "$PY" -c 'import json,sys; print(json.dumps({"ok": False, "error": sys.argv[1]}))' "$*" | tee "$OUT/gpu_check.json"
  exit 1
}

command -v "$PY" >/dev/null 2>&1 || { echo "[gpu_check] FAIL: no $PY on PATH (set PYTHON=...)" >&2; exit 1; }
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# 1. preflight (seconds): interpreter, packages, GPU, the repository's namespace symlinks
log "preflight"
PRE=$("$PY" - <<'EOF' 2>&1
import importlib, json, os, sys
missing = [m for m in ("torch", "numpy", "pyarrow") if importlib.util.find_spec(m) is None]
if missing:
    print(f"missing python packages {missing} (offline machine: install from wheels carried with the repo)")
    sys.exit(3)
import torch
if not torch.cuda.is_available() and os.environ.get("ALLOW_CPU") != "1":
    print(f"torch {torch.__version__} sees no CUDA device (set ALLOW_CPU=1 to test this script on CPU)")
    sys.exit(4)
try:
    import georeset.models.train  # noqa: F401  (needs the georeset/models -> ../models symlink)
except Exception as e:
    print(f"cannot import georeset.models.train from {os.getcwd()}: {type(e).__name__}: {e}")
    sys.exit(5)
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
print(json.dumps({"torch": torch.__version__, "device": name, "gpus": torch.cuda.device_count()}))
EOF
) || fail "preflight: $PRE"
log "preflight ok: $PRE"

# 2. synthetic shards (tests/models/shard_factory.py) and stand-in text features
log "writing $N_PATCHES synthetic patches (x$SIZE_FACTOR size) to $OUT/shards"
rm -rf "$OUT/shards" "$OUT/run"
"$PY" tests/models/shard_factory.py "$OUT/shards" "$N_PATCHES" "$SIZE_FACTOR" >/dev/null || fail "shard_factory failed"
"$PY" - "$OUT/shards/manifest.json" "$OUT/run" <<'EOF' || fail "could not write the text feature cache"
import hashlib, sys
from pathlib import Path
import torch, torch.nn.functional as F
from georeset.models.data import load_split, read_manifest
from georeset.models.text_encoder import TEXT_CACHE, FrozenTextBackbone
man = read_manifest(Path(sys.argv[1]))
texts = sorted({str(r["text"]) for s in ("train", "test") for r in load_split(man, s)})
def fake(ts):
    g = [torch.Generator().manual_seed(int.from_bytes(hashlib.sha1(t.encode()).digest()[:4], "big")) for t in ts]
    return F.normalize(torch.stack([torch.randn(384, generator=x) for x in g]), dim=-1)
fb = FrozenTextBackbone(encode_fn=fake); fb(texts)
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True); fb.save_cache(out / TEXT_CACHE)
EOF

# 3. training under torchrun (bf16 autocast on CUDA is built into georeset.models.train)
log "training: config=$CONFIG steps=$STEPS batch=$BATCH/rank nproc=$NPROC (limit ${LIMIT_S}s)"
set +e
timeout --signal=TERM --kill-after=20 "$LIMIT_S" "$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" \
  -m georeset.models.train --config "$CONFIG" --manifest "$OUT/shards/manifest.json" --out "$OUT/run" \
  --steps "$STEPS" --batch-size "$BATCH" --num-workers "$WORKERS" --log-every 1 > "$OUT/run/train.log" 2>&1
RC=$?
set -e
if [ "$RC" -ne 0 ]; then
  tail -n 25 "$OUT/run/train.log" >&2
  [ "$RC" -eq 124 ] && log "training hit the ${LIMIT_S}s limit; reporting the steps that finished"
  [ -s "$OUT/run/metrics.jsonl" ] || fail "training failed (exit $RC) before any step; see $OUT/run/train.log"
fi

# 4. FLOPs of one training step (torch.utils.flop_counter) and the report
log "counting FLOPs and writing the report"
"$PY" - "$OUT" "$CONFIG" "$BATCH" "$NPROC" "$RC" "$T0" <<'EOF' || fail "report failed"
import json, os, statistics, sys, time
from pathlib import Path
import torch
from torch.utils.flop_counter import FlopCounterMode
from georeset.models.config import load_config
from georeset.models.data import ShardDataset, collate, read_manifest
from georeset.models.model import GeoResetModel
from georeset.models.text_encoder import TEXT_CACHE, FrozenTextBackbone
from georeset.models.train import _query_desc, _step_generator, compute_losses

out, cfg_name, bs, nproc, rc, t0 = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
cfg = load_config(cfg_name)
recs = [json.loads(x) for x in (out / "run" / "metrics.jsonl").read_text().splitlines() if x.strip()]
steady = recs[len(recs) // 3:] or recs  # skip warm-up (cuDNN/allocator) steps
step_s = statistics.median(r["step_s"] for r in steady)
sps = bs * nproc / step_s
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
man = read_manifest(out / "shards" / "manifest.json")
ds = ShardDataset(man, split="train", max_tokens=cfg.train.max_tokens, partners=True, seed=0)
batch = collate([s for _, s in zip(range(bs), iter(ds))])
fb = FrozenTextBackbone(); fb.load_cache(out / "run" / TEXT_CACHE)
model = GeoResetModel(cfg, text_backbone=fb).to(dev)
desc, mask = batch["desc"].to(dev), batch["mask"].to(dev)
qd = _query_desc(desc, mask, cfg.train.dense_queries) if cfg.train.dense_weight > 0 else None
with FlopCounterMode(display=False) as fc:
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        o = model(desc, mask, model.text.features(batch["texts"]), batch["partner_desc"].to(dev),
                  batch["partner_mask"].to(dev), qd)
    compute_losses(o, batch, cfg, _step_generator(0, 1, 0), dev)["loss"].backward()
flops_step_rank = fc.get_total_flops()
name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
peaks = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}
peak_env = os.environ.get("PEAK_TFLOPS")
peak = float(peak_env) if peak_env else next((v for k, v in peaks.items() if k in name), None)
achieved = flops_step_rank / step_s  # per GPU
report = {
    "ok": rc == 0, "train_exit_code": rc, "device": name, "gpus": nproc, "config": cfg_name,
    "batch_per_rank": bs, "steps_done": recs[-1]["step"], "median_step_s": step_s, "samples_per_s": sps,
    "tokens_mean": statistics.mean(r["tokens_mean"] for r in steady), "final_loss": recs[-1]["loss"],
    "flops_per_step_per_gpu": flops_step_rank, "flops_per_sample": flops_step_rank / bs,
    "achieved_tflops_per_gpu": achieved / 1e12, "peak_bf16_tflops_per_gpu": peak,
    "mfu": achieved / (peak * 1e12) if peak else None,
    "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
    "note": "MFU counts the model FLOPs of one step (torch.utils.flop_counter, bf16 autocast) over the median step "
            "time of the last two thirds of the steps; frozen text features are cached stand-ins",
    "wall_s": time.time() - t0,
}
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
print(json.dumps(report))
EOF
