#include "raft/raftguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every installed guard: an append callback gets only its request, so it
 * looks for the guard that holds it (a handful of guards per process, a
 * few pending writes each; raft's thread only). */
static struct raftguard *raftguard__all[RAFTGUARD_MAX_GUARDS];

static struct raftguard *
raftguard__of(struct raft_io *io)
{
    struct raft *r = io->data;
    return r->data;
}

/* Free the batches only entries [0, k) of a received AppendEntries use
 * (a batch is one allocation for a run of consecutive entries; the first
 * kept entry's batch stays). */
static void
raftguard__free_dropped(struct raft_entry *e, unsigned k, unsigned n)
{
    void *kept = k < n ? e[k].batch : NULL;
    for (unsigned i = 0; i < k; i++) {
        if (e[i].batch != NULL && e[i].batch != kept &&
            (i == 0 || e[i].batch != e[i - 1].batch))
            raft_free(e[i].batch);
    }
}

/* raft 0.15's follower takes an AppendEntries whose entries begin below
 * its in-memory log (prev_log_index 0, or any index under the log's
 * offset after a snapshot) for entries it lacks: logTermOf() answers 0
 * there, so all of them are appended after its last entry, at the wrong
 * indexes, and logAcquire() then walks the reference table for an index
 * it never held (a NULL dereference: the fault soak's SIGSEGV). Entries up
 * to the follower's snapshot are committed and applied here, and by Leader
 * Completeness the leader's log holds the same ones: drop them, so the
 * request starts at the snapshot's last index, which the follower checks
 * against the snapshot's term as it checks any prev_log_index. A request
 * that lies wholly inside the snapshot becomes a heartbeat at it. */
static void
raftguard__trim_snapshotted(struct raftguard *g, struct raft_append_entries *a)
{
    const struct raft_log *log = &g->raft->log;
    raft_index snap = log->snapshot.last_index;
    if (a->n_entries == 0 || snap == 0 || a->prev_log_index >= log->offset)
        return;
    raft_index covered = snap - a->prev_log_index;
    unsigned k = covered < a->n_entries ? (unsigned)covered : a->n_entries;
    if (g->n_trimmed++ < 8)
        fprintf(stderr,
                "raftguard: AppendEntries after %llu: %u of %u entries are "
                "in this node's snapshot (to %llu, log offset %llu): "
                "dropped\n",
                (unsigned long long)a->prev_log_index, k, a->n_entries,
                (unsigned long long)snap, (unsigned long long)log->offset);
    raftguard__free_dropped(a->entries, k, a->n_entries);
    if (k == a->n_entries) {
        raft_free(a->entries);
        a->entries = NULL;
        a->n_entries = 0;
        a->prev_log_index = snap;
        a->prev_log_term = log->snapshot.last_term;
        return;
    }
    a->prev_log_term = a->entries[k - 1].term;
    a->prev_log_index += k;
    a->n_entries -= k;
    memmove(a->entries, a->entries + k, a->n_entries * sizeof *a->entries);
}

/* dst = a copy of src (dst initialised or zeroed). RAFT_NOMEM. */
static int
raftguard__config_copy(struct raft_configuration *dst,
                       const struct raft_configuration *src)
{
    struct raft_configuration c;
    raft_configuration_init(&c);
    for (unsigned i = 0; i < src->n; i++) {
        const struct raft_server *sv = &src->servers[i];
        int rv = raft_configuration_add(&c, sv->id, sv->address, sv->role);
        if (rv != 0) {
            raft_configuration_close(&c);
            return rv;
        }
    }
    raft_configuration_close(dst);
    *dst = c;
    return 0;
}

/* Entries in raft's in-memory log (a ring of size slots, [front, back)). */
static raft_index
raftguard__log_n(const struct raft_log *l)
{
    if (l->size == 0)
        return 0;
    return l->back >= l->front ? l->back - l->front
                               : l->size - l->front + l->back;
}

/* The term of index in raft's log as its own logTermOf answers it: 0 where
 * the log holds no entry (under its offset but the snapshot's index, or
 * past its end). */
static raft_term
raftguard__term_of(const struct raft_log *l, raft_index index)
{
    raft_index n = raftguard__log_n(l);
    raft_index last = n == 0 ? l->snapshot.last_index : l->offset + n;
    if (index == 0 || index > last)
        return 0;
    if (index == l->snapshot.last_index)
        return l->snapshot.last_term;
    if (index < l->offset + 1)
        return 0;
    return l->entries[(l->front + (size_t)(index - l->offset) - 1) % l->size]
        .term;
}

/* Work-around 4 (raftguard.h): copy raft's configuration while committed;
 * roll an uncommitted one back from the copy where raft 0.15 would read
 * a committed entry its log no longer holds. */
static void
raftguard__rollback(struct raftguard *g, const struct raft_append_entries *a)
{
    struct raft *r = g->raft;
    if (r->configuration_uncommitted_index == 0) {
        if (r->configuration_index != 0 &&
            r->configuration_index != g->committed_index &&
            raftguard__config_copy(&g->committed, &r->configuration) == 0)
            g->committed_index = r->configuration_index;
        return;
    }
    raft_index u = r->configuration_uncommitted_index;
    if (a == NULL || g->no_rollback_fix || a->term < r->current_term ||
        r->configuration_index >= r->log.offset + 1 ||
        g->committed_index != r->configuration_index || a->prev_log_index >= u)
        return; /* raft's own rollback reads an entry it holds, or none. */
    if (a->prev_log_index > 0 &&
        raftguard__term_of(&r->log, a->prev_log_index) != a->prev_log_term)
        return; /* Rejected before the log is touched. */
    raft_index conflict = 0;
    for (unsigned k = 0; k < a->n_entries && conflict == 0; k++) {
        raft_index idx = a->prev_log_index + 1 + k;
        raft_term local = raftguard__term_of(&r->log, idx);
        if (local == 0)
            break; /* Only new entries from here: nothing rolled back. */
        if (local != a->entries[k].term)
            conflict = idx;
    }
    if (conflict == 0 || conflict > u || conflict <= r->commit_index)
        return;
    if (raftguard__config_copy(&r->configuration, &g->committed) != 0)
        return; /* Out of memory: raft's rollback as it is. */
    r->configuration_uncommitted_index = 0;
    if (g->n_rollbacks++ < 8)
        fprintf(stderr,
                "raftguard: rolled back the uncommitted configuration at "
                "%llu to the committed one at %llu (no longer in the log; "
                "the leader's entry %llu differs)\n",
                (unsigned long long)u,
                (unsigned long long)r->configuration_index,
                (unsigned long long)conflict);
}

static void
raftguard__recv(struct raft_io *io, struct raft_message *m)
{
    struct raftguard *g = raftguard__of(io);
    int was_bounded = g->is_bounded;
    raft_index was_bound = g->bound;
    raftguard__rollback(g, NULL); /* Keep the committed copy current. */
    if (m->type == RAFT_IO_APPEND_ENTRIES) {
        if (!g->no_snapshot_trim)
            raftguard__trim_snapshotted(g, &m->append_entries);
        raftguard__rollback(g, &m->append_entries);
        g->is_bounded = 1;
        g->bound =
            m->append_entries.prev_log_index + m->append_entries.n_entries;
        /* raft 0.15 sets commit_index = min(leader_commit, last_stored):
         * a stale suffix past the entries of this request would count as
         * committed and be applied. Only what the request proves matching
         * may be committed (raft rejects it when prev does not match, and
         * then ignores leader_commit). */
        if (!g->no_commit_clamp && m->append_entries.leader_commit > g->bound) {
            if (g->n_commit_clamped++ < 8) /* Rare: say so, bounded. */
                fprintf(stderr,
                        "raftguard: leader_commit %llu lowered to %llu "
                        "(prev_log_index %llu + %u entries)\n",
                        (unsigned long long)m->append_entries.leader_commit,
                        (unsigned long long)g->bound,
                        (unsigned long long)m->append_entries.prev_log_index,
                        m->append_entries.n_entries);
            m->append_entries.leader_commit = g->bound;
        }
    } else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
        g->is_bounded = 1;
        g->bound = m->install_snapshot.last_index;
    }
    g->recv(io, m); /* m may be released in here. */
    g->is_bounded = was_bounded;
    g->bound = was_bound;
}

