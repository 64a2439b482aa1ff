#!/usr/bin/env bash
# Mirrors the reference inference.sh: print the text, the temperature, the predicted label and id, and every
# label's probability. --model_path takes the final folder or any checkpoint-N folder; max_length defaults to
# the value saved at training. For many texts, use --input FILE --output FILE: the model loads once.
set -euo pipefail
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}

m3cls predict \
  --model_path runs/bge-m3-cls \
  --device cuda \
  --temperature 1.0 \
  --text "这是一段需要判断是人类撰写还是模型改写的文本。"
