#!/bin/sh
# Reaps a test control plane whose owner died without calling stop() (SIGKILL, crash, CI
# timeout): once PARENT_PID is gone it stops every process listed in DIR/pids and removes DIR.
# control-plane.ts starts it detached, so it outlives the owner; stop() kills it.
# Usage: watchdog.sh PARENT_PID DIR
parent=$1
dir=$2
while kill -0 "$parent" 2>/dev/null; do sleep 1; done

signal_all() {
  for f in "$dir"/pids/*; do
    [ -f "$f" ] && kill "-$1" "$(cat "$f")" 2>/dev/null
  done
}
any_alive() {
  for f in "$dir"/pids/*; do
    [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && return 0
  done
  return 1
}

signal_all TERM
i=0
while any_alive && [ "$i" -lt 10 ]; do
  sleep 1
  i=$((i + 1))
done
signal_all KILL
rm -rf "$dir"
