#!/usr/bin/env bash
# Runs the black-box JS checks (audit.mjs, graphiql.mjs, apq.mjs, subscriptions.mjs, schema.mjs, federation.mjs, trusted.mjs) against a fresh couponql server.
#
#   bash tests/js/run.sh [path/to/couponql]      (default: target/debug/couponql)
#
# Installs the pinned npm packages if they are missing (npm ci), migrates and seeds a throw-away
# SQLite database, starts the server on a free 127.0.0.1 port, waits for GET /health, runs every
# script (all of them, even when one fails), stops the server, and exits non-zero if any failed.
# The last line is the total `N passed, N failed`. JS_SCRIPTS="audit apq" runs a subset.
# graphiql.mjs needs /usr/bin/chromium (Debian: apt-get install -y chromium).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
JS=tests/js
BIN=${1:-target/debug/couponql}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
SCRIPTS=${JS_SCRIPTS:-audit graphiql apq subscriptions schema federation trusted}

say() { echo "js: $*"; }

if [ ! -x "$BIN" ]; then
  say "server binary not found or not executable: $BIN (build it first: cargo build)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

# npm packages, exactly as locked, when missing or older than the lock file.
if [ ! -f "$JS/node_modules/.package-lock.json" ] || [ "$JS/package-lock.json" -nt "$JS/node_modules/.package-lock.json" ]; then
  say "installing npm packages (npm ci)"
  if ! npm ci --prefix "$JS" --no-audit --no-fund; then
    say "npm ci failed" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

WORK=$(mktemp -d /tmp/couponql-js.XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  SERVER_PID=
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
BASE="http://127.0.0.1:$PORT"
export DATABASE_URL="sqlite://$WORK/couponql.db?mode=rwc"
export BIND_ADDR="127.0.0.1:$PORT"
# subscriptions.mjs mints tokens with the binary and starts a second server process on the same database;
# schema.mjs runs `couponql schema`. federation.mjs runs `couponql schema --federation` and mints tokens.
# trusted.mjs mints tokens and starts servers with TRUSTED_DOCUMENTS (a codegen manifest; broken ones) on the same database.
export COUPONQL_BIN="$BIN"

# With an explicit DATABASE_URL the server does not seed by itself.
say "migrating and seeding $DATABASE_URL"
if ! "$BIN" migrate >"$WORK/migrate.log" 2>&1 || ! "$BIN" seed >"$WORK/seed.log" 2>&1; then
  say "migrate/seed failed:" >&2
  tail -n 30 "$WORK/migrate.log" "$WORK/seed.log" >&2 2>/dev/null
  echo "0 passed, 1 failed"
  exit 1
fi

say "starting $BIN on $BIND_ADDR"
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

up=0
for _ in $(seq 1 120); do # 30 s
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$BASE/health" 2>/dev/null; then
    up=1
    break
  fi
  sleep 0.25
done
if [ "$up" -ne 1 ]; then
  say "the server did not answer GET /health within 30 s; its log:" >&2
  tail -n 40 "$WORK/server.log" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
say "server is up at $BASE"

total_passed=0
total_failed=0
failed_scripts=()
for name in $SCRIPTS; do
  echo
  say "=== $name.mjs"
  node "$JS/$name.mjs" "$BASE" 2>&1 | tee "$WORK/$name.out"
  rc=${PIPESTATUS[0]}
  f=
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/$name.out" | tail -n 1)
  if [ -n "$last" ]; then
    p=${last%% passed*}
    f=${last#*, }
    f=${f%% failed*}
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
  fi
  if [ "$rc" -ne 0 ]; then
    failed_scripts+=("$name.mjs")
    # a script that died before its closing line still counts as a failure
    if [ -z "$last" ] || [ "${f:-0}" -eq 0 ]; then total_failed=$((total_failed + 1)); fi
  fi
done

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  say "the server died during the run; its log:" >&2
  tail -n 40 "$WORK/server.log" >&2
  failed_scripts+=("(server died)")
  total_failed=$((total_failed + 1))
fi

echo
if [ "${#failed_scripts[@]}" -gt 0 ]; then
  say "FAILED: ${failed_scripts[*]}"
else
  say "all scripts passed"
fi
echo "$total_passed passed, $total_failed failed"
[ "${#failed_scripts[@]}" -eq 0 ]
