"""Compare ways to push live coupon stock to subscribers in *other* server processes.

Mechanisms, measured with the same method in one run:
  poll    - one `SELECT id, remaining_quantity, status ... WHERE id IN (...)` every 200 ms per
            process (what src/service/stock.rs does); MariaDB, PostgreSQL and SQLite.
  notify  - PostgreSQL LISTEN/NOTIFY: pg_notify() inside the issuing transaction.
  redis   - Redis pub/sub: PUBLISH right after the database COMMIT returns.

What is measured:
  1. Latency: a writer process commits N_CHANGES changes spaced randomly 20-80 ms apart (so the
     poll phase is random) and records time.monotonic() after COMMIT returns; a listener in another
     process, on its own connection, records when it observes the change. A change counts as seen
     when the listener sees that value or a newer one for the coupon (a poll skips intermediate values,
     as the server's watch channel does). CLOCK_MONOTONIC is system-wide on Linux, so the two
     processes' clocks agree. Poll is run with 1 and 100 watched coupons (one query either way).
  2. Write-path cost: WRITERS processes run `UPDATE ... remaining_quantity - 1; COMMIT` in a tight loop
     for WRITE_SECS, plain vs with the mechanism, alternating ABAB... ROUNDS times; medians reported.
     "hot" = every writer on coupon 1 (a flash sale), "spread" = a random one of 100 coupons (isolates
     the commit-time global lock NOTIFY takes from the row lock). The mechanism's listener runs during
     its phases (for poll: a poller watching 100 coupons, which is the poll's only cost to writers).
  3. Idle cost of the poll: 5 queries/s per process by construction; the client round-trip time of
     one poll query (an upper bound of its DB time) with 1 and 100 ids.

Needs MariaDB (root@127.0.0.1:3306/test), PostgreSQL (postgres@127.0.0.1:5432/postgres) and Redis
(127.0.0.1:6379). Creates the scratch table notify_bench_coupons (and /tmp/notify_bench.sqlite) and
drops them at the end. About 6 minutes. Run from the repository root:

  python3 -m venv /tmp/nb && /tmp/nb/bin/pip install -r bench/notify/requirements.txt \
    && /tmp/nb/bin/python bench/notify/compare.py
"""
import multiprocessing as mp
import os
import random
import sqlite3
import statistics
import time
from collections import defaultdict
from contextlib import closing

import psycopg
import pymysql
import redis

# 환경 변수로 줄여 빠르게 확인할 수 있다 (예: N_CHANGES=30 WRITE_SECS=1 ROUNDS=1); 자식 프로세스도 물려받는다
N_CHANGES = int(os.environ.get("N_CHANGES", 200))
WRITERS = int(os.environ.get("WRITERS", 8))
WRITE_SECS = float(os.environ.get("WRITE_SECS", 5))
ROUNDS = int(os.environ.get("ROUNDS", 3))
POLL_EVERY = 0.200
N_ROWS = 100
BASE = 1_000_000  # 변경 k는 remaining_quantity = BASE - k 로 쓴다: 값 자체가 변경 번호라 짝짓기가 쉽다
TABLE = "notify_bench_coupons"
PG_CHANNEL, REDIS_CHANNEL = "couponql_stock", "couponql:stock"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
SQLITE_PATH = "/tmp/notify_bench.sqlite"
NAMES = {"maria": "MariaDB", "pg": "PostgreSQL", "sqlite": "SQLite"}
WORKS_ON = {"poll": "MariaDB/MySQL, PostgreSQL, SQLite", "notify": "PostgreSQL only",
            "redis": "all three (+ Redis)"}
EXTRA = {"poll": "no", "notify": "no", "redis": "Redis"}
MECH_NAMES = {"poll": "poll 200 ms", "notify": "LISTEN/NOTIFY", "redis": "Redis pub/sub"}
ctx = mp.get_context("spawn")  # 자식마다 새 인터프리터와 자기 연결: fork로 물려받은 소켓을 공유하지 않는다


