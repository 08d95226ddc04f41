#!/usr/bin/env python3
"""The README's layer rules ("Layout"), checked on src/: which module may use which, and no import cycle among files.

Reads `use` trees and inline `crate::…` / `super::…` paths (test modules after `#[cfg(test)]` are left out),
resolves each to the file that defines it, then checks the rules and looks for cycles. Exits 1 on any breach,
printing one line per breach. Usage: python3 scripts/layers.py [src-dir]
"""

import re
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "src")

# Top-level module -> the top-level modules of this crate it may use (itself always allowed). None: no limit here.
MAY_USE = {
    "domain": {"error"},
    "repo": {"domain", "entities", "error"},
}
# Top-level module -> external crates it must not use.
MUST_NOT_USE_CRATES = {
    "service": {"async_graphql", "axum"},
    "domain": {"async_graphql", "axum", "sea_orm"},
    "repo": {"async_graphql", "axum"},
}
# Top-level module -> modules of this crate it must not use (with files excepted).
MUST_NOT_USE = {
    "graphql": ({"repo"}, {"graphql/loaders.rs"}),
    "http": ({"repo"}, set()),
}
# Only startup composes the application: it alone uses `http` and builds the schema.
COMPOSER = {"startup.rs"}
COMPOSE_CALLS = re.compile(r"\bbuild_schema(_with)?\s*\(")


def module_of(path: Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main") and (len(parts) > 1 or parts[-1] != "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip(text: str) -> str:
    """Comments, strings and test modules out: only code counts."""
    cut = text.find("#[cfg(test)]")
    if cut >= 0:
        text = text[:cut]
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"'(?:\\.|[^'\\])'", "' '", text)
    return re.sub(r"//[^\n]*", " ", text)


def expand(tree: str) -> list:
    """`a::{b, c::{d, e as f}}` -> [a::b, a::c::d, a::c::e] (renames dropped)."""
    tree = re.sub(r"\s+as\s+[A-Za-z0-9_]+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix: str, t: str):
        if "{" not in t:
            out.append(prefix + t)
            return
        head, body = t.split("{", 1)
        body = body[: body.rfind("}")]
        depth, start = 0, 0
        for i, ch in enumerate(body + ","):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                if body[start:i]:
                    walk(prefix + head, body[start:i])
                start = i + 1

    walk("", tree)
    return out


def paths_in(code: str) -> list:
    found = []
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        found.extend(expand(m.group(1)))
    for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", code):
        found.append(m.group(1))
    return found


def main() -> int:
    files = {module_of(p): p for p in SRC.rglob("*.rs")}
    children = {}
    for mod in files:
        if mod:
            children.setdefault(mod[:-1], set()).add(mod[-1])

    # `pub use child::Name;` in a module: a path that names `Name` there leads on to the file that defines it,
    # so a facade (mod.rs re-exporting its children) is not counted as a cycle with those children.
    reexports = {}
    for mod, path in files.items():
        for m in re.finditer(r"\bpub(?:\([a-z]+\))?\s+use\s+([^;]+);", strip(path.read_text())):
            for full in expand(m.group(1)):
                reexports.setdefault(mod, {})[full.split("::")[-1]] = full

    def resolve(here: tuple, path: str, depth: int = 0):
        segs = [s for s in path.split("::") if s and s != "*"]
        if not segs:
            return None
        base = here
        if segs[0] == "crate":
            cur, segs = (), segs[1:]
        elif segs[0] in ("super", "self"):
            cur = base
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    cur = cur[:-1]
                segs = segs[1:]
        elif segs[0] in children.get(base, set()):
            cur = base
        else:
            return ("extern", segs[0])
        best, rest = (cur if cur in files else None), segs
        for i, s in enumerate(segs):
            cur = cur + (s,)
            if cur in files:
                best, rest = cur, segs[i + 1 :]
            else:
                break
        if best is not None and rest and depth < 8:
            target = reexports.get(best, {}).get(rest[0])
            if target is not None:
                return resolve(best, target, depth + 1) or best
        return best

    problems = []
    edges = {}
    for mod, path in sorted(files.items()):
        rel = path.relative_to(SRC).as_posix()
        top = mod[0] if mod else ""
        code = strip(path.read_text())
        used = set()
        crates = set()
        for p in paths_in(code):
            r = resolve(mod, p)
            if not r:
                continue
            if r[0] == "extern":
                crates.add(r[1])
                continue
            if r != mod:
                used.add(r)
        # Inline paths to external crates (`axum::…` without a use).
        for m in re.finditer(r"(?<![A-Za-z0-9_:])([a-z_][a-z0-9_]*)::", code):
            if (m.group(1),) not in files and m.group(1) not in ("crate", "super", "self", "std", "core"):
                crates.add(m.group(1))
        edges[mod] = used
        tops = {u[0] for u in used}
        if top in MAY_USE:
            for t in sorted(tops - MAY_USE[top] - {top}):
                problems.append(f"{rel}: `{top}` uses `{t}` (may use only {', '.join(sorted(MAY_USE[top]))})")
        for c in sorted(crates & MUST_NOT_USE_CRATES.get(top, set())):
            problems.append(f"{rel}: `{top}` uses the crate `{c}`")
        if top in MUST_NOT_USE:
            banned, excepted = MUST_NOT_USE[top]
            if rel not in excepted:
                for t in sorted(tops & banned):
                    problems.append(f"{rel}: `{top}` uses `{t}`")
        if rel not in COMPOSER and top not in ("lib", ""):
            if "http" in tops and top != "http":
                problems.append(f"{rel}: only startup uses `http`")
            if COMPOSE_CALLS.search(code) and not rel.startswith("graphql/"):
                problems.append(f"{rel}: only startup builds the schema")

    # Cycles among files (Tarjan): a module that uses a module that uses it back, at any distance.
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    for comp in cycles:
        names = sorted(files[m].relative_to(SRC).as_posix() for m in comp)
        problems.append("import cycle: " + " ↔ ".join(names))

    for p in problems:
        print(f"layers: {p}")
    print(f"layers: {len(files)} files, {sum(len(e) for e in edges.values())} imports, {len(problems)} breaches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
