// couponql as an Apollo Federation v2 subgraph behind a real gateway (CONTRACT 13, "Federation"):
// an in-process order subgraph (@apollo/subgraph) owns `Order { id total }`; an @apollo/gateway
// (IntrospectAndCompose over couponql and the order subgraph, the caller's Authorization forwarded)
// answers `order(id) { total coupons { discountAmount coupon { name } } }` in one request; a supergraph
// composed (@apollo/composition) from `couponql schema --federation` serves the same query; and
// couponql's `_service { sdl }` and `_entities` answer directly.
//
//   node tests/js/federation.mjs http://127.0.0.1:8123
//   (COUPONQL_BIN = the server binary, for tokens and `couponql schema --federation`)
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { composeServices } from '@apollo/composition';
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { baseUrlFromArgs, oneLine, reporter } from './lib.mjs';

const base = baseUrlFromArgs('federation.mjs');
const endpoint = `${base}/graphql`;
const r = reporter('federation.mjs');
const BIN = process.env.COUPONQL_BIN;
if (!BIN) {
  console.error('federation.mjs needs COUPONQL_BIN (tests/js/run.sh sets it)');
  process.exit(2);
}

const USER = '11111111-1111-4111-8111-111111111111';
const OTHER = '22222222-2222-4222-8222-222222222222';
const NEW_USER_COUPON = 'c0000000-0000-4000-8000-000000000003'; // 신규 가입 쿠폰: FIXED 3000, unlimited, no minimum
const FIXED_5000 = 'c0000000-0000-4000-8000-000000000001'; // 5,000원 할인 쿠폰
const token = (user, role = 'USER') => execFileSync(BIN, ['token', '--user', user, '--role', role], { encoding: 'utf8' }).trim();
const userToken = token(USER);
const otherToken = token(OTHER);
const adminToken = token(OTHER, 'ADMIN'); // an ADMIN who is not the order's user
const show = (v) => oneLine(JSON.stringify(v));
const num = (d) => (d === null || d === undefined ? NaN : Number(d));

/** POST a GraphQL request to `url`; mutations carry a fresh Idempotency-Key. */
async function gql(url, query, variables, bearer) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (/^\s*mutation\b/.test(query)) headers['idempotency-key'] = randomUUID();
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { nonJson: text };
  }
  return { status: res.status, body };
}
const couponql = (query, variables, bearer) => gql(endpoint, query, variables, bearer);
const codes = (errors) => (errors || []).map((e) => e.extensions?.code).filter(Boolean);

// ---- the order subgraph -------------------------------------------------------------------------

const ORDER_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  type Order @key(fields: "id") {
    id: ID!
    total: String!
  }

  type Query {
    order(id: ID!): Order
  }
