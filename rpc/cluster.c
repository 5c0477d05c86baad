/* Node status, cluster status and membership changes (contract in
 * server_int.h): what a status or cluster request asks of the replica,
 * and the answers, whose strings point into the reply's own copies. */
#include "rpc/client/client.h"
#include "rpc/server_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Status ----------------------------------------------------------------
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

/* This node's status: its strings point here, or into the caller's list of
 * known members, or are static. */
struct rpc__status_answer {
    Rv__NodeStatus self;
    Rv__CompactInfo compact;
    struct store_compact_info ci;
    char raft_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char digest_hex[2 * STORE_DIGEST_BYTES + 1];
};

static void
rpc__status_answer_free(void *body)
{
    free(body);
}

/* The applied index and digest of the store into ns. */
static void
rpc__status_store(struct rpc_caller *c, struct rpc__status_answer *a)
{
    struct store_read *rd;
    char errmsg[RV_ERRMSG_SIZE];
    uint8_t digest[STORE_DIGEST_BYTES];
    if (store_read_begin(replica_store(c->s->rep), STORE_EVERY_TEAM, &rd,
                         errmsg) != RV_OK)
        return;
    a->self.has_applied_index = 1;
    a->self.applied_index = store_read_applied_index(rd);
    store_read_digest(rd, digest);
    store_digest_hex(digest, a->digest_hex);
    a->self.digest = a->digest_hex;
    /* Compaction: this node's job, and the bytes purged since the last
     * (replicated, the same on every node at one index). */
    Rv__CompactInfo *ci = &a->compact;
    rv__compact_info__init(ci);
    store_reclaimable_bytes(rd, &ci->reclaimable_bytes);
    store_read_end(rd);
    ci->has_reclaimable_bytes = 1;
    store_compact_info(replica_store(c->s->rep), &a->ci);
    ci->has_checkpoint_index = 1;
    ci->checkpoint_index = a->ci.checkpoint_index;
    ci->has_requested_index = 1;
    ci->requested_index = a->ci.requested_index;
    ci->has_n_done = 1;
    ci->n_done = a->ci.n_done;
    ci->has_bytes_rewritten = 1;
    ci->bytes_rewritten = a->ci.bytes_rewritten;
    ci->has_bytes_freed = 1;
    ci->bytes_freed = a->ci.bytes_freed;
    ci->has_image_bytes = 1;
    ci->image_bytes = a->ci.image_bytes;
    ci->has_last_code = 1;
    ci->last_code = (uint32_t)a->ci.last_code;
    ci->last_error = a->ci.last_error[0] != '\0' ? a->ci.last_error : NULL;
    ci->has_vlog_disk_bytes = 1;
    ci->vlog_disk_bytes = a->ci.vlog_disk_bytes;
    ci->has_is_running = 1;
    ci->is_running = a->ci.is_running != 0;
    a->self.compact = ci;
}

void
rpc__status(struct rpc_caller *c, struct rpc_reply *rp)
{
    struct replica_info info;
    struct rpc__status_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__status_answer_free);
    if (a == NULL) {
        rpc__fail(rp, RV_ENOMEM, NULL);
        return;
    }
    replica_info(c->s->rep, &info);
    rpc__load_known(c);
    Rv__NodeStatus *ns = &a->self;
    struct replica_member me = {info.id, "", -1};
    for (size_t i = 0; i < info.n_members; i++)
        if (info.members[i].id == info.id)
            me = info.members[i];
    rpc__node_status(ns, &me, rpc__known(c, info.id));
    /* The raft address comes from the published members: copy it into the
     * answer, which outlives info. */
    snprintf(a->raft_addr, sizeof a->raft_addr, "%s", me.raft_addr);
    ns->raft_addr = me.raft_addr[0] != '\0' ? a->raft_addr : NULL;
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
    ns->has_diverged = 1;
    ns->diverged = info.is_diverged != 0;
    ns->has_diverged_index = info.is_diverged != 0;
    ns->diverged_index = info.diverged_index;
    ns->has_vlog_bytes = 1;
    ns->vlog_bytes = store_vlog_bytes(replica_store(c->s->rep));
    ns->has_disk_free_bytes = 1;
    ns->disk_free_bytes = info.disk_free_bytes;
    ns->has_disk_low = 1;
    ns->disk_low = info.is_disk_low != 0;
    rpc__status_store(c, a);
    rp->resp.self = ns;
}

