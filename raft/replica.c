/* The replica: raft on its libuv loop thread, the batcher, leadership
 * and shutdown (contract in replica.h, state in replica_int.h;
 * membership changes are in membership.c). */
#include "base/clock.h"
#include "raft/replica_int.h"
#include "store/scrub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Small helpers ------------------------------------------------------ */

void
replica__push(struct replica__list *l, struct replica_op *op)
{
    op->next = NULL;
    if (l->tail != NULL)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    l->n++;
}

struct replica_op *
replica__pop(struct replica__list *l)
{
    struct replica_op *op = l->head;
    if (op == NULL)
        return NULL;
    l->head = op->next;
    if (l->head == NULL)
        l->tail = NULL;
    l->n--;
    op->next = NULL;
    return op;
}

void
replica__finish(struct replica_op *op, int code, const char *message)
{
    if (op->is_acked) {
        /* A memory-mode write acknowledged at acceptance: its copy is ours. */
        free((void *)op->packed);
        free(op->results);
        free(op);
        return;
    }
    op->code = code;
    if (message != NULL)
        snprintf(op->message, sizeof op->message, "%s", message);
    else if (code != RV_OK)
        snprintf(op->message, sizeof op->message, "%s", rv_strerror(code));
    op->done(op);
}

void
replica__finish_all(struct replica__list *l, int code, const char *message)
{
    struct replica_op *op;
    while ((op = replica__pop(l)) != NULL)
        replica__finish(op, code, message);
}

struct replica *
replica__of_raft(struct raft *raft)
{
    struct raftguard *g = raft->data;
    return g->user_data;
}

const char *
replica_state_name(int state)
{
    switch (state) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

const char *
replica_role_name(int role)
{
    switch (role) {
    case RAFT_VOTER:
        return "voter";
    case RAFT_STANDBY:
        return "standby";
    case RAFT_SPARE:
        return "spare";
    default:
        return "none";
    }
}

const char *
replica_durability_name(int durability)
{
    switch (durability) {
    case REPLICA_MEMORY:
        return "memory";
    case REPLICA_STRICT:
        return "strict";
    default:
        return "buffered";
    }
}

int
replica_durability_parse(const char *s, int *out)
{
    static const char *const names[] = {"memory", "buffered", "strict"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = REPLICA_MEMORY + i;
            return 0;
        }
    }
    return -1;
}

int
replica_pack_commands(Rv__Command *const *commands, size_t n,
                      struct rv_buf *out, char *errmsg)
{
    Rv__CommandBatch one = RV__COMMAND_BATCH__INIT;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        one.n_commands = 1;
        one.commands = (Rv__Command **)&commands[i];
        total += rv__command_batch__get_packed_size(&one);
        if (total > PROTO_MAX_PAYLOAD_BYTES) {
            rv_errmsg_printf(errmsg,
                             "the commands take more than %u bytes encoded",
                             (unsigned)PROTO_MAX_PAYLOAD_BYTES);
            return RV_ETOOBIG;
        }
    }
    if (rv_buf_reserve(out, total) != RV_OK)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        one.n_commands = 1;
        one.commands = (Rv__Command **)&commands[i];
        /* A batch of one command is exactly its field-1 record. */
        out->len += rv__command_batch__pack(&one, out->data + out->len);
    }
    return RV_OK;
}

void
replica_op_clean(struct replica_op *op)
{
    free(op->results);
    op->results = NULL;
    op->n_results = 0;
}

/* ---- Fail-stop and close ------------------------------------------------- */

static void replica__begin_close(struct replica *r);

/* The exit code of a failed FSM: a format this build does not know (a
 * newer runvault's entry or snapshot) is not a disk error. */
static int
replica__fsm_exit(const struct replica *r)
{
    return r->fsm.is_failed && r->fsm.fail_rc == RV_EVERSION ? RV_EXIT_VERSION
                                                             : RV_EXIT_IO;
}

void
replica__fail(struct replica *r, int exit_code, const char *why)
{
    if (r->exit_code == RV_EXIT_OK)
        r->exit_code = exit_code;
    rv_logf(r->log, RV_LOG_ERROR, "replica", "stopping: %s", why);
    r->is_stopping = 1;
    r->is_stop_transfer_sent = 1; /* No handover from a failed node. */
    replica__begin_close(r);
}

static void
replica__handle_closed(uv_handle_t *h)
{
    (void)h;
}