static int
raftguard__start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                 raft_io_recv_cb recv)
{
    struct raftguard *g = raftguard__of(io);
    g->recv = recv;
    return g->start(io, msecs, tick, raftguard__recv);
}

/* A write completed: a reply raft sends from its callback answers exactly
 * the entries written, so it reports at most their last index. */
static void
raftguard__append_cb(struct raft_io_append *req, int status)
{
    struct raftguard *g = NULL;
    struct raftguard_append a = {NULL, NULL, 0};
    for (size_t k = 0; g == NULL && k < RAFTGUARD_MAX_GUARDS; k++) {
        struct raftguard *x = raftguard__all[k];
        for (size_t i = 0; x != NULL && i < x->n_appends; i++) {
            if (x->appends[i].req == req) {
                g = x;
                a = x->appends[i];
                x->appends[i] = x->appends[--x->n_appends];
                break;
            }
        }
    }
    if (g == NULL) {
        /* Every write raft starts through a guard is recorded before it
         * starts; a callback for none of them means the table is broken,
         * and dropping it would stall raft silently. */
        fprintf(stderr, "raftguard: append callback for an unknown request "
                        "(a bug): aborting\n");
        abort();
    }
    int was_bounded = g->is_bounded;
    raft_index was_bound = g->bound;
    g->is_bounded = 1;
    g->bound = a.last;
    if (status != 0 && g->on_write_failed != NULL)
        g->on_write_failed(g, status);
    a.cb(req, status);
    g->is_bounded = was_bounded;
    g->bound = was_bound;
}

