#include "raft/raftfsm.h"

#include <stdlib.h>
#include <string.h>

static int
raftfsm__apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
               void **result)
{
    struct raftfsm *f = fsm->data;
    uint64_t index = raft_last_applied(f->raft) + 1;
    struct store_result *res = NULL;
    size_t n = 0;

    free(f->last.results);
    f->last = (struct raftfsm_result){index, NULL, 0};
    *result = &f->last;
    if (f->is_failed)
        return RAFT_IOERR;
    int rc =
        store_apply(f->store, index, buf->base, buf->len, &res, &n, f->errmsg);
    if (rc != RV_OK) {
        /* A local fault: raft retries a failing apply forever, so the node
         * must stop instead (fail-stop). */
        f->is_failed = 1;
        rv_logf(f->log, RV_LOG_ERROR, "raftfsm", "apply %llu: %s: %s",
                (unsigned long long)index, rv_strerror(rc), f->errmsg);
        return RAFT_IOERR;
    }
    f->last.results = res;
    f->last.n_results = n;
    return 0;
}

void
raftfsm_snapshot_encode(uint64_t index,
                        const uint8_t digest[STORE_DIGEST_BYTES], uint8_t *out)
{
    rv_put_be32(out, RAFTFSM_SNAPSHOT_MAGIC);
    rv_put_be32(out + 4, 1);
    rv_put_be64(out + 8, index);
    memcpy(out + 16, digest, STORE_DIGEST_BYTES);
}

int
raftfsm_snapshot_decode(const void *buf, size_t len, uint64_t *index,
                        uint8_t digest[STORE_DIGEST_BYTES])
{
    const uint8_t *p = buf;
    if (len != RAFTFSM_SNAPSHOT_BYTES ||
        rv_get_be32(p) != RAFTFSM_SNAPSHOT_MAGIC || rv_get_be32(p + 4) != 1)
        return RV_EMALFORMED;
    *index = rv_get_be64(p + 8);
    memcpy(digest, p + 16, STORE_DIGEST_BYTES);
    return RV_OK;
}

/* raft deletes the log prefix up to the snapshot, so everything applied
 * must be durable in the store first. */
static int
raftfsm__snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                  unsigned *n_bufs)
{
    struct raftfsm *f = fsm->data;
    uint8_t digest[STORE_DIGEST_BYTES];

    if (f->is_failed)
        return RAFT_IOERR;
    int rc = store_sync(f->store, f->errmsg);
    if (rc != RV_OK) {
        f->is_failed = 1;
        rv_logf(f->log, RV_LOG_ERROR, "raftfsm", "snapshot: %s", f->errmsg);
        return RAFT_IOERR;
    }
    *bufs = raft_malloc(sizeof **bufs);
    if (*bufs == NULL)
        return RAFT_NOMEM;
    (*bufs)[0].base = raft_malloc(RAFTFSM_SNAPSHOT_BYTES);
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        return RAFT_NOMEM;
    }
    (*bufs)[0].len = RAFTFSM_SNAPSHOT_BYTES;
    store_digest(f->store, digest);
    raftfsm_snapshot_encode(store_applied_index(f->store), digest,
                            (*bufs)[0].base);
    *n_bufs = 1;
    f->n_snapshots++;
    return 0;
}

/* A descriptor at or behind the local store changes nothing (the committed
 * prefixes are identical). One ahead of it needs the missing vlog records
 * from a peer, which the node fetches; until that exists this refuses. */
static int
raftfsm__restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct raftfsm *f = fsm->data;
    uint64_t index;
    uint8_t digest[STORE_DIGEST_BYTES];

    if (raftfsm_snapshot_decode(buf->base, buf->len, &index, digest) != RV_OK) {
        rv_logf(f->log, RV_LOG_ERROR, "raftfsm",
                "restore: snapshot descriptor does not decode");
        return RAFT_MALFORMED;
    }
    if (index > store_applied_index(f->store)) {
        rv_logf(f->log, RV_LOG_ERROR, "raftfsm",
                "restore: snapshot at %llu is ahead of the store at %llu",
                (unsigned long long)index,
                (unsigned long long)store_applied_index(f->store));
        return RAFT_IOERR;
    }
    raft_free(buf->base); /* On success the FSM owns the buffer. */
    f->n_restores_kept++;
    return 0;
}

void
raftfsm_init(struct raftfsm *f, struct store *s, const struct rv_log *log)
{
    memset(f, 0, sizeof *f);
    f->fsm.version = 1;
    f->fsm.data = f;
    f->fsm.apply = raftfsm__apply;
    f->fsm.snapshot = raftfsm__snapshot;
    f->fsm.restore = raftfsm__restore;
    f->store = s;
    f->log = log;
}

void
raftfsm_attach(struct raftfsm *f, struct raft *r)
{
    f->raft = r;
}

void
raftfsm_close(struct raftfsm *f)
{
    free(f->last.results);
    f->last.results = NULL;
}
