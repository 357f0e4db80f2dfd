#!/usr/bin/env bash
# The issue-3 GPU check, run on the lent device: start the real engine, then measure it with
# eyetest bench and with the reference stdlib client, side by side on the same server.
set -u
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $OUT/gpu.txt
out=$(bash ./serve.sh 8123) || { echo "$out"; tail -50 /tmp/serve-8123.log > $OUT/serve.log; exit 1; }
echo "$out"
model=$(echo "$out" | sed -n 's/.* model \([^ ]*\) pid.*/\1/p')
sed "s#@MODEL@#$model#" project/eyetest.toml.in > project/eyetest.toml
chmod +x ./eyetest
{
  echo "== eyetest run (qualitative; random weights, so the rubric is expected to fail)"
  timeout 120 ./eyetest --root project run --target hf-11b --out results.jsonl
  echo "== eyetest bench"
  timeout 240 ./eyetest --root project bench caption-560-gpu --target hf-11b --out out --accept
  echo "== reference client (shared/gpu/client.py), same server, same settings"
  timeout 200 python3 ./client.py http://127.0.0.1:8123/v1/chat/completions "$model" \
    --concurrency 1,4 --requests 8 --max-tokens 64 --size 560
} 2>&1 | tee $OUT/check.log
find project/out -type f \( -name '*.csv' -o -name '*.svg' -o -name '*.json' \) -exec cp {} $OUT/ \;
cp project/results.jsonl $OUT/ 2>/dev/null
find project/golden -name "*.toml" -exec cp {} $OUT/baseline.toml \; 2>/dev/null
tail -30 /tmp/serve-8123.log > $OUT/serve.log
ls $OUT
