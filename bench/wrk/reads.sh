#!/usr/bin/env bash
# Read throughput at the floor (issue 13): wrk, 50 connections, against one release server on MariaDB,
# for `{ __typename }`, `me { coupons { coupon } }` and `coupon(id)`. Several server binaries are
# measured alternately in one sitting (A B A B …), each round on a freshly seeded database, with the
# CPU seconds the server and mariadbd spent per 1,000 requests (from /proc/<pid>/stat).
#
#   bench/wrk/reads.sh [-r rounds] [-d seconds] BIN [BIN …]
#   e.g. bench/wrk/reads.sh -r 3 /tmp/bins/couponql-base target-rel/release/couponql
set -euo pipefail
rounds=3 secs=10
while getopts r:d: o; do case $o in r) rounds=$OPTARG ;; d) secs=$OPTARG ;; *) exit 2 ;; esac; done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n 2,8p "$0"; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
db_url="mysql://root@127.0.0.1:3306/couponql_wrk"
port=18080
user=11111111-1111-4111-8111-111111111111   # 시드의 김민수: 발급 내역 2개
coupon=c0000000-0000-4000-8000-000000000001
export JWT_SECRET=wrk-bench-secret RUST_LOG=warn

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime (clock ticks)
mariadb_pid=$(pgrep -x mariadbd | head -n1)
hz=$(getconf CLK_TCK)

run_one() { # bin label query
  local bin=$1 label=$2 query=$3 tok=$4 s0 d0 out rps
  s0=$(ticks "$server_pid"); d0=$(ticks "$mariadb_pid")
  out=$(QUERY="$query" TOKEN="$tok" wrk -t2 -c50 -d"${secs}s" -s "$here/post.lua" "http://127.0.0.1:$port/graphql")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local n; n=$(awk '/requests in/ {print $1}' <<<"$out")
  local s1 d1; s1=$(ticks "$server_pid"); d1=$(ticks "$mariadb_pid")
  local errs; errs=$(awk '/Non-2xx/ {print $4}' <<<"$out")
  printf '%-40s %-22s %10s req/s  server %6.1f ms  mariadbd %6.1f ms CPU per 1k req%s\n' \
    "$(basename "$bin")" "$label" "$rps" \
    "$(echo "($s1 - $s0) * 1000000 / $hz / $n" | bc -l)" "$(echo "($d1 - $d0) * 1000000 / $hz / $n" | bc -l)" \
    "${errs:+  non-2xx $errs}"
}

for r in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS couponql_wrk; CREATE DATABASE couponql_wrk"
    DATABASE_URL=$db_url "$bin" migrate >/dev/null && DATABASE_URL=$db_url "$bin" seed >/dev/null
    DATABASE_URL=$db_url BIND_ADDR=127.0.0.1:$port "$bin" serve >/dev/null 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
    tok=$(JWT_SECRET=$JWT_SECRET "$bin" token --user "$user")
    echo "# round $r"
    run_one "$bin" "{ __typename }" '{ __typename }' "$tok"
    run_one "$bin" "me { coupons }" 'query { me { id name coupons { id isUsed coupon { id name discountValue remainingQuantity } } } }' "$tok"
    run_one "$bin" "coupon(id)" "query { coupon(id: \\\"$coupon\\\") { id name discountValue remainingQuantity } }" "$tok"
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  done
done
mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS couponql_wrk"
