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

struct rpc_worker {
    struct rpc_server *s;
    nng_ctx ctx;
    nng_aio *aio;
    pthread_t thread;
    int is_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int is_done;
    struct rv_buf packed;
};

struct rpc_server {
    nng_socket sock;
    struct replica *rep;
    const struct rv_log *log;
    struct rpc_worker *workers;
    unsigned n_workers;
    _Atomic uint64_t n_requests;
};

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
};

uint64_t
rpc_server_requests(const struct rpc_server *s)
{
    return atomic_load(&s->n_requests);
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
    struct rpc_worker *w = op->data;
    pthread_mutex_lock(&w->lock);
    w->is_done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void
rpc__run_op(struct rpc_worker *w, struct replica_op *op)
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

static void
rpc__write(struct rpc_worker *w, Rv__WriteRequest *wr, struct rpc_reply *rp)
{
    struct replica_op op;
    struct replica_info info;
    char errmsg[RV_ERRMSG_SIZE];
    if (wr->n_commands == 0 || wr->n_commands > STORE_MAX_COMMANDS_PER_BATCH) {
        snprintf(errmsg, sizeof errmsg, "a write carries 1 to %d commands",
                 STORE_MAX_COMMANDS_PER_BATCH);
        rpc__fail(rp, RV_EINVAL, errmsg);
        return;
    }
    if (wr->has_durability &&
        (wr->durability < RV__DURABILITY__DURABILITY_DEFAULT ||
         wr->durability > RV__DURABILITY__STRICT)) {
        rpc__fail(rp, RV_EINVAL, "unknown durability");
        return;
    }
    replica_info(w->s->rep, &info);
    if (info.state != RAFT_LEADER) {
        rpc__not_leader(w->s, rp);
        return;
    }
    int64_t now = (int64_t)rv_clock_wall_ms();
    for (size_t i = 0; i < wr->n_commands; i++)
        rpc__stamp(wr->commands[i], now);
    rv_buf_reset(&w->packed);
    int rc =
        replica_pack_commands(wr->commands, wr->n_commands, &w->packed, errmsg);
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

/* Whether this node may answer a read now; fills rp with the error if not. */
static int
rpc__read_gate(struct rpc_worker *w, const Rv__Request *req,
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
    if (consistency < RV__CONSISTENCY__STALE ||
        consistency > RV__CONSISTENCY__LINEARIZABLE) {
        rpc__fail(rp, RV_EINVAL, "unknown consistency");
        return -1;
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
}

static void
rpc__read(struct rpc_worker *w, const Rv__Request *req, struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    struct store_read *rd;
    if (rpc__read_gate(w, req, rp) != 0)
        return;
    int rc = store_read_begin(replica_store(w->s->rep), &rd, errmsg);
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
            }
        }
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
rpc__status(struct rpc_worker *w, struct rpc_reply *rp)
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

static void
rpc__cluster(struct rpc_worker *w, const Rv__ClusterRequest *cr,
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
    memset(&op, 0, sizeof op);
    op.kind = REPLICA_OP_CHANGE;
    op.node_id = cr->has_id ? cr->id : 0;
    switch (cr->op) {
    case RV__CLUSTER_OP__CLUSTER_ADD: {
        char host[64];
        unsigned port = 0;
        struct in_addr a;
        const char *colon = cr->raft_addr ? strrchr(cr->raft_addr, ':') : NULL;
        size_t hn = colon ? (size_t)(colon - cr->raft_addr) : 0;
        if (colon != NULL && hn < sizeof host) {
            memcpy(host, cr->raft_addr, hn);
            host[hn] = '\0';
            port = (unsigned)strtoul(colon + 1, NULL, 10);
        }
        if (op.node_id == 0 || colon == NULL || hn >= sizeof host ||
            inet_pton(AF_INET, host, &a) != 1 || port == 0 || port > 65535) {
            rpc__fail(rp, RV_EINVAL,
                      "add needs an id > 0 and a raft address a.b.c.d:port");
            return;
        }
        op.change = REPLICA_ADD;
        snprintf(op.raft_addr, sizeof op.raft_addr, "%s", cr->raft_addr);
        snprintf(op.rpc_addr, sizeof op.rpc_addr, "%s",
                 cr->rpc_addr ? cr->rpc_addr : "");
        snprintf(op.http_addr, sizeof op.http_addr, "%s",
                 cr->http_addr ? cr->http_addr : "");
        break;
    }
    case RV__CLUSTER_OP__CLUSTER_REMOVE:
        if (op.node_id == 0) {
            rpc__fail(rp, RV_EINVAL, "remove needs an id");
            return;
        }
        if (cr->has_is_notice && cr->is_notice) {
            if (op.node_id != info.id || info.state == RAFT_LEADER) {
                rpc__fail(rp, RV_EINVAL, "a removal notice for another node");
                return;
            }
            replica_removed(w->s->rep);
            return;
        }
        op.change = REPLICA_REMOVE;
        rpc__load_known(w->s, rp); /* Its address, before it is deleted. */
        break;
    case RV__CLUSTER_OP__CLUSTER_TRANSFER:
        op.change = REPLICA_TRANSFER;
        break;
    default:
        rpc__fail(rp, RV_EINVAL, "unknown cluster operation");
        return;
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
        char errmsg[RV_ERRMSG_SIZE];
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

static void
rpc__fetch(struct rpc_worker *w, const Rv__FetchRequest *f,
           struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE];
    uint64_t last = 0;
    size_t max = f->has_max_bytes && f->max_bytes > 0 &&
                         f->max_bytes < RPC_MAX_FETCH_BYTES
                     ? f->max_bytes
                     : RPC_MAX_FETCH_BYTES;
    if (f->from_index == 0) {
        rpc__fail(rp, RV_EINVAL, "from_index starts at 1");
        return;
    }
    int rc = store_fetch_records(replica_store(w->s->rep), f->from_index,
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

/* ---- The worker loop -------------------------------------------------------
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
}

static void
rpc__handle(struct rpc_worker *w, const void *body, size_t len,
            struct rpc_reply *rp)
{
    rv__response__init(&rp->resp);
    rp->resp.code = RV_OK;
    Rv__Request *req = rv__request__unpack(NULL, len, body);
    if (req == NULL) {
        rpc__fail(rp, RV_EMALFORMED, "the request does not decode");
        return;
    }
    switch (req->body_case) {
    case RV__REQUEST__BODY_WRITE:
        rpc__write(w, req->write, rp);
        break;
    case RV__REQUEST__BODY_GET_RUN:
    case RV__REQUEST__BODY_LIST_RUNS:
    case RV__REQUEST__BODY_HISTORY:
        rpc__read(w, req, rp);
        break;
    case RV__REQUEST__BODY_STATUS:
        rpc__status(w, rp);
        break;
    case RV__REQUEST__BODY_CLUSTER:
        rpc__cluster(w, req->cluster, rp);
        break;
    case RV__REQUEST__BODY_FETCH:
        rpc__fetch(w, req->fetch, rp);
        break;
    case RV__REQUEST__BODY__NOT_SET:
    default:
        rpc__fail(rp, RV_EINVAL, "empty request");
        break;
    }
    /* Nothing in the reply points into the request. */
    w->s->n_requests++;
    rv__request__free_unpacked(req, NULL);
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
        struct rpc_reply rp;
        memset(&rp, 0, sizeof rp);
        rpc__handle(w, nng_msg_body(msg), nng_msg_len(msg), &rp);
        nng_msg_free(msg);
        size_t n = rv__response__get_packed_size(&rp.resp);
        nng_msg *out;
        if (nng_msg_alloc(&out, n) == 0) {
            rv__response__pack(&rp.resp, nng_msg_body(out));
            nng_aio_set_msg(w->aio, out);
            nng_ctx_send(w->ctx, w->aio);
            nng_aio_wait(w->aio);
            if (nng_aio_result(w->aio) != 0)
                nng_msg_free(out);
        }
        rpc__reply_free(&rp);
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
        w->s = s;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        rv_buf_init(&w->packed);
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
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        rv_buf_free(&w->packed);
    }
    free(s->workers);
    free(s);
}
