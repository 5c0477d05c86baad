/* The replica: raft on its libuv loop thread, the batcher, leadership
 * and shutdown (contract in replica.h, state in replica_int.h;
 * membership changes are in membership.c). */
#include "base/clock.h"
#include "raft/replica_int.h"
#include "store/scrub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static struct replica *
replica__of_raft(struct raft *raft)
{
    struct raftguard *g = raft->data;
    return g->user_data;
}

static struct replica *
replica__of_io(struct raft_io *io)
{
    return replica__of_raft(io->data);
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

/* ---- Publishing state ---------------------------------------------------- */

static void
replica__publish(struct replica *r)
{
    struct replica_info in;
    memset(&in, 0, sizeof in);
    in.id = r->id;
    in.state = r->is_raft_started ? raft_state(&r->raft) : RAFT_UNAVAILABLE;
    in.is_serving = r->is_serving;
    if (r->is_raft_started) {
        const char *addr;
        raft_id leader;
        raft_leader(&r->raft, &leader, &addr);
        in.leader_id = leader;
        in.term = r->raft.current_term;
        in.last_index = raft_last_index(&r->raft);
        in.commit_index = r->raft.commit_index;
        const struct raft_configuration *c = &r->raft.configuration;
        for (unsigned i = 0; i < c->n && i < REPLICA_MAX_PEERS; i++) {
            in.members[i].id = c->servers[i].id;
            snprintf(in.members[i].raft_addr, sizeof in.members[i].raft_addr,
                     "%s", c->servers[i].address);
            in.members[i].role = c->servers[i].role;
            in.n_members++;
        }
    }
    in.applied_index = store_applied_index(r->store);
    in.durability = r->durability;
    in.n_entries = r->n_entries;
    in.n_commands = r->n_commands;
    in.n_barriers = r->n_barriers;
    in.n_syncs = r->n_syncs;
    in.n_snapshots = r->fsm.n_snapshots;
    in.n_catch_ups = r->fsm.n_catch_ups;
    in.n_fetched_records = r->fsm.n_fetched_records;
    pthread_mutex_lock(&r->lock);
    int is_advanced = in.applied_index != r->info.applied_index;
    r->info = in;
    if (is_advanced)
        pthread_cond_broadcast(&r->applied_cond);
    pthread_mutex_unlock(&r->lock);
}

void
replica_info(struct replica *r, struct replica_info *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->info;
    pthread_mutex_unlock(&r->lock);
}

int
replica_wait_applied(struct replica *r, uint64_t index, unsigned timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = RV_OK;
    pthread_mutex_lock(&r->lock);
    while (r->info.applied_index < index) {
        if (r->is_loop_done) {
            rc = RV_EUNAVAILABLE;
            break;
        }
        if (pthread_cond_timedwait(&r->applied_cond, &r->lock, &until) ==
            ETIMEDOUT) {
            rc = r->info.applied_index >= index ? RV_OK : RV_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

struct store *
replica_store(struct replica *r)
{
    return r->store;
}

/* ---- Fail-stop and close ------------------------------------------------- */

static void replica__begin_close(struct replica *r);

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

/* raft_uv may call the close callback twice (raft-0.15.md §6 #8): only the
 * first call reaches raft. */
static void
replica__io_close_cb(struct raft_io *io)
{
    struct replica *r = replica__of_io(io);
    if (r->is_io_close_fired)
        return;
    r->is_io_close_fired = 1;
    r->io_close_cb(io);
}

static void
replica__io_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct replica *r = replica__of_io(io);
    r->io_close_cb = cb;
    r->io_close(io, replica__io_close_cb);
}

/* raft_io_append requests carry raft's own data pointer, so the wrapped
 * callback finds its replica here: one replica per process. */
static struct replica *replica__append_owner;

/* A disk write failed on this node (leader or follower): raft 0.15 would
 * carry on with a log it did not persist (§6 #5, #6), so stop. */
static void
replica__io_append_cb(struct raft_io_append *req, int status)
{
    struct replica *r = replica__append_owner;
    raft_io_append_cb cb = NULL;
    /* Find the request among the wrapped ones; few are ever pending. */
    for (size_t i = 0; r != NULL && i < r->n_appends; i++) {
        if (r->appends[i].req == req) {
            cb = r->appends[i].cb;
            r->appends[i] = r->appends[--r->n_appends];
            break;
        }
    }
    if (status != 0 && r != NULL && !r->is_closing) {
        char why[RV_ERRMSG_SIZE];
        snprintf(why, sizeof why, "raft log write failed: %s",
                 raft_strerror(status));
        replica__fail(r, RV_EXIT_IO, why);
    }
    if (cb != NULL)
        cb(req, status);
}

static int
replica__io_append(struct raft_io *io, struct raft_io_append *req,
                   const struct raft_entry entries[], unsigned n,
                   raft_io_append_cb cb)
{
    struct replica *r = replica__of_io(io);
    if (r->n_appends == r->cap_appends) {
        size_t cap = r->cap_appends ? 2 * r->cap_appends : 16;
        struct replica__append *a = realloc(r->appends, cap * sizeof *a);
        if (a == NULL)
            return RAFT_NOMEM;
        r->appends = a;
        r->cap_appends = cap;
    }
    r->appends[r->n_appends++] = (struct replica__append){req, cb};
    int rv = r->io_append(io, req, entries, n, replica__io_append_cb);
    if (rv != 0)
        r->n_appends--; /* Not started: raft handles the error itself. */
    return rv;
}

static void
replica__handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void
replica__raft_closed(struct raft *raft)
{
    struct replica *r = replica__of_raft(raft);
    r->is_closed = 1;
    uv_close((uv_handle_t *)&r->async, replica__handle_closed);
    uv_close((uv_handle_t *)&r->check, replica__handle_closed);
    uv_close((uv_handle_t *)&r->sync_timer, replica__handle_closed);
    uv_close((uv_handle_t *)&r->tick_timer, replica__handle_closed);
    uv_close((uv_handle_t *)&r->close_timer, replica__handle_closed);
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
    if (!r->fsm.is_failed && r->exit_code == RV_EXIT_OK &&
        store_sync(r->store, errmsg) != RV_OK)
        rv_logf(r->log, RV_LOG_ERROR, "replica", "final sync: %s", errmsg);
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

static void
replica__sync_waiters(struct replica *r)
{
    char errmsg[RV_ERRMSG_SIZE];
    if (r->sync_waiters.n == 0)
        return;
    int rc = store_sync(r->store, errmsg);
    r->n_syncs++;
    if (rc != RV_OK) {
        replica__finish_all(&r->sync_waiters, RV_EUNKNOWN, errmsg);
        replica__fail(r, RV_EXIT_IO, errmsg);
        return;
    }
    r->last_synced = store_applied_index(r->store);
    replica__finish_all(&r->sync_waiters, RV_OK, NULL);
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
            replica__fail(r, RV_EXIT_IO, msg);
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
    replica__sync_waiters(r);
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
        if (len > 0 && (len + op->packed_len > PROTO_MAX_PAYLOAD_BYTES ||
                        base + op->n_commands > STORE_MAX_COMMANDS_PER_BATCH))
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
static void
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
            if (op == &r->step_write)
                continue;
            replica__finish(op, RV_ENOTLEADER, "leadership moved");
        }
        replica__finish_all(&r->barriers, RV_ENOTLEADER, "leadership moved");
        if (r->change_op != NULL && !r->is_in_flight)
            replica__change_done(r, RV_ENOTLEADER, "leadership moved");
    }
    if (r->fsm.is_failed && !r->is_stopping)
        replica__fail(r, RV_EXIT_IO, r->fsm.errmsg);
    if (raft_state(&r->raft) == RAFT_UNAVAILABLE && !r->is_stopping &&
        !r->is_closing)
        replica__abandon(r);
    replica__publish(r);
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
            if (r->pending_bytes + op->packed_len > REPLICA_MAX_PENDING_BYTES) {
                replica__finish(op, RV_EUNAVAILABLE,
                                "the write queue is full: retry later");
                break;
            }
            if (replica__effective_durability(r, op) == REPLICA_MEMORY) {
                /* Acknowledged on acceptance: keep a copy, answer now. */
                struct replica_op *copy = malloc(sizeof *copy);
                void *packed = malloc(op->packed_len ? op->packed_len : 1);
                if (copy == NULL || packed == NULL) {
                    free(copy);
                    free(packed);
                    replica__finish(op, RV_ENOMEM, NULL);
                    break;
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

static void
replica__async_cb(uv_async_t *h)
{
    replica__take_inbound(h->data);
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

static void
replica__tick_cb(uv_timer_t *t)
{
    struct replica *r = t->data;
    if (r->is_closed)
        return;
    replica__take_inbound(r);
    replica__membership_tick(r);
    replica__schedule(r);
    replica__stop_step(r);
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

static void
replica__sync_cb(uv_timer_t *t)
{
    struct replica *r = t->data;
    char errmsg[RV_ERRMSG_SIZE];
    if (r->is_closing || r->fsm.is_failed)
        return;
    uint64_t applied = store_applied_index(r->store);
    if (applied == r->last_synced)
        return;
    if (store_sync(r->store, errmsg) != RV_OK) {
        replica__fail(r, RV_EXIT_IO, errmsg);
        return;
    }
    r->n_syncs++;
    r->last_synced = applied;
}

/* ---- Scrub ----------------------------------------------------------------
 */

/* The scrub (store/scrub.h) found a damaged sealed vlog segment: stop the
 * node with RV_EXIT_CORRUPT (the operator wipes it and it rejoins). On the
 * scrub's thread; never after replica__begin_close() stopped the scrub. */
static void
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

static void *
replica__thread(void *arg)
{
    struct replica *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
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

static int
replica__mkdir(const char *path, char *errmsg)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        rv_errmsg_printf(errmsg, "mkdir %s: %s", path, strerror(errno));
        return RV_EIO;
    }
    return RV_OK;
}

static int
replica__raft_err(struct replica *r, int rv, const char *what, char *errmsg)
{
    rv_errmsg_printf(errmsg, "%s: %s (%s)", what, raft_strerror(rv),
                     r->is_raft_init ? raft_errmsg(&r->raft) : "");
    return RV_EUNAVAILABLE;
}

static int
replica__bootstrap(struct replica *r, const struct replica_config *cfg,
                   char *errmsg)
{
    struct raft_configuration conf;
    int rv = 0;
    if (cfg->is_join)
        return RV_OK;
    raft_configuration_init(&conf);
    if (cfg->n_peers == 0) {
        rv = raft_configuration_add(&conf, r->id, r->raft_addr, RAFT_VOTER);
    } else {
        for (size_t i = 0; i < cfg->n_peers && rv == 0; i++)
            rv = raft_configuration_add(&conf, cfg->peers[i].id,
                                        cfg->peers[i].raft_addr, RAFT_VOTER);
    }
    if (rv == 0)
        rv = raft_bootstrap(&r->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP)
        return RV_OK; /* A restart: the log already holds a configuration. */
    if (rv != 0)
        return replica__raft_err(r, rv, "raft_bootstrap", errmsg);
    rv_logf(r->log, RV_LOG_INFO, "replica", "bootstrapped a cluster of %zu",
            cfg->n_peers ? cfg->n_peers : 1);
    return RV_OK;
}

static int
replica__check_config(const struct replica_config *cfg, char *errmsg)
{
    unsigned e = cfg->election_ms ? cfg->election_ms : REPLICA_DEFAULT_ELECTION;
    unsigned h =
        cfg->heartbeat_ms ? cfg->heartbeat_ms : REPLICA_DEFAULT_HEARTBEAT;
    if (cfg->id == 0 || cfg->raft_addr == NULL || cfg->data_dir == NULL) {
        rv_errmsg_printf(errmsg, "id, raft address and data dir are needed");
        return RV_EINVAL;
    }
    if (h * 5 > e || h < 10) {
        rv_errmsg_printf(errmsg,
                         "heartbeat %u ms must be >= 10 and at most a fifth "
                         "of the election timeout %u ms",
                         h, e);
        return RV_EINVAL;
    }
    if (cfg->n_peers > REPLICA_MAX_PEERS) {
        rv_errmsg_printf(errmsg, "at most %d peers", REPLICA_MAX_PEERS);
        return RV_EINVAL;
    }
    int is_self_in_peers = cfg->n_peers == 0;
    for (size_t i = 0; i < cfg->n_peers; i++)
        if (cfg->peers[i].id == cfg->id) {
            is_self_in_peers = 1;
            if (strcmp(cfg->peers[i].raft_addr, cfg->raft_addr) != 0) {
                rv_errmsg_printf(errmsg,
                                 "--peers gives node %llu the raft address "
                                 "%s, not %s",
                                 (unsigned long long)cfg->id,
                                 cfg->peers[i].raft_addr, cfg->raft_addr);
                return RV_EINVAL;
            }
        }
    if (!is_self_in_peers) {
        rv_errmsg_printf(errmsg, "--peers does not list this node's id %llu",
                         (unsigned long long)cfg->id);
        return RV_EINVAL;
    }
    return RV_OK;
}

/* After the loop has ended (or never ran): release raft_uv, the
 * transport and the loop, then everything else. */
static void
replica__free(struct replica *r)
{
    if (r->is_io_init)
        raft_uv_close(&r->io);
    if (r->is_transport_init)
        raft_uv_tcp_close(&r->transport);
    if (r->is_loop_init) {
        for (int i = 0; i < 100 && uv_loop_close(&r->loop) == UV_EBUSY; i++)
            uv_run(&r->loop, UV_RUN_NOWAIT);
    }
    if (replica__append_owner == r)
        replica__append_owner = NULL;
    if (r->is_raft_init)
        raftguard_close(&r->guard);
    free(r->appends);
    rv_buf_free(&r->step_packed);
    raftfsm_close(&r->fsm);
    store_close(r->store);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->applied_cond);
    free(r->data_dir);
    free(r);
}

/* raft started badly or never started: close it on this thread. */
static void
replica__abort(struct replica *r)
{
    if (r->is_raft_init) {
        raft_close(&r->raft, replica__raft_closed);
        uv_run(&r->loop, UV_RUN_DEFAULT);
    }
    replica__free(r);
}

static int
replica__init_raft(struct replica *r, const struct replica_config *cfg,
                   char *errmsg)
{
    int rv = uv_loop_init(&r->loop);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "uv_loop_init: %s", uv_strerror(rv));
        return RV_EIO;
    }
    r->is_loop_init = 1;
    rv = raft_uv_tcp_init(&r->transport, &r->loop);
    if (rv != 0)
        return replica__raft_err(r, rv, "raft_uv_tcp_init", errmsg);
    r->is_transport_init = 1;
    rv = raft_uv_init(&r->io, &r->loop, r->raft_dir, &r->transport);
    if (rv != 0)
        return replica__raft_err(r, rv, "raft_uv_init", errmsg);
    r->is_io_init = 1;
    raft_uv_set_auto_recovery(&r->io, false); /* §3: never drop entries. */
    raft_uv_set_snapshot_compression(&r->io, false);
    rv = raft_init(&r->raft, &r->io, &r->fsm.fsm, r->id, r->raft_addr);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "raft_init: %s (%s)", raft_strerror(rv),
                         raft_errmsg(&r->raft));
        return RV_EUNAVAILABLE;
    }
    r->is_raft_init = 1;
    raftfsm_attach(&r->fsm, &r->raft);
    raft_set_election_timeout(&r->raft, r->election_ms);
    raft_set_heartbeat_timeout(&r->raft, r->heartbeat_ms);
    raft_set_pre_vote(&r->raft, true);
    raft_set_snapshot_threshold(&r->raft, 128); /* Asks; bytes decide. */
    raft_set_snapshot_trailing(&r->raft, cfg->snapshot_trailing
                                             ? cfg->snapshot_trailing
                                             : REPLICA_SNAPSHOT_TRAILING);
    raft_set_install_snapshot_timeout(&r->raft, 120000);
    r->raft.data = r;
    rv = raftguard_install(&r->guard, &r->raft); /* raft.data: the guard. */
    if (rv != 0) {
        r->guard.user_data = r; /* For replica__of_raft() while closing. */
        r->raft.data = &r->guard;
        rv_errmsg_printf(errmsg, "raftguard_install: %s", raft_strerror(rv));
        return RV_ESTATE;
    }
    r->io_append = r->io.append;
    r->io.append = replica__io_append;
    r->io_close = r->io.close;
    r->io.close = replica__io_close;
    return RV_OK;
}

static int
replica__init_handles(struct replica *r)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&r->async, (uv_handle_t *)&r->check,
                         (uv_handle_t *)&r->sync_timer,
                         (uv_handle_t *)&r->tick_timer,
                         (uv_handle_t *)&r->close_timer};
    int rv = uv_async_init(&r->loop, &r->async, replica__async_cb);
    if (rv == 0)
        rv = uv_check_init(&r->loop, &r->check);
    if (rv == 0)
        rv = uv_timer_init(&r->loop, &r->sync_timer);
    if (rv == 0)
        rv = uv_timer_init(&r->loop, &r->tick_timer);
    if (rv == 0)
        rv = uv_timer_init(&r->loop, &r->close_timer);
    if (rv != 0)
        return RV_EIO;
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        hs[i]->data = r;
    uv_check_start(&r->check, replica__check_cb);
    uv_timer_start(&r->sync_timer, replica__sync_cb, r->sync_ms, r->sync_ms);
    uv_timer_start(&r->tick_timer, replica__tick_cb, r->heartbeat_ms,
                   r->heartbeat_ms);
    return RV_OK;
}

