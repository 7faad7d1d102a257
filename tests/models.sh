#!/usr/bin/env bash
# tests/models.sh — the test models, made at test time with tools/mkmodel and tools/mkwhisper
# (random weights, real architectures): used by tests/run.sh (`make test`) and `make itest`.
#
# usage: tests/models.sh [--if-missing] DIR
# --if-missing: keep a model (and its projector) already in DIR; without it every model is made
# again. Needs build/bin/mkmodel and build/bin/mkwhisper (BIN=... for another build folder) and
# SY_TEMPLATES_DIR (the real chat templates; derived from deps/engines.sh when unset).
# Exits non-zero at the first model that cannot be made.
set -euo pipefail
cd "$(dirname "$0")/.."
if_missing=false
[ "${1:-}" = --if-missing ] && { if_missing=true; shift; }
[ $# -eq 1 ] || { echo "usage: tests/models.sh [--if-missing] DIR" >&2; exit 2; }
models=$1
bin=${BIN:-build/bin}
: "${SY_TEMPLATES_DIR:=$(deps/engines.sh print-prefix)/../src/llama.cpp/models/templates}"
mkdir -p "$models"

# mk LAST CMD...: run CMD unless --if-missing and LAST (the last file CMD writes) is there
mk() {
  local last=$1; shift
  if $if_missing && [ -s "$last" ]; then return 0; fi
  "$@"
}

mk "$models/tiny-qwen2.gguf" "$bin/mkmodel" --preset tiny-qwen2 --seed 1 -o "$models/tiny-qwen2.gguf"
# quantized weights (the CPU backend's repack / matrix-unit kernels, which F16 never takes):
# 256 wide so that Q4_K_M's K-quant blocks are real, not a fallback type
mk "$models/tiny-qwen2-q8_0.gguf" "$bin/mkmodel" --preset tiny-qwen2 --seed 7 --n-embd 256 --n-ff 512 --type q8_0 \
  -o "$models/tiny-qwen2-q8_0.gguf"
mk "$models/tiny-qwen2-q4_k_m.gguf" "$bin/mkmodel" --preset tiny-qwen2 --seed 7 --n-embd 256 --n-ff 512 --type q4_k_m \
  -o "$models/tiny-qwen2-q4_k_m.gguf"
mk "$models/tiny-bert.gguf" "$bin/mkmodel" --preset tiny-bert --seed 2 -o "$models/tiny-bert.gguf"
mk "$models/tiny-bert-rerank.gguf" "$bin/mkmodel" --preset tiny-bert-rerank --seed 5 -o "$models/tiny-bert-rerank.gguf"
mk "$models/tiny-bert-rerank-tmpl.gguf" "$bin/mkmodel" --preset tiny-bert-rerank --seed 5 \
  --rerank-template '[CLS]{query}[SEP]{document}[SEP]' -o "$models/tiny-bert-rerank-tmpl.gguf"
# real chat templates: Qwen3's (tools, thinking off by request) and QwQ's (opens <think>)
mk "$models/tiny-qwen3.gguf" "$bin/mkmodel" --preset tiny-qwen3 --seed 3 \
  --chat-template "$SY_TEMPLATES_DIR/Qwen-Qwen3-0.6B.jinja" -o "$models/tiny-qwen3.gguf"
mk "$models/tiny-qwq.gguf" "$bin/mkmodel" --preset tiny-qwen3 --seed 4 \
  --chat-template "$SY_TEMPLATES_DIR/Qwen-QwQ-32B.jinja" -o "$models/tiny-qwq.gguf"
# a vision model: tiny qwen2 + a LLaVA-style projector (16 tokens per image), checked through mtmd
mk "$models/tiny-vlm-mmproj.gguf" "$bin/mkmodel" --preset tiny-qwen2 --seed 5 -o "$models/tiny-vlm.gguf" \
  --mmproj "$models/tiny-vlm-mmproj.gguf" --verify
# an audio-input model: tiny qwen2 + an Ultravox-style projector (375 tokens per 30 s window)
mk "$models/tiny-alm-mmproj.gguf" "$bin/mkmodel" --preset tiny-qwen2 --seed 6 -o "$models/tiny-alm.gguf" \
  --mmproj "$models/tiny-alm-mmproj.gguf" --mmproj-kind audio --verify
# a neural voice: Pocket-TTS backbone + its speech projector (mtmd audio generation; docs/TTS.md)
mk "$models/tiny-pocket-mmproj.gguf" "$bin/mkmodel" --preset tiny-pockettts --seed 6 -o "$models/tiny-pocket.gguf" \
  --mmproj "$models/tiny-pocket-mmproj.gguf" --verify
# Qwen3-TTS: talker with the codec vocabulary + qwen3tts_gen/qwen3tts_spkenc projector (one thread:
# the verify's many tiny graph steps are much slower split over two busy cores)
mk "$models/tiny-qwen3tts-mmproj.gguf" "$bin/mkmodel" --preset tiny-qwen3tts --seed 6 --threads 1 \
  -o "$models/tiny-qwen3tts.gguf" --mmproj "$models/tiny-qwen3tts-mmproj.gguf" --verify
# Qwen vision-language models: M-RoPE text models with their real projectors' structure and Qwen's
# vision markers (itest vision_arch; docs/MODELS.md)
mk "$models/tiny-qwen25vl-mmproj.gguf" "$bin/mkmodel" --preset tiny-qwen25vl --seed 9 \
  --chat-template "$SY_TEMPLATES_DIR/Qwen-Qwen2.5-7B-Instruct.jinja" -o "$models/tiny-qwen25vl.gguf" \
  --mmproj "$models/tiny-qwen25vl-mmproj.gguf" --verify
mk "$models/tiny-qwen3vl-mmproj.gguf" "$bin/mkmodel" --preset tiny-qwen3vl --seed 10 \
  --chat-template "$SY_TEMPLATES_DIR/Qwen-Qwen3-0.6B.jinja" -o "$models/tiny-qwen3vl.gguf" \
  --mmproj "$models/tiny-qwen3vl-mmproj.gguf" --verify
mk "$models/tiny-qwen3vlmoe-mmproj.gguf" "$bin/mkmodel" --preset tiny-qwen3vlmoe --seed 14 \
  --chat-template "$SY_TEMPLATES_DIR/Qwen-Qwen3-0.6B.jinja" -o "$models/tiny-qwen3vlmoe.gguf" \
  --mmproj "$models/tiny-qwen3vlmoe-mmproj.gguf" --verify
# a hybrid (attention + recurrent layers): Qwen3-Next's structure, for the prompt cache's rules on
# recurrent state (itest prompt_cache_hybrid)
mk "$models/tiny-hybrid.gguf" "$bin/mkmodel" --preset tiny-hybrid --seed 8 -o "$models/tiny-hybrid.gguf"
# audio LLMs (docs/MKMODEL.md "Audio LLMs"): Voxtral (llama + Mistral's control tokens, the voxtral
# projector, Mistral's template), Qwen3-ASR (qwen3vl + Qwen3's audio markers, the qwen3a projector),
# Ultravox with its real stack factor 8 (the pinned mtmd cannot encode it: the worker refuses its
# audio); Qwen3-Embedding (last-token pooling over the appended <|endoftext|>) — itest audio_arch
mk "$models/tiny-voxtral-mmproj.gguf" "$bin/mkmodel" --preset tiny-voxtral --seed 9 \
  --chat-template "$SY_TEMPLATES_DIR/Mistral-Small-3.2-24B-Instruct-2506.jinja" \
  -o "$models/tiny-voxtral.gguf" --mmproj "$models/tiny-voxtral-mmproj.gguf" --verify
mk "$models/tiny-qwen3asr-mmproj.gguf" "$bin/mkmodel" --preset tiny-qwen3asr --seed 10 \
  -o "$models/tiny-qwen3asr.gguf" --mmproj "$models/tiny-qwen3asr-mmproj.gguf" --verify
mk "$models/tiny-ultravox-mmproj.gguf" "$bin/mkmodel" --preset tiny-ultravox --seed 11 \
  --chat-template "$SY_TEMPLATES_DIR/meta-llama-Llama-3.2-3B-Instruct.jinja" \
  -o "$models/tiny-ultravox.gguf" --mmproj "$models/tiny-ultravox-mmproj.gguf" --verify
mk "$models/tiny-qwen3-embedding.gguf" "$bin/mkmodel" --preset tiny-qwen3-embedding --seed 12 \
  -o "$models/tiny-qwen3-embedding.gguf" --verify
# mixture-of-experts and hybrid text models (itest moe_hybrid; docs/MODELS.md), each with the
# chat template its real model ships: Qwen3-30B-A3B, Qwen3-Coder-Next, Qwen3.5 dense and MoE,
# Nemotron-3-Nano (Mamba-2 + attention + experts)
mk "$models/tiny-qwen3moe.gguf" "$bin/mkmodel" --preset tiny-qwen3moe --seed 9 \
  --chat-template "$SY_TEMPLATES_DIR/Qwen-Qwen3-0.6B.jinja" -o "$models/tiny-qwen3moe.gguf" --verify
mk "$models/tiny-qwen3next.gguf" "$bin/mkmodel" --preset tiny-hybrid --seed 10 \
  --chat-template "$SY_TEMPLATES_DIR/Qwen3-Coder.jinja" -o "$models/tiny-qwen3next.gguf" --verify
mk "$models/tiny-qwen35.gguf" "$bin/mkmodel" --preset tiny-qwen35 --seed 11 \
  --chat-template "$SY_TEMPLATES_DIR/Qwen3.5-4B.jinja" -o "$models/tiny-qwen35.gguf" --verify
mk "$models/tiny-qwen35moe.gguf" "$bin/mkmodel" --preset tiny-qwen35moe --seed 12 \
  --chat-template "$SY_TEMPLATES_DIR/Qwen3.5-4B.jinja" -o "$models/tiny-qwen35moe.gguf" --verify
mk "$models/tiny-nemotron-h-moe.gguf" "$bin/mkmodel" --preset tiny-nemotron-h-moe --seed 13 \
  --chat-template "$SY_TEMPLATES_DIR/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.jinja" \
  -o "$models/tiny-nemotron-h-moe.gguf" --verify
# speech to text without ../shared
mk "$models/tiny-whisper.bin" "$bin/mkwhisper" --seed 5 -o "$models/tiny-whisper.bin"
