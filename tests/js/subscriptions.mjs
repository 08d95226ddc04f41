// couponStock over graphql-transport-ws with the real `graphql-ws` client (CONTRACT 9):
// first message, changes, sold out; an unknown coupon; a bad token (4403); the 21st subscription refused;
// a change made through a second server process on the same database, seen within 1 s.
//
//   node tests/js/subscriptions.mjs http://127.0.0.1:8123
//   (COUPONQL_BIN = the server binary, for tokens and the second process; DATABASE_URL = the first server's database)
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { baseUrlFromArgs, oneLine, reporter } from './lib.mjs';

const base = baseUrlFromArgs('subscriptions.mjs');
const r = reporter('subscriptions.mjs');
const BIN = process.env.COUPONQL_BIN;
if (!BIN || !process.env.DATABASE_URL) {
  console.error('subscriptions.mjs needs COUPONQL_BIN and DATABASE_URL (tests/js/run.sh sets them)');
  process.exit(2);
}
const USERS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'];
const token = (user, role = 'USER') => execFileSync(BIN, ['token', '--user', user, '--role', role], { encoding: 'utf8' }).trim();
const admin = token(USERS[0], 'ADMIN');

async function gql(url, query, variables, bearer = admin) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

async function newCoupon(total) {
  const v = await gql(
    base,
    `mutation($t: Int) { createCoupon(input: { name: "라이브 재고", discountType: FIXED, discountValue: "1000", totalQuantity: $t,
       validFrom: "2020-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" }) { id } }`,
    { t: total },
  );
  return v.data.createCoupon.id;
}

const issueTo = (url, coupon, user) =>
  gql(url, 'mutation($c: ID!, $u: ID) { issueCoupon(couponId: $c, userId: $u) { id } }', { c: coupon, u: user });

const wsUrl = (url) => `${url.replace(/^http/, 'ws')}/graphql/ws`;

function client(url, connectionParams = {}, on = {}) {
  return createClient({ url: wsUrl(url), webSocketImpl: WebSocket, connectionParams, retryAttempts: 0, lazy: true, on });
}

const STOCK = 'subscription($c: ID!) { couponStock(couponId: $c) { couponId issuedQuantity totalQuantity remainingQuantity soldOut status } }';