void
replica__raft_closed(struct raft *raft)
{
    struct replica *r = replica__of_raft(raft);
    r->is_closed = 1;
    uv_close((uv_handle_t *)&r->async, replica__handle_closed);
    uv_close((uv_handle_t *)&r->check, replica__handle_closed);
    uv_close((uv_handle_t *)&r->sync_timer, replica__handle_closed);
    uv_close((uv_handle_t *)&r->tick_timer, replica__handle_closed);
    uv_close((uv_handle_t *)&r->close_timer, replica__handle_closed);
    uv_close((uv_handle_t *)&r->lag_timer, replica__handle_closed);
}

/* raft_close must not run inside a raft callback (§6 #9): a 0 ms timer
 * defers it to a later loop turn. */
static void
replica__close_timer_cb(uv_timer_t *t)
{
    struct replica *r = t->data;
    if (r->is_closing)
        return;
    r->is_closing = 1;
    /* Sync what was applied: a clean stop needs no replay. */
    char errmsg[RV_ERRMSG_SIZE];
    int is_synced = 0;
    if (!r->fsm.is_failed && r->exit_code == RV_EXIT_OK) {
        if (store_sync(r->store, errmsg) != RV_OK)
            rv_logf(r->log, RV_LOG_ERROR, "replica", "final sync: %s", errmsg);
        else
            is_synced = 1;
    }
    /* Strict writes waiting for a sync: durable if this one worked. */
    if (is_synced)
        replica__finish_all(&r->sync_waiters, RV_OK, NULL);
    else
        replica__finish_all(&r->sync_waiters, RV_EUNKNOWN,
                            "the node is stopping before its sync");
    replica__finish_all(&r->writes, RV_EUNAVAILABLE, "the node is stopping");
    replica__finish_all(&r->barriers, RV_EUNAVAILABLE, "the node is stopping");
    if (r->change_op != NULL) {
        replica__finish(r->change_op, RV_EUNKNOWN, "the node is stopping");
        r->change_op = NULL;
    }
    pthread_mutex_lock(&r->lock);
    struct replica__list in = r->inbound;
    memset(&r->inbound, 0, sizeof r->inbound);
    pthread_mutex_unlock(&r->lock);
    replica__finish_all(&in, RV_EUNAVAILABLE, "the node is stopping");
    raft_close(&r->raft, replica__raft_closed);
}

static void
replica__begin_close(struct replica *r)
{
    store_scrub_stop(r->scrub); /* No wake-ups from the scrub from now. */
    if (!uv_is_active((uv_handle_t *)&r->close_timer) && !r->is_closing)
        uv_timer_start(&r->close_timer, replica__close_timer_cb, 0, 0);
}

/* ---- Entries: batches and barriers ----------------------------------------
 */

static void replica__schedule(struct replica *r);

/* The next step after a raft callback with this status. raft 0.15 fails a
 * deposed leader's requests (RAFT_LEADERSHIPLOST) from convertClearLeader,
 * after it freed the progress array but while raft_state() still says
 * leader: a raft_apply or raft_barrier made from inside such a callback
 * replicates through the freed array (a NULL dereference, found by the
 * fault suite's leader partition). A failed request's follow-up therefore
 * runs on a later loop turn, through the async handle. */
void
replica__schedule_after(struct replica *r, int status)
{
    if (status == 0)
        replica__schedule(r);
    else
        uv_async_send(&r->async);
}

static int
replica__effective_durability(const struct replica *r,
                              const struct replica_op *op)
{
    return op->durability > r->durability ? op->durability : r->durability;
}

