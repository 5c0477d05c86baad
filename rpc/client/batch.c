/* Batched writes for ingestion (contract in batch.h). */
#include "rpc/client/batch.h"

#include "base/clock.h"
#include "proto/contract.h"
#include "proto/metrics_builder.h"
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes a command adds to a write besides its body: the field tag and
 * length of the command, client_id and seq varints, the body's tag and
 * length. */
#define RVC_BATCH_COMMAND_OVERHEAD 32

/* One pending command: either a copy of a caller's command (cmd), or a
 * LogBatch of one run's points being filled (cmd NULL). */
struct rvc_pending {
    uint64_t seq;
    Rv__Command *cmd; /* Owned; unpacked with protobuf-c's allocator. */
    size_t n_bytes;   /* Packed size, estimated for metrics. */
    /* Metrics (cmd NULL): */
    char *run_id; /* Owned. */
    int is_open;  /* Still takes points: never sent, nothing added since. */
    struct proto_metrics_builder mb; /* The points; mb.n of them. */
};

struct rvc_batcher {
    struct rvc *c;
    uint64_t client_id, seq;
    size_t max_points, per_command;
    struct rvc_pending *pend;
    size_t n_pend, cap_pend;
    size_t n_points; /* Points in pend. */
    size_t n_bytes;  /* Estimated packed size of the write. */
    size_t hint;     /* pend index of the last point's command. */
    struct rvc_batch_stats stats;
    char errmsg[RV_ERRMSG_SIZE];
};

/* ---- Helpers ------------------------------------------------------------ */

static const char *
rvc__cmd_run_id(const Rv__Command *cmd)
{
    switch (cmd->body_case) {
    case RV__COMMAND__BODY_RUN_CREATE:
        return cmd->run_create->run_id;
    case RV__COMMAND__BODY_RUN_UPDATE:
        return cmd->run_update->run_id;
    case RV__COMMAND__BODY_RUN_STATUS:
        return cmd->run_status->run_id;
    case RV__COMMAND__BODY_LOG_BATCH:
        return cmd->log_batch->run_id;
    case RV__COMMAND__BODY_LOG_LINES:
        return cmd->log_lines->run_id;
    case RV__COMMAND__BODY_ARTIFACT_CHUNK:
        return cmd->artifact_chunk->run_id;
    case RV__COMMAND__BODY_RUN_DELETE:
        return cmd->run_delete->run_id;
    case RV__COMMAND__BODY_RUN_RESTORE:
        return cmd->run_restore->run_id;
    case RV__COMMAND__BODY_RUN_PURGE:
        return cmd->run_purge->run_id;
    default:
        return "";
    }
}

static void
rvc__pending_free(struct rvc_pending *p)
{
    if (p->cmd != NULL)
        rv__command__free_unpacked(p->cmd, NULL);
    proto_metrics_free(&p->mb);
    free(p->run_id);
    memset(p, 0, sizeof *p);
}

/* Drop pend[0, n) and move the rest down. */
static void
rvc__pending_drop(struct rvc_batcher *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b->pend[i].cmd == NULL)
            b->n_points -= b->pend[i].mb.n;
        b->n_bytes -= b->pend[i].n_bytes + RVC_BATCH_COMMAND_OVERHEAD;
        rvc__pending_free(&b->pend[i]);
    }
    memmove(b->pend, b->pend + n, (b->n_pend - n) * sizeof *b->pend);
    b->n_pend -= n;
    b->hint = 0;
}

static int
rvc__pending_grow(struct rvc_batcher *b)
{
    if (b->n_pend < b->cap_pend)
        return RV_OK;
    size_t cap = b->cap_pend ? 2 * b->cap_pend : 64;
    struct rvc_pending *p = realloc(b->pend, cap * sizeof *p);
    if (p == NULL)
        return RV_ENOMEM;
    b->pend = p;
    b->cap_pend = cap;
    return RV_OK;
}

/* No command pending takes more points (they precede what comes next). */
static void
rvc__close_all(struct rvc_batcher *b)
{
    for (size_t i = 0; i < b->n_pend; i++)
        b->pend[i].is_open = 0;
}

/* ---- Lifecycle ---------------------------------------------------------- */

