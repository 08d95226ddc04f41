#!/usr/bin/env bash
# Regenerates assets/graphiql/ (the GraphiQL playground served by the binary at GET /graphql)
# from pinned npm packages, so that the page needs no CDN and the vendored files are reproducible.
#
#   bash tests/js/vendor-graphiql.sh
#
# Needs node/npm and the npm registry. Each tarball is checked against the pinned integrity below
# (npm pack also checks it against the registry's metadata). The page itself (index.html, init.js)
# and README.md are written by this script; edit them here, not in assets/graphiql/.
#
# Why these versions: graphiql 4.x is the last major that ships a UMD build (graphiql.min.js,
# exporting the global `GraphiQL`; 5.x is ESM-only and needs a bundler or an import map to a CDN).
# Its UMD build expects the globals `React` and `ReactDOM` (React 18 or 19); React 19 no longer
# ships UMD builds, so React 18.3.1, the last 18.x, is used.
set -euo pipefail

GRAPHIQL_VERSION=4.1.2
GRAPHIQL_INTEGRITY=sha512-rNlzQIAzm6i2KBXmVQWBgLvt0TloxFVB2d18bukvdsvjEuFDHsKx5IVOomL1W1o5WW+tE54+ioHb2AEKzO2cUg==
REACT_VERSION=18.3.1
REACT_INTEGRITY=sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==
REACT_DOM_VERSION=18.3.1
REACT_DOM_INTEGRITY=sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/assets/graphiql"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fetch() { # package version integrity -> extracts to $WORK/<package>/package
  local pkg=$1 version=$2 want=$3 json got tgz
  json=$(cd "$WORK" && npm pack --json --silent "$pkg@$version")
  got=$(printf '%s' "$json" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s)[0];console.log(j.integrity+" "+j.filename)})')
  tgz=${got#* }
  got=${got%% *}
  if [ "$got" != "$want" ]; then
    echo "vendor-graphiql: integrity mismatch for $pkg@$version: got $got, pinned $want" >&2
    exit 1
  fi
  mkdir -p "$WORK/$pkg"
  tar xzf "$WORK/$tgz" -C "$WORK/$pkg"
  echo "vendor-graphiql: $pkg@$version ok ($got)"
}

fetch graphiql "$GRAPHIQL_VERSION" "$GRAPHIQL_INTEGRITY"
fetch react "$REACT_VERSION" "$REACT_INTEGRITY"
fetch react-dom "$REACT_DOM_VERSION" "$REACT_DOM_INTEGRITY"

# index.html and init.js are couponql's own files, kept in $OUT and edited by hand; only the npm
# files (and README.md) are rewritten.
mkdir -p "$OUT"
for f in index.html init.js; do
  [ -f "$OUT/$f" ] || { echo "vendor-graphiql: $OUT/$f is missing (it is ours, not generated)" >&2; exit 1; }
done

# Copy a file, dropping the `//# sourceMappingURL=` / `/*# sourceMappingURL=... */` line: the maps
# are not vendored (4.7 MB) and a reference to them would only make devtools ask for a missing file.
copy() { # src dest
  grep -v -E '^\s*(//|/\*)# sourceMappingURL=' "$1" > "$2"
}
copy "$WORK/graphiql/package/graphiql.min.js"                   "$OUT/graphiql.min.js"
copy "$WORK/graphiql/package/graphiql.min.css"                  "$OUT/graphiql.min.css"
copy "$WORK/react/package/umd/react.production.min.js"          "$OUT/react.production.min.js"
copy "$WORK/react-dom/package/umd/react-dom.production.min.js"  "$OUT/react-dom.production.min.js"

{
  cat <<EOF
# Vendored GraphiQL

The GraphiQL playground that the couponql binary serves at \`GET /graphql\` (the page) and
\`GET /graphiql/<file>\` (everything the page loads). Nothing here is fetched from a CDN: the page
works on a machine with no internet access. The files are embedded in the binary.

The npm files are not edited by hand: regenerate them with \`bash tests/js/vendor-graphiql.sh\`, which
downloads the pinned packages from the npm registry, checks their integrity, and rewrites them.
\`index.html\` and \`init.js\` (no inline script, so a strict \`script-src 'self'\` works) are ours.

| file | from | licence |
|---|---|---|
| \`graphiql.min.js\` | npm \`graphiql@$GRAPHIQL_VERSION\`, \`graphiql.min.js\` (UMD build; sourceMappingURL line removed) | MIT |
| \`graphiql.min.css\` | npm \`graphiql@$GRAPHIQL_VERSION\`, \`graphiql.min.css\` (its fonts are inlined as \`data:\` URLs) | MIT; inlined fonts: Roboto (Apache-2.0), Fira Code (SIL OFL 1.1) |
| \`react.production.min.js\` | npm \`react@$REACT_VERSION\`, \`umd/react.production.min.js\` | MIT |
| \`react-dom.production.min.js\` | npm \`react-dom@$REACT_DOM_VERSION\`, \`umd/react-dom.production.min.js\` | MIT |
| \`index.html\`, \`init.js\` | couponql's own page and start-up script | as couponql |

Why these versions: graphiql 4.x is the last major with a UMD build (5.x is ESM-only); it needs
React 18 or 19 as the globals \`React\`/\`ReactDOM\`, and React 19 ships no UMD build, so React 18.3.1.

Checked by \`tests/js/graphiql.mjs\` (a real Chromium, every off-server request refused).

## Licences

EOF
  for pkg in graphiql react react-dom; do
    echo "### $pkg"
    echo
    echo '```'
    cat "$WORK/$pkg/package/LICENSE"
    echo '```'
    echo
  done
} > "$OUT/README.md"

# No reference to anything off the server: no http(s) URL in the page, no url() in the CSS other
# than data: URLs or same-origin paths.
bad=0
if grep -n -E 'https?://' "$OUT/index.html" "$OUT/init.js"; then bad=1; fi
if grep -o -E 'url\(\s*["'"'"']?[^)"'"'"']{0,40}' "$OUT/graphiql.min.css" | grep -v -E 'url\(\s*["'"'"']?(data:|#|/)' ; then bad=1; fi
if grep -o -E '@import[^;]{0,80}' "$OUT/graphiql.min.css"; then bad=1; fi
if [ "$bad" -ne 0 ]; then
  echo "vendor-graphiql: an external reference is left in $OUT (above)" >&2
  exit 1
fi

echo "vendor-graphiql: wrote $OUT"
(cd "$OUT" && ls -l && du -sh . && sha256sum -- *)
