/* The native RPC server (contract in server.h). */
#include "rpc/server.h"

#include "base/clock.h"
#include "rpc/client.h"

#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a response points to, freed after it is packed. */
struct rpc_reply {
    Rv__Response resp;
    char message[RV_ERRMSG_SIZE];
    char leader_rpc[STORE_MAX_ADDR_BYTES + 1];
    Rv__CommandResult *results;
    Rv__CommandResult **result_ptrs;
    struct store_run run;
    int has_run;
    Rv__RunInfo run_info, *run_infos, **run_info_ptrs;
    Rv__KV *kvs, **kv_ptrs;
    Rv__Summary *sums, **sum_ptrs;
    struct store_page page;
    int has_page;
    struct store_point *points;
    Rv__NodeStatus self, *nodes, **node_ptrs;
    char digest_hex[2 * STORE_DIGEST_BYTES + 1];
    struct store_node *known;
    size_t n_known;
    struct store_result *op_results; /* Strings of results point here. */
    struct replica_member *members;  /* Strings of nodes point here. */
    struct rv_buf records;
    struct store_log_line *lines;
    size_t n_lines;
    Rv__LogLineOut *line_outs, **line_ptrs;
    struct store_count *counts;
    size_t n_counts;
    Rv__Count *count_outs, **count_ptrs;
    struct store_artifact *arts;
    size_t n_arts;
    Rv__ArtifactInfo *art_outs, **art_ptrs;
    struct rv_buf data;
};

/* A thread's state for answering requests: the wait for the loop, the
 * packed commands of a write, the connection to the leader for forwarding,
 * and the last answer. */
struct rpc_caller {
    struct rpc_server *s;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int is_done;
    struct rv_buf packed;
    int is_forwarding; /* In-process callers forward; native workers
                          answer RV_ENOTLEADER with the leader's address. */
    struct rvc *fwd;   /* To the leader; NULL until a first forward. */
    char fwd_addr[STORE_MAX_ADDR_BYTES + 1];
    struct rpc_reply rp;
    int has_rp;
    Rv__Response *fwd_resp; /* The leader's answer, when forwarded. */
};

struct rpc_worker {
    struct rpc_caller c;
    nng_ctx ctx;
    nng_aio *aio;
    pthread_t thread;
    int is_started;
};

struct rpc_server {
    nng_socket sock;
    struct replica *rep;
    const struct rv_log *log;
    struct rpc_worker *workers;
    unsigned n_workers;
    char addr[STORE_MAX_ADDR_BYTES + 1]; /* Ours: never a forwarding hop. */
    _Atomic uint64_t n_requests, n_forwarded, n_forward_failed;
};

uint64_t
rpc_server_requests(const struct rpc_server *s)
{
    return atomic_load(&s->n_requests);
}

void
rpc_server_counters(const struct rpc_server *s, struct rpc_counters *out)
{
    out->n_requests = atomic_load(&s->n_requests);
    out->n_forwarded = atomic_load(&s->n_forwarded);
    out->n_forward_failed = atomic_load(&s->n_forward_failed);
}

struct replica *
rpc_server_replica(const struct rpc_server *s)
{
    return s->rep;
}

static void
rpc__fail(struct rpc_reply *rp, int code, const char *msg)
{
    rp->resp.code = (uint32_t)code;
    snprintf(rp->message, sizeof rp->message, "%s",
             msg != NULL && msg[0] != '\0' ? msg : rv_strerror(code));
    rp->resp.message = rp->message;
}

/* The members' addresses recorded in the store. */
static void
rpc__load_known(struct rpc_server *s, struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE];
    struct store_read *rd;
    if (rp->known != NULL ||
        store_read_begin(replica_store(s->rep), &rd, errmsg) != RV_OK)
        return;
    if (store_nodes_list(rd, &rp->known, &rp->n_known, errmsg) != RV_OK) {
        rp->known = NULL;
        rp->n_known = 0;
    }
    store_read_end(rd);
}

static const struct store_node *
rpc__known(struct rpc_reply *rp, uint64_t id)
{
    for (size_t i = 0; i < rp->n_known; i++)
        if (rp->known[i].id == id)
            return &rp->known[i];
    return NULL;
}

static void
rpc__not_leader(struct rpc_server *s, struct rpc_reply *rp)
{
    struct replica_info info;
    replica_info(s->rep, &info);
    rpc__fail(rp, RV_ENOTLEADER, NULL);
    if (info.leader_id == 0 || info.leader_id == info.id)
        return;
    rp->resp.has_leader_id = 1;
    rp->resp.leader_id = info.leader_id;
    rpc__load_known(s, rp);
    const struct store_node *n = rpc__known(rp, info.leader_id);
    if (n != NULL && n->rpc_addr[0] != '\0') {
        snprintf(rp->leader_rpc, sizeof rp->leader_rpc, "%s", n->rpc_addr);
        rp->resp.leader_rpc = rp->leader_rpc;
    }
}

/* ---- Handing ops to the replica and waiting ------------------------------ */

