#!/usr/bin/env python3
"""Static checks of runvault's C code, run by deploy/test.sh before the build.

    python3 deploy/check_code.py [ROOT]

(a) Includes across layers. Dependencies point one way (STYLE.md B2):

        base <- proto <- store <- raft <- rpc <- gateway <- node

    A file in one of these folders may include (with quotes) only headers of
    its own layer or of a layer to its left. Two leaf folders are narrower:
    rpc/client/ (the client library) may include only base/, proto/ and
    rpc/client/; node/cli/ only base/, proto/, rpc/client/ and node/cli/.
    node/cli/ may also include node/defaults.h (the default addresses that
    serve and the client commands share).
    A header named *_int.h may be included only from its own folder, and
    from the white-box tests (tests/unit/, tests/fuzz/), which the build lets
    see it through the <target>_int interface library. Files outside the
    layers (tests/) may include any public header.
    Angle-bracket includes (<raft.h>, <raft/uv.h>) are libraries: not checked.

(b) Banned calls in product and test C code (STYLE.md B9): strcpy, sprintf,
    vsprintf, strcat, strtok, atoi, gets; and strtol/strtoll/strtoul/strtoull
    whose second argument is NULL or 0 (no end-pointer check possible).

Prints one line per finding, `file:line: message`, and exits 1 if there is
any, 0 otherwise. Comments and string literals are ignored. Standard
library only."""

import os
import re
import sys

LAYERS = ["base", "proto", "store", "raft", "rpc", "gateway", "node"]
# Folders narrower than their layer: folder -> folders it may include.
LEAVES = {
    "rpc/client": ("base", "proto", "rpc/client"),
    "node/cli": ("base", "proto", "rpc/client", "node/cli", "node/defaults.h"),
}
TEST_DIRS = ["tests", "bench"]
WHITE_BOX = ("tests/unit/", "tests/fuzz/")
SKIP_SUFFIXES = (".pb-c.c", ".pb-c.h")
BANNED = ("strcpy", "sprintf", "vsprintf", "strcat", "strtok", "atoi", "gets")
STRTO = ("strtol", "strtoll", "strtoul", "strtoull")

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
CALL_RE = re.compile(r"\b(%s)\s*\(" % "|".join(BANNED + STRTO))


def strip_c(text):
    """text with comments and string/char literals blanked (newlines and
    lengths kept, so offsets still give line numbers). Quoted #include
    lines keep their path: the caller reads includes from the raw text."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def folder_of(rel):
    """The checked folder a repo-relative path belongs to: a leaf folder
    (rpc/client) if it is in one, else its top-level folder."""
    for leaf in LEAVES:
        if rel.startswith(leaf + "/"):
            return leaf
    return rel.split("/", 1)[0]


def allowed(src_folder, target_folder, target=None):
    if src_folder in LEAVES:
        return target_folder in LEAVES[src_folder] or \
            target in LEAVES[src_folder]
    if src_folder not in LAYERS:
        return True
    top = target_folder.split("/", 1)[0]
    if top not in LAYERS:
        return True
    return LAYERS.index(top) <= LAYERS.index(src_folder)


def resolve(root, rel, inc):
    """The repo-relative path an include names: a path spelling its folder
    from the root, or a file beside the includer."""
    beside = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
    if "/" not in inc and os.path.exists(os.path.join(root, beside)):
        return beside
    return os.path.normpath(inc)


def check_includes(root, rel, raw, out):
    src = folder_of(rel)
    for m in INCLUDE_RE.finditer(raw):
        target = resolve(root, rel, m.group(1))
        ln = line_of(raw, m.start())
        base = os.path.basename(target)
        if base.endswith("_int.h") and \
                os.path.dirname(target) != os.path.dirname(rel) and \
                not rel.startswith(WHITE_BOX):
            out.append("%s:%d: includes %s, private to %s/" %
                       (rel, ln, target, os.path.dirname(target)))
            continue
        if "/" in target and not allowed(src, folder_of(target), target):
            out.append("%s:%d: %s/ may not include %s (layers: %s)" %
                       (rel, ln, src, target, " <- ".join(LAYERS)))


def second_arg(code, pos):
    """The second argument of the call whose '(' is at pos, stripped, or
    None if the call has fewer arguments."""
    depth, start, args = 0, pos + 1, []
    for j in range(pos, len(code)):
        ch = code[j]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                args.append(code[start:j])
                break
        elif ch == "," and depth == 1:
            args.append(code[start:j])
            start = j + 1
    return args[1].strip() if len(args) >= 2 else None


def check_calls(rel, code, out):
    for m in CALL_RE.finditer(code):
        name = m.group(1)
        ln = line_of(code, m.start())
        if name in BANNED:
            out.append("%s:%d: banned call %s()" % (rel, ln, name))
        elif second_arg(code, m.end() - 1) in ("NULL", "0"):
            out.append("%s:%d: %s() without an end pointer (second "
                       "argument NULL): the parse cannot be checked" %
                       (rel, ln, name))


def c_files(root):
    for top in LAYERS + TEST_DIRS:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = sorted(x for x in dirs if not x.startswith("."))
            for f in sorted(files):
                if f.endswith((".c", ".h")) and not f.endswith(SKIP_SUFFIXES):
                    yield os.path.relpath(os.path.join(d, f), root)


def main(argv):
    root = os.path.abspath(argv[1] if len(argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    out = []
    for rel in c_files(root):
        with open(os.path.join(root, rel), encoding="utf-8",
                  errors="replace") as f:
            raw = f.read()
        check_includes(root, rel, raw, out)
        check_calls(rel, strip_c(raw), out)
    for line in out:
        print(line)
    if out:
        print("check_code: %d finding(s)" % len(out), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
