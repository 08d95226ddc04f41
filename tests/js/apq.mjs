// Automatic persisted queries (Apollo's protocol, version 1), contract section 2, checked with a
// real Apollo Client (PersistedQueryLink + HttpLink, hashed queries over GET) and with raw requests.
//
//   node tests/js/apq.mjs http://127.0.0.1:8000
import { createHash, randomUUID } from 'node:crypto';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { baseUrlFromArgs, oneLine, parseResponse, recordingFetch as recording, reporter } from './lib.mjs';

const base = baseUrlFromArgs('apq.mjs');
const endpoint = `${base}/graphql`;
const r = reporter('apq.mjs');
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

console.log(`apq.mjs: automatic persisted queries against ${endpoint}`);

// ---------------------------------------------------------------------------------------------
// Apollo Client, with every request it sends recorded.

/** What one request carried: method, whether it had the query text, whether it had the hash. */
function describeRequest(input, init = {}) {
  const url = new URL(typeof input === 'string' ? input : input.url ?? String(input));
  const method = (init.method || 'GET').toUpperCase();
  let payload = {};
  if (method === 'GET') {
    payload.query = url.searchParams.get('query') ?? undefined;
    try {
      payload.extensions = JSON.parse(url.searchParams.get('extensions') ?? 'null') ?? undefined;
    } catch {
      payload.extensions = undefined;
    }
  } else {
    try {
      payload = JSON.parse(typeof init.body === 'string' ? init.body : '{}');
    } catch {
      payload = {};
    }
  }
  const hash = payload?.extensions?.persistedQuery?.sha256Hash;
  return { method, hasQuery: typeof payload.query === 'string' && payload.query.length > 0, hasHash: typeof hash === 'string', hash };
}

function codesOf(text) {
  try {
    const body = JSON.parse(text);
    return (body.errors ?? []).map((e) => e?.extensions?.code ?? e?.message ?? '?');
  } catch {
    return ['(not JSON)'];
  }
}

const recordingFetch = (log) => recording(log, describeRequest, codesOf);

const fmt = (e) =>
  `${e.method} query=${e.hasQuery ? 'yes' : 'no'} hash=${e.hasHash ? 'yes' : 'no'} -> ${e.error ? `error ${e.error}` : `HTTP ${e.status}${e.codes?.length ? ` errors=[${e.codes.join(',')}]` : ''}`}`;

function makeClient(log) {
  const persisted = new PersistedQueryLink({ sha256, useGETForHashedQueries: true });
  const http = new HttpLink({ uri: endpoint, fetch: recordingFetch(log) });
  return new ApolloClient({ link: ApolloLink.from([persisted, http]), cache: new InMemoryCache() });
}

// A query no earlier run of this script can have persisted (the server's cache outlives a run when
// the same server is reused): the alias makes the text, and so the hash, unique.
const tag = `run_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const QUERY = gql`
  query Coupons {
    coupons(first: 2) {
      nodes {
        id
        name
      }
    }
    ${tag}: __typename
  }