static void
rpc__op_done(struct replica_op *op)
{
    struct rpc_caller *w = op->data;
    pthread_mutex_lock(&w->lock);
    w->is_done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void
rpc__run_op(struct rpc_caller *w, struct replica_op *op)
{
    op->done = rpc__op_done;
    op->data = w;
    w->is_done = 0;
    replica_submit(w->s->rep, op);
    pthread_mutex_lock(&w->lock);
    while (!w->is_done)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

/* ---- Writes ----------------------------------------------------------------
 */

/* The leader stamps the times a command leaves to it (apply never reads a
 * clock). */
static void
rpc__stamp(Rv__Command *cmd, int64_t now)
{
    if (cmd->body_case == RV__COMMAND__BODY_RUN_CREATE &&
        cmd->run_create->created_at_ms == 0)
        cmd->run_create->created_at_ms = now;
    if (cmd->body_case == RV__COMMAND__BODY_RUN_STATUS &&
        !cmd->run_status->has_ended_at_ms &&
        cmd->run_status->status != RV__RUN_STATUS__RUNNING &&
        cmd->run_status->status != RV__RUN_STATUS__SCHEDULED) {
        cmd->run_status->has_ended_at_ms = 1;
        cmd->run_status->ended_at_ms = now;
    }
}

/* The run a command names, or NULL for commands without one. */
static const char *
rpc__command_run_id(const Rv__Command *c)
{
    switch (c->body_case) {
    case RV__COMMAND__BODY_RUN_CREATE:
        return c->run_create->run_id;
    case RV__COMMAND__BODY_RUN_UPDATE:
        return c->run_update->run_id;
    case RV__COMMAND__BODY_RUN_STATUS:
        return c->run_status->run_id;
    case RV__COMMAND__BODY_LOG_BATCH:
        return c->log_batch->run_id;
    case RV__COMMAND__BODY_LOG_LINES:
        return c->log_lines->run_id;
    case RV__COMMAND__BODY_ARTIFACT_CHUNK:
        return c->artifact_chunk->run_id;
    case RV__COMMAND__BODY_RUN_DELETE:
        return c->run_delete->run_id;
    case RV__COMMAND__BODY_RUN_RESTORE:
        return c->run_restore->run_id;
    case RV__COMMAND__BODY_RUN_PURGE:
        return c->run_purge->run_id;
    default:
        return NULL;
    }
}

/* Checks at the door for native writes; apply checks everything again. */
static int
rpc__write_check(const Rv__WriteRequest *wr, char *errmsg)
{
    for (size_t i = 0; i < wr->n_commands; i++) {
        const Rv__Command *c = wr->commands[i];
        if (c->body_case == RV__COMMAND__BODY__NOT_SET) {
            rv_errmsg_printf(errmsg, "command %zu has no body", i);
            return RV_EINVAL;
        }
        const char *id = rpc__command_run_id(c);
        if (id != NULL && !store_run_id_valid(id, strlen(id))) {
            rv_errmsg_printf(errmsg, "command %zu: invalid run_id '%.64s'", i,
                             id);
            return RV_EINVAL;
        }
    }
    return RV_OK;
}

/* The checks of a write before the leader is asked (rpc_request_check). */
static int
rpc__write_request_check(const Rv__WriteRequest *wr, char *errmsg)
{
    if (wr->n_commands == 0 || wr->n_commands > STORE_MAX_COMMANDS_PER_BATCH) {
        rv_errmsg_printf(errmsg, "a write carries 1 to %d commands",
                         STORE_MAX_COMMANDS_PER_BATCH);
        return RV_EINVAL;
    }
    if (wr->has_durability &&
        (wr->durability < RV__DURABILITY__DURABILITY_DEFAULT ||
         wr->durability > RV__DURABILITY__STRICT)) {
        rv_errmsg_printf(errmsg, "unknown durability");
        return RV_EINVAL;
    }
    return rpc__write_check(wr, errmsg);
}

int
rpc_write_prepare(Rv__WriteRequest *wr, int64_t now_ms, struct rv_buf *packed,
                  char *errmsg)
{
    for (size_t i = 0; i < wr->n_commands; i++)
        rpc__stamp(wr->commands[i], now_ms);
    rv_buf_reset(packed);
    return replica_pack_commands(wr->commands, wr->n_commands, packed, errmsg);
}

/* A write that passed rpc_request_check. */
static void
rpc__write(struct rpc_caller *w, Rv__WriteRequest *wr, struct rpc_reply *rp)
{
    struct replica_op op;
    struct replica_info info;
    char errmsg[RV_ERRMSG_SIZE];
    replica_info(w->s->rep, &info);
    if (info.state != RAFT_LEADER) {
        rpc__not_leader(w->s, rp);
        return;
    }
    int rc =
        rpc_write_prepare(wr, (int64_t)rv_clock_wall_ms(), &w->packed, errmsg);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, errmsg);
        return;
    }
    memset(&op, 0, sizeof op);
    op.kind = REPLICA_OP_WRITE;
    op.packed = w->packed.data;
    op.packed_len = w->packed.len;
    op.n_commands = wr->n_commands;
    op.durability = wr->has_durability ? (int)wr->durability : 0;
    rpc__run_op(w, &op);
    if (op.code == RV_ENOTLEADER) {
        rpc__not_leader(w->s, rp);
        return;
    }
    rp->resp.code = (uint32_t)op.code;
    if (op.code != RV_OK)
        rpc__fail(rp, op.code, op.message);
    rp->resp.has_index = op.index != 0;
    rp->resp.index = op.index;
    if (op.n_results > 0) {
        rp->results = calloc(op.n_results, sizeof *rp->results);
        rp->result_ptrs = calloc(op.n_results, sizeof *rp->result_ptrs);
        if (rp->results == NULL || rp->result_ptrs == NULL) {
            replica_op_clean(&op);
            rpc__fail(rp, RV_ENOMEM, NULL);
            return;
        }
        /* The strings live in op.results until the reply is packed. */
        for (size_t i = 0; i < op.n_results; i++) {
            Rv__CommandResult *cr = &rp->results[i];
            const struct store_result *sr = &op.results[i];
            rv__command_result__init(cr);
            cr->code = (uint32_t)sr->code;
            cr->message = sr->code != RV_OK ? (char *)sr->message : NULL;
            cr->run_id = sr->run_id[0] ? (char *)sr->run_id : NULL;
            cr->has_is_duplicate = sr->is_duplicate;
            cr->is_duplicate = sr->is_duplicate;
            cr->has_is_resumed = sr->is_resumed;
            cr->is_resumed = sr->is_resumed;
            rp->result_ptrs[i] = cr;
        }
        rp->resp.n_results = op.n_results;
        rp->resp.results = rp->result_ptrs;
        rp->op_results = op.results; /* Freed with the reply. */
    }
}

/* ---- Reads -----------------------------------------------------------------
 */

/* Whether this node may answer a read now; fills rp with the error if not.
 * The consistency is known to be valid (rpc_request_check). */
static int
rpc__read_gate(struct rpc_caller *w, const Rv__Request *req,
               struct rpc_reply *rp)
{
    struct replica_info info;
    int consistency = RV__CONSISTENCY__LEADER;
    uint64_t min_index = 0;
    char msg[RV_ERRMSG_SIZE];
    if (req->read != NULL) {
        if (req->read->has_consistency &&
            req->read->consistency != RV__CONSISTENCY__CONSISTENCY_DEFAULT)
            consistency = req->read->consistency;
        if (req->read->has_min_index)
            min_index = req->read->min_index;
    }
    if (min_index > 0) {
        int rc =
            replica_wait_applied(w->s->rep, min_index, RPC_MIN_INDEX_WAIT_MS);
        if (rc != RV_OK) {
            snprintf(msg, sizeof msg,
                     "index %llu is not applied on this node after %d ms",
                     (unsigned long long)min_index, RPC_MIN_INDEX_WAIT_MS);
            rpc__fail(rp, rc, msg);
            return -1;
        }
    }
    if (consistency == RV__CONSISTENCY__STALE)
        return 0;
    replica_info(w->s->rep, &info);
    if (info.state != RAFT_LEADER || !info.is_serving) {
        rpc__not_leader(w->s, rp);
        return -1;
    }
    if (consistency == RV__CONSISTENCY__LEADER)
        return 0;
    struct replica_op op;
    memset(&op, 0, sizeof op);
    op.kind = REPLICA_OP_BARRIER;
    rpc__run_op(w, &op);
    if (op.code == RV_ENOTLEADER) {
        rpc__not_leader(w->s, rp);
        return -1;
    }
    if (op.code != RV_OK) {
        rpc__fail(rp, op.code, op.message);
        return -1;
    }
    /* The barrier applied on this node: every entry before it is in the
     * store (its own index is raft's only; the store counts commands). */
    return 0;
}