int
rvc_batcher_open(struct rvc_batcher **out, struct rvc *c, uint64_t client_id,
                 size_t max_points)
{
    struct rvc_batcher *b = calloc(1, sizeof *b);
    if (b == NULL)
        return RV_ENOMEM;
    b->c = c;
    b->client_id = client_id != 0 ? client_id : rv_random_id(b);
    b->max_points = max_points != 0 ? max_points : RVC_BATCH_DEFAULT_POINTS;
    b->per_command = RVC_BATCH_POINTS_PER_COMMAND;
    *out = b;
    return RV_OK;
}

void
rvc_batcher_close(struct rvc_batcher *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n_pend; i++)
        rvc__pending_free(&b->pend[i]);
    free(b->pend);
    free(b);
}

uint64_t
rvc_batcher_client_id(const struct rvc_batcher *b)
{
    return b->client_id;
}

void
rvc_batcher_set_seq(struct rvc_batcher *b, uint64_t seq)
{
    b->seq = seq;
}

void
rvc_batcher_set_points_per_command(struct rvc_batcher *b, size_t n)
{
    if (n == 0)
        n = RVC_BATCH_POINTS_PER_COMMAND;
    b->per_command = n < CONTRACT_MAX_POINTS_PER_COMMAND
                         ? n
                         : CONTRACT_MAX_POINTS_PER_COMMAND;
}

size_t
rvc_batcher_pending(const struct rvc_batcher *b)
{
    return b->n_points + b->n_pend;
}

const struct rvc_batch_stats *
rvc_batcher_stats(const struct rvc_batcher *b)
{
    return &b->stats;
}

const char *
rvc_batcher_errmsg(const struct rvc_batcher *b)
{
    return b->errmsg;
}

/* ---- Points ------------------------------------------------------------- */

/* The open LogBatch of run_id that can take a point of (key, ctx) without
 * passing the per-command bounds, or NULL. */
static struct rvc_pending *
rvc__open_for(struct rvc_batcher *b, const char *run_id, const char *key,
              const char *ctx)
{
    struct rvc_pending *p = NULL;
    if (b->hint < b->n_pend && b->pend[b->hint].is_open &&
        strcmp(b->pend[b->hint].run_id, run_id) == 0)
        p = &b->pend[b->hint];
    for (size_t i = b->n_pend; p == NULL && i > 0; i--) {
        struct rvc_pending *q = &b->pend[i - 1];
        if (q->is_open && strcmp(q->run_id, run_id) == 0) {
            p = q;
            b->hint = i - 1;
        }
    }
    if (p == NULL || p->mb.n >= b->per_command)
        return NULL;
    return proto_metrics_n_series_with(&p->mb, key, ctx) <=
                   CONTRACT_MAX_SERIES_PER_COMMAND
               ? p
               : NULL;
}

static int
rvc__open_new(struct rvc_batcher *b, const char *run_id,
              struct rvc_pending **out)
{
    size_t len = strlen(run_id);
    if (rvc__pending_grow(b) != RV_OK)
        return RV_ENOMEM;
    struct rvc_pending *p = &b->pend[b->n_pend];
    memset(p, 0, sizeof *p);
    p->run_id = malloc(len + 1);
    if (p->run_id == NULL)
        return RV_ENOMEM;
    memcpy(p->run_id, run_id, len + 1);
    proto_metrics_init(&p->mb);
    p->seq = ++b->seq;
    p->is_open = 1;
    p->n_bytes = len + 2 + 8; /* run_id field, the metrics field header. */
    b->n_bytes += p->n_bytes + RVC_BATCH_COMMAND_OVERHEAD;
    b->hint = b->n_pend++;
    *out = p;
    return RV_OK;
}

/* Whether a write holding what is pending plus n_bytes more (and is_cmd
 * one more command) would pass a bound. */
static int
rvc__is_full(const struct rvc_batcher *b, size_t n_bytes, int is_cmd,
             size_t n_points)
{
    if (b->n_pend == 0)
        return 0;
    return b->n_bytes + n_bytes > RVC_BATCH_MAX_WRITE_BYTES ||
           (is_cmd && b->n_pend + 1 > CONTRACT_MAX_COMMANDS_PER_BATCH) ||
           b->n_points + n_points > b->max_points;
}

