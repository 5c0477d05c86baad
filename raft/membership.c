/* Membership changes of the replica (contract in replica.h, state in
 * replica_int.h), on the loop thread.
 *
 * One change at a time (r->change_op), taken in steps that each wait for
 * raft or for a write of our own to commit:
 *
 *   add:      NODE_PUT (record its addresses) -> ADD (raft_add: spare) ->
 *             STANDBY (raft_assign) -> CATCH_UP (its match index within 64
 *             entries of the last, polled from the tick, 10 minutes at
 *             most) -> VOTER (raft_assign)
 *   remove:   REMOVE (raft_remove) -> NODE_DEL (forget its addresses)
 *   transfer: TRANSFER (raft_transfer; the callback may fire twice)
 *
 * An add of a node already in the configuration resumes at its role's
 * step, so a retried add is idempotent. */
#include "base/clock.h"
#include "raft/replica_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct raft_server *
replica__member(struct replica *r, uint64_t id, unsigned *pos)
{
    const struct raft_configuration *c = &r->raft.configuration;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            if (pos != NULL)
                *pos = i;
            return &c->servers[i];
        }
    }
    return NULL;
}

void
replica__change_done(struct replica *r, int code, const char *msg)
{
    struct replica_op *op = r->change_op;
    r->change_op = NULL;
    r->step = STEP_NONE;
    if (op != NULL)
        replica__finish(op, code, msg);
}

/* Queue the node_put / node_del of the change as a write of our own. */
static void replica__step_write_done(struct replica_op *op);

static int
replica__step_write(struct replica *r, int is_put)
{
    struct replica_op *c = r->change_op;
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__NodePut np = RV__NODE_PUT__INIT;
    Rv__NodeDel nd = RV__NODE_DEL__INIT;
    Rv__Command *cmds[1] = {&cmd};
    char errmsg[RV_ERRMSG_SIZE];
    if (is_put) {
        np.id = c->node_id;
        np.raft_addr = c->raft_addr;
        np.rpc_addr = c->rpc_addr;
        np.http_addr = c->http_addr;
        cmd.body_case = RV__COMMAND__BODY_NODE_PUT;
        cmd.node_put = &np;
    } else {
        nd.id = c->node_id;
        cmd.body_case = RV__COMMAND__BODY_NODE_DEL;
        cmd.node_del = &nd;
    }
    rv_buf_reset(&r->step_packed);
    int rc = replica_pack_commands(cmds, 1, &r->step_packed, errmsg);
    if (rc != RV_OK)
        return rc;
    memset(&r->step_write, 0, sizeof r->step_write);
    r->step_write.kind = REPLICA_OP_WRITE;
    r->step_write.packed = r->step_packed.data;
    r->step_write.packed_len = r->step_packed.len;
    r->step_write.n_commands = 1;
    r->step_write.done = replica__step_write_done;
    r->step_write.data = r;
    replica__push(&r->writes, &r->step_write);
    r->pending_bytes += r->step_packed.len;
    r->is_step_write_busy = 1;
    return RV_OK;
}

static void
replica__step_write_done(struct replica_op *op)
{
    struct replica *r = op->data;
    int code = op->code != RV_OK    ? op->code
               : op->n_results == 1 ? op->results[0].code
                                    : RV_OK;
    char msg[RV_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s",
             op->code != RV_OK ? op->message
             : op->n_results == 1 && op->results[0].code != RV_OK
                 ? op->results[0].message
                 : "");
    replica_op_clean(op);
    r->is_step_write_busy = 0;
    if (r->change_op == NULL || r->step == STEP_NONE)
        return;
    if (code != RV_OK) {
        replica__change_done(r, code, msg);
        return;
    }
    r->step = r->step == STEP_NODE_PUT ? STEP_ADD : STEP_NONE;
    if (r->step == STEP_NONE)
        replica__change_done(r, RV_OK, NULL);
    else
        replica__change_next(r);
}

static void
replica__change_cb(struct raft_change *req, int status)
{
    struct replica *r = req->data;
    r->is_in_flight = 0;
    if (r->change_op == NULL)
        return;
    if (status != 0) {
        char msg[RV_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "configuration change: %s",
                 raft_strerror(status));
        replica__change_done(
            r, status == RAFT_NOTLEADER ? RV_ENOTLEADER : RV_EUNKNOWN, msg);
    } else {
        switch (r->step) {
        case STEP_ADD:
            r->step = STEP_STANDBY;
            break;
        case STEP_STANDBY:
            r->step = STEP_CATCH_UP;
            r->step_deadline_ms = rv_clock_mono_ms() + 600000;
            break;
        case STEP_VOTER:
            replica__change_done(r, RV_OK, NULL);
            break;
        case STEP_REMOVE:
            r->step = STEP_NODE_DEL;
            break;
        default:
            break;
        }
        if (r->change_op != NULL)
            replica__change_next(r);
    }
    replica__schedule_after(r, status);
}