`;
/** id → { id, total }; filled in once couponql's orders exist. */
const orders = new Map();
const orderSchema = buildSubgraphSchema({
  typeDefs: parse(ORDER_SDL),
  resolvers: {
    Query: { order: (_, { id }) => orders.get(id) ?? null },
    Order: { __resolveReference: ({ id }) => orders.get(id) ?? null },
  },
});

const started = [];
async function listen(server, context) {
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' }, context });
  started.push(server);
  return url;
}

/** A gateway in an ApolloServer; the incoming Authorization is forwarded to every subgraph. */
async function startGateway(supergraphSdl) {
  const gateway = new ApolloGateway({
    supergraphSdl,
    buildService: ({ url }) =>
      new RemoteGraphQLDataSource({
        url,
        willSendRequest({ request, context }) {
          if (context?.authorization) request.http.headers.set('authorization', context.authorization);
        },
      }),
  });
  const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
  return listen(server, async ({ req }) => ({ authorization: req.headers.authorization }));
}

// ---- couponql: orders with coupons --------------------------------------------------------------

const UC = 'id status orderId discountAmount coupon { id name }';

/** A user coupon of `couponId` the user can use: a new one, or (on a re-used database) one still AVAILABLE. */
async function usableUserCoupon(couponId) {
  const issued = await couponql(`mutation($c: ID!) { issueCoupon(couponId: $c) { ${UC} } }`, { c: couponId }, userToken);
  if (issued.body.data?.issueCoupon) return issued.body.data.issueCoupon;
  const held = await couponql(`{ userCoupons(unusedOnly: true) { ${UC} } }`, {}, userToken);
  const found = (held.body.data?.userCoupons || []).find((uc) => uc.coupon.id === couponId && uc.status === 'AVAILABLE');
  if (found) return found;
  throw new Error(`issueCoupon(${couponId}) as the user: HTTP ${issued.status} ${show(issued.body)}`);
}

async function newCoupon(name, value) {
  const res = await couponql(
    `mutation($n: String!, $v: Decimal!) { createCoupon(input: { name: $n, discountType: FIXED, discountValue: $v, totalQuantity: 10,
       validFrom: "2020-01-01T00:00:00Z", validUntil: "2099-01-01T00:00:00Z" }) { id } }`,
    { n: name, v: value },
    adminToken,
  );
  if (!res.body.data?.createCoupon) throw new Error(`createCoupon: HTTP ${res.status} ${show(res.body)}`);
  return res.body.data.createCoupon.id;
}

// ---- the checks ---------------------------------------------------------------------------------

const ORDER_QUERY = 'query($id: ID!) { order(id: $id) { total coupons { discountAmount coupon { name } } } }';

async function main() {
  console.log(`federation.mjs: couponql at ${endpoint}`);
  const ordersUrl = await listen(new ApolloServer({ schema: orderSchema, plugins: [ApolloServerPluginInlineTraceDisabled()] }));
  console.log(`federation.mjs: the order subgraph at ${ordersUrl}`);

  // couponql's own federation surface
  const service = await couponql('{ _service { sdl } }');
  const sdl = service.body.data?._service?.sdl;
  if (r.check(typeof sdl === 'string' && sdl.length > 0, '_service { sdl } answers anonymously', typeof sdl === 'string' ? `${sdl.length} chars` : `HTTP ${service.status} ${show(service.body)}`)) {
    for (const t of ['Coupon', 'User', 'UserCoupon', 'Order']) {
      const re = new RegExp(`\\btype\\s+${t}\\b[^{]*@key\\(\\s*fields\\s*:\\s*"id"`);
      r.check(re.test(sdl), `_service sdl: ${t} @key(fields: "id")`, oneLine((sdl.match(new RegExp(`\\btype\\s+${t}\\b[^{]*`)) || ['(no such type)'])[0]));
    }
  }
  const ent = await couponql('query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Coupon { id name } } }', {
    r: [{ __typename: 'Coupon', id: FIXED_5000 }],
  });
  const e0 = ent.body.data?._entities?.[0];
  r.check(e0?.__typename === 'Coupon' && e0.id === FIXED_5000 && e0.name === '5,000원 할인 쿠폰' && !ent.body.errors, '_entities resolves a seeded Coupon', show(ent.body));

  // `couponql schema --federation` composes with the order subgraph
  let printed = '';
  let composed = null;
  try {
    printed = execFileSync(BIN, ['schema', '--federation'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    composed = composeServices([
      { name: 'couponql', url: endpoint, typeDefs: parse(printed) },
      { name: 'orders', url: ordersUrl, typeDefs: parse(ORDER_SDL) },
    ]);
    const errs = composed.errors || [];
    r.check(errs.length === 0 && !!composed.supergraphSdl, '`couponql schema --federation` composes with an Order subgraph (@apollo/composition)', errs.length ? oneLine(errs.map((e) => e.message).join(' | ')) : `${printed.length} chars of SDL`);
  } catch (e) {
    r.fail('`couponql schema --federation` composes with an Order subgraph (@apollo/composition)', oneLine(e.stderr || e.message));
  }
  for (const t of ['Coupon', 'User', 'UserCoupon', 'Order']) {
    if (!printed) break;
    const re = new RegExp(`\\btype\\s+${t}\\b[^{]*@key\\(\\s*fields\\s*:\\s*"id"`);
    r.check(re.test(printed), `schema --federation: ${t} @key(fields: "id")`);
  }

  // orders in couponql: one used a coupon, one holds a coupon, one has none
  const usedOrder = `order-${randomUUID()}`;
  const heldOrder = `order-${randomUUID()}`;
  const emptyOrder = `order-${randomUUID()}`;
  let used = null;
  let held = null;
  try {
    const uc = await usableUserCoupon(NEW_USER_COUPON);
    const res = await couponql(
      `mutation($uc: ID!, $o: String!) { useCoupon(userCouponId: $uc, orderId: $o, orderAmount: "50000.00") { ${UC} } }`,
      { uc: uc.id, o: usedOrder },
      userToken,
    );
    used = res.body.data?.useCoupon;
    r.check(used?.status === 'USED' && used.orderId === usedOrder && num(used.discountAmount) === 3000, 'useCoupon ties a coupon to an order (directly on couponql)', show(res.body));
  } catch (e) {
    r.fail('useCoupon ties a coupon to an order (directly on couponql)', oneLine(e.message));
  }
  try {
    const couponId = await newCoupon('연합 예약 쿠폰', '1000');
    const uc = await usableUserCoupon(couponId);
    const res = await couponql(
      `mutation($uc: ID!, $o: String!) { reserveCoupon(userCouponId: $uc, orderId: $o, orderAmount: "20000.00") { ${UC} } }`,
      { uc: uc.id, o: heldOrder },
      userToken,
    );
    held = res.body.data?.reserveCoupon;
    r.check(held?.status === 'RESERVED' && held.orderId === heldOrder && num(held.discountAmount) === 1000, 'reserveCoupon holds a coupon for an order (directly on couponql)', show(res.body));
  } catch (e) {
    r.fail('reserveCoupon holds a coupon for an order (directly on couponql)', oneLine(e.message));
  }
  orders.set(usedOrder, { id: usedOrder, total: '50000.00' });
  orders.set(heldOrder, { id: heldOrder, total: '20000.00' });
  orders.set(emptyOrder, { id: emptyOrder, total: '12000.00' });

  // _entities for Order and UserCoupon, directly
  {
    // (small: a list counts 100 times in the cost, and _entities and Order.coupons are both lists)
    const q = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id coupons { id discountAmount coupon { name } } } } }';
    const reps = { r: [{ __typename: 'Order', id: usedOrder }, { __typename: 'Order', id: emptyOrder }] };
    const mine = await couponql(q, reps, userToken);
    const [a, b] = mine.body.data?._entities || [];
    r.check(
      a?.id === usedOrder && a.coupons?.length === 1 && a.coupons[0].id === used?.id && a.coupons[0].coupon?.name === '신규 가입 쿠폰' && b?.id === emptyOrder && Array.isArray(b.coupons) && b.coupons.length === 0,
      '_entities resolves Order: the coupons used on it, [] for none',
      show(mine.body),
    );
    const anon = await couponql(q, reps);
    r.check(codes(anon.body.errors).includes('UNAUTHENTICATED') && !anon.body.data?._entities?.[0]?.coupons, '_entities Order.coupons without a token: UNAUTHENTICATED', `HTTP ${anon.status} ${show(anon.body)}`);
    const theirs = await couponql('query($r: [_Any!]!) { _entities(representations: $r) { ... on UserCoupon { id } } }', { r: [{ __typename: 'UserCoupon', id: used?.id ?? randomUUID() }] }, otherToken);
    r.check(
      Array.isArray(theirs.body.data?._entities) && theirs.body.data._entities[0] === null && codes(theirs.body.errors).includes('USER_COUPON_NOT_FOUND'),
      "_entities UserCoupon of another user: null with USER_COUPON_NOT_FOUND",
      show(theirs.body),
    );
  }

  // the order subgraph and the gateway
  const plain = await gql(ordersUrl, ORDER_QUERY.replace(' coupons { discountAmount coupon { name } }', ''), { id: usedOrder });
  r.check(plain.body.data?.order?.total === '50000.00', 'the order subgraph answers order(id) { total }', `${ordersUrl} ${show(plain.body)}`);

  let gatewayUrl;
  try {
    gatewayUrl = await startGateway(
      new IntrospectAndCompose({
        subgraphs: [
          { name: 'couponql', url: endpoint },
          { name: 'orders', url: ordersUrl },
        ],
      }),
    );
    r.pass('an @apollo/gateway composes couponql and the order subgraph (IntrospectAndCompose)', gatewayUrl);
  } catch (e) {
    r.fail('an @apollo/gateway composes couponql and the order subgraph (IntrospectAndCompose)', oneLine(e.message));
  }

  if (gatewayUrl) {
    const one = await gql(gatewayUrl, ORDER_QUERY, { id: usedOrder }, userToken);
    const o = one.body.data?.order;
    r.check(
      !one.body.errors && o?.total === '50000.00' && o.coupons?.length === 1 && num(o.coupons[0].discountAmount) === 3000 && o.coupons[0].coupon?.name === '신규 가입 쿠폰',
      'through the gateway, one request: the total from the order subgraph, the used coupon from couponql',
      show(one.body),
    );
    const two = await gql(gatewayUrl, ORDER_QUERY, { id: heldOrder }, userToken);
    const h = two.body.data?.order;
    r.check(
      !two.body.errors && h?.total === '20000.00' && h.coupons?.length === 1 && num(h.coupons[0].discountAmount) === 1000 && h.coupons[0].coupon?.name === '연합 예약 쿠폰',
      'through the gateway: a coupon held for the order (RESERVED) is among its coupons',
      show(two.body),
    );
    const none = await gql(gatewayUrl, ORDER_QUERY, { id: emptyOrder }, userToken);
    const n = none.body.data?.order;
    r.check(!none.body.errors && n?.total === '12000.00' && Array.isArray(n.coupons) && n.coupons.length === 0, 'through the gateway: an order with no coupons has coupons: []', show(none.body));
    const anon = await gql(gatewayUrl, ORDER_QUERY, { id: usedOrder });
    const ao = anon.body.data?.order;
    r.check(
      JSON.stringify(anon.body.errors || []).includes('UNAUTHENTICATED') && (ao === null || ao === undefined || ao.coupons === null || ao.coupons === undefined),
      'through the gateway without a token: coupons refused with UNAUTHENTICATED',
      show(anon.body),
    );
    const other = await gql(gatewayUrl, ORDER_QUERY, { id: usedOrder }, otherToken);
    r.check(!other.body.errors && other.body.data?.order?.coupons?.length === 0, "through the gateway as another USER: none of the order's coupons are theirs", show(other.body));
    const admin = await gql(gatewayUrl, ORDER_QUERY, { id: usedOrder }, adminToken);
    const ad = admin.body.data?.order;
    r.check(!admin.body.errors && ad?.coupons?.length === 1 && ad.coupons[0].coupon?.name === '신규 가입 쿠폰', "through the gateway as an ADMIN: every user's coupons on the order", show(admin.body));
  }

  // a gateway on the supergraph composed from `couponql schema --federation`
  if (composed?.supergraphSdl && !composed.errors?.length) {
    try {
      const url = await startGateway(composed.supergraphSdl);
      const res = await gql(url, ORDER_QUERY, { id: usedOrder }, userToken);
      const o = res.body.data?.order;
      r.check(
        !res.body.errors && o?.total === '50000.00' && o.coupons?.length === 1 && num(o.coupons[0].discountAmount) === 3000 && o.coupons[0].coupon?.name === '신규 가입 쿠폰',
        'a gateway on the supergraph composed from `schema --federation` answers the same query',
        show(res.body),
      );
    } catch (e) {
      r.fail('a gateway on the supergraph composed from `schema --federation` answers the same query', oneLine(e.message));
    }
  }
}

const deadline = setTimeout(() => {
  r.fail('federation.mjs finished within 90 s');
  r.finish();
}, 90_000);
try {
  await main();
} catch (e) {
  r.fail('federation.mjs ran to its end', oneLine(e.stack || e.message, 600));
}
clearTimeout(deadline);
await Promise.allSettled(started.map((s) => s.stop()));
r.finish();