int
replica_start(struct replica **out, const struct replica_config *cfg,
              char *errmsg)
{
    int rc = replica__check_config(cfg, errmsg);
    if (rc != RV_OK)
        return rc;
    if (replica__append_owner != NULL) {
        rv_errmsg_printf(errmsg, "one replica per process");
        return RV_ESTATE;
    }
    struct replica *r = calloc(1, sizeof *r);
    if (r == NULL)
        return RV_ENOMEM;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->applied_cond, NULL);
    r->id = cfg->id;
    r->data_dir = strdup(cfg->data_dir);
    snprintf(r->raft_addr, sizeof r->raft_addr, "%s", cfg->raft_addr);
    snprintf(r->rpc_addr, sizeof r->rpc_addr, "%s",
             cfg->rpc_addr ? cfg->rpc_addr : "");
    snprintf(r->http_addr, sizeof r->http_addr, "%s",
             cfg->http_addr ? cfg->http_addr : "");
    r->durability = cfg->durability ? cfg->durability : REPLICA_BUFFERED;
    r->election_ms =
        cfg->election_ms ? cfg->election_ms : REPLICA_DEFAULT_ELECTION;
    r->heartbeat_ms =
        cfg->heartbeat_ms ? cfg->heartbeat_ms : REPLICA_DEFAULT_HEARTBEAT;
    r->sync_ms = cfg->sync_ms ? cfg->sync_ms : REPLICA_DEFAULT_SYNC_MS;
    r->log = cfg->log;
    replica__append_owner = r;
    rv_buf_init(&r->step_packed);
    if (r->data_dir == NULL) {
        replica__free(r);
        return RV_ENOMEM;
    }
    snprintf(r->raft_dir, sizeof r->raft_dir, "%s/raft", cfg->data_dir);
    rc = replica__mkdir(cfg->data_dir, errmsg);
    if (rc == RV_OK)
        rc = replica__mkdir(r->raft_dir, errmsg);
    struct store_config scfg = {cfg->data_dir, 0, cfg->segment_bytes, cfg->log,
                                NULL};
    if (rc == RV_OK)
        rc = store_open(&r->store, &scfg, errmsg);
    if (rc != RV_OK) {
        replica__free(r);
        return rc;
    }
    raftfsm_init(&r->fsm, r->store, cfg->log);
    r->fsm.self_addr = r->rpc_addr;
    r->fsm.fetch = cfg->fetch;
    r->fsm.fetch_data = cfg->fetch_data;
    r->fsm.snapshot_bytes =
        cfg->snapshot_bytes ? cfg->snapshot_bytes : REPLICA_DEFAULT_SNAPSHOT;
    r->last_synced = store_applied_index(r->store);
    rc = replica__init_raft(r, cfg, errmsg);
    if (rc == RV_OK)
        rc = replica__bootstrap(r, cfg, errmsg);
    if (rc == RV_OK)
        rc = replica__init_handles(r);
    if (rc == RV_OK) {
        int rv = raft_start(&r->raft);
        if (rv != 0) {
            rc = replica__raft_err(r, rv, "raft_start", errmsg);
            if (rv == RAFT_IOERR)
                rv_errmsg_printf(errmsg,
                                 "raft_start: I/O error (%s) - is the raft "
                                 "address %s in use, or the raft log "
                                 "damaged?",
                                 raft_errmsg(&r->raft), r->raft_addr);
        } else
            r->is_raft_started = 1;
    }
    /* Every applied entry came from this raft log, which is fsynced before
     * anything is applied: a store ahead of it was made elsewhere (runvault
     * demo, another cluster), and raft's next entries would be skipped as
     * already applied. */
    if (rc == RV_OK &&
        store_applied_index(r->store) > raft_last_index(&r->raft)) {
        rv_errmsg_printf(errmsg,
                         "the store in %s is at index %llu, ahead of its raft "
                         "log (last index %llu): it was not made by this "
                         "node; use an empty data dir",
                         cfg->data_dir,
                         (unsigned long long)store_applied_index(r->store),
                         (unsigned long long)raft_last_index(&r->raft));
        rc = RV_ECORRUPT;
    }
    if (rc == RV_OK && r->fsm.is_failed) {
        rv_errmsg_printf(errmsg, "%s", r->fsm.errmsg);
        rc = RV_EIO;
    }
    if (rc == RV_OK) {
        replica__publish(r);
        if (pthread_create(&r->thread, NULL, replica__thread, r) != 0) {
            rv_errmsg_printf(errmsg, "pthread_create failed");
            rc = RV_ENOMEM;
        }
    }
    /* Without its scrub the node still serves (reads check CRCs). */
    if (rc == RV_OK && store_scrub_start(&r->scrub, r->data_dir, r->log,
                                         replica__on_corrupt, r) != RV_OK)
        r->scrub = NULL;
    if (rc != RV_OK) {
        replica__abort(r);
        return rc;
    }
    rv_logf(r->log, RV_LOG_INFO, "replica",
            "node %llu started: raft %s, applied index %llu, durability %s",
            (unsigned long long)r->id, r->raft_addr,
            (unsigned long long)store_applied_index(r->store),
            replica_durability_name(r->durability));
    *out = r;
    return RV_OK;
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

int
replica_wait(struct replica *r)
{
    pthread_join(r->thread, NULL);
    store_scrub_wait(r->scrub);
    r->scrub = NULL;
    if (r->is_abandoned)
        return RV_EXIT_RAFT; /* Nothing may be closed: see replica.h. */
    int code = r->exit_code;
    replica__free(r);
    return code;
}