def connect(backend, autocommit=True):
    if backend == "pg":
        return psycopg.connect(PG_DSN, autocommit=autocommit)
    if backend == "maria":
        # autocommit 필수: 아니면 REPEATABLE READ 스냅샷이 고정돼 폴러가 새 값을 못 본다
        return pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test", autocommit=autocommit)
    conn = sqlite3.connect(SQLITE_PATH, timeout=10, isolation_level=None if autocommit else "")
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def sql(backend, text):
    return text.replace("%s", "?") if backend == "sqlite" else text


def select_sql(backend, n_ids):
    marks = ", ".join(["%s"] * n_ids)
    return sql(backend, f"SELECT id, remaining_quantity, status FROM {TABLE} WHERE id IN ({marks})")


def setup():
    for b in ("maria", "pg", "sqlite"):
        with closing(connect(b)) as conn:
            cur = conn.cursor()
            cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
            cur.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, remaining_quantity int NOT NULL,"
                        " status varchar(16) NOT NULL)")
            cur.executemany(sql(b, f"INSERT INTO {TABLE} VALUES (%s, %s, 'ACTIVE')"),
                            [(i, BASE) for i in range(1, N_ROWS + 1)])


def teardown():
    for b in ("maria", "pg", "sqlite"):
        with closing(connect(b)) as conn:
            conn.cursor().execute(f"DROP TABLE IF EXISTS {TABLE}")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(SQLITE_PATH + suffix):
            os.remove(SQLITE_PATH + suffix)


def reset(backend):
    with closing(connect(backend)) as conn:
        conn.cursor().execute(sql(backend, f"UPDATE {TABLE} SET remaining_quantity = %s"), (BASE,))


# ---------- listeners (each in its own process) ----------

def listener_main(mech, backend, ids, ready, stop, out):
    seen = []  # (id, remaining, monotonic time observed)
    if mech == "poll":
        conn = connect(backend)
        cur, query, last = conn.cursor(), select_sql(backend, len(ids)), {}
        ready_sent, next_at = False, time.monotonic()
        while not stop.is_set():
            cur.execute(query, ids)
            rows = cur.fetchall()
            t = time.monotonic()
            for i, rem, _status in rows:
                if last.get(i) != rem:
                    last[i] = rem
                    seen.append((i, rem, t))
            if not ready_sent:
                ready.set()
                ready_sent = True
            # 고정 박자로 200 ms마다. 서버(stock.rs)는 읽은 뒤 200 ms를 자므로 주기가 질의 시간(1 ms 미만)만큼 길다:
            # 이 측정에서는 무시할 만한 차이다
            next_at += POLL_EVERY
            time.sleep(max(0.0, next_at - time.monotonic()))
    elif mech == "notify":
        conn = psycopg.connect(PG_DSN, autocommit=True)
        conn.execute(f"LISTEN {PG_CHANNEL}")
        ready.set()
        while not stop.is_set():
            for n in conn.notifies(timeout=0.2):
                t = time.monotonic()
                i, rem = n.payload.split(":")
                seen.append((int(i), int(rem), t))
    else:
        ps = redis.Redis(host="127.0.0.1", port=6379).pubsub()
        ps.subscribe(REDIS_CHANNEL)
        while not stop.is_set():
            m = ps.get_message(timeout=0.2)
            if m is None:
                continue
            if m["type"] == "subscribe":
                ready.set()  # 구독 확인을 받은 뒤에야 발행이 닿는다
            elif m["type"] == "message":
                t = time.monotonic()
                i, rem = m["data"].decode().split(":")
                seen.append((int(i), int(rem), t))
    out.put(seen)


def start_listener(mech, backend, ids):
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    p = ctx.Process(target=listener_main, args=(mech, backend, ids, ready, stop, out))
    p.start()
    if not ready.wait(30):
        raise RuntimeError(f"listener {mech}/{backend} did not start")
    return p, stop, out


def stop_listener(handle):
    p, stop, out = handle
    stop.set()
    seen = out.get(timeout=60)  # join 전에 꺼낸다: 큰 결과가 파이프에 걸려 join이 멈추지 않게
    p.join()
    return seen


