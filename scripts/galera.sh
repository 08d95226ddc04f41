#!/usr/bin/env bash
# Local 3-node MariaDB Galera cluster on 127.0.0.1 for couponql tests.
#
# Usage:
#   scripts/galera.sh up       start (idempotent); stdout = the 3 URLs, one per line
#   scripts/galera.sh down     stop all nodes and remove the base dir
#   scripts/galera.sh kill N   kill -9 node N (1..3)
#   scripts/galera.sh status   port, wsrep_cluster_size, wsrep_local_state_comment
#   scripts/galera.sh urls     print the 3 URLs
#
# Env: GALERA_DIR (/tmp/couponql-galera), GALERA_BASE_PORT (3311),
#      GALERA_GCOMM_PORT (4567), GALERA_DB (couponql), GALERA_TIMEOUT (120 s)
# Ports per node N (1..3): SQL base+N-1, gcomm gcomm+N-1, IST gcomm+100+N-1,
# SST gcomm+200+N-1. Diagnostics go to stderr.
set -euo pipefail

DIR=${GALERA_DIR:-/tmp/couponql-galera}
PORT0=${GALERA_BASE_PORT:-3311}
GPORT0=${GALERA_GCOMM_PORT:-4567}
DB=${GALERA_DB:-couponql}
TIMEOUT=${GALERA_TIMEOUT:-120}
PROVIDER=/usr/lib/galera/libgalera_smm.so
MARIADBD=/usr/sbin/mariadbd
# root 로 돌리면 joiner 쪽 rsync 데몬이 nobody 로 권한을 낮춰 datadir 에 못 써서 SST 가 실패함
OSUSER=mysql
NODES=(1 2 3)