static int
rpc__kvs(struct rpc_reply *rp, const struct store_run *run)
{
    size_t n = run->n_params + run->n_tags;
    rp->kvs = calloc(n ? n : 1, sizeof *rp->kvs);
    rp->kv_ptrs = calloc(n ? n : 1, sizeof *rp->kv_ptrs);
    if (rp->kvs == NULL || rp->kv_ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct store_kv *kv =
            i < run->n_params ? &run->params[i] : &run->tags[i - run->n_params];
        rv__kv__init(&rp->kvs[i]);
        rp->kvs[i].key = kv->key;
        rp->kvs[i].value = kv->value;
        rp->kv_ptrs[i] = &rp->kvs[i];
    }
    rp->run_info.n_params = run->n_params;
    rp->run_info.params = rp->kv_ptrs;
    rp->run_info.n_tags = run->n_tags;
    rp->run_info.tags = rp->kv_ptrs + run->n_params;
    return RV_OK;
}

static void
rpc__run_info(Rv__RunInfo *ri, const struct store_run *run)
{
    rv__run_info__init(ri);
    ri->run_id = run->run_id;
    ri->team = run->team;
    ri->project = run->project;
    ri->experiment = run->experiment;
    ri->name = run->name;
    ri->has_status = 1;
    ri->status = (Rv__RunStatus)run->status;
    ri->has_created_at_ms = 1;
    ri->created_at_ms = run->created_at_ms;
    ri->has_ended_at_ms = run->ended_at_ms != 0;
    ri->ended_at_ms = run->ended_at_ms;
    ri->has_n_points = 1;
    ri->n_points = run->n_points;
    ri->user = run->user;
    ri->has_n_log_lines = 1;
    ri->n_log_lines = run->n_log_lines;
    ri->has_is_deleted = run->lifecycle == STORE_DELETED;
    ri->is_deleted = run->lifecycle == STORE_DELETED;
}

static int
rpc__summaries(struct rpc_reply *rp, const struct store_run *run)
{
    size_t n = run->n_summary;
    rp->sums = calloc(n ? n : 1, sizeof *rp->sums);
    rp->sum_ptrs = calloc(n ? n : 1, sizeof *rp->sum_ptrs);
    if (rp->sums == NULL || rp->sum_ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct store_summary *m = &run->summary[i];
        Rv__Summary *o = &rp->sums[i];
        rv__summary__init(o);
        o->key = m->key;
        o->context = m->context;
        o->has_last = o->has_min = o->has_max = o->has_count = 1;
        o->last = m->last;
        o->min = m->min;
        o->max = m->max;
        o->count = m->count;
        o->has_last_step = o->has_last_timestamp_ms = 1;
        o->last_step = m->last_step;
        o->last_timestamp_ms = m->last_timestamp_ms;
        rp->sum_ptrs[i] = o;
    }
    rp->run_info.n_summary = n;
    rp->run_info.summary = rp->sum_ptrs;
    return RV_OK;
}

static void
rpc__logs(struct store_read *rd, const Rv__LogsRequest *l, struct rpc_reply *rp,
          int *rc, char *errmsg)
{
    uint64_t next = 0;
    size_t max = l->has_max_lines && l->max_lines > 0 ? l->max_lines
                                                      : RPC_DEFAULT_LOG_LINES;
    if (max > STORE_MAX_LOG_LINES_READ) {
        *rc = RV_EINVAL;
        rv_errmsg_printf(errmsg, "max_lines must be 1 to %d",
                         STORE_MAX_LOG_LINES_READ);
        return;
    }
    *rc = store_log_lines(rd, l->run_id, l->has_from_line ? l->from_line : 0,
                          max, &rp->lines, &rp->n_lines, &next, errmsg);
    if (*rc != RV_OK)
        return;
    size_t n = rp->n_lines;
    rp->line_outs = calloc(n ? n : 1, sizeof *rp->line_outs);
    rp->line_ptrs = calloc(n ? n : 1, sizeof *rp->line_ptrs);
    if (rp->line_outs == NULL || rp->line_ptrs == NULL) {
        *rc = RV_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        Rv__LogLineOut *o = &rp->line_outs[i];
        rv__log_line_out__init(o);
        o->line_no = rp->lines[i].line_no;
        o->timestamp_ms = rp->lines[i].timestamp_ms;
        o->has_stream = 1;
        o->stream = (Rv__Stream)rp->lines[i].stream;
        o->text = rp->lines[i].text;
        rp->line_ptrs[i] = o;
    }
    rp->resp.n_lines = n;
    rp->resp.lines = rp->line_ptrs;
    rp->resp.has_next_line = 1;
    rp->resp.next_line = next;
}

static void
rpc__analytics(struct store_read *rd, const Rv__AnalyticsRequest *a,
               struct rpc_reply *rp, int *rc, char *errmsg)
{
    enum store_group g = STORE_GROUP_STATUS;
    if (a->has_group && a->group == RV__GROUP__GROUP_PROJECT)
        g = STORE_GROUP_PROJECT;
    else if (a->has_group && a->group == RV__GROUP__GROUP_DAY)
        g = STORE_GROUP_DAY;
    else if (a->has_group && a->group != RV__GROUP__GROUP_STATUS) {
        *rc = RV_EINVAL;
        rv_errmsg_printf(errmsg, "unknown analytics group");
        return;
    }
    *rc = store_analytics(rd, g, a->team, a->project, &rp->counts,
                          &rp->n_counts, errmsg);
    if (*rc != RV_OK)
        return;
    size_t n = rp->n_counts;
    rp->count_outs = calloc(n ? n : 1, sizeof *rp->count_outs);
    rp->count_ptrs = calloc(n ? n : 1, sizeof *rp->count_ptrs);
    if (rp->count_outs == NULL || rp->count_ptrs == NULL) {
        *rc = RV_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rv__count__init(&rp->count_outs[i]);
        rp->count_outs[i].label = rp->counts[i].label;
        rp->count_outs[i].n = rp->counts[i].n;
        rp->count_ptrs[i] = &rp->count_outs[i];
    }
    rp->resp.n_counts = n;
    rp->resp.counts = rp->count_ptrs;
}