# ---------- 1. latency ----------

def write_changes(mech, backend, ids):
    conn = connect(backend, autocommit=False)
    cur = conn.cursor()
    pub = redis.Redis(host="127.0.0.1", port=6379) if mech == "redis" else None
    update = sql(backend, f"UPDATE {TABLE} SET remaining_quantity = %s WHERE id = %s")
    commits = []
    for k in range(1, N_CHANGES + 1):
        time.sleep(random.uniform(0.020, 0.080))
        i, rem = random.choice(ids), BASE - k
        cur.execute(update, (rem, i))
        if mech == "notify":
            cur.execute("SELECT pg_notify(%s, %s)", (PG_CHANNEL, f"{i}:{rem}"))
        conn.commit()
        t = time.monotonic()
        if pub:
            pub.publish(REDIS_CHANNEL, f"{i}:{rem}")
        commits.append((i, rem, t))
    conn.close()
    return commits


def latency_run(mech, backend, n_watch):
    ids = list(range(1, n_watch + 1))
    reset(backend)
    handle = start_listener(mech, backend, ids)
    commits = write_changes(mech, backend, ids)
    time.sleep(2 * POLL_EVERY + 0.1)  # 마지막 변경이 한 박자 안에 보이도록
    seen = stop_listener(handle)
    by_id = defaultdict(list)
    for i, rem, t in seen:
        by_id[i].append((rem, t))
    lat, missed = [], 0
    for i, rem, t in commits:
        # 이 값이나 더 새 값(더 작은 remaining)을 처음 본 시각
        first = min((ts for r, ts in by_id[i] if r <= rem), default=None)
        if first is None:
            missed += 1
        else:
            lat.append((first - t) * 1000)
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "p99": q[98], "max": max(lat), "missed": missed}


# ---------- 2. write-path cost ----------

def tx_writer(backend, mech, spread, barrier, out):
    conn = connect(backend, autocommit=False)
    cur = conn.cursor()
    pub = redis.Redis(host="127.0.0.1", port=6379) if mech == "redis" else None
    plain = f"UPDATE {TABLE} SET remaining_quantity = remaining_quantity - 1 WHERE id = %s"
    # NOTIFY도 왕복 한 번(문장 하나 + COMMIT)으로: 차이는 NOTIFY 자체와 커밋 때의 전역 잠금뿐
    notify = (f"WITH u AS ({plain} RETURNING id, remaining_quantity) "
              "SELECT pg_notify(%s, u.id::text || ':' || u.remaining_quantity::text) FROM u")
    rng = random.Random()
    barrier.wait()
    n, end = 0, time.monotonic() + WRITE_SECS
    while time.monotonic() < end:
        i = rng.randint(1, N_ROWS) if spread else 1
        if mech == "notify":
            cur.execute(notify, (i, PG_CHANNEL))
            cur.fetchall()
        else:
            cur.execute(plain, (i,))
        conn.commit()
        if pub:
            pub.publish(REDIS_CHANNEL, f"{i}:0")
        n += 1
    out.put(n)
    conn.close()


