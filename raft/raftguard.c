#include "raft/raftguard.h"

#include <string.h>

static struct raftguard *
raftguard__of(struct raft_io *io)
{
    struct raft *r = io->data;
    return r->data;
}

/* A reply that will be sent later; they complete in order. */
static void
raftguard__push(struct raftguard *g, raft_index bound)
{
    if (g->n_pending == RAFTGUARD_MAX_PENDING) {
        g->head = (g->head + 1) % RAFTGUARD_MAX_PENDING;
        g->n_pending--;
    }
    g->pending[(g->head + g->n_pending) % RAFTGUARD_MAX_PENDING] = bound;
    g->n_pending++;
}

static void
raftguard__recv(struct raft_io *io, struct raft_message *m)
{
    struct raftguard *g = raftguard__of(io);
    if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
        /* The reply reports the snapshot's last index, legitimately: it
         * is its own bound, now or (after the snapshot is stored) later. */
        raft_index last = m->install_snapshot.last_index;
        if (m->install_snapshot.term > g->term) {
            g->term = m->install_snapshot.term;
            g->n_pending = 0;
        }
        g->cur_bound = last;
        g->is_in_recv = 1;
        g->has_replied = 0;
        g->recv(io, m);
        g->is_in_recv = 0;
        if (!g->has_replied)
            raftguard__push(g, last);
        return;
    }
    if (m->type != RAFT_IO_APPEND_ENTRIES) {
        g->recv(io, m);
        return;
    }
    const struct raft_append_entries *ae = &m->append_entries;
    if (ae->term > g->term) {
        g->term = ae->term;
        g->n_pending = 0;
    }
    unsigned n_entries = ae->n_entries;
    g->cur_bound = g->last_bound = ae->prev_log_index + n_entries;
    g->is_in_recv = 1;
    g->has_replied = 0;
    g->recv(io, m); /* m may be released in here: use the copies above. */
    g->is_in_recv = 0;
    if (!g->has_replied && n_entries > 0)
        raftguard__push(g, g->cur_bound); /* Replied after the write. */
}

static int
raftguard__start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                 raft_io_recv_cb recv)
{
    struct raftguard *g = raftguard__of(io);
    g->recv = recv;
    return g->start(io, msecs, tick, raftguard__recv);
}

static int
raftguard__send(struct raft_io *io, struct raft_io_send *req,
                const struct raft_message *message, raft_io_send_cb cb)
{
    struct raftguard *g = raftguard__of(io);
    if (message->type != RAFT_IO_APPEND_ENTRIES_RESULT ||
        message->append_entries_result.rejected != 0)
        return g->send(io, req, message, cb);
    raft_index bound;
    if (g->is_in_recv) {
        bound = g->cur_bound;
        g->has_replied = 1;
    } else if (g->n_pending > 0) {
        bound = g->pending[g->head];
        g->head = (g->head + 1) % RAFTGUARD_MAX_PENDING;
        g->n_pending--;
    } else {
        bound = g->last_bound;
    }
    if (message->append_entries_result.last_log_index <= bound)
        return g->send(io, req, message, cb);
    /* The io encodes or copies the message before send returns, as raft's
     * own callers pass messages on their stack. */
    struct raft_message m = *message;
    m.append_entries_result.last_log_index = bound;
    g->n_clamped++;
    return g->send(io, req, &m, cb);
}

void
raftguard_install(struct raftguard *g, struct raft *r)
{
    memset(g, 0, sizeof *g);
    g->raft = r;
    g->user_data = r->data;
    r->data = g;
    g->start = r->io->start;
    g->send = r->io->send;
    r->io->start = raftguard__start;
    r->io->send = raftguard__send;
}
