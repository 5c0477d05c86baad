/* Following the leader (contract in server_int.h and answer.h): the
 * leader's address for a redirect, and forwarding of in-process requests.
 *
 * Only a request answered in-process (rpc_caller_answer from the HTTP
 * gateway, whose clients cannot follow a native address) is forwarded: a
 * write, a cluster change and a leader or linearizable read go to the
 * leader, marked is_forwarded so they are never forwarded twice. Native
 * requests are answered RV_ENOTLEADER with the leader's address, which the
 * client library follows. */
#include "base/clock.h"
#include "rpc/client/client.h"
#include "rpc/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The leader's address --------------------------------------------------
 */

void
rpc__load_known(struct rpc_caller *c)
{
    char errmsg[RV_ERRMSG_SIZE];
    struct store_read *rd;
    if (c->known != NULL ||
        store_read_begin(replica_store(c->s->rep), STORE_EVERY_TEAM, &rd,
                         errmsg) != RV_OK)
        return;
    if (store_nodes_list(rd, &c->known, &c->n_known, errmsg) != RV_OK) {
        c->known = NULL;
        c->n_known = 0;
    }
    store_read_end(rd);
}

const struct store_node *
rpc__known(const struct rpc_caller *c, uint64_t id)
{
    for (size_t i = 0; i < c->n_known; i++)
        if (c->known[i].id == id)
            return &c->known[i];
    return NULL;
}

void
rpc__not_leader(struct rpc_caller *c, struct rpc_reply *rp)
{
    struct replica_info info;
    replica_info(c->s->rep, &info);
    rpc__fail(rp, RV_ENOTLEADER, NULL);
    if (info.leader_id == 0 || info.leader_id == info.id)
        return;
    rp->resp.has_leader_id = 1;
    rp->resp.leader_id = info.leader_id;
    rpc__load_known(c);
    const struct store_node *n = rpc__known(c, info.leader_id);
    if (n != NULL && n->rpc_addr[0] != '\0') {
        snprintf(rp->leader_rpc, sizeof rp->leader_rpc, "%s", n->rpc_addr);
        rp->resp.leader_rpc = rp->leader_rpc;
    }
}

/* ---- Forwarding ------------------------------------------------------------
 */

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
             char *errmsg)
{
    char list[REPLICA_MAX_PEERS * (CONTRACT_MAX_ADDR_BYTES + 1) + 1];
    if (c->fwd != NULL && strcmp(c->fwd_addr, leader_rpc) != 0) {
        rvc_close(c->fwd);
        c->fwd = NULL;
    }
    if (c->fwd == NULL) {
        size_t n = (size_t)snprintf(list, sizeof list, "%s", leader_rpc);
        for (size_t i = 0; i < c->n_known && n < sizeof list; i++)
            if (c->known[i].rpc_addr[0] != '\0' &&
                strcmp(c->known[i].rpc_addr, leader_rpc) != 0 &&
                strcmp(c->known[i].rpc_addr, c->s->addr) != 0)
                n += (size_t)snprintf(list + n, sizeof list - n, ",%s",
                                      c->known[i].rpc_addr);
        int rc = rvc_open(&c->fwd, list, errmsg);
        if (rc != RV_OK)
            return rc;
        rvc_set_timeouts(c->fwd, RPC_FORWARD_ATTEMPT_MS, RPC_FORWARD_TOTAL_MS);
        rvc_set_tls(c->fwd, c->s->tls);
        snprintf(c->fwd_addr, sizeof c->fwd_addr, "%s", leader_rpc);
    }
    req->has_is_forwarded = 1;
    req->is_forwarded = 1;
    int rc = rvc_call(c->fwd, req, &c->fwd_resp, errmsg);
    req->has_is_forwarded = 0;
    req->is_forwarded = 0;
    return rc;
}

int
rpc__is_forwardable(const Rv__Request *req)
{
    if (req->has_is_forwarded && req->is_forwarded)
        return 0;
    if (req->body_case == RV__REQUEST__BODY_WRITE ||
        req->body_case == RV__REQUEST__BODY_CLUSTER)
        return 1;
    /* A stale read is served here; leader and linearizable ones where the
     * leader is. */
    return rpc__is_read(req) &&
           (req->read == NULL || !req->read->has_consistency ||
            req->read->consistency != RV__CONSISTENCY__STALE);
}

const Rv__Response *
rpc__follow_leader(struct rpc_caller *c, Rv__Request *req)
{
    struct rpc_server *s = c->s;
    char errmsg[RV_ERRMSG_SIZE];
    /* No leader known yet (an election): wait a little for one. */
    if (c->rp.resp.leader_rpc == NULL) {
        if (rpc__await_leader(s) == 0)
            return &c->rp.resp;
        rpc__caller_reset(c);
        c->has_rp = 1;
        rpc__handle(c, req, &c->rp);
        if (c->rp.resp.code != RV_ENOTLEADER || c->rp.resp.leader_rpc == NULL)
            return &c->rp.resp;
    }
    /* A stale hint naming this node, or a node that is stopping: answer
     * here (the client follows the hint or tries another node). */
    if (strcmp(c->rp.resp.leader_rpc, s->addr) == 0 ||
        !replica_is_running(s->rep))
        return &c->rp.resp;
    rpc__load_known(c);
    atomic_fetch_add(&s->n_forwarded, 1);
    int rc = rpc__forward(c, req, c->rp.resp.leader_rpc, errmsg);
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