`;

const hasCoupons = (data) => Array.isArray(data?.coupons?.nodes);

// 1. First client: hash only -> PERSISTED_QUERY_NOT_FOUND -> query + hash -> data.
{
  const log = [];
  const client = makeClient(log);
  let result;
  let error;
  try {
    result = await client.query({ query: QUERY, fetchPolicy: 'network-only' });
  } catch (err) {
    error = err;
  }
  for (const e of log) r.info(`first client: ${fmt(e)}`);
  const [first, second] = log;
  r.check(first && first.hasHash && !first.hasQuery && first.method === 'GET', 'first client: the first request is hash-only over GET', first ? fmt(first) : 'no request sent');
  r.check(first && first.codes?.includes('PERSISTED_QUERY_NOT_FOUND'), 'first client: the server answers PERSISTED_QUERY_NOT_FOUND to an unknown hash', first ? fmt(first) : 'no request sent');
  r.check(second && second.hasHash && second.hasQuery, 'first client: the link retries with query + hash', second ? fmt(second) : 'no retry was sent');
  r.check(
    !error && hasCoupons(result?.data),
    'first client: the query returns data',
    error ? `error: ${oneLine(error.message)}` : `coupons.nodes: ${oneLine(JSON.stringify(result?.data?.coupons?.nodes), 160)}`,
  );
  r.check(log.length === 2, 'first client: exactly two requests', `${log.length} sent`);
  client.stop();
}

// 2. A fresh client (new cache, new link): the server remembered the query, hash-only GET works.
{
  const log = [];
  const client = makeClient(log);
  let result;
  let error;
  try {
    result = await client.query({ query: QUERY, fetchPolicy: 'network-only' });
  } catch (err) {
    error = err;
  }
  for (const e of log) r.info(`fresh client: ${fmt(e)}`);
  const [first] = log;
  r.check(
    log.length === 1 && first.method === 'GET' && first.hasHash && !first.hasQuery && first.status === 200 && !first.codes?.length,
    'fresh client: one hash-only GET, answered without error (the server remembered the query)',
    log.map(fmt).join(' ; ') || 'no request sent',
  );
  r.check(!error && hasCoupons(result?.data), 'fresh client: the query returns data', error ? `error: ${oneLine(error.message)}` : 'coupons.nodes present');
  client.stop();
}

// ---------------------------------------------------------------------------------------------
// Raw requests.

async function post(body) {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  return parse(res);
}

async function get(params) {
  const url = new URL(endpoint);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, typeof v === 'string' ? v : JSON.stringify(v));
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  return parse(res);
}

const parse = (res) => parseResponse(res, 200);

const pq = (hash) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

async function raw(name, fn) {
  try {
    await fn();
  } catch (err) {
    r.fail(name, `threw: ${oneLine(err?.cause?.message || err?.message || err)}`);
  }
}

const unknownHash = sha256(`couponql apq.mjs unknown ${randomUUID()}`);

await raw('raw POST: an unknown hash alone answers PERSISTED_QUERY_NOT_FOUND', async () => {
  const res = await post({ extensions: pq(unknownHash) });
  r.check(res.codes.includes('PERSISTED_QUERY_NOT_FOUND') && res.body?.data == null, 'raw POST: an unknown hash alone answers PERSISTED_QUERY_NOT_FOUND', res.summary);
});

await raw('raw GET: an unknown hash alone answers PERSISTED_QUERY_NOT_FOUND', async () => {
  const res = await get({ extensions: pq(unknownHash) });
  r.check(res.codes.includes('PERSISTED_QUERY_NOT_FOUND') && res.body?.data == null, 'raw GET: an unknown hash alone answers PERSISTED_QUERY_NOT_FOUND', res.summary);
});

const rawQuery = `query Coupons { coupons(first: 2) { nodes { id name } } ${tag}_raw: __typename }`;
const wrongHash = sha256(`${rawQuery} `); // the hash of a different text

await raw('raw POST: query with a hash that does not match answers BAD_USER_INPUT', async () => {
  const res = await post({ query: rawQuery, extensions: pq(wrongHash) });
  r.check(res.codes.includes('BAD_USER_INPUT') && res.body?.data == null, 'raw POST: query with a hash that does not match answers BAD_USER_INPUT', res.summary);
});

await raw('raw POST: the mismatched hash was not remembered', async () => {
  const res = await post({ extensions: pq(wrongHash) });
  r.check(res.codes.includes('PERSISTED_QUERY_NOT_FOUND'), 'raw POST: the mismatched hash was not remembered (still PERSISTED_QUERY_NOT_FOUND)', res.summary);
});

await raw('raw: query + hash over POST, then hash alone over GET, answers data', async () => {
  const hash = sha256(rawQuery);
  const first = await post({ query: rawQuery, extensions: pq(hash) });
  r.check(first.status === 200 && !first.codes.length && hasCoupons(first.body?.data), 'raw POST: query + matching hash answers data', first.summary);
  const again = await get({ extensions: pq(hash) });
  r.check(again.status === 200 && !again.codes.length && hasCoupons(again.body?.data), 'raw GET: the same hash alone now answers data', again.summary);
});

r.finish();