/** Subscribes and collects every event: `messages` (next payloads), `errors`, and a promise for completion. */
function watch(c, coupon) {
  const out = { messages: [], errors: [], done: null, waiters: [] };
  out.done = new Promise((resolve) => {
    out.dispose = c.subscribe(
      { query: STOCK, variables: { c: coupon } },
      {
        next: (m) => {
          if (m.errors) out.errors.push(...m.errors);
          if (m.data) out.messages.push({ at: Date.now(), stock: m.data.couponStock });
          out.waiters = out.waiters.filter((w) => !w());
        },
        error: (e) => {
          out.errors.push(e);
          resolve('error');
        },
        complete: () => resolve('complete'),
      },
    );
  });
  out.until = (pred, ms = 5000) =>
    new Promise((resolve) => {
      const check = () => {
        const hit = out.messages.find((m) => pred(m.stock));
        if (hit) resolve(hit);
        return !!hit;
      };
      if (check()) return;
      out.waiters.push(check);
      setTimeout(() => resolve(null), ms);
    });
  return out;
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function main() {
  // 1. first message, changes, sold out
  {
    const coupon = await newCoupon(3);
    const c = client(base);
    const w = watch(c, coupon);
    const first = await w.until(() => true);
    r.check(
      first && first.stock.issuedQuantity === 0 && first.stock.remainingQuantity === 3 && first.stock.status === 'ACTIVE',
      'the first message is the stock now',
      oneLine(JSON.stringify(first?.stock)),
    );
    for (const u of USERS) await issueTo(base, coupon, u);
    const sold = await w.until((s) => s.soldOut);
    r.check(sold && sold.stock.issuedQuantity === 3 && sold.stock.remainingQuantity === 0, 'changes arrive and the sold-out state arrives', oneLine(JSON.stringify(sold?.stock)));
    const gaps = w.messages.slice(1).map((m, i) => m.at - w.messages[i].at);
    r.check(gaps.every((g) => g >= 90), 'at most 10 messages a second', `gaps ${gaps.join(',')} ms`);
    w.dispose();
    await c.dispose();
  }

  // 2. an unknown coupon: an error with COUPON_NOT_FOUND, then complete
  {
    const c = client(base);
    const w = watch(c, '00000000-0000-4000-8000-000000000000');
    const how = await Promise.race([w.done, new Promise((res) => setTimeout(() => res('timeout'), 5000))]);
    const codes = w.errors.map((e) => e?.extensions?.code ?? (Array.isArray(e) ? e[0]?.extensions?.code : undefined));
    r.check(codes.includes('COUPON_NOT_FOUND') && how !== 'timeout', 'an unknown coupon answers COUPON_NOT_FOUND and completes', `${how} ${oneLine(JSON.stringify(w.errors))}`);
    await c.dispose();
  }

  // 3. a bad token closes the socket with 4403
  {
    let closedWith = null;
    const c = client(base, { Authorization: 'Bearer not-a-token' }, { closed: (e) => (closedWith = e?.code) });
    const w = watch(c, '00000000-0000-4000-8000-000000000000');
    await Promise.race([w.done, new Promise((res) => setTimeout(res, 5000))]);
    r.check(closedWith === 4403, 'a bad token in connection_init closes with 4403', `closed with ${closedWith}`);
    await c.dispose();
  }

  // 4. at most 20 subscriptions per connection: the 21st is refused, the first 20 keep going
  {
    const coupon = await newCoupon(null);
    const c = client(base, { Authorization: `Bearer ${token(USERS[1])}` });
    const ws = [];
    for (let i = 0; i < 20; i++) {
      ws.push(watch(c, coupon));
      await ws[i].until(() => true);
    }
    const extra = watch(c, coupon);
    await Promise.race([extra.done, new Promise((res) => setTimeout(res, 5000))]);
    const code = extra.errors.map((e) => e?.extensions?.code ?? (Array.isArray(e) ? e[0]?.extensions?.code : undefined))[0];
    r.check(ws.every((w) => w.messages.length === 1) && code === 'TOO_MANY_SUBSCRIPTIONS', 'the 21st subscription on one connection is refused', `21st: ${code}`);
    for (const w of ws) w.dispose();
    await c.dispose();
  }

  // 5. a change made through a second server process reaches this server's subscriber within 1 s
  {
    const port = await freePort();
    const other = `http://127.0.0.1:${port}`;
    const proc = spawn(BIN, ['serve'], { env: { ...process.env, BIND_ADDR: `127.0.0.1:${port}` }, stdio: 'ignore' });
    try {
      let up = false;
      for (let i = 0; i < 120 && !up; i++) {
        up = await fetch(`${other}/health`).then((res) => res.ok, () => false);
        if (!up) await new Promise((res) => setTimeout(res, 250));
      }
      r.check(up, 'a second server process starts on the same database');
      const coupon = await newCoupon(10);
      const c = client(base);
      const w = watch(c, coupon);
      await w.until(() => true);
      const sent = Date.now();
      const v = await issueTo(other, coupon, USERS[2]);
      const seen = await w.until((s) => s.issuedQuantity === 1, 3000);
      const after = seen ? seen.at - sent : null;
      r.check(!v.errors && seen && after <= 1000, "the other process's issuance is seen within 1 s", `after ${after} ms`);
      w.dispose();
      await c.dispose();
    } finally {
      proc.kill();
    }
  }
}

main()
  .catch((e) => r.fail('subscriptions.mjs crashed', oneLine(e?.stack ?? e)))
  .finally(() => r.finish());
