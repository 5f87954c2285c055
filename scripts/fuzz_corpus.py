#!/usr/bin/env python3
"""Extracts every DSL program of the repository into compiler/tests/fuzz_corpus.txt, the
seed corpus of the compiler's fuzzer (compiler/tests/fuzz.rs): the body of each `model!` /
`guide!` block in examples/, tests/, src/ and the markdown docs (doc comments included),
each on its own and, per file, all of a file's blocks together (so guides meet their
models). Run from the repository root after adding examples: `python3 scripts/fuzz_corpus.py`.
The insta sources in compiler/tests/snapshots.rs are read by the fuzzer itself."""
import glob, os, re

ROOTS = ["examples", "tests", "src", "dsl/src", "README.md", "ARCHITECTURE.md"]
OPEN = {"{": "}", "(": ")", "[": "]"}


def files():
    for root in ROOTS:
        if os.path.isfile(root):
            yield root
        for path in sorted(glob.glob(f"{root}/**/*", recursive=True)):
            if path.endswith((".rs", ".md")) and os.path.isfile(path):
                yield path


def doc_text(text):
    # the doc comments alone, their markers dropped (`//! model! {` in a crate's docs)
    docs = (re.match(r"^\s*//[/!] ?(.*)$", l) for l in text.splitlines())
    return "\n".join(m.group(1) if m else "" for m in docs)


def bodies(text):
    for m in re.finditer(r"\b(model|guide)!\s*([{(\[])", text):
        open_, close = m.group(2), OPEN[m.group(2)]
        depth, i = 0, m.end() - 1
        while i < len(text):
            c = text[i]
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    yield m.group(1), text[m.end():i].strip()
                    break
            i += 1


def main():
    seen, out = set(), []
    for path in files():
        text = open(path, encoding="utf-8").read()
        found = []
        for t in (text, doc_text(text)):
            for kind, body in bodies(t):
                if body and ("model" in body or "guide" in body or "net" in body):
                    found.append((kind, body))
        per_file = [b for k, b in found if k == "model"] + [b for k, b in found if k == "guide"]
        for body in [b for _, b in found] + ["\n".join(dict.fromkeys(per_file))]:
            if body and body not in seen:
                seen.add(body)
                out.append(f"==== {path}\n{body}\n")
    with open("compiler/tests/fuzz_corpus.txt", "w", encoding="utf-8") as f:
        f.write("".join(out))
    print(f"{len(out)} programs")


if __name__ == "__main__":
    main()