static void
rpc__artifact(struct store_read *rd, const Rv__ArtifactRequest *a,
              struct rpc_reply *rp, int *rc, char *errmsg)
{
    if (a->path == NULL || a->path[0] == '\0') {
        *rc =
            store_artifacts_list(rd, a->run_id, &rp->arts, &rp->n_arts, errmsg);
    } else {
        rp->arts = calloc(1, sizeof *rp->arts);
        if (rp->arts == NULL) {
            *rc = RV_ENOMEM;
            return;
        }
        *rc = store_artifact_get(rd, a->run_id, a->path, rp->arts, errmsg);
        if (*rc == RV_OK)
            rp->n_arts = 1;
        if (*rc == RV_OK && a->has_max_bytes && a->max_bytes > 0) {
            uint64_t off = a->has_offset ? a->offset : 0;
            size_t want = a->max_bytes < RPC_MAX_ARTIFACT_READ
                              ? a->max_bytes
                              : RPC_MAX_ARTIFACT_READ;
            if (off > rp->arts->size) {
                *rc = RV_EINVAL;
                rv_errmsg_printf(errmsg, "offset %llu is past the end (%llu)",
                                 (unsigned long long)off,
                                 (unsigned long long)rp->arts->size);
                return;
            }
            if (off < rp->arts->size)
                *rc = store_artifact_read(rd, a->run_id, a->path, off, want,
                                          &rp->data, errmsg);
            rp->resp.has_data = 1;
            rp->resp.data.data = rp->data.data;
            rp->resp.data.len = rp->data.len;
        }
    }
    if (*rc != RV_OK)
        return;
    size_t n = rp->n_arts;
    rp->art_outs = calloc(n ? n : 1, sizeof *rp->art_outs);
    rp->art_ptrs = calloc(n ? n : 1, sizeof *rp->art_ptrs);
    if (rp->art_outs == NULL || rp->art_ptrs == NULL) {
        *rc = RV_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        Rv__ArtifactInfo *o = &rp->art_outs[i];
        rv__artifact_info__init(o);
        o->path = rp->arts[i].path;
        o->content_type = rp->arts[i].content_type;
        o->has_size = o->has_sha256 = o->has_is_complete = 1;
        o->size = rp->arts[i].size;
        o->sha256.data = rp->arts[i].sha256;
        o->sha256.len = sizeof rp->arts[i].sha256;
        o->is_complete = rp->arts[i].is_complete != 0;
        rp->art_ptrs[i] = o;
    }
    rp->resp.n_artifacts = n;
    rp->resp.artifacts = rp->art_ptrs;
}

/* Answer a read this node may serve (the gate passed) from st. */
static void
rpc__read_store(struct store *st, const Rv__Request *req, struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    struct store_read *rd;
    int rc = store_read_begin(st, &rd, errmsg);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, errmsg);
        return;
    }
    rp->resp.has_applied_index = 1;
    rp->resp.applied_index = store_read_applied_index(rd);
    if (req->body_case == RV__REQUEST__BODY_GET_RUN) {
        rc = store_run_get(rd, req->get_run->run_id, 1, &rp->run, errmsg);
        if (rc == RV_OK) {
            rp->has_run = 1;
            rpc__run_info(&rp->run_info, &rp->run);
            rc = rpc__kvs(rp, &rp->run);
            if (rc == RV_OK)
                rc = rpc__summaries(rp, &rp->run);
            rp->resp.run = &rp->run_info;
        }
    } else if (req->body_case == RV__REQUEST__BODY_LIST_RUNS) {
        const Rv__ListRunsRequest *l = req->list_runs;
        struct store_query q;
        memset(&q, 0, sizeof q);
        q.team = l->team;
        q.project = l->project;
        q.experiment = l->experiment;
        q.filter = l->filter;
        q.order_by = l->order_by;
        q.per_page = l->has_per_page ? l->per_page : 0;
        if (l->has_per_page &&
            (l->per_page == 0 || l->per_page > STORE_MAX_PER_PAGE)) {
            rc = RV_EINVAL;
            snprintf(errmsg, sizeof errmsg, "per_page must be 1 to %d",
                     STORE_MAX_PER_PAGE);
        } else {
            q.page_token = l->page_token;
            rc = store_query_runs(rd, &q, &rp->page, errmsg);
        }
        if (rc == RV_OK) {
            rp->has_page = 1;
            size_t n = rp->page.n_runs;
            rp->run_infos = calloc(n ? n : 1, sizeof *rp->run_infos);
            rp->run_info_ptrs = calloc(n ? n : 1, sizeof *rp->run_info_ptrs);
            if (rp->run_infos == NULL || rp->run_info_ptrs == NULL) {
                rc = RV_ENOMEM;
            } else {
                for (size_t i = 0; i < n; i++) {
                    rpc__run_info(&rp->run_infos[i], &rp->page.runs[i]);
                    rp->run_info_ptrs[i] = &rp->run_infos[i];
                }
                rp->resp.n_runs = n;
                rp->resp.runs = rp->run_info_ptrs;
                rp->resp.next_page_token = rp->page.next_page_token;
                rp->resp.has_total = rp->page.has_total != 0;
                rp->resp.total = rp->page.total;
                rp->resp.has_n_examined = 1;
                rp->resp.n_examined = rp->page.n_examined;
            }
        }
    } else if (req->body_case == RV__REQUEST__BODY_LOGS) {
        rpc__logs(rd, req->logs, rp, &rc, errmsg);
    } else if (req->body_case == RV__REQUEST__BODY_ANALYTICS) {
        rpc__analytics(rd, req->analytics, rp, &rc, errmsg);
    } else if (req->body_case == RV__REQUEST__BODY_ARTIFACT) {
        rpc__artifact(rd, req->artifact, rp, &rc, errmsg);
    } else { /* HISTORY */
        const Rv__HistoryRequest *h = req->history;
        struct store_history_query q;
        size_t n = 0;
        memset(&q, 0, sizeof q);
        q.run_id = h->run_id;
        q.key = h->key;
        q.context = h->context;
        q.min_step = h->has_min_step ? h->min_step : INT64_MIN;
        q.max_step = h->has_max_step ? h->max_step : INT64_MAX;
        q.downsample = h->has_downsample ? h->downsample : 0;
        rc = store_metric_history(rd, &q, &rp->points, &n, errmsg);
        if (rc == RV_OK) {
            int64_t *steps = malloc((n ? n : 1) * sizeof *steps);
            int64_t *ts = malloc((n ? n : 1) * sizeof *ts);
            double *vals = malloc((n ? n : 1) * sizeof *vals);
            if (steps == NULL || ts == NULL || vals == NULL) {
                free(steps);
                free(ts);
                free(vals);
                rc = RV_ENOMEM;
            } else {
                for (size_t i = 0; i < n; i++) {
                    steps[i] = rp->points[i].step;
                    ts[i] = rp->points[i].timestamp_ms;
                    vals[i] = rp->points[i].value;
                }
                rp->resp.n_steps = rp->resp.n_timestamps_ms = n;
                rp->resp.n_values = n;
                rp->resp.steps = steps;
                rp->resp.timestamps_ms = ts;
                rp->resp.values = vals;
            }
        }
    }
    store_read_end(rd);
    if (rc != RV_OK)
        rpc__fail(rp, rc, errmsg);
}