/* The entry in flight finished with status; its ops are r->in_flight. */
static void
replica__entry_done(struct replica *r, int status,
                    const struct raftfsm_result *res, uint64_t index)
{
    struct replica_op *op;
    r->is_in_flight = 0;
    if (status != 0) {
        int code = status == RAFT_NOTLEADER ? RV_ENOTLEADER : RV_EUNKNOWN;
        char msg[RV_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "entry %llu: %s%s", (unsigned long long)index,
                 raft_strerror(status),
                 code == RV_EUNKNOWN ? " (it may still commit: retry with "
                                       "the same idempotency key)"
                                     : "");
        while ((op = replica__pop(&r->in_flight)) != NULL) {
            if (op->kind == REPLICA_OP_BARRIER)
                replica__finish(op, RV_EUNAVAILABLE, msg);
            else
                replica__finish(op, code, msg);
        }
        if (status == RAFT_IOERR || status == RAFT_NOSPACE || r->fsm.is_failed)
            replica__fail(r, replica__fsm_exit(r), msg);
        return;
    }
    while ((op = replica__pop(&r->in_flight)) != NULL) {
        op->index = index;
        if (op->kind == REPLICA_OP_WRITE && res != NULL &&
            op->result_base + op->n_commands <= res->n_results &&
            op->n_commands > 0) {
            op->results = malloc(op->n_commands * sizeof *op->results);
            if (op->results != NULL) {
                memcpy(op->results, res->results + op->result_base,
                       op->n_commands * sizeof *op->results);
                op->n_results = op->n_commands;
            }
        }
        if (op->kind == REPLICA_OP_WRITE &&
            replica__effective_durability(r, op) == REPLICA_STRICT)
            replica__push(&r->sync_waiters, op);
        else
            replica__finish(op, RV_OK, NULL);
    }
    if (r->sync_waiters.n > 0)
        replica__sync_start(r);
}

static void
replica__apply_cb(struct raft_apply *req, int status, void *result)
{
    struct replica *r = req->data;
    replica__entry_done(r, status, result, req->index);
    replica__schedule_after(r, status);
}

static void
replica__barrier_cb(struct raft_barrier *req, int status)
{
    struct replica *r = req->data;
    if (status == 0 && r->is_leader && !r->is_serving) {
        r->is_serving = 1;
        rv_logf(r->log, RV_LOG_INFO, "replica",
                "leader for term %llu: serving from index %llu",
                (unsigned long long)r->raft.current_term,
                (unsigned long long)req->index);
    }
    replica__entry_done(r, status, NULL, req->index);
    replica__schedule_after(r, status);
}

/* Build one entry from the queued writes (FIFO, as many as fit) and apply
 * it; every queued barrier rides on it. */
static void
replica__submit_batch(struct replica *r)
{
    struct replica_op *op;
    size_t base = 0, len = 0;
    /* Take ops FIFO while they fit, then copy each op's packed commands
     * straight into raft's buffer (one copy per entry, found by the
     * profile in docs/BENCHMARKS.md). */
    while ((op = r->writes.head) != NULL) {
        if (len > 0 &&
            (len + op->packed_len > PROTO_MAX_PAYLOAD_BYTES ||
             base + op->n_commands > CONTRACT_MAX_COMMANDS_PER_BATCH))
            break;
        replica__pop(&r->writes);
        r->pending_bytes -= op->packed_len;
        op->result_base = base;
        base += op->n_commands;
        len += op->packed_len;
        replica__push(&r->in_flight, op);
    }
    size_t n = proto_envelope_size(len);
    struct raft_buffer buf = {raft_malloc(n), n};
    int rv = RAFT_NOMEM;
    if (buf.base != NULL) {
        uint8_t *p = (uint8_t *)buf.base + PROTO_HEADER_BYTES;
        for (op = r->in_flight.head; op != NULL; op = op->next) {
            memcpy(p, op->packed, op->packed_len);
            p += op->packed_len;
        }
        proto_envelope_seal(buf.base, len);
        r->apply_req.data = r;
        rv = raft_apply(&r->raft, &r->apply_req, &buf, 1, replica__apply_cb);
    }
    if (rv != 0) {
        raft_free(buf.base);
        /* Not appended: nothing of it can commit. */
        while ((op = replica__pop(&r->in_flight)) != NULL)
            replica__finish(
                op, rv == RAFT_NOTLEADER ? RV_ENOTLEADER : RV_EUNAVAILABLE,
                raft_strerror(rv));
        return;
    }
    while ((op = replica__pop(&r->barriers)) != NULL)
        replica__push(&r->in_flight, op);
    r->is_in_flight = 1;
    r->n_entries++;
    r->n_commands += base;
}

static void
replica__submit_barrier(struct replica *r)
{
    struct replica_op *op;
    r->barrier_req.data = r;
    int rv = raft_barrier(&r->raft, &r->barrier_req, replica__barrier_cb);
    if (rv != 0) {
        replica__finish_all(&r->barriers,
                            rv == RAFT_NOTLEADER ? RV_ENOTLEADER
                                                 : RV_EUNAVAILABLE,
                            raft_strerror(rv));
        return;
    }
    while ((op = replica__pop(&r->barriers)) != NULL)
        replica__push(&r->in_flight, op);
    r->is_in_flight = 1;
    r->n_barriers++;
}