void
replica__transfer_cb(struct raft_transfer *req)
{
    struct replica *r = req->data;
    /* May fire twice (canonical/raft#396): only the first counts. */
    if (r->step != STEP_TRANSFER)
        return;
    raft_id leader;
    const char *addr;
    raft_leader(&r->raft, &leader, &addr);
    uint64_t want = r->change_op != NULL ? r->change_op->node_id : 0;
    int is_ok = leader != 0 && leader != r->id && (want == 0 || leader == want);
    if (r->change_op != NULL)
        replica__change_done(r, is_ok ? RV_OK : RV_ETIMEDOUT,
                             is_ok ? NULL : "leadership did not move");
    r->step = STEP_NONE;
}

/* STEP_ADD: raft_add the node as a spare, or resume at its role's step if
 * it is a member already (a retried add). Returns raft's code for a
 * request started (0) or refused; -1 when nothing was asked of raft. */
static int
replica__change_add(struct replica *r)
{
    struct replica_op *c = r->change_op;
    const struct raft_server *m = replica__member(r, c->node_id, NULL);
    if (m != NULL && strcmp(m->address, c->raft_addr) != 0) {
        replica__change_done(r, RV_ECONFLICT,
                             "that id is a member with another address");
        return -1;
    }
    if (m == NULL)
        return raft_add(&r->raft, &r->change_req, c->node_id, c->raft_addr,
                        replica__change_cb);
    r->step = m->role == RAFT_VOTER     ? STEP_NONE
              : m->role == RAFT_STANDBY ? STEP_CATCH_UP
                                        : STEP_STANDBY;
    if (r->step == STEP_NONE) {
        replica__change_done(r, RV_OK, NULL);
        return -1;
    }
    r->step_deadline_ms = rv_clock_mono_ms() + 600000;
    replica__change_next(r);
    return -1;
}

/* STEP_CATCH_UP, polled from the tick timer: promote the standby once it
 * is nearly level with the leader's log. */
static void
replica__change_catch_up(struct replica *r)
{
    unsigned pos = 0;
    if (replica__member(r, r->change_op->node_id, &pos) == NULL) {
        replica__change_done(r, RV_ENOTFOUND, "the node left");
        return;
    }
    if (r->raft.leader_state.progress[pos].match_index + 64 >=
        raft_last_index(&r->raft)) {
        r->step = STEP_VOTER;
        replica__change_next(r);
    } else if (rv_clock_mono_ms() > r->step_deadline_ms) {
        replica__change_done(r, RV_ETIMEDOUT,
                             "the node did not catch up in 10 minutes");
    }
}

/* STEP_TRANSFER: ask raft once. Returns as replica__change_add. */
static int
replica__change_transfer(struct replica *r)
{
    if (r->is_transfer_sent)
        return -1;
    if (r->change_op->node_id == r->id) {
        /* Leadership is where it was asked to go: nothing to move. */
        r->step = STEP_NONE;
        replica__change_done(r, RV_OK, NULL);
        return -1;
    }
    r->transfer_req.data = r;
    int rv = raft_transfer(&r->raft, &r->transfer_req, r->change_op->node_id,
                           replica__transfer_cb);
    if (rv == 0)
        r->is_transfer_sent = 1;
    return rv == 0 ? -1 : rv;
}

/* The step's raft request was refused with rv (not 0). */
static void
replica__change_refused(struct replica *r, int rv)
{
    if (rv == RAFT_CANTCHANGE)
        return; /* Another change is committing: the tick retries. */
    char msg[RV_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "%s", raft_strerror(rv));
    replica__change_done(r,
                         rv == RAFT_NOTLEADER     ? RV_ENOTLEADER
                         : rv == RAFT_BADID       ? RV_ENOTFOUND
                         : rv == RAFT_DUPLICATEID ? RV_EEXIST
                                                  : RV_EINVAL,
                         msg);
}

