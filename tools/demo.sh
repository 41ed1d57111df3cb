#!/usr/bin/env bash
# Starts the demo backends and a g6 master on examples/demo.toml, in the
# foreground. Ctrl-C (or TERM) stops g6 gracefully and the backends with it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/backend -mode http  -listen 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 &
web=$!
bin/backend -mode greet -listen 127.0.0.1:9011,127.0.0.1:9012,127.0.0.1:9013 &
echo_=$!
trap 'kill $web $echo_ 2>/dev/null || true' EXIT
sleep 0.3
cat <<MSG

g6 demo — try, in another terminal:
  curl http://127.0.0.1:8080/            # answered by 9001, 9002, 9003 in turn
  echo hi | nc -N 127.0.0.1 8081         # greeting from a backend, then your echo
  bin/loadgen -addr 127.0.0.1:8081 -n 2000 -c 20 -expect "hello from"
Stop with Ctrl-C.

MSG
bin/g6 master -c examples/demo.toml -w 2 &
g6=$!
trap 'kill -TERM $g6 2>/dev/null; wait $g6; kill $web $echo_ 2>/dev/null || true' INT TERM
wait $g6
