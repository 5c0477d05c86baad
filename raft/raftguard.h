/* Work-arounds for four raft 0.15 bugs (ARCHITECTURE.md, "The raft
 * state machine").
 *
 * 1. A follower answers a successful AppendEntries with
 * last_log_index = its last stored index, which counts a stale suffix past
 * the entries the leader sent; the leader takes that as the match index and
 * can commit an entry a majority does not hold.
 *
 * The guard wraps the raft_io of one server: start (to see incoming
 * messages), append (to see which write a later reply follows) and send
 * (to rewrite outgoing results). A successful AppendEntriesResult never
 * reports more than the match index Raft defines for what it answers:
 * prev_log_index + n_entries of the request, for a reply sent while the
 * request is received; the last index of the write that just completed,
 * for a reply sent from a follower's append callback (raft 0.15 sends none
 * for some writes, so replies cannot be matched to requests by order).
 * Replies to an InstallSnapshot report the snapshot's index and pass
 * unchanged. Reporting less than the truth is always safe: the leader
 * resends and the follower answers again.
 *
 * 2. A follower that accepts an AppendEntries sets its commit index to
 * min(leader_commit, last stored index), so a stale, unverified suffix of
 * its own log past the request's entries (a restarted ex-leader's) can be
 * marked committed and applied; raft later finds the conflict ("conflicting
 * terms ... -> shutdown") and stops. The guard lowers an incoming
 * AppendEntries' leader_commit to prev_log_index + n_entries before raft
 * sees it (the follower-side fix later raft forks made). Learning a commit
 * index later is always safe.
 *
 * 3. A follower whose log starts after a snapshot takes an AppendEntries
 * whose entries begin below that start (prev_log_index 0) for new entries,
 * appends them at the wrong indexes and dereferences a missing log
 * reference (SIGSEGV). The guard drops the entries the follower's
 * snapshot holds, so the request starts at the snapshot's last index.
 *
 * 4. A follower that must drop an uncommitted configuration entry (its
 * leader was lost before the change committed) reads the last committed
 * configuration entry back from its log with no check: once a snapshot
 * trimmed that entry, it dereferences NULL (fixed upstream in v0.17.1).
 * The guard keeps a copy of the configuration whenever raft's is
 * committed; before raft sees an AppendEntries that conflicts at or
 * before the uncommitted entry while the committed one is out of the
 * log, it restores that copy itself and clears the uncommitted index, as
 * raft's rollback would have, so raft only truncates.
 *
 * Loop thread only (raft's thread). */
#ifndef RV_RAFT_RAFTGUARD_H
#define RV_RAFT_RAFTGUARD_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

struct raftguard_append {
    struct raft_io_append *req;
    raft_io_append_cb cb;
    raft_index last; /* Index of the last entry written. */
};

struct raftguard {
    struct raft *raft; /* Borrowed. */
    void *user_data;   /* raft->data now points to the guard; this is what
                          the caller had there. */
    int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                 raft_io_recv_cb recv);
    int (*send)(struct raft_io *io, struct raft_io_send *req,
                const struct raft_message *message, raft_io_send_cb cb);
    int (*append)(struct raft_io *io, struct raft_io_append *req,
                  const struct raft_entry entries[], unsigned n,
                  raft_io_append_cb cb);
    raft_io_recv_cb recv;
    int is_bounded; /* A reply sent now is bounded by bound. */
    raft_index bound;
    struct raftguard_append *appends; /* Pending writes. */
    size_t n_appends, cap_appends;
    uint64_t n_clamped;        /* Results whose last_log_index was lowered. */
    uint64_t n_commit_clamped; /* AppendEntries whose leader_commit was
                                  lowered. */
    /* Set after raftguard_install() to leave leader_commit as sent (only
     * the test that shows raft 0.15's own behaviour does). */
    int no_commit_clamp;
    uint64_t n_trimmed; /* AppendEntries whose snapshotted head was
                           dropped. */
    /* A copy of raft's configuration taken while it was committed (no
     * uncommitted change), and its index; see 4. above. */
    struct raft_configuration committed;
    raft_index committed_index; /* 0: no copy yet. */
    uint64_t n_rollbacks;       /* Rollbacks the guard made. */
    int no_rollback_fix;        /* Tests only: leave them to raft 0.15. */
    /* Set after raftguard_install() to pass such requests as sent (tests
     * only). */
    int no_snapshot_trim;
    /* Optional, set after raftguard_install(): called with the guard and
     * raft's status when a log write failed, before raft's own callback
     * hears of it (the replica stops: raft 0.15 would carry on with a log
     * it did not persist). */
    void (*on_write_failed)(struct raftguard *g, int status);
};

/* At most this many guards are installed at once in a process (every
 * append callback searches them all). */
#define RAFTGUARD_MAX_GUARDS 16

/* Install g on r: after raft_init(), before raft_start(). Sets r->data to
 * g (the previous value is kept in g->user_data). Returns 0, or
 * RAFT_TOOMANY when RAFTGUARD_MAX_GUARDS guards are installed already
 * (then nothing is changed: r must not be started unguarded, close it).
 *
 * A write completion raft receives for a request no guard recorded is a
 * bug: the process aborts with a message on stderr rather than drop
 * raft's callback (which would stall its log silently). */
int raftguard_install(struct raftguard *g, struct raft *r);

/* Free what the guard allocated (after raft closed). A guard whose
 * install failed, or a zeroed one, is allowed. */
void raftguard_close(struct raftguard *g);

#endif /* RV_RAFT_RAFTGUARD_H */