/* ---- The scheduler ------------------------------------------------------- */

static void
replica__schedule(struct replica *r)
{
    if (r->is_in_flight || r->is_closing || !r->is_leader ||
        raft_state(&r->raft) != RAFT_LEADER)
        return;
    if (!r->is_serving) {
        r->barrier_req.data = r;
        if (raft_barrier(&r->raft, &r->barrier_req, replica__barrier_cb) == 0) {
            r->is_in_flight = 1;
            r->n_barriers++;
        }
        return;
    }
    replica__announce(r);
    if (r->change_op != NULL)
        replica__change_next(r);
    if (r->is_in_flight)
        return;
    if (r->writes.n > 0)
        replica__submit_batch(r);
    else if (r->barriers.n > 0)
        replica__submit_barrier(r);
}

/* raft stopped itself (a failed disk write or a failed log truncation,
 * raft-0.15.md §6 #5, #6, #12). Closing it crashed in libraft's free (the
 * fault suite: a node restarted after a kill -9 as leader), so raft is left
 * as it is: the loop ends at once with RV_EXIT_RAFT and node/ exits the
 * process, as a crash would (raft's log is synced as it is written and the
 * store is crash-safe; a supervisor restarts the node). Ops are finished:
 * the one in flight may still commit elsewhere. */
static void
replica__abandon(struct replica *r)
{
    rv_logf(r->log, RV_LOG_ERROR, "replica",
            "raft stopped itself: stopping now (code %d)", RV_EXIT_RAFT);
    r->exit_code = RV_EXIT_RAFT;
    r->is_stopping = 1;
    r->is_abandoned = 1;
    store_scrub_stop(r->scrub);
    replica__finish_all(&r->in_flight, RV_EUNKNOWN, "raft stopped itself");
    replica__finish_all(&r->sync_waiters, RV_EUNKNOWN, "raft stopped itself");
    replica__finish_all(&r->writes, RV_EUNAVAILABLE, "the node is stopping");
    replica__finish_all(&r->barriers, RV_EUNAVAILABLE, "the node is stopping");
    if (r->change_op != NULL) {
        replica__finish(r->change_op, RV_EUNKNOWN, "the node is stopping");
        r->change_op = NULL;
    }
    replica__publish(r);
    uv_stop(&r->loop); /* replica__thread finishes the inbound queue. */
}

/* Leadership changes, polled every loop turn (0.15 has no callback). */
void
replica__check_cb(uv_check_t *h)
{
    struct replica *r = h->data;
    if (!r->is_raft_started || r->is_closed)
        return;
    int is_leader = raft_state(&r->raft) == RAFT_LEADER;
    if (is_leader && !r->is_leader) {
        r->is_leader = 1;
        r->is_serving = 0;
        rv_logf(r->log, RV_LOG_INFO, "replica",
                "elected leader for term %llu: barrier before serving",
                (unsigned long long)r->raft.current_term);
        replica__schedule(r);
    } else if (!is_leader && r->is_leader) {
        r->is_leader = 0;
        r->is_serving = 0;
        rv_logf(r->log, RV_LOG_INFO, "replica", "lost leadership (now %s)",
                replica_state_name(raft_state(&r->raft)));
        /* Queued, never appended: certainly not applied. */
        struct replica_op *op;
        while ((op = replica__pop(&r->writes)) != NULL) {
            r->pending_bytes -= op->packed_len;
            if (op == &r->step_write) {
                r->is_step_write_busy = 0; /* Never appended. */
                continue;
            }
            replica__finish(op, RV_ENOTLEADER, "leadership moved");
        }
        replica__finish_all(&r->barriers, RV_ENOTLEADER, "leadership moved");
        if (r->change_op != NULL && !r->is_in_flight)
            replica__change_done(r, RV_ENOTLEADER, "leadership moved");
    }
    if (r->fsm.is_failed && !r->is_stopping)
        replica__fail(r, replica__fsm_exit(r), r->fsm.errmsg);
    if (raft_state(&r->raft) == RAFT_UNAVAILABLE && !r->is_stopping &&
        !r->is_closing)
        replica__abandon(r);
    replica__publish(r);
}

/* Queue a write handed in (a leader, not stopping), or refuse it when the
 * queue is full. */
