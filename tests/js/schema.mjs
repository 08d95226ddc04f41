// The checked-in schema.graphql is the live schema (contract sections 1 and 4), as graphql-js sees
// both: the server's introspection (buildClientSchema) and the file (buildSchema) print the same
// under printSchema(lexicographicSortSchema(…)), and introspecting the two gives the same answer —
// same types (built-in scalars included), directives (locations, arguments, descriptions), schema
// description, descriptions and @specifiedBy URLs. The file also equals `couponql schema`, and every
// type, field, argument, enum value and input field carries a description.
//
//   node tests/js/schema.mjs http://127.0.0.1:8000      (COUPONQL_BIN=path/to/couponql for `couponql schema`)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  introspectionFromSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isIntrospectionType,
  isObjectType,
  isSpecifiedScalarType,
  lexicographicSortSchema,
  printSchema,
} from 'graphql';
import { baseUrlFromArgs, oneLine, reporter } from './lib.mjs';

const base = baseUrlFromArgs('schema.mjs');
const endpoint = `${base}/graphql`;
const r = reporter('schema.mjs');
const fileUrl = new URL('../../schema.graphql', import.meta.url);

console.log(`schema.mjs: ${fileUrl.pathname} against the introspection of ${endpoint}`);

// Everything introspection can say (graphql-js 16 options), so that nothing is compared by default values.
const FULL = {
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
};

async function introspect(options) {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query: getIntrospectionQuery(options) }),
  });
  const body = await res.json();
  if (res.status !== 200 || body.errors?.length || !body.data?.__schema) {
    throw new Error(`HTTP ${res.status}: ${oneLine(JSON.stringify(body))}`);
  }
  return body.data;
}

/** The first line where two texts differ, for the failure message. */
function firstDifference(a, b, la = 'live', lb = 'file') {
  const x = a.split('\n');
  const y = b.split('\n');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] !== y[i]) return `line ${i + 1}: ${la} ${JSON.stringify(x[i] ?? '(end)')} vs ${lb} ${JSON.stringify(y[i] ?? '(end)')}`;
  }
  return 'same';
}

/** The first JSON path where two values differ. */
function firstPath(a, b, path = '$') {
  if (a === b) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return `${path}: live ${oneLine(JSON.stringify(a), 150)} vs file ${oneLine(JSON.stringify(b), 150)}`;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const label = Array.isArray(a) ? `${path}[${k}${a[k]?.name ? ` ${a[k].name}` : ''}]` : `${path}.${k}`;
    const d = firstPath(a[k], b[k], label);
    if (d) return d;
  }
  return null;
}

let live;
let file;
try {
  live = buildClientSchema(await introspect(FULL));
  r.pass('the full introspection query (graphql-js getIntrospectionQuery, every option) answers and builds a client schema');
} catch (e) {
  r.fail('the full introspection query answers and builds a client schema', oneLine(e.message));
}
let sdl = '';
try {
  sdl = readFileSync(fileUrl, 'utf8');
  file = buildSchema(sdl);
  r.pass('schema.graphql parses and builds (graphql-js buildSchema)');
} catch (e) {
  r.fail('schema.graphql parses and builds', oneLine(e.message));
}

// What a tool sending the default query (no @specifiedBy URLs, no schema description, …) sees of either.
const DEFAULTS = { specifiedByUrl: false, directiveIsRepeatable: false, schemaDescription: false, inputValueDeprecation: false, oneOf: false };
if (file) {
  try {
    const plain = buildClientSchema(await introspect());
    const seen = (s) => printSchema(lexicographicSortSchema(s));
    const fromFile = seen(buildClientSchema(introspectionFromSchema(file, DEFAULTS)));
    r.check(seen(plain) === fromFile, 'through the default introspection query (what most tools send) the server and the file look the same', seen(plain) === fromFile ? '' : firstDifference(seen(plain), fromFile));
  } catch (e) {
    r.fail('the default introspection query answers', oneLine(e.message));
  }
}

if (live && file) {
  const printedLive = printSchema(lexicographicSortSchema(live));
  const printedFile = printSchema(lexicographicSortSchema(file));
  r.check(
    printedLive === printedFile,
    'printSchema(lexicographicSortSchema(…)) of the introspection equals that of schema.graphql',
    printedLive === printedFile ? `${printedLive.split('\n').length} lines` : firstDifference(printedLive, printedFile),
  );

  const whole = (s) => introspectionFromSchema(lexicographicSortSchema(s), FULL);
  const diff = firstPath(whole(live), whole(file));
  r.check(!diff, 'introspecting both gives the same answer: types (built-in scalars too), directives and their locations, descriptions', diff ?? '');

  const names = (s) => Object.keys(s.getTypeMap()).sort().join(' ');
  r.check(names(live) === names(file), 'the type maps name the same types', names(live) === names(file) ? '' : `live: ${names(live)} | file: ${names(file)}`);
  const directives = (s) =>
    s
      .getDirectives()
      .map((d) => `@${d.name} on ${[...d.locations].sort().join('|')}`)
      .sort()
      .join(', ');
  r.check(directives(live) === directives(file), 'the directives and their locations are the same', `live: ${directives(live)} | file: ${directives(file)}`);

  r.check(live.description == null, 'introspection reports no schema description (not the spec’s text about __Schema)', JSON.stringify(live.description));

  for (const name of ['Decimal', 'DateTime']) {
    const t = live.getType(name);
    r.check(
      t?.specifiedByURL && /string/i.test(t.description ?? ''),
      `${name} has @specifiedBy and says it travels as a string`,
      `${t?.specifiedByURL} — ${oneLine(t?.description, 120)}`,
    );
  }

  // Item by item: every type of ours, field, argument, enum value and input field is described.
  // Apollo Federation's own names (`_service`, `_entities`, `_Service`, `_Entity`, `_Any`) are defined by
  // its specification, not by us, and async-graphql adds them without descriptions.
  const federation = (name) => name.startsWith('_');
  const missing = [];
  for (const t of Object.values(live.getTypeMap())) {
    if (isIntrospectionType(t) || isSpecifiedScalarType(t) || federation(t.name)) continue;
    if (!t.description) missing.push(t.name);
    if (isObjectType(t) || isInterfaceType(t) || isInputObjectType(t)) {
      for (const f of Object.values(t.getFields())) {
        if (federation(f.name)) continue;
        if (!f.description) missing.push(`${t.name}.${f.name}`);
        for (const a of f.args ?? []) if (!a.description) missing.push(`${t.name}.${f.name}(${a.name})`);
      }
    }
    if (isEnumType(t)) for (const v of t.getValues()) if (!v.description) missing.push(`${t.name}.${v.name}`);
  }
  r.check(missing.length === 0, 'every type, field, argument, enum value and input field has a description', missing.length ? `${missing.length} without: ${oneLine(missing.join(', '), 400)}` : '');
}

const bin = process.env.COUPONQL_BIN;
if (bin) {
  try {
    const printed = execFileSync(bin, ['schema'], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'off' } });
    r.check(printed === sdl, 'schema.graphql is exactly what `couponql schema` prints', printed === sdl ? '' : firstDifference(printed, sdl, '`couponql schema`', 'file'));
  } catch (e) {
    r.fail('`couponql schema` runs', oneLine(e.message));
  }
} else {
  r.info('COUPONQL_BIN is unset: not comparing the file with `couponql schema`');
}

r.finish();