int
rvc_batcher_point(struct rvc_batcher *b, const char *run_id, const char *key,
                  const char *context, int64_t step, int64_t ts_ms,
                  double value)
{
    const char *ctx = context != NULL ? context : "";
    size_t rn = strlen(run_id), kn = strlen(key), cn = strlen(ctx);
    b->errmsg[0] = '\0';
    if (rn == 0 || rn > CONTRACT_MAX_RUN_ID_BYTES || kn == 0 ||
        kn > CONTRACT_MAX_KEY_BYTES || cn > CONTRACT_MAX_CONTEXT_BYTES) {
        rv_errmsg_printf(b->errmsg,
                         "point of run '%.64s' key '%.64s': run_id 1..%d, "
                         "key 1..%d, context 0..%d bytes",
                         run_id, key, CONTRACT_MAX_RUN_ID_BYTES,
                         CONTRACT_MAX_KEY_BYTES, CONTRACT_MAX_CONTEXT_BYTES);
        return RV_EINVAL;
    }
    struct rvc_pending *p = rvc__open_for(b, run_id, key, ctx);
    /* Worst case: a new command with a new key and context. */
    size_t worst = RVC_BATCH_COMMAND_OVERHEAD + rn + 10 +
                   proto_metrics_point_bytes_max(kn, cn, step, ts_ms);
    if (rvc__is_full(b, worst, p == NULL, 1)) {
        int rc = rvc_batcher_flush(b);
        if (rc != RV_OK)
            return rc;
        p = NULL;
    }
    if (p == NULL && rvc__open_new(b, run_id, &p) != RV_OK)
        return RV_ENOMEM;
    size_t add;
    if (proto_metrics_add(&p->mb, key, ctx, step, ts_ms, value, &add) != RV_OK)
        return RV_ENOMEM;
    p->n_bytes += add;
    b->n_bytes += add;
    b->n_points++;
    b->stats.n_pending = b->n_points;
    return RV_OK;
}

/* ---- Commands ----------------------------------------------------------- */

int
rvc_batcher_command(struct rvc_batcher *b, const Rv__Command *cmd)
{
    Rv__Command tmp = *cmd;
    b->errmsg[0] = '\0';
    tmp.has_client_id = 1;
    tmp.client_id = b->client_id;
    tmp.has_seq = 1;
    tmp.seq = b->seq + 1;
    size_t n = rv__command__get_packed_size(&tmp);
    if (rvc__is_full(b, n + RVC_BATCH_COMMAND_OVERHEAD, 1, 0)) {
        int rc = rvc_batcher_flush(b);
        if (rc != RV_OK)
            return rc;
    }
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL || rvc__pending_grow(b) != RV_OK) {
        free(buf);
        return RV_ENOMEM;
    }
    rv__command__pack(&tmp, buf);
    Rv__Command *copy = rv__command__unpack(NULL, n, buf);
    free(buf);
    if (copy == NULL)
        return RV_ENOMEM;
    rvc__close_all(b);
    struct rvc_pending *p = &b->pend[b->n_pend++];
    memset(p, 0, sizeof *p);
    p->seq = ++b->seq;
    p->cmd = copy;
    p->n_bytes = n;
    b->n_bytes += n + RVC_BATCH_COMMAND_OVERHEAD;
    return RV_OK;
}

/* ---- Flush -------------------------------------------------------------- */

/* The LogBatch of p, pointing into p's builder. */
static void
rvc__metrics_view(struct rvc_pending *p, Rv__LogBatch *lb, Rv__Metrics *m)
{
    rv__log_batch__init(lb);
    lb->run_id = p->run_id;
    lb->metrics = m;
    proto_metrics_view(&p->mb, m);
}

static int
rvc__is_no_outcome(int code)
{
    return code == RV_ENOTLEADER || code == RV_EUNAVAILABLE ||
           code == RV_EUNKNOWN || code == RV_ETIMEDOUT;
}

static const char *
rvc__pending_kind(const struct rvc_pending *p)
{
    return p->cmd != NULL ? proto_command_name(p->cmd) : "log_batch";
}

