"""Make the seed corpus of fuzz_auth (seeds/auth/) and its dictionary
(seeds/auth.dict):

    python3 tests/fuzz/make_auth_seeds.py

Each seed is one byte choosing the part (fuzz_auth.c: 0 an Authorization
header value, 1 a token text, 2 a POST /api/v2/tokens body, 3 a POST
/api/v2/teams body, 4 a quota body after its team's line) and the input.
The tokens are fixed made-up texts of the token form (base/token.h), not
secrets of any cluster. Standard library only."""

import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds", "auth")

TID = "0123456789abcdef"
TOKEN = "rvt_" + TID + "_" + "a1b2c3d4" * 8

HEADERS = [
    "Bearer " + TOKEN,
    "bearer " + TOKEN,
    "Bearer    " + TOKEN,
    "Bearer " + TOKEN + ", Bearer " + TOKEN,
    "Bearer " + TOKEN + "x",
    "Bearer " + TOKEN[:-1],
    "Bearer " + TOKEN.upper(),
    "Basic dXNlcjpwYXNz",
    "Bearer",
    "Bearer ",
    "Bearer\t" + TOKEN,
    "",
    "Bearer " + TOKEN[:40] + "\x01" + TOKEN[41:],
    "Bearer " + "a" * 600,
]

TEXTS = [TOKEN, TOKEN[:-1], "rvt_" + TID + "-" + "0" * 64,
         "rvt_" + "g" * 16 + "_" + "0" * 64, "xyz_" + TID + "_" + "0" * 64]

TOKEN_BODIES = [
    '{"team":"vision","role":"writer","name":"ci"}',
    '{"team":"vision","role":"reader","name":"nb","expires_in_s":3600}',
    '{"team":"*","role":"cluster-admin","name":"ops"}',
    '{"team":"vision","role":"admin","name":"a","expires_in_s":315360000}',
    '{"team":"vision","role":"admin","name":"a","expires_in_s":315360001}',
    '{"team":"vision","role":"owner","name":"a"}',
    '{"team":"*","role":"reader","name":"a"}',
    '{"team":"vision","role":"reader","name":""}',
    '{"team":"vision","role":"reader","name":"a","extra":1}',
    '{"team":"vision","role":"reader","name":"a","expires_in_s":"1"}',
    '{"team":"v',
    '[]',
]

TEAM_BODIES = ['{"team":"vision"}', '{"team":"*"}', '{"team":""}',
               '{"team":"' + "t" * 65 + '"}', '{"team":1}', '{}']

QUOTA_BODIES = [
    'vision\n{"max_runs":10,"max_bytes":0,"max_points_per_s":5000}',
    'vision\n{"max_runs":-1}',
    '*\n{"max_runs":1}',
    'vision\n{}',
    'vision\n{"max_runs":1.5}',
    'v%2Fx\n{"max_bytes":1}',
]

DICT = ["Bearer ", "bearer ", "rvt_", TID, ", ", '"team"', '"role"',
        '"name"', '"expires_in_s"', '"reader"', '"writer"', '"admin"',
        '"cluster-admin"', '"*"', '"max_runs"', '"max_bytes"',
        '"max_points_per_s"', "315360000"]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    n = 0
    for kind, items in ((0, HEADERS), (1, TEXTS), (2, TOKEN_BODIES),
                        (3, TEAM_BODIES), (4, QUOTA_BODIES)):
        for i, text in enumerate(items):
            with open(os.path.join(OUT, "k%d-%02d" % (kind, i)), "wb") as f:
                f.write(bytes([kind]) + text.encode("latin-1"))
            n += 1
    with open(os.path.join(HERE, "seeds", "auth.dict"), "w") as f:
        for w in DICT:
            f.write('"%s"\n' % w.replace("\\", "\\\\").replace('"', '\\"'))
    print("seeds: %d auth" % n)


if __name__ == "__main__":
    main()
