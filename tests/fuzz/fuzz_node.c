/* The node of the request fuzz targets (contract in fuzz_node.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "tests/fuzz/fuzz_node.h"

#include "proto/metrics_builder.h"
#include "proto/proto.h"
#include "rpc/answer.h"
#include "store/store.h"

#include <ftw.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FZ_NODE_START_MS 1700000000000

struct fz_node {
    char name[64];
    char dir[4096];
    struct store *st;
    uint64_t index;     /* Raft index of the last applied entry. */
    uint64_t n_entries; /* Applied since the store was made. */
    int64_t now_ms;     /* The leader's clock: one ms per write. */
    struct rv_buf packed;
    /* The last answer. */
    struct rpc_reply *reply;
    Rv__Response resp;
    char message[RV_ERRMSG_SIZE];
};

/* ---- The store's directory ------------------------------------------- */

static int
fz__rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
fz__answer_reset(struct fz_node *n)
{
    rpc_reply_free(n->reply);
    n->reply = NULL;
    rv__response__init(&n->resp);
    n->resp.code = RV_OK;
    n->message[0] = '\0';
}

static void fz__seed(struct fz_node *n);

static void
fz__store_make(struct fz_node *n)
{
    char errmsg[RV_ERRMSG_SIZE];
    const char *tmp = getenv("TMPDIR");
    snprintf(n->dir, sizeof n->dir, "%s/rvfuzz-%s-XXXXXX",
             tmp && *tmp ? tmp : "/tmp", n->name);
    if (mkdtemp(n->dir) == NULL)
        abort();
    struct store_config cfg = {n->dir, (size_t)1 << 30, 4 << 20, NULL, NULL};
    if (store_open(&n->st, &cfg, errmsg) != RV_OK) {
        fprintf(stderr, "fuzz_node: store_open: %s\n", errmsg);
        abort();
    }
    n->index = 0;
    n->n_entries = 0;
    n->now_ms = FZ_NODE_START_MS;
    fz__seed(n);
}

static void
fz__store_drop(struct fz_node *n)
{
    fz__answer_reset(n);
    store_close(n->st);
    n->st = NULL;
    if (nftw(n->dir, fz__rm, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "fuzz_node: could not remove %s\n", n->dir);
}

struct fz_node *
fz_node_open(const char *name)
{
    struct fz_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        abort();
    snprintf(n->name, sizeof n->name, "%s", name);
    rv_buf_init(&n->packed);
    fz__store_make(n);
    return n;
}

void
fz_node_close(struct fz_node *n)
{
    if (n == NULL)
        return;
    fz__store_drop(n);
    rv_buf_free(&n->packed);
    free(n);
}

/* ---- Answers ---------------------------------------------------------- */

static const Rv__Response *
fz__fail(struct fz_node *n, int code)
{
    n->resp.code = (uint32_t)code;
    if (n->message[0] == '\0')
        snprintf(n->message, sizeof n->message, "%s", rv_strerror(code));
    n->resp.message = n->message;
    return &n->resp;
}

/* As the leader's rpc__write, with store_apply in place of the replica. */
static const Rv__Response *
fz__write(struct fz_node *n, Rv__WriteRequest *wr)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    int rc =
        rpc_write_prepare(wr, n->now_ms++, NULL, NULL, &n->packed, n->message);
    if (rc != RV_OK)
        return fz__fail(n, rc);
    size_t len = proto_envelope_size(n->packed.len);
    uint8_t *e = malloc(len);
    if (e == NULL)
        abort();
    proto_envelope_wrap(n->packed.data, n->packed.len, e);
    struct store_result *results = NULL;
    size_t n_results = 0;
    rc = store_apply(n->st, ++n->index, e, len, &results, &n_results, errmsg);
    free(e);
    if (rc != RV_OK) {
        fprintf(stderr, "fuzz_node: a local fault from input: %s: %s\n",
                rv_strerror(rc), errmsg);
        abort();
    }
    n->n_entries++;
    if (rpc_write_answer(n->index, results, n_results, &n->reply) != RV_OK)
        abort();
    return rpc_reply_response(n->reply);
}

