#!/usr/bin/env python3
"""Issue 18's attacks against a server binary, for before/after figures (not a test: the tests are in
tests/api/hardening.rs and tests/api/ws_limits.rs). Each run starts the binary on a fresh embedded SQLite
database, attacks it, and prints what the attack cost and how the probes fared.

    python3 bench/attacks/attacks.py BIN fanout [N ...]     # fragment fan-out: server CPU seconds per document
    python3 bench/attacks/attacks.py BIN slowbody [COUNT]   # COUNT connections trickle their body; probes answered
    python3 bench/attacks/attacks.py BIN idlews [COUNT]     # COUNT idle WebSockets at once; probes answered

Only the standard library; Linux (/proc) for the CPU time.
"""
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(bin_path):
    port = free_port()
    work = tempfile.mkdtemp(prefix="couponql-attack-")
    env = dict(os.environ, DATABASE_URL=f"sqlite://{work}/db.sqlite?mode=rwc", BIND_ADDR=f"127.0.0.1:{port}",
               RUST_LOG="warn", JWT_SECRET="attack-bench-secret")
    proc = subprocess.Popen([bin_path, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not come up")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def fan_out(n):
    q = "query { ...F0 }\n"
    for i in range(n):
        q += f"fragment F{i} on Query {{ a: __typename ...F{i + 1} ...F{i + 1} }}\n"
    return q + f"fragment F{n} on Query {{ __typename }}\n"


def post(port, body, timeout=600):
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                  + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.split(b"\r\n\r\n", 1)[-1]


async def probe_loop(port, seconds, interval=0.1, limit=1.0):
    """A normal client: `{ __typename }` every `interval`; counts answers within `limit` seconds."""
    answered, total, worst = 0, 0, 0.0
    end = time.monotonic() + seconds
    body = json.dumps({"query": "{ __typename }"}).encode()
    while time.monotonic() < end:
        total += 1
        t = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), limit)
            w.write(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            head = await asyncio.wait_for(r.read(12), limit - (time.monotonic() - t))
            w.close()
            if head.startswith(b"HTTP/1.1 200"):
                answered += 1
        except (OSError, asyncio.TimeoutError):
            pass
        worst = max(worst, time.monotonic() - t)
        await asyncio.sleep(interval)
    return answered, total, worst


def fanout(bin_path, ns):
    proc, port = start(bin_path)
    try:
        for n in ns:
            doc = fan_out(int(n))
            c0, t0 = cpu_seconds(proc.pid), time.monotonic()
            answer = post(port, {"query": doc})
            c1, t1 = cpu_seconds(proc.pid), time.monotonic()
            code = json.loads(answer)["errors"][0]["extensions"].get("code") if b"errors" in answer else "OK"
            print(f"{os.path.basename(bin_path)} fan-out N={n} ({len(doc)} bytes): {code}, "
                  f"server CPU {c1 - c0:.3f} s, wall {t1 - t0:.3f} s")
    finally:
        proc.kill()


async def slowbody_attack(port, count):
    conns = []
    for _ in range(count):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        conns.append((r, w))
    opened = time.monotonic()

    async def trickle():
        for _ in range(10):
            await asyncio.sleep(2)
            for _, w in conns:
                try:
                    w.write(b" ")
                except (OSError, RuntimeError):
                    pass
    trickler = asyncio.create_task(trickle())
    answered, total, worst = await probe_loop(port, 15)
    await trickler
    closed = 0
    for r, _ in conns:
        try:
            data = await asyncio.wait_for(r.read(4096), 0.05)
            closed += data == b"" or data.startswith(b"HTTP/1.1 408")
        except OSError:
            closed += 1  # reset: the server closed it and our later trickle hit a closed socket
        except asyncio.TimeoutError:
            pass
    print(f"{count} trickling bodies: probes answered within 1 s {answered}/{total} (slowest {worst * 1000:.0f} ms); "
          f"after {time.monotonic() - opened:.0f} s, {closed}/{count} trickling connections answered 408 or closed")


async def idlews_attack(port, count):
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    upgrade = (f"GET /graphql/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n").encode()
    conns, upgraded, refused, failed = [], 0, 0, 0

    async def open_one():
        nonlocal upgraded, refused, failed
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            w.write(upgrade)
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
            if head.startswith(b"HTTP/1.1 101"):
                upgraded += 1
            else:
                refused += 1
            conns.append(w)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            failed += 1
    opening = asyncio.gather(*(open_one() for _ in range(count)))
    probes = asyncio.create_task(probe_loop(port, 15))
    await opening
    answered, total, worst = await probes
    print(f"{count} idle WebSockets at once: {upgraded} upgraded, {refused} refused before the upgrade, {failed} failed; "
          f"probes answered within 1 s {answered}/{total} (slowest {worst * 1000:.0f} ms)")
    for w in conns:
        w.close()


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        raise SystemExit(2)
    bin_path, what, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if what == "fanout":
        fanout(bin_path, rest or ["23", "25"])
        return
    proc, port = start(bin_path)
    try:
        if what == "slowbody":
            asyncio.run(slowbody_attack(port, int(rest[0]) if rest else 2100))
        elif what == "idlews":
            asyncio.run(idlews_attack(port, int(rest[0]) if rest else 19000))
        else:
            raise SystemExit(f"unknown attack {what}")
    finally:
        proc.kill()


if __name__ == "__main__":
    main()