static void
rpc__read(struct rpc_caller *w, const Rv__Request *req, struct rpc_reply *rp)
{
    if (rpc__read_gate(w, req, rp) != 0)
        return;
    rpc__read_store(replica_store(w->s->rep), req, rp);
}

/* ---- Status, cluster, fetch -----------------------------------------------
 */

static void
rpc__node_status(Rv__NodeStatus *ns, const struct replica_member *m,
                 const struct store_node *known)
{
    rv__node_status__init(ns);
    ns->id = m->id;
    ns->raft_addr = (char *)m->raft_addr;
    if (known != NULL) {
        ns->rpc_addr = (char *)known->rpc_addr;
        ns->http_addr = (char *)known->http_addr;
    }
    ns->role = (char *)replica_role_name(m->role);
}

static void
rpc__status(struct rpc_caller *w, struct rpc_reply *rp)
{
    struct replica_info info;
    struct store_read *rd;
    char errmsg[RV_ERRMSG_SIZE];
    uint8_t digest[STORE_DIGEST_BYTES];
    replica_info(w->s->rep, &info);
    rpc__load_known(w->s, rp);
    Rv__NodeStatus *ns = &rp->self;
    struct replica_member me = {info.id, "", -1};
    for (size_t i = 0; i < info.n_members; i++)
        if (info.members[i].id == info.id)
            me = info.members[i];
    rpc__node_status(ns, &me, rpc__known(rp, info.id));
    if (me.raft_addr[0] == '\0')
        ns->raft_addr = NULL;
    ns->state = (char *)replica_state_name(info.state);
    ns->has_term = 1;
    ns->term = info.term;
    ns->has_last_index = 1;
    ns->last_index = info.last_index;
    ns->has_leader_id = 1;
    ns->leader_id = info.leader_id;
    ns->durability = (char *)replica_durability_name(info.durability);
    ns->has_n_snapshots = 1;
    ns->n_snapshots = info.n_snapshots;
    ns->has_n_catch_ups = 1;
    ns->n_catch_ups = info.n_catch_ups;
    ns->has_n_fetched_records = 1;
    ns->n_fetched_records = info.n_fetched_records;
    if (store_read_begin(replica_store(w->s->rep), &rd, errmsg) == RV_OK) {
        ns->has_applied_index = 1;
        ns->applied_index = store_read_applied_index(rd);
        store_read_digest(rd, digest);
        store_digest_hex(digest, rp->digest_hex);
        ns->digest = rp->digest_hex;
        store_read_end(rd);
    }
    /* The raft address of this node comes from the published members;
     * copy it into the reply, which outlives info. */
    if (ns->raft_addr != NULL) {
        snprintf(rp->leader_rpc, sizeof rp->leader_rpc, "%s", me.raft_addr);
        ns->raft_addr = rp->leader_rpc;
    }
    rp->resp.self = ns;
}

/* The change a cluster request other than CLUSTER_STATUS asks for, into
 * *op; RV_EINVAL with the reason if its arguments are wrong. */
static int
rpc__cluster_op(const Rv__ClusterRequest *cr, struct replica_op *op,
                char *errmsg)
{
    memset(op, 0, sizeof *op);
    op->kind = REPLICA_OP_CHANGE;
    op->node_id = cr->has_id ? cr->id : 0;
    switch (cr->op) {
    case RV__CLUSTER_OP__CLUSTER_ADD: {
        char host[64];
        unsigned port = 0;
        struct in_addr a;
        const char *colon = cr->raft_addr ? strrchr(cr->raft_addr, ':') : NULL;
        size_t hn = colon ? (size_t)(colon - cr->raft_addr) : 0;
        char *end = NULL;
        if (colon != NULL && hn < sizeof host) {
            memcpy(host, cr->raft_addr, hn);
            host[hn] = '\0';
            if (colon[1] >= '0' && colon[1] <= '9')
                port = (unsigned)strtoul(colon + 1, &end, 10);
        }
        if (op->node_id == 0 || colon == NULL || hn >= sizeof host ||
            inet_pton(AF_INET, host, &a) != 1 || end == NULL || *end != '\0' ||
            port == 0 || port > 65535) {
            rv_errmsg_printf(
                errmsg, "add needs an id > 0 and a raft address a.b.c.d:port");
            return RV_EINVAL;
        }
        if ((cr->rpc_addr && strlen(cr->rpc_addr) >= sizeof op->rpc_addr) ||
            (cr->http_addr && strlen(cr->http_addr) >= sizeof op->http_addr)) {
            rv_errmsg_printf(errmsg, "an address is longer than %zu bytes",
                             sizeof op->rpc_addr - 1);
            return RV_EINVAL;
        }
        op->change = REPLICA_ADD;
        snprintf(op->raft_addr, sizeof op->raft_addr, "%s", cr->raft_addr);
        snprintf(op->rpc_addr, sizeof op->rpc_addr, "%s",
                 cr->rpc_addr ? cr->rpc_addr : "");
        snprintf(op->http_addr, sizeof op->http_addr, "%s",
                 cr->http_addr ? cr->http_addr : "");
        return RV_OK;
    }
    case RV__CLUSTER_OP__CLUSTER_REMOVE:
        if (op->node_id == 0) {
            rv_errmsg_printf(errmsg, "remove needs an id");
            return RV_EINVAL;
        }
        op->change = REPLICA_REMOVE;
        return RV_OK;
    case RV__CLUSTER_OP__CLUSTER_TRANSFER:
        op->change = REPLICA_TRANSFER;
        return RV_OK;
    default:
        rv_errmsg_printf(errmsg, "unknown cluster operation");
        return RV_EINVAL;
    }
}

