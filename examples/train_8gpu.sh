#!/usr/bin/env bash
# BGE-M3 on 8 GPUs. Pick one: DDP (default), DeepSpeed ZeRO-2, or FSDP.
set -euo pipefail
COMMON=(--model_name_or_path BAAI/bge-m3 --data_path data/train.json --output_dir runs/bge-m3-8gpu
        --num_train_epochs 5 --per_device_train_batch_size 16 --learning_rate 2e-5 --max_length 512 --bf16
        --eval_steps 200 --logging_steps 50)
case "${1:-ddp}" in
  ddp)   torchrun --nproc_per_node 8 -m m3cls train "${COMMON[@]}" ;;
  zero2) torchrun --nproc_per_node 8 -m m3cls train "${COMMON[@]}" --deepspeed examples/ds_zero2.json ;;
  fsdp)  torchrun --nproc_per_node 8 -m m3cls train "${COMMON[@]}" --fsdp "full_shard auto_wrap" \
           --fsdp_config examples/fsdp_bge_m3.json ;;
  *) echo "usage: $0 [ddp|zero2|fsdp]" >&2; exit 2 ;;
esac