static int
raftguard__append(struct raft_io *io, struct raft_io_append *req,
                  const struct raft_entry entries[], unsigned n,
                  raft_io_append_cb cb)
{
    struct raftguard *g = raftguard__of(io);
    if (g->n_appends == g->cap_appends) {
        size_t cap = g->cap_appends ? 2 * g->cap_appends : 16;
        struct raftguard_append *a = realloc(g->appends, cap * sizeof *a);
        if (a == NULL)
            return RAFT_NOMEM;
        g->appends = a;
        g->cap_appends = cap;
    }
    /* The entries go after the last one in raft's log, which already holds
     * them (raft appends in memory first). */
    raft_index last = raft_last_index(g->raft);
    (void)entries;
    g->appends[g->n_appends++] = (struct raftguard_append){req, cb, last};
    int rv = g->append(io, req, entries, n, raftguard__append_cb);
    if (rv != 0)
        g->n_appends--;
    return rv;
}

static int
raftguard__send(struct raft_io *io, struct raft_io_send *req,
                const struct raft_message *message, raft_io_send_cb cb)
{
    struct raftguard *g = raftguard__of(io);
    if (message->type != RAFT_IO_APPEND_ENTRIES_RESULT ||
        message->append_entries_result.rejected != 0 || !g->is_bounded ||
        message->append_entries_result.last_log_index <= g->bound)
        return g->send(io, req, message, cb);
    /* The io encodes or copies the message before send returns, as raft's
     * own callers pass messages on their stack. */
    struct raft_message m = *message;
    m.append_entries_result.last_log_index = g->bound;
    g->n_clamped++;
    return g->send(io, req, &m, cb);
}

int
raftguard_install(struct raftguard *g, struct raft *r)
{
    size_t slot = 0;
    while (slot < RAFTGUARD_MAX_GUARDS && raftguard__all[slot] != NULL)
        slot++;
    if (slot == RAFTGUARD_MAX_GUARDS)
        return RAFT_TOOMANY; /* r is left as it was. */
    memset(g, 0, sizeof *g);
    g->raft = r;
    g->user_data = r->data;
    r->data = g;
    g->start = r->io->start;
    g->send = r->io->send;
    g->append = r->io->append;
    r->io->start = raftguard__start;
    r->io->send = raftguard__send;
    r->io->append = raftguard__append;
    raftguard__all[slot] = g;
    return 0;
}

void
raftguard_close(struct raftguard *g)
{
    for (size_t k = 0; k < RAFTGUARD_MAX_GUARDS; k++)
        if (raftguard__all[k] == g)
            raftguard__all[k] = NULL;
    free(g->appends);
    g->appends = NULL;
    g->n_appends = g->cap_appends = 0;
    raft_configuration_close(&g->committed);
    g->committed_index = 0;
}