static void
rpc__cluster(struct rpc_caller *w, const Rv__ClusterRequest *cr,
             struct rpc_reply *rp)
{
    struct replica_info info;
    replica_info(w->s->rep, &info);
    if (cr->op == RV__CLUSTER_OP__CLUSTER_STATUS) {
        rpc__load_known(w->s, rp);
        rp->nodes = calloc(REPLICA_MAX_PEERS, sizeof *rp->nodes);
        rp->node_ptrs = calloc(REPLICA_MAX_PEERS, sizeof *rp->node_ptrs);
        if (rp->nodes == NULL || rp->node_ptrs == NULL) {
            rpc__fail(rp, RV_ENOMEM, NULL);
            return;
        }
        /* A copy of the members: the reply's strings point into it. */
        struct replica_member *ms =
            calloc(info.n_members ? info.n_members : 1, sizeof *ms);
        if (ms == NULL) {
            rpc__fail(rp, RV_ENOMEM, NULL);
            return;
        }
        memcpy(ms, info.members, info.n_members * sizeof *ms);
        for (size_t i = 0; i < info.n_members; i++) {
            rpc__node_status(&rp->nodes[i], &ms[i], rpc__known(rp, ms[i].id));
            rp->node_ptrs[i] = &rp->nodes[i];
        }
        rp->resp.n_nodes = info.n_members;
        rp->resp.nodes = rp->node_ptrs;
        rp->resp.has_leader_id = 1;
        rp->resp.leader_id = info.leader_id;
        rp->members = ms; /* Freed with the reply. */
        return;
    }
    struct replica_op op;
    char errmsg[RV_ERRMSG_SIZE];
    int rc = rpc__cluster_op(cr, &op, errmsg);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, errmsg);
        return;
    }
    if (op.change == REPLICA_REMOVE) {
        if (cr->has_is_notice && cr->is_notice) {
            if (op.node_id != info.id || info.state == RAFT_LEADER) {
                rpc__fail(rp, RV_EINVAL, "a removal notice for another node");
                return;
            }
            replica_removed(w->s->rep);
            return;
        }
        rpc__load_known(w->s, rp); /* Its address, before it is deleted. */
    }
    if (info.state != RAFT_LEADER) {
        rpc__not_leader(w->s, rp);
        return;
    }
    rpc__run_op(w, &op);
    if (op.code == RV_ENOTLEADER) {
        rpc__not_leader(w->s, rp);
        return;
    }
    if (op.code != RV_OK) {
        rpc__fail(rp, op.code, op.message);
        return;
    }
    const struct store_node *gone = rpc__known(rp, op.node_id);
    if (op.change == REPLICA_REMOVE && gone != NULL && gone->rpc_addr[0]) {
        /* Raft sends nothing more to a removed node: tell it to stop. */
        Rv__Request nreq = RV__REQUEST__INIT;
        Rv__ClusterRequest ncr = RV__CLUSTER_REQUEST__INIT;
        Rv__Response *nresp = NULL;
        ncr.op = RV__CLUSTER_OP__CLUSTER_REMOVE;
        ncr.has_id = ncr.has_is_notice = ncr.is_notice = 1;
        ncr.id = op.node_id;
        nreq.body_case = RV__REQUEST__BODY_CLUSTER;
        nreq.cluster = &ncr;
        if (rvc_call_once(gone->rpc_addr, &nreq, 1000, &nresp, errmsg) != RV_OK)
            rv_logf(w->s->log, RV_LOG_WARN, "rpc",
                    "removed node %llu was not told: %s",
                    (unsigned long long)op.node_id, errmsg);
        rvc_response_free(nresp);
    }
}

/* A fetch that passed rpc_request_check, from st. */
static void
rpc__fetch(struct store *st, const Rv__FetchRequest *f, struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE];
    uint64_t last = 0;
    size_t max = f->has_max_bytes && f->max_bytes > 0 &&
                         f->max_bytes < RPC_MAX_FETCH_BYTES
                     ? f->max_bytes
                     : RPC_MAX_FETCH_BYTES;
    int rc = store_fetch_records(st, f->from_index,
                                 f->has_to_index ? f->to_index : 0, max,
                                 &rp->records, &last, errmsg);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, errmsg);
        return;
    }
    rp->resp.has_records = 1;
    rp->resp.records.data = rp->records.data;
    rp->resp.records.len = rp->records.len;
    rp->resp.has_index = 1;
    rp->resp.index = last;
}

/* ---- Checks and answers without the replica ------------------------------
 */

int
rpc_request_check(const Rv__Request *req, char *errmsg)
{
    struct replica_op op;
    switch (req->body_case) {
    case RV__REQUEST__BODY_WRITE:
        return rpc__write_request_check(req->write, errmsg);
    case RV__REQUEST__BODY_GET_RUN:
    case RV__REQUEST__BODY_LIST_RUNS:
    case RV__REQUEST__BODY_HISTORY:
    case RV__REQUEST__BODY_LOGS:
    case RV__REQUEST__BODY_ANALYTICS:
    case RV__REQUEST__BODY_ARTIFACT:
        if (req->read != NULL && req->read->has_consistency &&
            (req->read->consistency < RV__CONSISTENCY__CONSISTENCY_DEFAULT ||
             req->read->consistency > RV__CONSISTENCY__LINEARIZABLE)) {
            rv_errmsg_printf(errmsg, "unknown consistency");
            return RV_EINVAL;
        }
        return RV_OK;
    case RV__REQUEST__BODY_STATUS:
        return RV_OK;
    case RV__REQUEST__BODY_CLUSTER:
        if (req->cluster->op == RV__CLUSTER_OP__CLUSTER_STATUS)
            return RV_OK;
        return rpc__cluster_op(req->cluster, &op, errmsg);
    case RV__REQUEST__BODY_FETCH:
        if (req->fetch->from_index == 0) {
            rv_errmsg_printf(errmsg, "from_index starts at 1");
            return RV_EINVAL;
        }
        return RV_OK;
    case RV__REQUEST__BODY__NOT_SET:
    default:
        rv_errmsg_printf(errmsg, "empty request");
        return RV_EINVAL;
    }
}

static void rpc__reply_free(struct rpc_reply *rp);

int
rpc_store_answer(struct store *st, const Rv__Request *req,
                 struct rpc_reply **out)
{
    struct rpc_reply *rp;
    switch (req->body_case) {
    case RV__REQUEST__BODY_GET_RUN:
    case RV__REQUEST__BODY_LIST_RUNS:
    case RV__REQUEST__BODY_HISTORY:
    case RV__REQUEST__BODY_LOGS:
    case RV__REQUEST__BODY_ANALYTICS:
    case RV__REQUEST__BODY_ARTIFACT:
    case RV__REQUEST__BODY_FETCH:
        break;
    default:
        return RV_EINVAL;
    }
    if ((rp = calloc(1, sizeof *rp)) == NULL)
        return RV_ENOMEM;
    rv__response__init(&rp->resp);
    rp->resp.code = RV_OK;
    if (req->body_case == RV__REQUEST__BODY_FETCH)
        rpc__fetch(st, req->fetch, rp);
    else
        rpc__read_store(st, req, rp);
    *out = rp;
    return RV_OK;
}

