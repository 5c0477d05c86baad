/* The answering path without transport (contract in answer.h and
 * server_int.h): the checks at the door, writes handed to the replica's
 * batcher, the read gate (consistency, min_index), and rpc_caller_answer,
 * which the nng workers (listen.c) and the HTTP gateway both use. */
#include "base/clock.h"
#include "rpc/client/client.h"
#include "rpc/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Handing ops to the replica and waiting ------------------------------ */

static void
rpc__op_done(struct replica_op *op)
{
    struct rpc_caller *c = op->data;
    pthread_mutex_lock(&c->lock);
    c->is_done = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void
rpc__run_op(struct rpc_caller *c, struct replica_op *op)
{
    op->done = rpc__op_done;
    op->data = c;
    c->is_done = 0;
    replica_submit(c->s->rep, op);
    pthread_mutex_lock(&c->lock);
    while (!c->is_done)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
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
        if (c->body_case == RV__COMMAND__BODY_RETENTION_SWEEP ||
            c->body_case == RV__COMMAND__BODY_CHECK) {
            rv_errmsg_printf(errmsg,
                             "command %zu: %s is proposed by the "
                             "leader only",
                             i, proto_command_name(c));
            return RV_EPERM;
        }
        const char *id = proto_command_run_id(c);
        if (id != NULL && !contract_run_id_valid(id, strlen(id))) {
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
    if (wr->n_commands == 0 ||
        wr->n_commands > CONTRACT_MAX_COMMANDS_PER_BATCH) {
        rv_errmsg_printf(errmsg, "a write carries 1 to %d commands",
                         CONTRACT_MAX_COMMANDS_PER_BATCH);
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

/* The principal's fields of one command, set for packing and put back
 * after (the request's unpacker owns what the command pointed to). */
struct rpc__saved {
    char *token_id;
    char *team;
};

static void
rpc__principal_set(Rv__Command *cmd, const char *token_id, const char *team,
                   struct rpc__saved *sv, int64_t now)
{
    sv->token_id = cmd->token_id;
    sv->team = NULL;
    cmd->token_id = (char *)token_id;
    cmd->has_stamped_at_ms = 1;
    cmd->stamped_at_ms = now;
    if (cmd->body_case == RV__COMMAND__BODY_RUN_CREATE) {
        sv->team = cmd->run_create->team;
        if (team != NULL && (sv->team == NULL || sv->team[0] == '\0'))
            cmd->run_create->team = (char *)team;
    }
    if (cmd->body_case == RV__COMMAND__BODY_MLFLOW_EXPERIMENT) {
        sv->team = cmd->mlflow_experiment->team;
        if (team != NULL && (sv->team == NULL || sv->team[0] == '\0'))
            cmd->mlflow_experiment->team = (char *)team;
    }
    if (cmd->body_case == RV__COMMAND__BODY_RETENTION_PUT) {
        sv->team = cmd->retention_put->team;
        if (team != NULL && (sv->team == NULL || sv->team[0] == '\0'))
            cmd->retention_put->team = (char *)team;
    }
    if (cmd->body_case == RV__COMMAND__BODY_TOKEN_PUT) {
        Rv__TokenPut *tp = cmd->token_put;
        tp->has_created_at_ms = 1;
        tp->created_at_ms = now;
        tp->has_expires_at_ms = tp->has_expires_in_s;
        tp->expires_at_ms =
            tp->has_expires_in_s ? now + (int64_t)tp->expires_in_s * 1000 : 0;
    }
}

static void
rpc__principal_restore(Rv__Command *cmd, const struct rpc__saved *sv)
{
    cmd->token_id = sv->token_id;
    if (cmd->body_case == RV__COMMAND__BODY_RUN_CREATE)
        cmd->run_create->team = sv->team;
    if (cmd->body_case == RV__COMMAND__BODY_MLFLOW_EXPERIMENT)
        cmd->mlflow_experiment->team = sv->team;
    if (cmd->body_case == RV__COMMAND__BODY_RETENTION_PUT)
        cmd->retention_put->team = sv->team;
}

int
rpc_write_prepare(Rv__WriteRequest *wr, int64_t now_ms, const char *token_id,
                  const char *team, struct rv_buf *packed, char *errmsg)
{
    struct rpc__saved sv[CONTRACT_MAX_COMMANDS_PER_BATCH];
    size_t n = wr->n_commands;
    if (n > CONTRACT_MAX_COMMANDS_PER_BATCH) {
        rv_errmsg_printf(errmsg, "a write carries 1 to %d commands",
                         CONTRACT_MAX_COMMANDS_PER_BATCH);
        return RV_EINVAL;
    }
    int rc = rpc__write_stamp_check(wr, errmsg);
    if (rc != RV_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rpc__stamp(wr->commands[i], now_ms);
        rpc__principal_set(wr->commands[i], token_id, team, &sv[i], now_ms);
    }
    rv_buf_reset(packed);
    rc = replica_pack_commands(wr->commands, n, packed, errmsg);
    for (size_t i = 0; i < n; i++)
        rpc__principal_restore(wr->commands[i], &sv[i]);
    return rc;
}

/* Points the write carries, for the leader's points/s admission. */
static uint64_t
rpc__write_points(const Rv__WriteRequest *wr)
{
    uint64_t n = 0;
    for (size_t i = 0; i < wr->n_commands; i++) {
        const Rv__Command *cmd = wr->commands[i];
        if (cmd->body_case == RV__COMMAND__BODY_LOG_BATCH &&
            cmd->log_batch->metrics != NULL)
            n += cmd->log_batch->metrics->n_values;
    }
    return n;
}

/* The leader's checks of a write's caller: authenticated here (a
 * follower forwards the token as is), no node-only command, within the
 * team's points/s. Fills *p. */
static int
rpc__write_admit(struct rpc_caller *c, const Rv__Request *req,
                 struct rpc_principal *p, struct rpc_reply *rp, char *errmsg)
{
    int rc = rpc__authenticate(c, req, p, errmsg);
    if (rc == RV_OK)
        rc = rpc__authorise(req, p, errmsg);
    if (rc == RV_OK && !p->is_open) {
        uint32_t retry = 0;
        rc = rpc__admit_points(c->s, p->team, rpc__write_points(req->write),
                               &retry, errmsg);
        rp->resp.has_retry_after_s = rc == RV_ERATE;
        rp->resp.retry_after_s = retry;
    }
    return rc;
}

/* A write that passed rpc_request_check. */
static void
rpc__write(struct rpc_caller *c, const Rv__Request *req, struct rpc_reply *rp)
{
    struct replica_op op;
    struct replica_info info;
    struct rpc_principal p;
    char errmsg[RV_ERRMSG_SIZE];
    Rv__WriteRequest *wr = req->write;
    replica_info(c->s->rep, &info);
    if (info.state != RAFT_LEADER) {
        rpc__not_leader(c, rp);
        return;
    }
    int rc = rpc__write_admit(c, req, &p, rp, errmsg);
    if (rc == RV_OK)
        rc = rpc_write_prepare(
            wr, (int64_t)rv_clock_wall_ms(),
            p.is_open || p.token_id[0] == '\0' ? NULL : p.token_id,
            strcmp(p.team, "*") == 0 ? NULL : p.team, &c->packed, errmsg);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, errmsg);
        return;
    }
    memset(&op, 0, sizeof op);
    op.kind = REPLICA_OP_WRITE;
    op.packed = c->packed.data;
    op.packed_len = c->packed.len;
    op.n_commands = wr->n_commands;
    op.durability = wr->has_durability ? (int)wr->durability : 0;
    rpc__run_op(c, &op);
    if (op.code == RV_ENOTLEADER) {
        rpc__not_leader(c, rp);
        return;
    }
    rp->resp.code = (uint32_t)op.code;
    if (op.code != RV_OK)
        rpc__fail(rp, op.code, op.message);
    rp->resp.has_index = op.index != 0;
    rp->resp.index = op.index;
    if (op.n_results > 0)
        rpc__write_results(rp, op.results, op.n_results); /* Takes them. */
}

/* ---- Reads -----------------------------------------------------------------
 */

/* Whether this node may answer a read now; fills rp with the error if not.
 * The consistency is known to be valid (rpc_request_check). */
static int
rpc__read_gate(struct rpc_caller *c, const Rv__Request *req,
               struct rpc_reply *rp)
{
    struct replica_info info;
    int consistency = RV__CONSISTENCY__LEADER;
    uint64_t min_index = 0;
    char msg[RV_ERRMSG_SIZE];
    if (req->read != NULL) {
        if (req->read->has_consistency &&
            req->read->consistency != RV__CONSISTENCY__CONSISTENCY_DEFAULT)
            consistency = (int)req->read->consistency;
        if (req->read->has_min_index)
            min_index = req->read->min_index;
    }
    if (min_index > 0) {
        int rc =
            replica_wait_applied(c->s->rep, min_index, RPC_MIN_INDEX_WAIT_MS);
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
    replica_info(c->s->rep, &info);
    if (info.state != RAFT_LEADER || !info.is_serving) {
        rpc__not_leader(c, rp);
        return -1;
    }
    if (consistency == RV__CONSISTENCY__LEADER)
        return 0;
    struct replica_op op;
    memset(&op, 0, sizeof op);
    op.kind = REPLICA_OP_BARRIER;
    rpc__run_op(c, &op);
    if (op.code == RV_ENOTLEADER) {
        rpc__not_leader(c, rp);
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

static void
rpc__read(struct rpc_caller *c, const Rv__Request *req, struct rpc_reply *rp,
          const struct rpc_principal *p)
{
    char why[RV_ERRMSG_SIZE];
    int rc = replica_read_refusal(c->s->rep, why);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, why);
        return;
    }
    if (rpc__read_gate(c, req, rp) != 0)
        return;
    if (req->body_case == RV__REQUEST__BODY_ADMIN &&
        req->admin->op == RV__ADMIN_OP__ADMIN_WHOAMI)
        rpc__whoami(p, rp);
    else
        rpc__read_store(replica_store(c->s->rep), rpc__scope(p), req, rp);
}

/* ---- Checks at the door ----------------------------------------------------
 */

int
rpc__is_read(const Rv__Request *req)
{
    switch (req->body_case) {
    case RV__REQUEST__BODY_GET_RUN:
    case RV__REQUEST__BODY_LIST_RUNS:
    case RV__REQUEST__BODY_HISTORY:
    case RV__REQUEST__BODY_LOGS:
    case RV__REQUEST__BODY_ANALYTICS:
    case RV__REQUEST__BODY_ARTIFACT:
    case RV__REQUEST__BODY_ADMIN:
    case RV__REQUEST__BODY_MLFLOW_EXPERIMENTS:
        return 1;
    default:
        return 0;
    }
}

int
rpc_request_check(const Rv__Request *req, char *errmsg)
{
    struct replica_op op;
    if (rpc__is_read(req)) {
        if (req->read != NULL && req->read->has_consistency &&
            (req->read->consistency < RV__CONSISTENCY__CONSISTENCY_DEFAULT ||
             req->read->consistency > RV__CONSISTENCY__LINEARIZABLE)) {
            rv_errmsg_printf(errmsg, "unknown consistency");
            return RV_EINVAL;
        }
        if (req->body_case == RV__REQUEST__BODY_ADMIN &&
            (req->admin->op < RV__ADMIN_OP__ADMIN_WHOAMI ||
             req->admin->op > RV__ADMIN_OP__ADMIN_RETENTION)) {
            rv_errmsg_printf(errmsg, "unknown admin request");
            return RV_EINVAL;
        }
        return RV_OK;
    }
    switch (req->body_case) {
    case RV__REQUEST__BODY_WRITE:
        return rpc__write_request_check(req->write, errmsg);
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
    case RV__REQUEST__BODY_BACKUP:
        return rpc__backup_check(req->backup, errmsg);
    case RV__REQUEST__BODY__NOT_SET:
    default:
        rv_errmsg_printf(errmsg, "empty request");
        return RV_EINVAL;
    }
}

/* ---- Answering -------------------------------------------------------------
 */

/* Every request but a write: authenticated and authorised on this node.
 * (A write is, on the leader: rpc__write.) */
static int
rpc__admit(struct rpc_caller *c, const Rv__Request *req,
           struct rpc_principal *p, struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE];
    int rc = rpc_request_check(req, errmsg);
    if (rc == RV_OK && req->body_case != RV__REQUEST__BODY_WRITE) {
        rc = rpc__authenticate(c, req, p, errmsg);
        if (rc == RV_OK)
            rc = rpc__authorise(req, p, errmsg);
    }
    if (rc == RV_EUNAUTHENTICATED && rpc__is_forwardable(req)) {
        /* A follower may not have applied a new token yet: the leader,
         * which has, decides. */
        struct replica_info info;
        replica_info(c->s->rep, &info);
        if (info.state != RAFT_LEADER) {
            rpc__not_leader(c, rp);
            return RV_ENOTLEADER;
        }
    }
    if (rc != RV_OK)
        rpc__fail(rp, rc, errmsg);
    return rc;
}

void
rpc__handle(struct rpc_caller *c, const Rv__Request *req, struct rpc_reply *rp)
{
    struct rpc_principal p;
    rpc__reply_init(rp);
    if (rpc__admit(c, req, &p, rp) != RV_OK) {
        c->s->n_requests++;
        return;
    }
    if (rpc__is_read(req)) {
        rpc__read(c, req, rp, &p);
        c->s->n_requests++;
        return;
    }
    switch (req->body_case) {
    case RV__REQUEST__BODY_WRITE: {
        /* A node short of disk space refuses what it is asked to write,
         * leader or not (the leader's replica refuses proposals too). */
        char why[RV_ERRMSG_SIZE];
        int rc = replica_write_refusal(c->s->rep, why);
        if (rc != RV_OK)
            rpc__fail(rp, rc, why);
        else
            rpc__write(c, req, rp);
        break;
    }
    case RV__REQUEST__BODY_STATUS:
        rpc__status(c, rp);
        break;
    case RV__REQUEST__BODY_CLUSTER:
        rpc__cluster(c, req->cluster, rp);
        break;
    case RV__REQUEST__BODY_FETCH:
        rpc__fetch(replica_store(c->s->rep), req->fetch, rp);
        break;
    case RV__REQUEST__BODY_BACKUP:
        rpc__backup(c->s, req->backup, rp);
        break;
    case RV__REQUEST__BODY__NOT_SET:
    default: /* Refused by rpc_request_check. */
        break;
    }
    c->s->n_requests++;
}

void
rpc__caller_reset(struct rpc_caller *c)
{
    if (c->has_rp)
        rpc__reply_clean(&c->rp);
    c->has_rp = 0;
    free(c->known);
    c->known = NULL;
    c->n_known = 0;
    if (c->fwd_resp != NULL)
        rvc_response_free(c->fwd_resp);
    c->fwd_resp = NULL;
}

const Rv__Response *
rpc_caller_answer(struct rpc_caller *c, Rv__Request *req)
{
    rpc__caller_reset(c);
    c->has_rp = 1;
    rpc__handle(c, req, &c->rp);
    if (c->rp.resp.code != RV_ENOTLEADER || !c->is_forwarding ||
        !rpc__is_forwardable(req))
        return &c->rp.resp;
    return rpc__follow_leader(c, req);
}

void
rpc__caller_init(struct rpc_caller *c, struct rpc_server *s)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    rv_buf_init(&c->packed);
}

void
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

/* ---- The node's state, for the gateway ------------------------------------
 */

void
rpc_node_info(const struct rpc_server *s, struct replica_info *out)
{
    replica_info(s->rep, out);
}

int
rpc_node_is_running(const struct rpc_server *s)
{
    return replica_is_running(s->rep);
}

uint64_t
rpc_node_vlog_bytes(const struct rpc_server *s)
{
    return store_vlog_bytes(replica_store(s->rep));
}

void
rpc_node_compact_info(const struct rpc_server *s,
                      struct store_compact_info *out,
                      uint64_t *reclaimable_bytes)
{
    struct store *st = replica_store(s->rep);
    struct store_read *rd;
    *reclaimable_bytes = 0;
    store_compact_info(st, out);
    if (store_read_begin(st, STORE_EVERY_TEAM, &rd, NULL) == RV_OK) {
        store_reclaimable_bytes(rd, reclaimable_bytes);
        store_read_end(rd);
    }
}