log() { echo "galera: $*" >&2; }
die() { log "$*"; exit 1; }
port() { echo $((PORT0 + $1 - 1)); }
gport() { echo $((GPORT0 + $1 - 1)); }
sock() { echo "$DIR/node$1/mysqld.sock"; }
# 관리 작업은 소켓으로 — TCP 계정 준비 전에도 동작해야 하므로
sql() { local n=$1; shift; mariadb --no-defaults -uroot --socket="$(sock "$n")" -NB "$@"; }
var() { sql "$1" -e "SHOW STATUS LIKE '$2'" 2>/dev/null | cut -f2 || true; }
is() { [[ "$(var "$1" "$2")" == "$3" ]]; }
answers() { sql "$1" -e 'SELECT 1' >/dev/null 2>&1; }
pid() { cat "$DIR/node$1/pid" 2>/dev/null || true; }
alive() { local p; p=$(pid "$1"); [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }
healthy() { local n; for n in "${NODES[@]}"; do is "$n" wsrep_cluster_size 3 || return 1; done; }
urls() { for n in "${NODES[@]}"; do echo "mysql://root@127.0.0.1:$(port "$n")/$DB"; done; }

# 조건이 참이 될 때까지 폴링; 프로세스가 죽거나 시간 초과면 에러 로그를 보여주고 실패
wait_for() {
  local n=$1 what=$2 end=$((SECONDS + TIMEOUT)); shift 2
  until "$@"; do
    if ! alive "$n" || ((SECONDS >= end)); then
      log "node$n: gave up waiting for $what"
      tail -n 40 "$DIR/node$n/error.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

ensure_packages() {
  local pkgs=()
  [[ -e $PROVIDER ]] || pkgs+=(galera-4)
  # rsync SST: rsync 본체와, 리스너 확인용 ss/lsof 가 필요함
  command -v rsync >/dev/null || pkgs+=(rsync)
  command -v ss >/dev/null || command -v lsof >/dev/null || pkgs+=(iproute2)
  if ((${#pkgs[@]})); then
    log "installing ${pkgs[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
  fi
  [[ -x /usr/bin/wsrep_sst_rsync ]] || die "wsrep_sst_rsync missing (mariadb-server)"
  id "$OSUSER" >/dev/null 2>&1 || die "OS user $OSUSER missing (mariadb-server)"
}

write_cnf() {
  local n=$1 g peers=() i
  g=$(gport "$n")
  for i in "${NODES[@]}"; do peers+=("127.0.0.1:$(gport "$i")"); done
  # evs 타임아웃을 줄여 kill 된 노드를 몇 초 안에 클러스터에서 빼도록 함 (기본 15초)
  cat >"$DIR/node$n/my.cnf" <<EOF
[mysqld]
user=$OSUSER
datadir=$DIR/node$n/data
port=$(port "$n")
socket=$(sock "$n")
pid-file=$DIR/node$n/mysqld.pid
log-error=$DIR/node$n/error.log
bind-address=127.0.0.1
skip-name-resolve
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_flush_log_at_trx_commit=2
innodb_buffer_pool_size=128M
innodb_log_file_size=8M
innodb_doublewrite=0
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=couponql
wsrep_cluster_address=gcomm://$(IFS=,; echo "${peers[*]}")
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:$g
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:$((g + 200))
wsrep_provider_options="base_port=$g; gcache.size=64M; ist.recv_addr=127.0.0.1:$((g + 100)); evs.suspect_timeout=PT3S; evs.inactive_timeout=PT6S; evs.join_retrans_period=PT0.2S"
EOF
}

start() {
  local n=$1; shift
  # setsid: 호출한 셸/터미널의 시그널과 stdout 에서 떼어 놓아 $(...) 가 끝나도록
  setsid "$MARIADBD" --defaults-file="$DIR/node$n/my.cnf" "$@" \
    </dev/null >>"$DIR/node$n/error.log" 2>&1 &
  echo $! >"$DIR/node$n/pid"
}

kill_all() {
  local n
  for n in "${NODES[@]}"; do if alive "$n"; then kill -9 "$(pid "$n")"; fi; done
  for n in "${NODES[@]}"; do while alive "$n"; do sleep 0.1; done; done
}

setup_sql() {
  sql 1 -e "CREATE DATABASE IF NOT EXISTS \`$DB\`;
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
    GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
}

# 클라이언트와 같은 경로(TCP, 비밀번호 없음)로 모든 노드를 확인
check_tcp() {
  local n
  for n in "${NODES[@]}"; do
    mariadb --no-defaults -uroot -h127.0.0.1 -P"$(port "$n")" "$DB" -e 'SELECT 1' >/dev/null \
      || die "node$n: TCP login as root failed"
  done
}

up() {
  local n
  if healthy; then setup_sql; check_tcp; urls; return; fi
  ensure_packages
  # 이전 실행의 잔여물 — 테스트 클러스터라 보존할 데이터가 없으므로 새로 만든다
  kill_all
  rm -rf "$DIR"
  for n in "${NODES[@]}"; do
    if ss -ltnH "( sport = :$(port "$n") or sport = :$(gport "$n") )" 2>/dev/null | grep -q .; then
      die "port $(port "$n") or $(gport "$n") already in use"
    fi
    mkdir -p "$DIR/node$n/data"
    write_cnf "$n"
    touch "$DIR/node$n/error.log"
  done
  chown -R "$OSUSER:" "$DIR"
  mariadb-install-db --no-defaults --datadir="$DIR/node1/data" --user="$OSUSER" \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    --innodb-log-file-size=8M >"$DIR/node1/install.log" 2>&1 \
    || { cat "$DIR/node1/install.log" >&2; die "mariadb-install-db failed"; }
  log "bootstrapping node1"
  start 1 --wsrep-new-cluster
  wait_for 1 "wsrep_ready=ON" is 1 wsrep_ready ON
  setup_sql
  # node2/3 은 빈 datadir 로 rsync SST 를 받는다. 데이터가 작아 SST 시간은 거의 스크립트 고정
  # 비용(~3초)이라 datadir 복제+IST 로도 이득이 없었음. 동시에 띄우면 donor 가 바쁜 쪽은 1초마다
  # 재시도하므로 안전하고, 서버 기동/gcomm 조인이 겹쳐 몇 초 빨라진다.
  log "joining node2, node3"
  start 2
  start 3
  for n in 2 3; do wait_for "$n" "Synced" is "$n" wsrep_local_state_comment Synced; done
  for n in "${NODES[@]}"; do wait_for "$n" "cluster size 3" is "$n" wsrep_cluster_size 3; done
  check_tcp
  log "cluster up"
  urls
}

down() {
  local n end
  # 조인 중인 노드는 shutdown 에 응답하지 않을 수 있어 timeout 을 두고 병렬로 보냄
  for n in "${NODES[@]}"; do
    (answers "$n" && timeout 20 mariadb-admin --no-defaults -uroot --socket="$(sock "$n")" shutdown) \
      >/dev/null 2>&1 &
  done
  end=$((SECONDS + 20))
  for n in "${NODES[@]}"; do
    while alive "$n" && ((SECONDS < end)); do sleep 0.2; done
  done
  kill_all
  wait
  rm -rf "$DIR"
}

status() {
  local n
  for n in "${NODES[@]}"; do
    if answers "$n"; then
      echo "node$n port=$(port "$n") size=$(var "$n" wsrep_cluster_size) state=$(var "$n" wsrep_local_state_comment)"
    else
      echo "node$n port=$(port "$n") down"
    fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  kill)
    [[ ${2:-} =~ ^[1-3]$ ]] || die "usage: $0 kill 1|2|3"
    alive "$2" || die "node$2 is not running"
    kill -9 "$(pid "$2")" ;;
  status) status ;;
  urls) urls ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
