#!/usr/bin/env python3
"""deploy/check_code.py must catch what it is for: a tree of known-bad and
known-good C files, and the findings expected for each.

    python3 deploy/test_check_code.py"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

FILES = {
    # Layers: store may include base and proto, not rpc.
    "store/ok.c": '#include "base/err.h"\n#include "proto/proto.h"\n'
                  '#include <raft/uv.h>\n',
    "store/up.c": '#include "base/err.h"\n#include "rpc/rpc.h"\n',
    # The leaf client library: base and proto only.
    "rpc/client/client.c": '#include "rpc/client/batch.h"\n'
                           '#include "proto/proto.h"\n'
                           '#include "rpc/server.h"\n',
    "node/cli/cli.c": '#include "rpc/client/client.h"\n'
                      '#include "store/store.h"\n',
    "node/main.c": '#include "gateway/gateway.h"\n#include "node/cli/cli.h"\n',
    # *_int.h from its own folder only.
    "store/store_int.h": "\n",
    "store/a.c": '#include "store/store_int.h"\n',
    "gateway/g.c": '#include "store/store_int.h"\n',
    "tests/unit/t.c": '#include "store/store_int.h"\n',  # white-box: allowed
    "tests/e2e/t.c": '#include "store/store_int.h"\n',
    # Banned calls; comments and strings do not count.
    "base/calls.c": "/* strcpy(a, b) in a comment */\n"
                    'static const char *s = "sprintf(x)";\n'
                    "void f(char *a, const char *b)\n{\n"
                    "    strcpy(a, b);\n"
                    "    snprintf(a, 4, \"%s\", b);\n"
                    "    sprintf(a, \"%s\", b);\n"
                    "    strcat(a, b); strtok(a, b); atoi(b); gets(a);\n"
                    "    fgets(a, 4, 0); strtok_r(a, b, 0);\n"
                    "    unsigned long x = strtoul(b, NULL, 10);\n"
                    "    unsigned long long y = strtoull(b,\n"
                    "        NULL, 10);\n"
                    "    char *end;\n"
                    "    x = strtoul(b, &end, 10);\n"
                    "}\n",
}

EXPECTED = {
    "store/up.c:2: store/ may not include rpc/rpc.h",
    "rpc/client/client.c:3: rpc/client/ may not include rpc/server.h",
    "node/cli/cli.c:2: node/cli/ may not include store/store.h",
    "gateway/g.c:1: includes store/store_int.h, private to store/",
    "tests/e2e/t.c:1: includes store/store_int.h, private to store/",
    "base/calls.c:5: banned call strcpy()",
    "base/calls.c:7: banned call sprintf()",
    "base/calls.c:8: banned call strcat()",
    "base/calls.c:8: banned call strtok()",
    "base/calls.c:8: banned call atoi()",
    "base/calls.c:8: banned call gets()",
    "base/calls.c:10: strtoul() without an end pointer",
    "base/calls.c:11: strtoull() without an end pointer",
}


def main():
    with tempfile.TemporaryDirectory(prefix="rv-check-code-") as root:
        for rel, text in FILES.items():
            os.makedirs(os.path.join(root, os.path.dirname(rel)),
                        exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        r = subprocess.run([sys.executable,
                            os.path.join(HERE, "check_code.py"), root],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
    lines = r.stdout.splitlines()
    missed = [e for e in sorted(EXPECTED)
              if not any(line.startswith(e) for line in lines)]
    extra = [line for line in lines
             if not any(line.startswith(e) for e in EXPECTED)]
    for e in missed:
        print("MISSED: " + e)
    for e in extra:
        print("FALSE ALARM: " + e)
    if r.returncode != 1:
        print("check_code.py exited %d, want 1" % r.returncode)
    ok = not missed and not extra and r.returncode == 1
    print("%d passed, %d failed" % (len(EXPECTED) - len(missed),
                                    len(missed) + len(extra)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