void
replica__change_next(struct replica *r)
{
    struct replica_op *c = r->change_op;
    int rv = -1;
    /* is_serving lags raft (the check handle updates it once per loop
     * turn); a leader that stepped down in this turn's tick has no
     * progress array any more. */
    if (c == NULL || r->is_in_flight || !r->is_serving ||
        raft_state(&r->raft) != RAFT_LEADER ||
        r->raft.leader_state.progress == NULL)
        return;
    r->change_req.data = r;
    switch (r->step) {
    case STEP_NODE_PUT:
    case STEP_NODE_DEL:
        /* Once: a strict node's write waits for a sync after it applied
         * (in r->sync_waiters), and queueing it again there re-proposed
         * the record on every loop turn and lost its results. */
        if (!r->is_step_write_busy) {
            int rc = replica__step_write(r, r->step == STEP_NODE_PUT);
            if (rc != RV_OK)
                replica__change_done(r, rc, "cannot encode the node record");
        }
        return; /* The write goes out with the next batch. */
    case STEP_ADD:
        rv = replica__change_add(r);
        break;
    case STEP_STANDBY:
        rv = raft_assign(&r->raft, &r->change_req, c->node_id, RAFT_STANDBY,
                         replica__change_cb);
        break;
    case STEP_CATCH_UP:
        replica__change_catch_up(r);
        return;
    case STEP_VOTER:
        rv = raft_assign(&r->raft, &r->change_req, c->node_id, RAFT_VOTER,
                         replica__change_cb);
        break;
    case STEP_REMOVE:
        if (replica__member(r, c->node_id, NULL) == NULL) {
            r->step = STEP_NODE_DEL;
            replica__change_next(r);
            return;
        }
        rv = raft_remove(&r->raft, &r->change_req, c->node_id,
                         replica__change_cb);
        break;
    case STEP_TRANSFER:
        rv = replica__change_transfer(r);
        break;
    case STEP_NONE:
    default:
        return;
    }
    if (rv == 0)
        r->is_in_flight = 1;
    else if (rv > 0)
        replica__change_refused(r, rv);
}

void
replica__change_start(struct replica *r, struct replica_op *op)
{
    r->change_op = op;
    switch (op->change) {
    case REPLICA_ADD:
        r->step = STEP_NODE_PUT;
        break;
    case REPLICA_REMOVE:
        r->step = STEP_REMOVE;
        break;
    case REPLICA_TRANSFER:
        r->step = STEP_TRANSFER;
        r->is_transfer_sent = 0;
        break;
    }
    replica__change_next(r);
}

/* Announce this node's addresses once per term it leads, if the record
 * differs from what the store holds. */
void
replica__announce(struct replica *r)
{
    char errmsg[RV_ERRMSG_SIZE];
    struct store_read *rd;
    struct store_node *nodes = NULL;
    size_t n = 0;
    int is_same = 0;
    if (r->announced_term == r->raft.current_term || r->change_op != NULL)
        return;
    r->announced_term = r->raft.current_term;
    if (store_read_begin(r->store, STORE_EVERY_TEAM, &rd, errmsg) != RV_OK)
        return;
    if (store_nodes_list(rd, &nodes, &n, errmsg) == RV_OK) {
        for (size_t i = 0; i < n; i++)
            if (nodes[i].id == r->id &&
                strcmp(nodes[i].raft_addr, r->raft_addr) == 0 &&
                strcmp(nodes[i].rpc_addr, r->rpc_addr) == 0 &&
                strcmp(nodes[i].http_addr, r->http_addr) == 0)
                is_same = 1;
    }
    free(nodes);
    store_read_end(rd);
    if (is_same)
        return;
    /* A change op of our own with no client waiting. */
    struct replica_op *op = calloc(1, sizeof *op);
    if (op == NULL)
        return;
    op->kind = REPLICA_OP_CHANGE;
    op->change = REPLICA_ADD;
    op->node_id = r->id;
    snprintf(op->raft_addr, sizeof op->raft_addr, "%s", r->raft_addr);
    snprintf(op->rpc_addr, sizeof op->rpc_addr, "%s", r->rpc_addr);
    snprintf(op->http_addr, sizeof op->http_addr, "%s", r->http_addr);
    op->is_acked = 1; /* Freed when finished, nobody waits. */
    replica__change_start(r, op);
}

void
replica__membership_tick(struct replica *r)
{
    if (r->change_op != NULL && r->step == STEP_CATCH_UP)
        replica__change_next(r);
    if (r->change_op != NULL && r->step == STEP_TRANSFER &&
        r->is_transfer_sent && raft_state(&r->raft) != RAFT_LEADER) {
        r->step = STEP_NONE; /* Leadership moved before the callback. */
        replica__change_done(r, RV_OK, NULL);
    }
}
