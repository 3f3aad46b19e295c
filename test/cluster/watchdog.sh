#!/bin/sh
# Reaps a test control plane whose owner died without calling stop() (SIGKILL, crash, CI
# timeout): once PARENT_PID is gone it SIGKILLs every process listed in DIR/pids and removes
# DIR. Nothing is left to shut down gracefully for: the data is throwaway, and a SIGTERMed
# kube-apiserver can hang for long once etcd is gone. control-plane.ts starts this detached, so
# it outlives the owner; stop() kills it.
# Usage: watchdog.sh PARENT_PID DIR
parent=$1
dir=$2
# A zombie still answers kill -0, so also check its state in /proc.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
  [ "$state" != Z ]
}
while alive "$parent"; do sleep 1; done

for f in "$dir"/pids/*; do
  [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
done
# A process may still be tearing down its files for a moment after SIGKILL.
rm -rf "$dir" 2>/dev/null || { sleep 1; rm -rf "$dir"; }
