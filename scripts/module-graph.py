#!/usr/bin/env python3
"""Checks that no crate's modules import each other in a cycle (the crates themselves
cannot: Cargo refuses). Reads every `crate::a::…` path outside `#[cfg(test)]` blocks,
builds the graph between top-level modules of each crate, and prints any strongly
connected component with more than one module. Exit 1 when there is one."""
import os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def crate_dirs():
    yield 'vqprobe', os.path.join(ROOT, 'src')
    cr = os.path.join(ROOT, 'crates')
    for c in sorted(os.listdir(cr)):
        yield c, os.path.join(cr, c, 'src')

def top_module(src, path):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith('.rs') else first

def strip_tests(text):
    # Drop `#[cfg(test)] mod tests { ... }` bodies and `mod tests;` files are skipped.
    out, i = [], 0
    while True:
        m = re.search(r'#\[cfg\(test\)\]\s*mod \w+\s*\{', text[i:])
        if not m:
            out.append(text[i:]); break
        out.append(text[i:i + m.start()])
        j = i + m.end(); depth = 1
        while depth and j < len(text):
            depth += {'{': 1, '}': -1}.get(text[j], 0); j += 1
        i = j
    return ''.join(out)

bad = False
for name, src in crate_dirs():
    graph = {}
    for dp, _, files in os.walk(src):
        for f in files:
            if not f.endswith('.rs') or f in ('tests.rs',) or dp.endswith('tests'):
                continue
            p = os.path.join(dp, f)
            mod = top_module(src, p)
            if mod in ('lib', 'main'):
                continue
            text = strip_tests(open(p, encoding='utf-8').read())
            text = re.sub(r'//.*', '', text)  # comments and docs are not imports
            deps = set(re.findall(r'\bcrate::(\w+)', text))
            if os.path.dirname(p) == src:
                # In a top-level module file `super::x` is the crate's module x (in a
                # nested file it is a sibling inside the same module).
                deps |= set(re.findall(r'\bsuper::(\w+)', text))
            graph.setdefault(mod, set()).update(d for d in deps if d != mod)
    # Tarjan's SCC
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in graph: continue
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            sccs.append(comp)
    for v in list(graph):
        if v not in index: visit(v)
    cycles = [c for c in sccs if len(c) > 1]
    edges = sum(len(v) for v in graph.values())
    if cycles:
        bad = True
        for c in cycles:
            print(f'{name}: cycle between modules {sorted(c)}')
    else:
        print(f'{name}: {len(graph)} modules, {edges} module edges, no cycle')
sys.exit(1 if bad else 0)