const Rv__Response *
rpc_reply_response(const struct rpc_reply *rp)
{
    return &rp->resp;
}

void
rpc_reply_free(struct rpc_reply *rp)
{
    if (rp == NULL)
        return;
    rpc__reply_free(rp);
    free(rp);
}

/* ---- Answering, forwarding, the worker loop ------------------------------
 */

static void
rpc__reply_free(struct rpc_reply *rp)
{
    free(rp->results);
    free(rp->result_ptrs);
    free(rp->op_results);
    free(rp->members);
    if (rp->has_run)
        store_run_free(&rp->run);
    free(rp->run_infos);
    free(rp->run_info_ptrs);
    free(rp->kvs);
    free(rp->kv_ptrs);
    free(rp->sums);
    free(rp->sum_ptrs);
    if (rp->has_page)
        store_page_free(&rp->page);
    free(rp->points);
    free(rp->resp.steps);
    free(rp->resp.timestamps_ms);
    free(rp->resp.values);
    free(rp->nodes);
    free(rp->node_ptrs);
    free(rp->known);
    rv_buf_free(&rp->records);
    store_log_lines_free(rp->lines, rp->n_lines);
    free(rp->line_outs);
    free(rp->line_ptrs);
    store_counts_free(rp->counts, rp->n_counts);
    free(rp->count_outs);
    free(rp->count_ptrs);
    if (rp->arts != NULL)
        store_artifacts_free(rp->arts, rp->n_arts);
    free(rp->art_outs);
    free(rp->art_ptrs);
    rv_buf_free(&rp->data);
}

static void
rpc__handle(struct rpc_caller *w, const Rv__Request *req, struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE];
    rv__response__init(&rp->resp);
    rp->resp.code = RV_OK;
    int rc = rpc_request_check(req, errmsg);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, errmsg);
        w->s->n_requests++;
        return;
    }
    switch (req->body_case) {
    case RV__REQUEST__BODY_WRITE:
        rpc__write(w, req->write, rp);
        break;
    case RV__REQUEST__BODY_GET_RUN:
    case RV__REQUEST__BODY_LIST_RUNS:
    case RV__REQUEST__BODY_HISTORY:
    case RV__REQUEST__BODY_LOGS:
    case RV__REQUEST__BODY_ANALYTICS:
    case RV__REQUEST__BODY_ARTIFACT:
        rpc__read(w, req, rp);
        break;
    case RV__REQUEST__BODY_STATUS:
        rpc__status(w, rp);
        break;
    case RV__REQUEST__BODY_CLUSTER:
        rpc__cluster(w, req->cluster, rp);
        break;
    case RV__REQUEST__BODY_FETCH:
        rpc__fetch(replica_store(w->s->rep), req->fetch, rp);
        break;
    case RV__REQUEST__BODY__NOT_SET:
    default: /* Refused by rpc_request_check. */
        break;
    }
    w->s->n_requests++;
}

/* Wait (bounded) until this node knows a leader. Returns its id, or 0. */
static uint64_t
rpc__await_leader(struct rpc_server *s)
{
    struct replica_info info;
    uint64_t until = rv_clock_mono_ms() + RPC_FORWARD_WAIT_MS;
    for (;;) {
        replica_info(s->rep, &info);
        if (info.leader_id != 0 &&
            (info.leader_id != info.id || info.is_serving))
            return info.leader_id;
        if (!replica_is_running(s->rep) || rv_clock_mono_ms() >= until)
            return 0;
        rv_clock_sleep_ms(10);
    }
}

/* Send req to the leader on behalf of a client that reached a follower.
 * The endpoints are the leader first, then every other known member, so
 * the client library can follow a leadership change. */
static int
rpc__forward(struct rpc_caller *c, Rv__Request *req, const char *leader_rpc,
             struct rpc_reply *rp, char *errmsg)
{
    char list[REPLICA_MAX_PEERS * (STORE_MAX_ADDR_BYTES + 1) + 1];
    if (c->fwd != NULL && strcmp(c->fwd_addr, leader_rpc) != 0) {
        rvc_close(c->fwd);
        c->fwd = NULL;
    }
    if (c->fwd == NULL) {
        size_t n = (size_t)snprintf(list, sizeof list, "%s", leader_rpc);
        for (size_t i = 0; i < rp->n_known && n < sizeof list; i++)
            if (rp->known[i].rpc_addr[0] != '\0' &&
                strcmp(rp->known[i].rpc_addr, leader_rpc) != 0 &&
                strcmp(rp->known[i].rpc_addr, c->s->addr) != 0)
                n += (size_t)snprintf(list + n, sizeof list - n, ",%s",
                                      rp->known[i].rpc_addr);
        int rc = rvc_open(&c->fwd, list, errmsg);
        if (rc != RV_OK)
            return rc;
        rvc_set_timeouts(c->fwd, RPC_FORWARD_ATTEMPT_MS, RPC_FORWARD_TOTAL_MS);
        snprintf(c->fwd_addr, sizeof c->fwd_addr, "%s", leader_rpc);
    }
    req->has_is_forwarded = 1;
    req->is_forwarded = 1;
    int rc = rvc_call(c->fwd, req, &c->fwd_resp, errmsg);
    req->has_is_forwarded = 0;
    req->is_forwarded = 0;
    return rc;
}

static int
rpc__is_forwardable(const Rv__Request *req)
{
    if (req->has_is_forwarded && req->is_forwarded)
        return 0;
    switch (req->body_case) {
    case RV__REQUEST__BODY_WRITE:
    case RV__REQUEST__BODY_CLUSTER:
        return 1;
    case RV__REQUEST__BODY_GET_RUN:
    case RV__REQUEST__BODY_LIST_RUNS:
    case RV__REQUEST__BODY_HISTORY:
    case RV__REQUEST__BODY_LOGS:
    case RV__REQUEST__BODY_ANALYTICS:
    case RV__REQUEST__BODY_ARTIFACT:
        /* A stale read is served here; leader and linearizable ones
         * where the leader is. */
        return req->read == NULL || !req->read->has_consistency ||
               req->read->consistency != RV__CONSISTENCY__STALE;
    default:
        return 0;
    }
}

static void
rpc__caller_reset(struct rpc_caller *c)
{
    if (c->has_rp)
        rpc__reply_free(&c->rp);
    c->has_rp = 0;
    if (c->fwd_resp != NULL)
        rvc_response_free(c->fwd_resp);
    c->fwd_resp = NULL;
}

