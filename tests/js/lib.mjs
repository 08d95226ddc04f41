// Shared helpers for the black-box scripts: the base URL argument and a tiny reporter that prints
// one line per check and a closing `N passed, N failed` line.

/** The server's base URL from argv (`node <script>.mjs http://127.0.0.1:8123`), without a trailing slash. */
export function baseUrlFromArgs(script) {
  const arg = process.argv[2] || process.env.COUPONQL_URL;
  if (!arg) {
    console.error(`usage: node tests/js/${script} <baseUrl>   (e.g. http://127.0.0.1:8000)`);
    process.exit(2);
  }
  let url;
  try {
    url = new URL(arg);
  } catch {
    console.error(`${script}: not a URL: ${arg}`);
    process.exit(2);
  }
  return url.origin + url.pathname.replace(/\/+$/, '');
}

/** One line, at most `max` characters (reasons and bodies can be long or multi-line). */
export function oneLine(text, max = 300) {
  const s = String(text ?? '')
    .replace(/\x1b\[[0-9;]*m/g, '') // ANSI colours (Playwright's call logs)
    .replace(/\s+/g, ' ')
    .trim();
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

export function reporter(script) {
  let passed = 0;
  let failed = 0;
  return {
    pass(name, detail) {
      passed++;
      console.log(`ok   ${name}${detail ? ` — ${detail}` : ''}`);
    },
    fail(name, detail) {
      failed++;
      console.log(`FAIL ${name}${detail ? ` — ${detail}` : ''}`);
    },
    /** pass or fail on a condition */
    check(cond, name, detail) {
      (cond ? this.pass : this.fail).call(this, name, detail);
      return !!cond;
    },
    info(text) {
      console.log(`     ${text}`);
    },
    get failed() {
      return failed;
    },
    /** Prints the closing line and exits (non-zero on any failure, or when nothing was checked). */
    finish() {
      console.log(`${passed} passed, ${failed} failed`);
      process.exit(failed > 0 || passed === 0 ? 1 : 0);
    },
  };
}

/** A fetch Response as { status, body (parsed JSON or undefined), text, codes (errors' extensions.code), summary }. */
export async function parseResponse(res, max = 240) {
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const codes = (body?.errors ?? []).map((e) => e?.extensions?.code);
  return { status: res.status, body, text, codes, summary: `HTTP ${res.status} ${oneLine(text, max)}` };
}

/**
 * A fetch that records each request: `describe(input, init)` makes the log entry, which gets the HTTP status and
 * `codesOf(body text)` (or the network error) before it is pushed to `log`. The response is returned untouched.
 */
export function recordingFetch(log, describe, codesOf) {
  return async (input, init = {}) => {
    const entry = describe(input, init);
    try {
      const res = await fetch(input, init);
      entry.status = res.status;
      // Peek at the body without consuming it for the client.
      entry.codes = codesOf(await res.clone().text());
      log.push(entry);
      return res;
    } catch (err) {
      entry.error = err?.cause?.message || err?.message || String(err);
      log.push(entry);
      throw err;
    }
  };
}