def throughput(backend, mech, spread):
    helper = start_listener(mech, backend, list(range(1, N_ROWS + 1))) if mech != "plain" else None
    barrier, out = ctx.Barrier(WRITERS + 1), ctx.Queue()
    procs = [ctx.Process(target=tx_writer, args=(backend, mech, spread, barrier, out)) for _ in range(WRITERS)]
    for p in procs:
        p.start()
    barrier.wait()
    total = sum(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join()
    if helper:
        stop_listener(helper)
    return total / WRITE_SECS


def write_cost(backend, mech, spread):
    plain, withm = [], []
    for _ in range(ROUNDS):  # ABAB...: 기계가 흔들려도 두 쪽이 같은 흔들림을 받게
        plain.append(throughput(backend, "plain", spread))
        withm.append(throughput(backend, mech, spread))
    return statistics.median(plain), statistics.median(withm), plain, withm


# ---------- 3. idle cost of the poll ----------

def poll_query_ms(backend, n_ids, reps=300):
    with closing(connect(backend)) as conn:
        cur, query, ids = conn.cursor(), select_sql(backend, n_ids), list(range(1, n_ids + 1))
        times = []
        for k in range(reps + 20):
            t = time.perf_counter()
            cur.execute(query, ids)
            cur.fetchall()
            if k >= 20:  # 앞의 20번은 준비(psycopg는 5번째부터 prepared statement)
                times.append((time.perf_counter() - t) * 1000)
    return statistics.mean(times), statistics.median(times)


def main():
    print(f"load average at start: {os.getloadavg()}")
    setup()
    try:
        lat_cases = [("poll", "maria", 1), ("poll", "maria", 100), ("poll", "pg", 1), ("poll", "pg", 100),
                     ("poll", "sqlite", 1), ("poll", "sqlite", 100), ("notify", "pg", 1),
                     ("redis", "pg", 1), ("redis", "maria", 1)]
        lat = {}
        for case in lat_cases:
            lat[case] = latency_run(*case)
            r = lat[case]
            print(f"latency {case}: p50 {r['p50']:.1f} p95 {r['p95']:.1f} p99 {r['p99']:.1f}"
                  f" max {r['max']:.1f} ms, missed {r['missed']}", flush=True)
        write_cases = [("pg", "notify", False), ("pg", "notify", True), ("pg", "redis", False),
                       ("pg", "poll", False), ("maria", "poll", False), ("maria", "redis", False)]
        wc = {}
        for case in write_cases:
            wc[case] = write_cost(*case)
            print(f"write {case}: plain {[round(x) for x in wc[case][2]]} mech {[round(x) for x in wc[case][3]]} tx/s",
                  flush=True)
        idle = {(b, n): poll_query_ms(b, n) for b in ("maria", "pg", "sqlite") for n in (1, 100)}
    finally:
        teardown()
    print(f"load average at end: {os.getloadavg()}\n")

    print(f"Write path: {WRITERS} writer processes x {WRITE_SECS:.0f} s, plain/mechanism alternating, median of {ROUNDS}")
    print(f"{'mechanism':<15}{'backend':<12}{'rows':<8}{'plain tx/s':>11}{'with tx/s':>11}{'change':>9}")
    for (b, m, spread), (p, w, _, _) in wc.items():
        print(f"{MECH_NAMES[m]:<15}{NAMES[b]:<12}{'spread' if spread else 'hot':<8}{p:>11.0f}{w:>11.0f}{(w / p - 1) * 100:>+8.1f}%")

    print(f"\nIdle cost of the poll: {1 / POLL_EVERY:.0f} queries/s per process while anything is watched")
    print(f"{'backend':<12}{'ids':>5}{'mean ms':>9}{'p50 ms':>8}{'busy ms/s':>10}")
    for (b, n), (mean, p50) in idle.items():
        print(f"{NAMES[b]:<12}{n:>5}{mean:>9.3f}{p50:>8.3f}{mean / POLL_EVERY:>10.2f}")

    print(f"\nSummary: latency commit -> other process sees it, {N_CHANGES} changes 20-80 ms apart (ms)")
    print(f"{'mechanism':<15}{'backend':<11}{'watch':>5}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}{'miss':>5}"
          f"  {'write tx/s hot (plain->with)':<29}{'works on':<35}extra service")
    for (m, b, n), r in lat.items():
        w = wc.get((b, m, False))
        wtxt = f"{w[0]:.0f} -> {w[1]:.0f} ({(w[1] / w[0] - 1) * 100:+.0f}%)" if w and n == 1 else "-"
        print(f"{MECH_NAMES[m]:<15}{NAMES[b]:<11}{n:>5}{r['p50']:>7.1f}{r['p95']:>7.1f}{r['p99']:>7.1f}"
              f"{r['max']:>7.1f}{r['missed']:>5}  {wtxt:<29}{WORKS_ON[m]:<35}{EXTRA[m]}")


if __name__ == "__main__":
    main()