/* Every member's status: their strings point into the answer's copy of
 * the members, or into the caller's list of known members. */
struct rpc__nodes_answer {
    struct replica_member members[REPLICA_MAX_PEERS];
    Rv__NodeStatus nodes[REPLICA_MAX_PEERS];
    Rv__NodeStatus *ptrs[REPLICA_MAX_PEERS];
};

static void
rpc__nodes_answer_free(void *body)
{
    free(body);
}

static void
rpc__cluster_status(struct rpc_caller *c, const struct replica_info *info,
                    struct rpc_reply *rp)
{
    rpc__load_known(c);
    struct rpc__nodes_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__nodes_answer_free);
    if (a == NULL) {
        rpc__fail(rp, RV_ENOMEM, NULL);
        return;
    }
    memcpy(a->members, info->members, info->n_members * sizeof *a->members);
    for (size_t i = 0; i < info->n_members; i++) {
        rpc__node_status(&a->nodes[i], &a->members[i],
                         rpc__known(c, a->members[i].id));
        a->ptrs[i] = &a->nodes[i];
    }
    rp->resp.n_nodes = info->n_members;
    rp->resp.nodes = a->ptrs;
    rp->resp.has_leader_id = 1;
    rp->resp.leader_id = info->leader_id;
}

/* ---- Membership changes ----------------------------------------------------
 */

int
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

/* Raft sends nothing more to a removed node: tell it to stop (best
 * effort, one attempt of 1 s). */
static void
rpc__tell_removed(struct rpc_caller *c, const struct store_node *gone)
{
    Rv__Request nreq = RV__REQUEST__INIT;
    Rv__ClusterRequest ncr = RV__CLUSTER_REQUEST__INIT;
    Rv__Response *nresp = NULL;
    char errmsg[RV_ERRMSG_SIZE];
    ncr.op = RV__CLUSTER_OP__CLUSTER_REMOVE;
    ncr.has_id = ncr.has_is_notice = ncr.is_notice = 1;
    ncr.id = gone->id;
    nreq.body_case = RV__REQUEST__BODY_CLUSTER;
    nreq.cluster = &ncr;
    if (c->s->node_token[0] != '\0')
        nreq.token = c->s->node_token;
    if (rvc_call_once_tls(gone->rpc_addr, c->s->tls, &nreq, 1000, &nresp,
                          errmsg) != RV_OK)
        rv_logf(c->s->log, RV_LOG_WARN, "rpc",
                "removed node %llu was not told: %s",
                (unsigned long long)gone->id, errmsg);
    rvc_response_free(nresp);
}

void
rpc__cluster(struct rpc_caller *c, const Rv__ClusterRequest *cr,
             struct rpc_reply *rp)
{
    struct replica_info info;
    replica_info(c->s->rep, &info);
    if (cr->op == RV__CLUSTER_OP__CLUSTER_STATUS) {
        rpc__cluster_status(c, &info, rp);
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
            replica_removed(c->s->rep);
            return;
        }
        rpc__load_known(c); /* Its address, before it is deleted. */
    }
    if (info.state != RAFT_LEADER) {
        rpc__not_leader(c, rp);
        return;
    }
    rpc__run_op(c, &op);
    if (op.code == RV_ENOTLEADER) {
        rpc__not_leader(c, rp);
        return;
    }
    if (op.code != RV_OK) {
        rpc__fail(rp, op.code, op.message);
        return;
    }
    const struct store_node *gone = rpc__known(c, op.node_id);
    if (op.change == REPLICA_REMOVE && gone != NULL && gone->rpc_addr[0])
        rpc__tell_removed(c, gone);
}