const Rv__Response *
fz_node_answer(struct fz_node *n, Rv__Request *req)
{
    fz__answer_reset(n);
    if (n->n_entries >= FZ_NODE_MAX_ENTRIES) {
        fz__store_drop(n);
        fz__store_make(n);
    }
    int rc = rpc_request_check(req, n->message);
    if (rc != RV_OK)
        return fz__fail(n, rc);
    switch (req->body_case) {
    case RV__REQUEST__BODY_WRITE:
        return fz__write(n, req->write);
    case RV__REQUEST__BODY_STATUS:
    case RV__REQUEST__BODY_CLUSTER:
        return &n->resp;
    default:
        break;
    }
    if (req->body_case != RV__REQUEST__BODY_FETCH && req->read != NULL &&
        req->read->has_min_index && req->read->min_index > n->index)
        return fz__fail(n, RV_ETIMEDOUT);
    rc = rpc_store_answer(n->st, req, &n->reply);
    if (rc != RV_OK)
        return fz__fail(n, rc);
    return rpc_reply_response(n->reply);
}

void
fz_response_check(const Rv__Response *resp)
{
    size_t len = rv__response__get_packed_size(resp);
    uint8_t *b = malloc(len ? len : 1);
    if (b == NULL)
        abort();
    rv__response__pack(resp, b);
    Rv__Response *d = rv__response__unpack(NULL, len, b);
    if (d == NULL) {
        fprintf(stderr,
                "fuzz_node: an answer of %zu bytes that does not "
                "decode\n",
                len);
        abort();
    }
    rv__response__free_unpacked(d, NULL);
    free(b);
}

/* ---- The seed runs ---------------------------------------------------- */

static void
fz__seed_write(struct fz_node *n, Rv__Command *cmd)
{
    static uint64_t seq; /* Per process: seeds are never duplicates. */
    Rv__Request req = RV__REQUEST__INIT;
    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    Rv__Command *cmds[1] = {cmd};
    cmd->has_client_id = cmd->has_seq = 1;
    cmd->client_id = 7;
    cmd->seq = ++seq;
    wr.n_commands = 1;
    wr.commands = cmds;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &wr;
    const Rv__Response *r = fz_node_answer(n, &req);
    if (r->code != RV_OK || r->n_results != 1 || r->results[0]->code != RV_OK) {
        fprintf(stderr, "fuzz_node: a seed write failed: %s\n",
                r->n_results == 1 && r->results[0]->message
                    ? r->results[0]->message
                    : (r->message ? r->message : ""));
        abort();
    }
}

static void
fz__seed_create(struct fz_node *n, const char *id, const char *project,
                const char *experiment, Rv__KV **kvs, size_t n_kvs)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunCreate rc = RV__RUN_CREATE__INIT;
    rc.run_id = (char *)id;
    rc.project = (char *)project;
    rc.experiment = (char *)experiment;
    rc.name = (char *)"a seed run";
    rc.user = (char *)"ada";
    rc.params = kvs;
    rc.n_params = n_kvs;
    rc.tags = kvs;
    rc.n_tags = n_kvs;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = &rc;
    fz__seed_write(n, &cmd);
}

static void
fz__seed_metrics(struct fz_node *n, const char *id)
{
    static const char *const keys[] = {"acc", "loss"};
    static const char *const ctxs[] = {"", "val"};
    static const int key_of[6] = {0, 1, 0, 1, 0, 1},
                     ctx_of[6] = {0, 0, 1, 1, 0, 0};
    static const int64_t steps[6] = {0, 0, 1, 1, 2, 2};
    double values[6] = {0.5, 2.0, 0.7, 1.5, 0.9, __builtin_nan("")};
    struct proto_metrics_builder mb;
    proto_metrics_init(&mb);
    for (int i = 0; i < 6; i++)
        if (proto_metrics_add(&mb, keys[key_of[i]], ctxs[ctx_of[i]], steps[i],
                              FZ_NODE_START_MS + i, values[i], NULL) != RV_OK)
            abort(); /* The seed store cannot be made: nothing to fuzz. */
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m = RV__METRICS__INIT;
    proto_metrics_view(&mb, &m);
    lb.run_id = (char *)id;
    lb.metrics = &m;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    fz__seed_write(n, &cmd);
    proto_metrics_free(&mb);
}

