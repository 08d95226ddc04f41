// GraphQL-over-HTTP compliance: runs every audit of the `graphql-http` package against
// <baseUrl>/graphql. The contract (section 2) requires no `error` and no `warn` result, so both fail
// here; `notice` results are printed and pass.
//
//   node tests/js/audit.mjs http://127.0.0.1:8000
import { serverAudits } from 'graphql-http';
import { baseUrlFromArgs, oneLine, reporter } from './lib.mjs';

const base = baseUrlFromArgs('audit.mjs');
const url = `${base}/graphql`;
const r = reporter('audit.mjs');

console.log(`audit.mjs: graphql-http serverAudits against ${url}`);

const audits = serverAudits({ url, fetchFn: fetch });
for (const audit of audits) {
  let result;
  try {
    result = await audit.fn();
  } catch (err) {
    // A fatal audit error (e.g. the server is not reachable).
    r.fail(`[${audit.id}] ${audit.name}`, `status=error reason=threw: ${oneLine(err?.cause?.message || err?.message || err)}`);
    continue;
  }
  const line = `[${result.id}] ${result.name}`;
  if (result.status === 'ok') {
    r.pass(line, 'status=ok');
    continue;
  }
  let detail = `status=${result.status} reason=${oneLine(result.reason)}`;
  if (result.response) {
    let body = '';
    try {
      body = await result.response.text();
    } catch {
      // body already read by the audit
    }
    detail += ` | got HTTP ${result.response.status} ${result.response.headers.get('content-type') ?? '(no content-type)'}`;
    if (body) detail += ` ${oneLine(body, 200)}`;
  }
  if (result.status === 'error' || result.status === 'warn') r.fail(line, detail);
  else r.pass(line, detail); // notice
}

r.finish();
