#!/usr/bin/env bash
# Mirrors the reference m3_trainner.sh: fine-tune BGE-M3 on a GPU box with fp16.
# Data: a JSON list of {"messages": [...]} records; text = messages[1].content, label = messages[-1].content.
# Labels are discovered from the data (no label dictionary to edit).
set -euo pipefail
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}

m3cls train \
  --model_name_or_path BAAI/bge-m3 \
  --data_path data/train.json \
  --output_dir runs/bge-m3-cls \
  --num_train_epochs 5 \
  --per_device_train_batch_size 16 \
  --per_device_eval_batch_size 32 \
  --gradient_accumulation_steps 2 \
  --learning_rate 2e-5 \
  --max_length 512 \
  --logging_steps 50 \
  --eval_steps 200 \
  --save_steps 200 \
  --fp16 \
  2>&1 | tee runs/bge-m3-cls.log