static void
fz__seed_logs(struct fz_node *n, const char *id)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__LogLines ll = RV__LOG_LINES__INIT;
    Rv__LogLine l[3], *lp[3];
    for (int i = 0; i < 3; i++) {
        rv__log_line__init(&l[i]);
        l[i].timestamp_ms = FZ_NODE_START_MS + i;
        l[i].has_stream = 1;
        l[i].stream = i == 2 ? RV__STREAM__STDERR : RV__STREAM__STDOUT;
        l[i].text = (char *)(i == 2 ? "an error" : "epoch done");
        lp[i] = &l[i];
    }
    ll.run_id = (char *)id;
    ll.n_lines = 3;
    ll.lines = lp;
    cmd.body_case = RV__COMMAND__BODY_LOG_LINES;
    cmd.log_lines = &ll;
    fz__seed_write(n, &cmd);
}

static void
fz__seed_artifact(struct fz_node *n, const char *id, const char *path)
{
    static const char data[] = "weights 0.1 0.2 0.3\n";
    uint8_t digest[SHA256_DIGEST_SIZE];
    struct sha256_ctx h;
    sha256_init(&h);
    sha256_update(&h, sizeof data - 1, (const uint8_t *)data);
    sha256_digest(&h, sizeof digest, digest);
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__ArtifactChunk ch = RV__ARTIFACT_CHUNK__INIT;
    ch.run_id = (char *)id;
    ch.path = (char *)path;
    ch.content_type = (char *)"text/plain";
    ch.data.data = (uint8_t *)data;
    ch.data.len = sizeof data - 1;
    ch.has_is_last = ch.is_last = 1;
    ch.has_sha256 = 1;
    ch.sha256.data = digest;
    ch.sha256.len = sizeof digest;
    cmd.body_case = RV__COMMAND__BODY_ARTIFACT_CHUNK;
    cmd.artifact_chunk = &ch;
    fz__seed_write(n, &cmd);
}

static void
fz__seed_status(struct fz_node *n, const char *id, Rv__RunStatus status)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunSetStatus st = RV__RUN_SET_STATUS__INIT;
    st.run_id = (char *)id;
    st.status = status;
    cmd.body_case = RV__COMMAND__BODY_RUN_STATUS;
    cmd.run_status = &st;
    fz__seed_write(n, &cmd);
}

static void
fz__seed_delete(struct fz_node *n, const char *id)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunRef ref = RV__RUN_REF__INIT;
    ref.run_id = (char *)id;
    cmd.body_case = RV__COMMAND__BODY_RUN_DELETE;
    cmd.run_delete = &ref;
    fz__seed_write(n, &cmd);
}

/* The runs the seed corpora name (tests/fuzz/make_seeds.py). */
static void
fz__seed(struct fz_node *n)
{
    Rv__KV kv[2] = {RV__KV__INIT, RV__KV__INIT}, *kvp[2] = {&kv[0], &kv[1]};
    kv[0].key = (char *)"lr";
    kv[0].value = (char *)"0.01";
    kv[1].key = (char *)"batch size";
    kv[1].value = (char *)"64";
    fz__seed_create(n, "seed-run-1", "vision", "sweep", kvp, 2);
    fz__seed_create(n, "seed-run-2", "nlp", "base", kvp, 1);
    fz__seed_create(n, "seed-run-3", "vision", "sweep", NULL, 0);
    fz__seed_metrics(n, "seed-run-1");
    fz__seed_metrics(n, "seed-run-2");
    fz__seed_logs(n, "seed-run-1");
    fz__seed_artifact(n, "seed-run-1", "models/weights.txt");
    fz__seed_status(n, "seed-run-2", RV__RUN_STATUS__FINISHED);
    fz__seed_delete(n, "seed-run-3");
    fz__answer_reset(n);
}