static void
replica__accept_write(struct replica *r, struct replica_op *op)
{
    if (r->is_disk_low) {
        char why[RV_ERRMSG_SIZE];
        snprintf(why, sizeof why,
                 "the leader (node %llu) has %llu bytes free on its data "
                 "disk, under its threshold of %llu: writes are refused",
                 (unsigned long long)r->id,
                 (unsigned long long)r->disk_free_bytes,
                 (unsigned long long)r->min_free_bytes);
        replica__finish(op, RV_ENOSPACE, why);
        return;
    }
    if (r->pending_bytes + op->packed_len > REPLICA_MAX_PENDING_BYTES) {
        replica__finish(op, RV_EUNAVAILABLE,
                        "the write queue is full: retry later");
        return;
    }
    if (replica__effective_durability(r, op) == REPLICA_MEMORY) {
        /* Acknowledged on acceptance: keep a copy, answer now. */
        struct replica_op *copy = malloc(sizeof *copy);
        void *packed = malloc(op->packed_len ? op->packed_len : 1);
        if (copy == NULL || packed == NULL) {
            free(copy);
            free(packed);
            replica__finish(op, RV_ENOMEM, NULL);
            return;
        }
        memcpy(packed, op->packed, op->packed_len);
        *copy = *op;
        copy->packed = packed;
        copy->is_acked = 1;
        replica__finish(op, RV_OK, NULL);
        op = copy;
    }
    r->pending_bytes += op->packed_len;
    replica__push(&r->writes, op);
}

static void
replica__take_inbound(struct replica *r)
{
    pthread_mutex_lock(&r->lock);
    struct replica__list in = r->inbound;
    memset(&r->inbound, 0, sizeof r->inbound);
    int is_stop = r->is_stop_requested;
    int is_removed = r->is_removed;
    r->is_removed = 0;
    pthread_mutex_unlock(&r->lock);
    if (is_removed && !r->is_leader && !r->is_stopping)
        replica__fail(r, RV_EXIT_REMOVED,
                      "the leader removed this node from the cluster");
    pthread_mutex_lock(&r->lock);
    int is_corrupt = r->is_corrupt;
    char why[RV_ERRMSG_SIZE];
    snprintf(why, sizeof why, "%s", r->corrupt_msg);
    pthread_mutex_unlock(&r->lock);
    if (is_corrupt && !r->is_stopping)
        replica__fail(r, RV_EXIT_CORRUPT, why);
    struct replica_op *op;
    while ((op = replica__pop(&in)) != NULL) {
        if (r->is_stopping || r->is_closing) {
            replica__finish(op, RV_EUNAVAILABLE, "the node is stopping");
            continue;
        }
        if (!r->is_leader || (!r->is_serving && op->kind != REPLICA_OP_WRITE)) {
            replica__finish(op, RV_ENOTLEADER, NULL);
            continue;
        }
        switch (op->kind) {
        case REPLICA_OP_WRITE:
            replica__accept_write(r, op);
            break;
        case REPLICA_OP_BARRIER:
            replica__push(&r->barriers, op);
            break;
        case REPLICA_OP_CHANGE:
            if (r->change_op != NULL) {
                replica__finish(op, RV_ESTATE,
                                "another membership change is in progress");
                break;
            }
            replica__change_start(r, op);
            break;
        }
    }
    if (is_stop && !r->is_stopping) {
        r->is_stopping = 1;
        r->stop_deadline_ms = rv_clock_mono_ms() + 2u * r->election_ms;
        rv_logf(r->log, RV_LOG_INFO, "replica", "stopping");
    }
    replica__schedule(r);
}

void
replica__async_cb(uv_async_t *h)
{
    struct replica *r = h->data;
    uint64_t t0 = rv_clock_mono_ns();
    replica__take_inbound(r);
    raftfsm_note_busy(&r->fsm, "inbound", t0);
}

/* Stop handling: a leader with another voter hands leadership over first,
 * then raft closes. */
static void
replica__stop_step(struct replica *r)
{
    if (!r->is_stopping || r->is_closing)
        return;
    int has_other_voter = 0;
    const struct raft_configuration *c = &r->raft.configuration;
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id != r->id && c->servers[i].role == RAFT_VOTER)
            has_other_voter = 1;
    if (r->is_leader && has_other_voter && !r->is_stop_transfer_sent &&
        rv_clock_mono_ms() < r->stop_deadline_ms) {
        r->transfer_req.data = r;
        int rv =
            raft_transfer(&r->raft, &r->transfer_req, 0, replica__transfer_cb);
        rv_logf(r->log, RV_LOG_INFO, "replica",
                "stopping: transferring leadership: %s",
                rv == 0 ? "started" : raft_strerror(rv));
        r->is_stop_transfer_sent = 1;
        if (rv == 0)
            return;
    }
    if (r->is_leader && r->is_stop_transfer_sent &&
        rv_clock_mono_ms() < r->stop_deadline_ms &&
        raft_state(&r->raft) == RAFT_LEADER)
        return; /* Wait for the transfer (or the deadline). */
    replica__begin_close(r);
}

