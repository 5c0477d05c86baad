"""Make the seed corpora of the request fuzz targets, and the dictionary
of the HTTP one:

    python3 tests/fuzz/make_request_seeds.py

seeds/rpc/: packed rv.Request messages of every kind (proto/runvault.proto):
writes of every command kind, the CommandBatch payloads of seeds/apply/ (the
demo's commands, as the CLI sends them) as writes, reads with consistency
and min_index, list_runs with filters, ORDER BY and paging, history, logs,
analytics, artifacts, status, cluster changes, fetch. seeds/http/: requests
in fuzz_http.c's layout (method, target, Idempotency-Key, Content-Type,
each on a line, then the body) for every endpoint of docs/HTTP.md, the
golden requests of tests/e2e/test_http.py and some of its bad ones.
seeds/http.dict: libFuzzer dictionary (-dict=). The run ids are those of
fuzz_node.c's seed runs. Standard library only; existing crash-* seeds are
kept."""

import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")

# ---- protobuf encoding (proto2 wire format) -------------------------------


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def u(num, v):
    """A varint field: uint, int64, bool or enum."""
    return varint(num << 3) + varint(int(v))


def s64(num, v):
    return u(num, zigzag(v))


def ld(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((num << 3) | 2) + varint(len(data)) + data


def msg(num, *fields):
    return ld(num, b"".join(fields))


def packed(num, values, enc=varint):
    return ld(num, b"".join(enc(v) for v in values))


def kv(num, k, v):
    return msg(num, ld(1, k), ld(2, v))


def command(body_num, body, client_id=None, seq=None):
    f = b""
    if client_id is not None:
        f += u(1, client_id) + u(2, seq)
    return msg(1, f + ld(body_num, body))  # WriteRequest.commands / Batch


def write(*commands, durability=None):
    body = b"".join(commands)
    if durability is not None:
        body += u(2, durability)
    return ld(10, body)


def read_opts(consistency=None, min_index=None):
    f = b""
    if consistency is not None:
        f += u(1, consistency)
    if min_index is not None:
        f += u(2, min_index)
    return msg(1, f)


R1, R2, R3 = "seed-run-1", "seed-run-2", "seed-run-3"
ART = b"weights 0.1 0.2 0.3\n"


def rpc_seeds():
    out = {}
    run_create = (ld(1, "rpc-run-1") + ld(2, "default") + ld(3, "vision") +
                  ld(4, "sweep") + ld(5, "a name") + ld(6, "ada") +
                  u(7, 0) + u(8, 1) + kv(9, "lr", "0.01") +
                  kv(9, "batch size", "64") + kv(10, "team", "vis") +
                  u(11, 1))
    metrics = (ld(1, "acc") + ld(1, "loss") + ld(2, "") + ld(2, "val") +
               packed(3, [0, 1, 0, 1]) + packed(4, [0, 0, 1, 1]) +
               packed(5, [0, 0, 1, -1], lambda v: varint(zigzag(v))) +
               packed(6, [1700000000000] * 4, lambda v: varint(zigzag(v))) +
               packed(7, [0.5, 2.0, float("nan"), float("inf")],
                      lambda v: struct.pack("<d", v)))
    lines = b"".join(msg(2, u(1, 1700000000000 + i), u(2, i % 2),
                         ld(3, "line %d" % i)) for i in range(3))
    sha = hashlib.sha256(ART).digest()
    cmds = {
        "run-create": command(10, run_create, 11, 1),
        "run-update": command(11, ld(1, R1) + ld(2, "renamed") + ld(3, "bo")),
        "run-status": command(12, ld(1, R1) + u(2, 3) + u(3, 1700000000999)),
        "log-batch": command(13, ld(1, R1) + msg(2, metrics) +
                             kv(3, "opt", "adam") + kv(4, "t", "v"), 11, 2),
        "log-lines": command(14, ld(1, R1) + lines),
        "artifact": command(15, ld(1, R1) + ld(2, "out/a.txt") +
                            ld(3, "text/plain") + u(4, 0) + ld(5, ART) +
                            u(6, 1) + ld(7, sha)),
        "run-delete": command(16, ld(1, R2)),
        "run-restore": command(17, ld(1, R3)),
        "run-purge": command(18, ld(1, R3)),
        "team-put": command(19, ld(1, "default") + u(2, 10) + u(3, 1000)),
        "token-put": command(20, ld(1, b"\x01" * 32) + ld(2, "default") +
                             u(3, 1)),
        "token-del": command(21, ld(1, b"\x01" * 32)),
        "noop": command(22, b""),
        "node-put": command(23, u(1, 4) + ld(2, "127.0.0.1:26004") +
                            ld(3, "tcp://127.0.0.1:26014") +
                            ld(4, "127.0.0.1:26024")),
        "node-del": command(24, u(1, 4)),
        "mlflow-create": command(27, u(1, 0) + ld(4, "vision") +
                                 ld(5, "sweep2") + ld(6, "vision/sweep2") +
                                 kv(7, "owner", "ana")),
        "mlflow-ensure": command(27, u(1, 1) + ld(2, "default") +
                                 ld(4, "vision") + ld(5, "sweep")),
        "mlflow-rename": command(27, u(1, 2) + u(3, 1) + ld(6, "renamed")),
        "mlflow-delete": command(27, u(1, 3) + u(3, 1)),
        "mlflow-restore": command(27, u(1, 4) + u(3, 1)),
        "mlflow-tag": command(27, u(1, 5) + u(3, 1) + kv(7, "k", "v")),
        "mlflow-untag": command(27, u(1, 6) + u(3, 1) + kv(7, "k", "")),
        "log-batch-delete-tag": command(13, ld(1, R1) + ld(5, "t")),
    }
    for name, c in cmds.items():
        out["write-" + name] = write(c)
    out["write-many-strict"] = write(cmds["run-create"], cmds["log-batch"],
                                     cmds["log-lines"], cmds["run-status"],
                                     durability=3)
    out["write-empty"] = write()
    # The demo's commands (seeds/apply/ holds CommandBatch payloads, whose
    # field-1 records are exactly WriteRequest.commands).
    apply_dir = os.path.join(SEEDS, "apply")
    for name in sorted(os.listdir(apply_dir)) if os.path.isdir(
            apply_dir) else []:
        with open(os.path.join(apply_dir, name), "rb") as f:
            payload = f.read()
        if len(payload) <= 4096:
            out["write-demo-" + name] = ld(10, payload)
    out["get-run"] = ld(11, ld(1, R1))
    out["get-run-stale"] = read_opts(1) + ld(11, ld(1, R2))
    out["get-run-linearizable-min-index"] = read_opts(3, 2) + ld(11, ld(1, R1))
    out["get-run-deleted"] = read_opts(2) + ld(11, ld(1, R3))
    lists = [
        (None, None, None, None, None, None, None),
        ("default", "vision", "sweep", "params.lr = '0.01' and metrics.acc "
         "> 0.5", "metrics.acc DESC, attributes.run_id ASC", 1, None),
        (None, "vision", None, "tags.team LIKE 'vi%' or attributes.status IN "
         "('FINISHED', 'FAILED')", "params.lr ASC", 2, None),
        (None, None, None, "attributes.run_name ILIKE '%seed_' and "
         "attributes.created >= 1700000000000", "attributes.end_time", None,
         "garbage"),
        (None, None, None, "metrics.loss <= -1e10 and params.`batch size` != "
         "'64'", None, 1000, None),
    ]
    for i, (team, project, exp, flt, order, pp, tok) in enumerate(lists):
        f = b""
        for num, v in ((1, team), (2, project), (3, exp), (4, flt),
                       (5, order), (7, tok)):
            if v is not None:
                f += ld(num, v)
        if pp is not None:
            f += u(6, pp)
        out["list-runs-%d" % i] = ld(12, f)
    out["history"] = ld(13, ld(1, R1) + ld(2, "acc"))
    out["history-context-range"] = read_opts(1) + ld(
        13, ld(1, R1) + ld(2, "loss") + ld(3, "val") + s64(4, -5) +
        s64(5, 10) + u(6, 2))
    out["status"] = ld(14, b"")
    out["cluster-status"] = ld(15, u(1, 0))
    out["cluster-add"] = ld(15, u(1, 1) + u(2, 4) + ld(3, "127.0.0.1:26004") +
                            ld(4, "tcp://127.0.0.1:26014") +
                            ld(5, "127.0.0.1:26024"))
    out["cluster-remove"] = ld(15, u(1, 2) + u(2, 3))
    out["cluster-remove-notice"] = ld(15, u(1, 2) + u(2, 1) + u(6, 1))
    out["cluster-transfer"] = ld(15, u(1, 3) + u(2, 2))
    out["fetch"] = ld(16, u(1, 1))
    out["fetch-range"] = ld(16, u(1, 2) + u(2, 6) + u(3, 4096))
    out["logs"] = ld(17, ld(1, R1))
    out["logs-range"] = read_opts(1) + ld(17, ld(1, R1) + u(2, 1) + u(3, 1))
    out["analytics"] = ld(18, b"")
    out["analytics-project"] = ld(18, u(1, 1) + ld(2, "default"))
    out["analytics-day"] = ld(18, u(1, 2) + ld(2, "default") +
                              ld(3, "vision"))
    out["artifact-list"] = ld(19, ld(1, R1))
    out["artifact-meta"] = ld(19, ld(1, R1) + ld(2, "models/weights.txt"))
    out["artifact-read"] = ld(19, ld(1, R1) + ld(2, "models/weights.txt") +
                              u(3, 3) + u(4, 8))
    out["forwarded-write"] = u(2, 1) + write(cmds["run-update"])
    # MLflow experiments read (Request field 21): by id, name, scope, list.
    out["mlflow-by-id"] = ld(21, u(2, 1))
    out["mlflow-by-name"] = ld(21, ld(3, "vision/sweep2"))
    out["mlflow-by-scope"] = ld(21, ld(1, "default") + ld(7, "vision") +
                                ld(8, "sweep"))
    out["mlflow-list"] = ld(21, u(4, 0) + u(5, 10) + u(6, 2))
    out["list-full-deleted"] = ld(12, ld(2, "vision") + u(8, 2) + u(9, 1))
    return out


# ---- HTTP requests ----------------------------------------------------------


def http(method, target, body=b"", key="", ctype=""):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return ("%s\n%s\n%s\n%s\n" % (method, target, key, ctype)).encode() + body


def http_seeds():
    v2 = "/api/v2/runs/" + R1
    out = {
        "create-run": http("POST", "/api/v2/runs", {
            "project": "golden", "experiment": "e1", "name": "first",
            "run_id": "golden-run-1", "user": "ana",
            "params": {"lr": "0.01", "batch size": "64"},
            "tags": {"team": "vision"}}),
        "create-run-resume": http("POST", "/api/v2/runs", {
            "project": "vision", "experiment": "sweep", "run_id": R1,
            "resume": "allow", "status": "RUNNING"}, key="12/3"),
        "create-run-made-id": http("POST", "/api/v2/runs/", {
            "project": "p", "experiment": "e", "resume": "never"}),
        "create-run-must": http("POST", "/api/v2/runs", {
            "project": "p", "experiment": "e", "run_id": "missing-run",
            "resume": "must"}),
        "log-batch": http("POST", v2 + "/log-batch?durability=strict", {
            "metrics": [
                {"key": "acc", "value": 0.9, "step": 1,
                 "timestamp": 1700000000000},
                {"key": "loss", "value": "NaN", "step": 2,
                 "context": "val"},
                {"key": "x/y", "value": "Infinity", "context": None},
                {"key": "z", "value": "-Infinity", "step": -3},
                {"key": "acc", "value": 1e300, "step": 9}],
            "params": {"opt": "adam"}, "tags": {"t": "v"}}, key="5/1"),
        "log-batch-bad-point": http("POST", v2 + "/log-batch", {
            "metrics": [{"key": "good", "value": 1},
                        {"key": "bad..key", "value": 2}]}),
        "logs-post": http("POST", v2 + "/logs", {"lines": [
            {"text": "hello", "stream": "stderr", "timestamp": 5},
            {"text": "world"}]}),
        "status": http("POST", v2 + "/status?durability=memory", {
            "status": "FINISHED", "ended_at": 1700000000500}),
        "status-bad": http("POST", v2 + "/status", {"status": "DONE"}),
        "artifact-put": http("PUT", v2 + "/artifacts/models/a.bin",
                             b"\x00\x01binary\xff", key="7/1",
                             ctype="application/octet-stream"),
        "artifact-put-bad-path": http("PUT", v2 + "/artifacts/../etc/passwd",
                                      b"x"),
        "delete": http("POST", "/api/v2/runs/%s/delete" % R2),
        "restore": http("POST", "/api/v2/runs/%s/restore" % R3, key="8/2"),
        "cluster-add": http("POST", "/api/v2/cluster/nodes", {
            "id": 4, "raft_addr": "127.0.0.1:26004",
            "rpc_addr": "tcp://127.0.0.1:26014",
            "http_addr": "127.0.0.1:26024"}),
        "cluster-remove": http("DELETE", "/api/v2/cluster/nodes/4"),
        "cluster-transfer": http("POST", "/api/v2/cluster/transfer",
                                 {"id": 2}),
        "cluster-transfer-any": http("POST", "/api/v2/cluster/transfer"),
        "get-run": http("GET", v2 + "?consistency=stale"),
        "get-run-v1": http("GET", "/api/runs/" + R1),
        "get-run-min-index": http("GET", v2 + "?consistency=linearizable"
                                  "&min_index=3"),
        "history": http("GET", v2 + "/metrics?key=acc&min_step=0&max_step=10"
                        "&downsample=2"),
        "history-context": http("GET", v2 + "/metrics?key=loss&context=val"),
        "history-summary": http("HEAD", v2 + "/metrics"),
        "logs-get": http("GET", v2 + "/logs?from_line=1&max_lines=2"),
        "artifacts": http("GET", v2 + "/artifacts"),
        "artifact-get": http("GET", v2 + "/artifacts/models/weights.txt"
                             "?offset=2&length=5"),
        "list": http("GET", "/api/v2/experiments?project=vision&experiment="
                     "sweep&status=FINISHED&filter=params.lr%20%3D%20%270.01"
                     "%27&order_by=metrics.acc+DESC&per_page=1&team=default"),
        "list-v1": http("GET", "/api/runs?filter=tags.team%20LIKE%20%27vi%25"
                        "%27&order_by=attributes.start_time%20DESC"),
        "list-page-token": http("GET", "/api/v2/experiments?page_token="
                                "garbage&per_page=1000"),
        "analytics": http("GET", "/api/v2/analytics?group=project&team="
                          "default"),
        "analytics-day": http("GET", "/api/v2/analytics?group=day&project="
                              "vision"),
        "cluster": http("GET", "/api/v2/cluster"),
        "config": http("GET", "/api/config"),
        "healthz": http("GET", "/healthz"),
        "readyz": http("GET", "/readyz"),
        "method-not-allowed": http("DELETE", "/api/v2/runs"),
        "v1-read-only": http("POST", "/api/runs/%s/status" % R1,
                             {"status": "FAILED"}),
        "no-endpoint": http("GET", "/api/v3/x%2Fy?a=1&b"),
        "bad-escape": http("GET", "/api/v2/runs/%zz?x=%00"),
        "bad-json": http("POST", "/api/v2/runs", b"{\"project\": \"p\", "),
        "bad-utf8": http("POST", "/api/v2/runs",
                         b'{"project":"\xc3\x28","experiment":"e"}'),
        "bad-idempotency": http("POST", "/api/v2/runs", {
            "project": "p", "experiment": "e"}, key="0/1"),
    }
    # MLflow's REST API 2.0 (docs/MLFLOW.md).
    mlf = "/api/2.0/mlflow/"
    tag = [{"key": "mlflow.user", "value": "ana"}]
    out.update({
        "mlflow-exp-create": http("POST", mlf + "experiments/create", {
            "name": "vision/sweep", "tags": tag}),
        "mlflow-exp-get": http("GET", mlf + "experiments/get?experiment_id=1"),
        "mlflow-exp-get-by-name": http(
            "GET", mlf + "experiments/get-by-name?experiment_name=vision%2F"
            "sweep"),
        "mlflow-exp-search": http("POST", mlf + "experiments/search", {
            "max_results": 2, "filter": "name LIKE 'vis%' and tags.a = 'b' "
            "and creation_time > 5", "order_by": ["name DESC"],
            "view_type": "ALL", "page_token": "1"}),
        "mlflow-exp-search-get": http(
            "GET", "/ajax-api/2.0/mlflow/experiments/search?filter=name%20%3D"
            "%20%27x%27&order_by=creation_time"),
        "mlflow-exp-update": http("POST", mlf + "experiments/update", {
            "experiment_id": "1", "new_name": "vision/other"}),
        "mlflow-exp-tag": http("POST", mlf +
                               "experiments/set-experiment-tag", {
                                   "experiment_id": "1", "key": "k",
                                   "value": "v"}),
        "mlflow-exp-untag": http("POST", mlf +
                                 "experiments/delete-experiment-tag", {
                                     "experiment_id": "1", "key": "k"}),
        "mlflow-exp-delete": http("POST", mlf + "experiments/delete", {
            "experiment_id": "1"}),
        "mlflow-run-create": http("POST", mlf + "runs/create", {
            "experiment_id": "0", "run_name": "r", "user_id": "u",
            "start_time": "1700000000000", "tags": tag}),
        "mlflow-run-get": http("GET", mlf + "runs/get?run_id=" + R1),
        "mlflow-run-update": http("POST", mlf + "runs/update", {
            "run_id": R1, "status": "FINISHED", "end_time": 5,
            "run_name": "n"}),
        "mlflow-run-search": http("POST", mlf + "runs/search", {
            "experiment_ids": ["0", "1"], "filter": "metrics.acc > 0.5 and "
            "params.lr = '0.01'", "run_view_type": "ALL", "max_results": 3,
            "order_by": ["metrics.acc DESC", "attributes.start_time"]}),
        "mlflow-log-batch": http("POST", mlf + "runs/log-batch", {
            "run_id": R1, "metrics": [
                {"key": "acc", "value": 0.5, "timestamp": 1, "step": 2},
                {"key": "acc", "value": "NaN", "timestamp": "2",
                 "step": "3"}],
            "params": [{"key": "lr", "value": "0.01"}], "tags": tag}),
        "mlflow-log-metric": http("POST", mlf + "runs/log-metric", {
            "run_uuid": R1, "key": "acc", "value": "-Infinity",
            "timestamp": 3}),
        "mlflow-log-param": http("POST", mlf + "runs/log-parameter", {
            "run_id": R1, "key": "lr", "value": "0.02"}),
        "mlflow-set-tag": http("POST", mlf + "runs/set-tag", {
            "run_id": R1, "key": "t", "value": "v"}),
        "mlflow-delete-tag": http("POST", mlf + "runs/delete-tag", {
            "run_id": R1, "key": "t"}),
        "mlflow-history": http("GET", mlf + "metrics/get-history?run_id=" +
                               R1 + "&metric_key=acc&max_results=1&"
                               "page_token=2%3A1"),
        "mlflow-log-inputs": http("POST", mlf + "runs/log-inputs", {
            "run_id": R1, "datasets": [{"tags": tag, "dataset": {
                "name": "d", "digest": "abc", "source_type": "local",
                "source": "s"}}]}),
        "mlflow-bulk-interval": http(
            "GET", mlf + "metrics/get-history-bulk-interval?run_ids=" + R1 +
            "&run_ids=" + R2 + "&metric_key=acc&start_step=0&end_step=9&"
            "max_results=3"),
        "mlflow-art-put": http("PUT", "/api/2.0/mlflow-artifacts/artifacts/"
                               "0/" + R1 + "/artifacts/m/w.bin", b"\x00bytes"),
        "mlflow-art-get": http("GET", "/api/2.0/mlflow-artifacts/artifacts/"
                               "0/" + R1 + "/artifacts/models/weights.txt"),
        "mlflow-art-list": http("GET", "/ajax-api/2.0/mlflow-artifacts/"
                                "artifacts?path=0%2F" + R1 + "%2Fartifacts"),
        "mlflow-art-list-run": http("GET", mlf + "artifacts/list?run_id=" +
                                    R1 + "&path=models"),
        "mlflow-bad-body": http("POST", mlf + "runs/log-batch",
                                b'{"run_id": 1, "metrics": [{"key": [}'),
    })
    return out


DICT = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "/api/v2/runs/", "/api/runs/",
    "/api/v2/experiments", "/api/v2/analytics", "/api/v2/cluster",
    "/api/v2/cluster/nodes/", "/api/v2/cluster/transfer", "/api/config",
    "/healthz", "/readyz", "/log-batch", "/logs", "/status", "/metrics",
    "/delete", "/restore", "/artifacts/", "seed-run-1", "seed-run-2",
    "seed-run-3", "?", "&", "=", "%2F", "%20", "%25", "%00", "%C3%A9", "+",
    "consistency=", "min_index=", "durability=", "key=", "context=",
    "min_step=", "max_step=", "downsample=", "from_line=", "max_lines=",
    "offset=", "length=", "project=", "experiment=", "team=", "status=",
    "filter=", "order_by=", "per_page=", "page_token=", "group=", "stale",
    "leader", "linearizable", "memory", "buffered", "strict", "day",
    "RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED", "CRASHED",
    "allow", "must", "never", "stdout", "stderr", "params.", "metrics.",
    "tags.", "attributes.", "attributes.status", "attributes.run_name",
    "attributes.created", "attributes.start_time", "attributes.end_time",
    " LIKE ", " ILIKE ", " IN ", " and ", " or ", " ASC", " DESC", "'",
    "`", "\"project\":", "\"experiment\":", "\"name\":", "\"run_id\":",
    "\"user\":", "\"params\":", "\"tags\":", "\"resume\":", "\"status\":",
    "\"metrics\":", "\"key\":", "\"value\":", "\"step\":", "\"timestamp\":",
    "\"context\":", "\"lines\":", "\"text\":", "\"stream\":",
    "\"ended_at\":", "\"id\":", "\"raft_addr\":", "\"rpc_addr\":",
    "\"http_addr\":", "\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "null",
    "true", "false", "[]", "{}", "1e308", "-0", "9223372036854775807",
    "-9223372036854775808", "18446744073709551616", "\\u0000", "\\ud800",
    "127.0.0.1:26004", "12/3", "/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/",
    "experiments/create", "experiments/get", "experiments/get-by-name",
    "experiments/search", "experiments/update", "experiments/delete",
    "experiments/restore", "experiments/set-experiment-tag",
    "experiments/delete-experiment-tag", "runs/create", "runs/get",
    "runs/update", "runs/delete", "runs/restore", "runs/search",
    "runs/log-batch", "runs/log-metric", "runs/log-parameter",
    "runs/set-tag", "runs/delete-tag", "metrics/get-history",
    "\"experiment_id\":", "\"experiment_ids\":", "\"run_uuid\":",
    "\"run_name\":", "\"user_id\":", "\"start_time\":",
    "\"end_time\":", "\"new_name\":", "\"max_results\":",
    "\"page_token\":", "\"view_type\":", "\"run_view_type\":",
    "\"order_by\":", "\"filter\":", "experiment_id=", "experiment_name=",
    "metric_key=", "run_id=", "max_results=", "ACTIVE_ONLY",
    "DELETED_ONLY", "ALL", "creation_time", "last_update_time",
    "mlflow.runName", "\"0\"", "runs/log-inputs", "\"datasets\":",
    "\"dataset\":", "\"digest\":", "metrics/get-history-bulk-interval",
    "run_ids=", "start_step=", "end_step=", "/api/2.0/mlflow-artifacts/",
    "artifacts/", "/artifacts", "path=", "artifacts/list",
]


def write_dir(name, seeds):
    d = os.path.join(SEEDS, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith("crash-"):
            os.remove(os.path.join(d, f))
    for k, v in seeds.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)
    return len(seeds)


def main():
    n_rpc = write_dir("rpc", rpc_seeds())
    n_http = write_dir("http", http_seeds())
    with open(os.path.join(SEEDS, "http.dict"), "w") as f:
        f.write("# libFuzzer dictionary of fuzz_http (make_request_seeds.py)"
                "\n")
        for i, w in enumerate(DICT):
            f.write("kw%d=%s\n" % (i, json.dumps(w)))
    print("seeds: %d rpc, %d http, %d dictionary words" % (n_rpc, n_http,
                                                          len(DICT)))


if __name__ == "__main__":
    main()