const Rv__Response *
rpc_caller_answer(struct rpc_caller *c, Rv__Request *req)
{
    struct rpc_server *s = c->s;
    char errmsg[RV_ERRMSG_SIZE];
    rpc__caller_reset(c);
    memset(&c->rp, 0, sizeof c->rp);
    c->has_rp = 1;
    rpc__handle(c, req, &c->rp);
    if (c->rp.resp.code != RV_ENOTLEADER || !c->is_forwarding ||
        !rpc__is_forwardable(req))
        return &c->rp.resp;
    /* No leader known yet (an election): wait a little for one. */
    if (c->rp.resp.leader_rpc == NULL) {
        if (rpc__await_leader(s) == 0)
            return &c->rp.resp;
        rpc__reply_free(&c->rp);
        memset(&c->rp, 0, sizeof c->rp);
        rpc__handle(c, req, &c->rp);
        if (c->rp.resp.code != RV_ENOTLEADER || c->rp.resp.leader_rpc == NULL)
            return &c->rp.resp;
    }
    /* A stale hint naming this node, or a node that is stopping: answer
     * here (the client follows the hint or tries another node). */
    if (strcmp(c->rp.resp.leader_rpc, s->addr) == 0 ||
        !replica_is_running(s->rep))
        return &c->rp.resp;
    rpc__load_known(s, &c->rp);
    atomic_fetch_add(&s->n_forwarded, 1);
    int rc = rpc__forward(c, req, c->rp.resp.leader_rpc, &c->rp, errmsg);
    if (rc == RV_OK)
        return c->fwd_resp;
    atomic_fetch_add(&s->n_forward_failed, 1);
    rv_logf(s->log, RV_LOG_DEBUG, "rpc", "forward to %s: %s",
            c->rp.resp.leader_rpc, errmsg);
    /* Writes may have reached the leader: the outcome is unknown. */
    rpc__fail(&c->rp,
              req->body_case == RV__REQUEST__BODY_WRITE ? RV_EUNKNOWN
                                                        : RV_EUNAVAILABLE,
              errmsg);
    return &c->rp.resp;
}

static void
rpc__caller_init(struct rpc_caller *c, struct rpc_server *s)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    rv_buf_init(&c->packed);
}

static void
rpc__caller_close(struct rpc_caller *c)
{
    rpc__caller_reset(c);
    rvc_close(c->fwd);
    c->fwd = NULL;
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    rv_buf_free(&c->packed);
}

int
rpc_caller_new(struct rpc_server *s, struct rpc_caller **out)
{
    struct rpc_caller *c = malloc(sizeof *c);
    if (c == NULL)
        return RV_ENOMEM;
    rpc__caller_init(c, s);
    c->is_forwarding = 1;
    *out = c;
    return RV_OK;
}

void
rpc_caller_free(struct rpc_caller *c)
{
    if (c == NULL)
        return;
    rpc__caller_close(c);
    free(c);
}

static void
rpc__send(struct rpc_worker *w, const Rv__Response *resp)
{
    size_t n = rv__response__get_packed_size(resp);
    nng_msg *out;
    if (nng_msg_alloc(&out, n) != 0)
        return;
    rv__response__pack(resp, nng_msg_body(out));
    nng_aio_set_msg(w->aio, out);
    nng_ctx_send(w->ctx, w->aio);
    nng_aio_wait(w->aio);
    if (nng_aio_result(w->aio) != 0)
        nng_msg_free(out);
}

static void *
rpc__worker(void *arg)
{
    struct rpc_worker *w = arg;
    for (;;) {
        nng_ctx_recv(w->ctx, w->aio);
        nng_aio_wait(w->aio);
        int rv = nng_aio_result(w->aio);
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            break;
        if (rv != 0)
            continue;
        nng_msg *msg = nng_aio_get_msg(w->aio);
        Rv__Request *req =
            rv__request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
        nng_msg_free(msg);
        if (req == NULL) {
            struct rpc_reply rp;
            memset(&rp, 0, sizeof rp);
            rv__response__init(&rp.resp);
            rpc__fail(&rp, RV_EMALFORMED, "the request does not decode");
            w->c.s->n_requests++;
            rpc__send(w, &rp.resp);
            continue;
        }
        /* Nothing in the answer points into the request. */
        const Rv__Response *resp = rpc_caller_answer(&w->c, req);
        rv__request__free_unpacked(req, NULL);
        rpc__send(w, resp);
        rpc__caller_reset(&w->c);
    }
    return NULL;
}

int
rpc_server_start(struct rpc_server **out, const char *addr, struct replica *rep,
                 unsigned n_workers, const struct rv_log *log, char *errmsg)
{
    struct rpc_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return RV_ENOMEM;
    s->rep = rep;
    s->log = log;
    s->n_workers = n_workers ? n_workers : RPC_DEFAULT_WORKERS;
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    int rv = nng_rep0_open(&s->sock);
    if (rv != 0) {
        free(s);
        rv_errmsg_printf(errmsg, "nng_rep0_open: %s", nng_strerror(rv));
        return RV_EIO;
    }
    rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, RPC_MAX_REQUEST_BYTES);
    if (rv == 0)
        rv = nng_listen(s->sock, addr, NULL, 0);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "listen on %s: %s", addr, nng_strerror(rv));
        nng_close(s->sock);
        free(s);
        return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? RV_EINVAL : RV_EIO;
    }
    s->workers = calloc(s->n_workers, sizeof *s->workers);
    if (s->workers == NULL) {
        rpc_server_stop(s);
        return RV_ENOMEM;
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        struct rpc_worker *w = &s->workers[i];
        rpc__caller_init(&w->c, s);
        if (nng_ctx_open(&w->ctx, s->sock) != 0 ||
            nng_aio_alloc(&w->aio, NULL, NULL) != 0 ||
            pthread_create(&w->thread, NULL, rpc__worker, w) != 0) {
            rpc_server_stop(s);
            rv_errmsg_printf(errmsg, "cannot start RPC worker %u", i);
            return RV_ENOMEM;
        }
        w->is_started = 1;
    }
    rv_logf(log, RV_LOG_INFO, "rpc", "listening on %s with %u workers", addr,
            s->n_workers);
    *out = s;
    return RV_OK;
}

void
rpc_server_stop(struct rpc_server *s)
{
    if (s == NULL)
        return;
    nng_close(s->sock); /* Every pending receive ends with NNG_ECLOSED. */
    for (unsigned i = 0; s->workers != NULL && i < s->n_workers; i++) {
        struct rpc_worker *w = &s->workers[i];
        if (w->is_started)
            pthread_join(w->thread, NULL);
        if (w->aio != NULL)
            nng_aio_free(w->aio);
        if (w->c.s != NULL)
            rpc__caller_close(&w->c);
    }
    free(s->workers);
    free(s);
}
