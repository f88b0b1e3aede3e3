#!/usr/bin/env bash
# smoke.sh: the README's first command as a new user runs it, end to end, on a given Node.
#
#   scripts/smoke.sh [NODE]     (default: the machine's own `node` outside node_modules)
#
# Starts `baton up` with NODE running bin/baton.js (on Node < 22.13 the launcher re-runs itself
# under the Node 24 that `npm ci` installed), creates 2 replicas of examples/hello, checks they
# answer HTTP, restarts baton (SIGTERM) and checks the same pids were re-adopted, then
# `baton down`. Prints "smoke: PASS" last; exits non-zero with the step that failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The machine's node: the first on PATH that is not this project's node_modules/.bin/node.
if [[ $# -ge 1 ]]; then NODE="$1"; else
  NODE="$(PATH="$(echo "$PATH" | tr ':' '\n' | grep -v "$ROOT/node_modules/.bin" | paste -sd:)" command -v node)"
fi
STEP="setup"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/baton-smoke.XXXXXX")"
UP_PID=""
export BATON_HOST="unix://$TMP/baton.sock"
die() { echo "smoke: FAIL ($STEP): $*" >&2; [[ -f "$TMP/up.log" ]] && tail -20 "$TMP/up.log" >&2; exit 1; }
cleanup() {
  if [[ -n "$UP_PID" ]] && kill -0 "$UP_PID" 2>/dev/null; then timeout 30 "$NODE" bin/baton.js down >/dev/null 2>&1 || kill -9 "$UP_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
baton() { timeout 60 "$NODE" bin/baton.js "$@"; }

echo "smoke: $("$NODE" --version) at $NODE"
start_up() {
  "$NODE" bin/baton.js up --data-dir "$TMP" >>"$TMP/up.log" 2>&1 &
  UP_PID=$!
  for _ in $(seq 1 150); do
    if [[ -S "$TMP/baton.sock" ]] && baton node ls -q >/dev/null 2>&1; then return 0; fi
    kill -0 "$UP_PID" 2>/dev/null || die "baton up exited early"
    sleep 0.1
  done
  die "baton up did not answer within 15 s"
}
task_pids() { baton service ps hello --format json | grep '"DesiredState":"running"' | sed -E 's/.*"Pid":([0-9]+).*/\1/' | sort | paste -sd' '; }

STEP="baton up"
start_up
STEP="service create"
baton service create --name hello --replicas 2 -e GREETING=smoke node examples/hello/server.js >/dev/null
STEP="replicas answer HTTP"
for port in $(baton service ps hello --format json | sed -E 's/.*"Port":([0-9]+).*/\1/'); do
  body="$(curl -fsS --max-time 5 "http://127.0.0.1:$port/")" || die "no answer on port $port"
  [[ "$body" == smoke* ]] || die "unexpected answer on $port: $body"
done
STEP="restart re-adopts"
before="$(task_pids)"
kill -TERM "$UP_PID"; rc=0; wait "$UP_PID" || rc=$?
[[ $rc -eq 0 ]] || die "baton up exited $rc on SIGTERM"
start_up
after="$(task_pids)"
[[ -n "$before" && "$before" == "$after" ]] || die "pids before restart [$before], after [$after]"
STEP="baton down"
baton down >/dev/null
rc=0; wait "$UP_PID" || rc=$?
[[ $rc -eq 0 ]] || die "baton up exited $rc after baton down"
UP_PID=""
echo "smoke: PASS (tasks $after re-adopted)"
