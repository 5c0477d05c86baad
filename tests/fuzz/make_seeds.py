"""Make the seed corpora of the fuzz targets from a store written by
`runvault demo` (runs, params, tags, metrics, logs, artifacts):

    python3 tests/fuzz/make_seeds.py build/node/runvault

seeds/apply/: CommandBatch payloads of the demo's vlog records (the
command kinds apply knows); seeds/vlog/: the demo segment cut after 1, 3
and 8 whole records; seeds/filter/: filter and ORDER BY lines. Standard
library only; the segment layout is store/vlog.h's. The request targets'
seeds (seeds/rpc/, seeds/http/, seeds/http.dict) come from
make_request_seeds.py, which needs no binary (run it after this one: it
turns seeds/apply/ into writes)."""

import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEG_HEADER, REC_HEADER = 32, 20

FILTERS = [
    "params.lr = '0.01' and metrics.acc > 0.9\nmetrics.acc DESC",
    "tags.team LIKE 'vis%' or (attributes.status IN ('FINISHED', 'FAILED'))\n"
    "params.lr ASC, attributes.start_time DESC",
    "metrics.loss <= -1e10 and params.`batch size` != '64'\n",
    "attributes.run_name ILIKE '%Sweep_' and attributes.created >= 1700000000000\n"
    "attributes.end_time",
    "\nattributes.run_id",
]


def records(seg):
    off = SEG_HEADER
    while off + REC_HEADER <= len(seg):
        n = struct.unpack(">I", seg[off:off + 4])[0]
        end = off + REC_HEADER + n
        if end > len(seg):
            break
        yield off, end, seg[off + REC_HEADER:end]
        off = end


def main():
    runvault = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "..", "..", "build", "node", "runvault")
    tmp = tempfile.mkdtemp(prefix="rvseeds-")
    try:
        subprocess.run([runvault, "demo", "--data-dir", tmp + "/d"],
                       check=True, stdout=subprocess.DEVNULL)
        with open(tmp + "/d/vlog/00000001.seg", "rb") as f:
            seg = f.read()
    finally:
        shutil.rmtree(tmp)
    recs = list(records(seg))
    out = {k: os.path.join(HERE, "seeds", k) for k in ("apply", "vlog",
                                                        "filter")}
    for d in out.values():
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    for i, (_, _, payload) in enumerate(recs[:24]):
        if len(payload) <= 16384:
            with open(os.path.join(out["apply"], "batch-%02d" % i), "wb") as f:
                f.write(payload)
    for k in (1, 3, 8):
        if k <= len(recs):
            with open(os.path.join(out["vlog"], "records-%d" % k), "wb") as f:
                f.write(seg[:recs[k - 1][1]])
    for i, text in enumerate(FILTERS):
        with open(os.path.join(out["filter"], "filter-%d" % i), "w") as f:
            f.write(text)
    print("seeds: %d apply, %d vlog, %d filter" % tuple(
        len(os.listdir(out[k])) for k in ("apply", "vlog", "filter")))


if __name__ == "__main__":
    main()