/* Count the answer to a write of pend[0, n) and drop those commands. */
static int
rvc__account(struct rvc_batcher *b, const Rv__Response *resp, size_t n)
{
    int first_rc = RV_OK;
    b->stats.n_writes++;
    if (resp->has_index)
        b->stats.last_index = resp->index;
    for (size_t i = 0; i < n; i++) {
        const struct rvc_pending *p = &b->pend[i];
        int code = (int)resp->code;
        int is_dup = 0;
        const char *msg = resp->message;
        if (i < resp->n_results) {
            code = (int)resp->results[i]->code;
            is_dup = resp->results[i]->has_is_duplicate &&
                     resp->results[i]->is_duplicate;
            msg = resp->results[i]->message;
        } else if (code == RV_OK) {
            code = RV_EMALFORMED;
            msg = "the answer lacks this command's result";
        }
        if (code == RV_OK || is_dup) {
            b->stats.n_commands++;
            b->stats.n_duplicates += is_dup ? 1 : 0;
            b->stats.n_points += p->cmd == NULL ? p->mb.n : 0;
            continue;
        }
        b->stats.n_failed++;
        if (first_rc != RV_OK)
            continue;
        first_rc = code;
        b->stats.failed_seq = p->seq;
        rv_errmsg_printf(b->errmsg,
                         "write %llu: command seq %llu (%s of run '%.64s'%s): "
                         "%s: %s",
                         (unsigned long long)b->stats.n_writes,
                         (unsigned long long)p->seq, rvc__pending_kind(p),
                         p->cmd != NULL ? rvc__cmd_run_id(p->cmd) : p->run_id,
                         p->cmd == NULL ? ", metric points" : "",
                         rv_errname(code),
                         msg != NULL && msg[0] ? msg : rv_strerror(code));
    }
    if (first_rc != RV_OK) {
        b->stats.failed_write = b->stats.n_writes;
        b->stats.failed_code = first_rc;
    }
    rvc__pending_drop(b, n);
    b->stats.n_pending = b->n_points;
    return first_rc;
}

int
rvc_batcher_flush(struct rvc_batcher *b)
{
    size_t n = b->n_pend;
    if (n == 0)
        return RV_OK;
    Rv__Command *cmds = calloc(n, sizeof *cmds);
    Rv__Command **ptrs = calloc(n, sizeof *ptrs);
    Rv__LogBatch *lbs = calloc(n, sizeof *lbs);
    Rv__Metrics *ms = calloc(n, sizeof *ms);
    int rc = cmds && ptrs && lbs && ms ? RV_OK : RV_ENOMEM;
    rvc__close_all(b); /* What is sent never changes again. */
    for (size_t i = 0; rc == RV_OK && i < n; i++) {
        struct rvc_pending *p = &b->pend[i];
        if (p->cmd != NULL) {
            ptrs[i] = p->cmd;
            continue;
        }
        rv__command__init(&cmds[i]);
        cmds[i].has_client_id = cmds[i].has_seq = 1;
        cmds[i].client_id = b->client_id;
        cmds[i].seq = p->seq;
        rvc__metrics_view(p, &lbs[i], &ms[i]);
        cmds[i].body_case = RV__COMMAND__BODY_LOG_BATCH;
        cmds[i].log_batch = &lbs[i];
        ptrs[i] = &cmds[i];
    }
    Rv__Response *resp = NULL;
    char errmsg[RV_ERRMSG_SIZE] = "";
    if (rc == RV_OK) {
        Rv__Request req = RV__REQUEST__INIT;
        Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
        wr.n_commands = n;
        wr.commands = ptrs;
        req.body_case = RV__REQUEST__BODY_WRITE;
        req.write = &wr;
        rc = rvc_call(b->c, &req, &resp, errmsg);
    }
    uint64_t first = b->pend[0].seq, last = b->pend[n - 1].seq;
    if (rc == RV_OK && rvc__is_no_outcome((int)resp->code)) {
        rc = (int)resp->code;
        snprintf(errmsg, sizeof errmsg, "%s",
                 resp->message ? resp->message : rv_strerror(rc));
    }
    if (rc == RV_OK) {
        rc = rvc__account(b, resp, n);
    } else {
        /* No outcome: everything stays for the next flush, same keys. */
        b->stats.failed_write = b->stats.n_writes + 1;
        b->stats.failed_seq = 0;
        b->stats.failed_code = rc;
        rv_errmsg_printf(b->errmsg,
                         "write %llu (commands seq %llu..%llu, %zu points) "
                         "has no outcome: %s: %s",
                         (unsigned long long)b->stats.failed_write,
                         (unsigned long long)first, (unsigned long long)last,
                         b->n_points, rv_errname(rc), errmsg);
    }
    rvc_response_free(resp);
    free(cmds);
    free(ptrs);
    free(lbs);
    free(ms);
    return rc;
}