void
replica__tick_cb(uv_timer_t *t)
{
    struct replica *r = t->data;
    if (r->is_closed)
        return;
    uint64_t t0 = rv_clock_mono_ns();
    replica__take_inbound(r);
    replica__membership_tick(r);
    replica__disk_tick(r);
    replica__maint_tick(r);
    replica__schedule(r);
    replica__stop_step(r);
    raftfsm_note_busy(&r->fsm, "tick", t0);
    /* Removed from a configuration it was in (and that committed): stop.
     * A joiner restoring an older configuration without it is not. */
    if (r->is_raft_started && !r->is_stopping) {
        int is_member = replica__member(r, r->id, NULL) != NULL;
        if (is_member)
            r->was_member = 1;
        else if (r->was_member &&
                 r->raft.configuration_index <= r->raft.commit_index &&
                 r->raft.configuration_index > 0)
            replica__fail(r, RV_EXIT_REMOVED,
                          "this node was removed from the cluster");
    }
}

/* ---- Scrub ----------------------------------------------------------------
 */

/* The scrub (store/scrub.h) found a damaged sealed vlog segment: stop the
 * node with RV_EXIT_CORRUPT (the operator wipes it and it rejoins). On the
 * scrub's thread; never after replica__begin_close() stopped the scrub. */
void
replica__on_corrupt(void *data, const char *why)
{
    struct replica *r = data;
    pthread_mutex_lock(&r->lock);
    if (!r->is_corrupt) {
        r->is_corrupt = 1;
        snprintf(r->corrupt_msg, sizeof r->corrupt_msg, "%s", why);
    }
    if (!r->is_loop_done)
        uv_async_send(&r->async);
    pthread_mutex_unlock(&r->lock);
}

/* ---- Start and stop ------------------------------------------------------ */

void *
replica__thread(void *arg)
{
    struct replica *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    replica__sync_drain(r);
    pthread_mutex_lock(&r->lock);
    r->is_loop_done = 1;
    struct replica__list in = r->inbound;
    memset(&r->inbound, 0, sizeof r->inbound);
    pthread_cond_broadcast(&r->applied_cond);
    pthread_mutex_unlock(&r->lock);
    replica__finish_all(&in, RV_EUNAVAILABLE, "the node is stopping");
    return NULL;
}

void
replica_submit(struct replica *r, struct replica_op *op)
{
    op->code = RV_OK;
    op->message[0] = '\0';
    op->index = 0;
    op->results = NULL;
    op->n_results = 0;
    op->is_acked = 0;
    pthread_mutex_lock(&r->lock);
    int is_done = r->is_loop_done || r->is_stop_requested;
    if (!is_done)
        replica__push(&r->inbound, op);
    pthread_mutex_unlock(&r->lock);
    if (is_done) {
        op->code = RV_EUNAVAILABLE;
        snprintf(op->message, sizeof op->message, "the node is stopping");
        op->done(op);
        return;
    }
    uv_async_send(&r->async);
}

void
replica_removed(struct replica *r)
{
    pthread_mutex_lock(&r->lock);
    r->is_removed = 1;
    int is_done = r->is_loop_done;
    pthread_mutex_unlock(&r->lock);
    if (!is_done)
        uv_async_send(&r->async);
}

void
replica_stop(struct replica *r)
{
    pthread_mutex_lock(&r->lock);
    r->is_stop_requested = 1;
    int is_done = r->is_loop_done;
    pthread_mutex_unlock(&r->lock);
    if (!is_done)
        uv_async_send(&r->async);
}

int
replica_is_running(struct replica *r)
{
    pthread_mutex_lock(&r->lock);
    int is_running = !r->is_loop_done;
    pthread_mutex_unlock(&r->lock);
    return is_running;
}

int
replica_exit_code(struct replica *r)
{
    pthread_mutex_lock(&r->lock);
    int code = r->is_loop_done ? r->exit_code : RV_EXIT_OK;
    pthread_mutex_unlock(&r->lock);
    return code;
}
