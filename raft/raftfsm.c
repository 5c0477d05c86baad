#include "raft/raftfsm.h"

#include "base/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
raftfsm_note_busy(struct raftfsm *f, const char *what, uint64_t t0_ns)
{
    uint64_t us = (rv_clock_mono_ns() - t0_ns) / 1000u;
    if (us > f->busy_us) {
        f->busy_us = us;
        f->busy_what = what;
    }
}

static int
raftfsm__apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
               void **result)
{
    struct raftfsm *f = fsm->data;
    uint64_t t0 = rv_clock_mono_ns();
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
    raftfsm_note_busy(f, "apply", t0);
    if (rc != RV_OK) {
        /* A local fault: raft retries a failing apply forever, so the node
         * must stop instead (fail-stop). */
        f->is_failed = 1;
        f->fail_rc = rc;
        rv_logf(f->log, RV_LOG_ERROR, "raftfsm", "apply %llu: %s: %s",
                (unsigned long long)index, rv_strerror(rc), f->errmsg);
        return RAFT_IOERR;
    }
    f->last.results = res;
    f->last.n_results = n;
    return 0;
}

void
raftfsm_descriptor_encode(const struct raftfsm_descriptor *d,
                          struct rv_buf *out)
{
    rv_buf_append_be32(out, RAFTFSM_SNAPSHOT_MAGIC);
    rv_buf_append_be32(out, RAFTFSM_SNAPSHOT_VERSION);
    rv_buf_append_be64(out, d->index);
    rv_buf_append(out, d->digest, STORE_DIGEST_BYTES);
    rv_buf_append_be16(out, (uint16_t)d->n_sources);
    rv_buf_append_be32(out, (uint32_t)d->n_segments);
    for (size_t i = 0; i < d->n_sources; i++)
        rv_buf_append_str16(out, d->sources[i], strlen(d->sources[i]));
    for (size_t i = 0; i < d->n_segments; i++) {
        rv_buf_append_be32(out, d->segments[i].number);
        rv_buf_append_be64(out, d->segments[i].first_index);
        rv_buf_append_be64(out, d->segments[i].last_index);
        rv_buf_append_be64(out, d->segments[i].bytes);
    }
}

int
raftfsm_descriptor_decode(const void *buf, size_t len,
                          struct raftfsm_descriptor *d)
{
    const uint8_t *p = buf, *end = p + len;
    memset(d, 0, sizeof *d);
    if (len < 38 || rv_get_be32(p) != RAFTFSM_SNAPSHOT_MAGIC)
        return RV_EMALFORMED;
    if (rv_get_be32(p + 4) > RAFTFSM_SNAPSHOT_VERSION)
        return RV_EVERSION;
    if (rv_get_be32(p + 4) != RAFTFSM_SNAPSHOT_VERSION)
        return RV_EMALFORMED;
    d->index = rv_get_be64(p + 8);
    memcpy(d->digest, p + 16, STORE_DIGEST_BYTES);
    d->n_sources = rv_get_be16(p + 32);
    uint32_t n_segments = rv_get_be32(p + 34);
    p += 38;
    if (d->n_sources > RAFTFSM_MAX_SOURCES || n_segments > RAFTFSM_MAX_SEGMENTS)
        return RV_EMALFORMED;
    for (size_t i = 0; i < d->n_sources; i++) {
        if (end - p < 2)
            return RV_EMALFORMED;
        size_t n = rv_get_be16(p);
        if (n > CONTRACT_MAX_ADDR_BYTES || (size_t)(end - p - 2) < n)
            return RV_EMALFORMED;
        memcpy(d->sources[i], p + 2, n);
        d->sources[i][n] = '\0';
        p += 2 + n;
    }
    if ((size_t)(end - p) != (size_t)n_segments * 28)
        return RV_EMALFORMED;
    if (n_segments > 0) {
        d->segments = calloc(n_segments, sizeof *d->segments);
        if (d->segments == NULL)
            return RV_ENOMEM;
    }
    d->n_segments = n_segments;
    for (size_t i = 0; i < n_segments; i++, p += 28) {
        d->segments[i].number = rv_get_be32(p);
        d->segments[i].first_index = rv_get_be64(p + 4);
        d->segments[i].last_index = rv_get_be64(p + 12);
        d->segments[i].bytes = rv_get_be64(p + 20);
    }
    return RV_OK;
}

void
raftfsm_descriptor_free(struct raftfsm_descriptor *d)
{
    free(d->segments);
    d->segments = NULL;
    d->n_segments = 0;
}

static void
raftfsm__add_source(struct raftfsm_descriptor *d, const char *addr)
{
    if (addr == NULL || addr[0] == '\0' || d->n_sources == RAFTFSM_MAX_SOURCES)
        return;
    for (size_t i = 0; i < d->n_sources; i++)
        if (strcmp(d->sources[i], addr) == 0)
            return;
    snprintf(d->sources[d->n_sources++], CONTRACT_MAX_ADDR_BYTES + 1, "%s",
             addr);
}

/* The descriptor of the store as it is now: this node's address first,
 * then every member's the store knows, and the newest sealed segments. */
static int
raftfsm__describe(struct raftfsm *f, struct raftfsm_descriptor *d)
{
    struct store_read *rd;
    struct store_node *nodes = NULL;
    size_t n_nodes = 0;
    memset(d, 0, sizeof *d);
    d->index = store_applied_index(f->store);
    store_digest(f->store, d->digest);
    raftfsm__add_source(d, f->self_addr);
    if (store_read_begin(f->store, STORE_EVERY_TEAM, &rd, f->errmsg) == RV_OK) {
        if (store_nodes_list(rd, &nodes, &n_nodes, f->errmsg) == RV_OK)
            for (size_t i = 0; i < n_nodes; i++)
                raftfsm__add_source(d, nodes[i].rpc_addr);
        free(nodes);
        store_read_end(rd);
    }
    size_t n = store_sealed_segments(f->store, NULL, 0);
    if (n == 0)
        return RV_OK;
    struct vlog_segment_info *all = calloc(n, sizeof *all);
    if (all == NULL)
        return RV_ENOMEM;
    n = store_sealed_segments(f->store, all, n);
    size_t keep = n < RAFTFSM_MAX_SEGMENTS ? n : RAFTFSM_MAX_SEGMENTS;
    memmove(all, all + (n - keep), keep * sizeof *all);
    d->segments = all;
    d->n_segments = keep;
    return RV_OK;
}

/* raft deletes the log prefix up to the snapshot, so everything applied
 * must be durable in the store first. Raft asks every threshold entries;
 * the threshold that counts is bytes of vlog (RAFT_BUSY skips). */
static int
raftfsm__snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                  unsigned *n_bufs)
{
    struct raftfsm *f = fsm->data;
    struct raftfsm_descriptor d;
    struct rv_buf out;

    if (f->is_failed)
        return RAFT_IOERR;
    uint64_t vlog_bytes = store_vlog_bytes(f->store);
    /* A compaction finished since the last snapshot: take one now, so
     * raft drops the log prefix that still holds the removed commands. */
    struct store_compact_info ci;
    store_compact_info(f->store, &ci);
    int is_compacted = ci.checkpoint_index > f->compact_at_snapshot;
    if (f->snapshot_bytes > 0 && !is_compacted &&
        vlog_bytes - f->vlog_bytes_at_snapshot < f->snapshot_bytes)
        return RAFT_BUSY;
    f->compact_at_snapshot = ci.checkpoint_index;
    uint64_t t0 = rv_clock_mono_ns();
    int rc = store_sync(f->store, f->errmsg);
    raftfsm_note_busy(f, "snapshot sync", t0);
    if (rc != RV_OK) {
        f->is_failed = 1;
        rv_logf(f->log, RV_LOG_ERROR, "raftfsm", "snapshot: %s", f->errmsg);
        return RAFT_IOERR;
    }
    if (raftfsm__describe(f, &d) != RV_OK)
        return RAFT_NOMEM;
    rv_buf_init(&out);
    raftfsm_descriptor_encode(&d, &out);
    raftfsm_descriptor_free(&d);
    *bufs = raft_malloc(sizeof **bufs);
    void *base = out.is_failed ? NULL : raft_malloc(out.len);
    if (*bufs == NULL || base == NULL) {
        raft_free(*bufs);
        raft_free(base);
        rv_buf_free(&out);
        return RAFT_NOMEM;
    }
    memcpy(base, out.data, out.len);
    (*bufs)[0].base = base;
    (*bufs)[0].len = out.len;
    rv_buf_free(&out);
    *n_bufs = 1;
    f->vlog_bytes_at_snapshot = vlog_bytes;
    f->n_snapshots++;
    return 0;
}

/* Apply the fetched records in p[0, len) past the store's applied index,
 * up to index, in order. Returns RV_OK (maybe having applied none),
 * RV_EMALFORMED for a bad frame, or the store's error (a local fault). */
static int
raftfsm__apply_fetched(struct raftfsm *f, const uint8_t *p, size_t len,
                       uint64_t index, char *errmsg)
{
    while (len > 0) {
        if (len < STORE_FETCH_RECORD_HEADER) {
            rv_errmsg_printf(errmsg, "fetched records: a cut header");
            return RV_EMALFORMED;
        }
        uint64_t at = rv_get_be64(p);
        size_t n = rv_get_be32(p + 8);
        if (n > len - STORE_FETCH_RECORD_HEADER || n > VLOG_MAX_PAYLOAD_BYTES) {
            rv_errmsg_printf(errmsg, "fetched records: a cut payload");
            return RV_EMALFORMED;
        }
        uint64_t applied = store_applied_index(f->store);
        if (at > index)
            break;
        /* Raft indexes of barriers and configuration changes never reach
         * the vlog: gaps are normal, order is not negotiable, and the
         * digest at the end checks that nothing was missed. */
        if (at > applied) {
            int rc = store_apply_record(
                f->store, at, p + STORE_FETCH_RECORD_HEADER, n, errmsg);
            if (rc != RV_OK)
                return rc;
            f->n_fetched_records++;
        }
        p += STORE_FETCH_RECORD_HEADER + n;
        len -= STORE_FETCH_RECORD_HEADER + n;
    }
    return RV_OK;
}

/* Before fetching records: when the source's records up to its
 * compaction checkpoint ck are compacted and this store is behind ck,
 * fetch the image, the (compacted) records up to ck as they are, and
 * install the image as this store's checkpoint. RV_OK also when there is
 * nothing to do. */
static int
raftfsm__catch_up_image(struct raftfsm *f, const char *addr, struct rv_buf *buf,
                        char *errmsg)
{
    uint64_t applied = store_applied_index(f->store), ck = 0, total = 0;
    if (f->fetch_image == NULL)
        return RV_OK;
    rv_buf_reset(buf);
    int rc = f->fetch_image(f->fetch_data, addr, 0, buf, &ck, &total, errmsg);
    if (rc != RV_OK || ck <= applied || total == 0)
        return rc;
    char path[4096];
    store_image_part_path(f->store, path, sizeof path);
    FILE *out = fopen(path, "wbe");
    if (out == NULL) {
        rv_errmsg_printf(errmsg, "create %s", path);
        return RV_EIO;
    }
    rv_logf(f->log, RV_LOG_INFO, "raftfsm",
            "catch-up: %s is compacted at %llu (this store is at %llu): "
            "fetching its image of %llu bytes",
            addr, (unsigned long long)ck, (unsigned long long)applied,
            (unsigned long long)total);
    uint64_t off = 0;
    while (rc == RV_OK) {
        if (buf->len == 0 || fwrite(buf->data, 1, buf->len, out) != buf->len) {
            rv_errmsg_printf(errmsg, "image from %s: %s at offset %llu", addr,
                             buf->len == 0 ? "no bytes" : "write failed",
                             (unsigned long long)off);
            rc = buf->len == 0 ? RV_EUNAVAILABLE : RV_EIO;
            break;
        }
        off += buf->len;
        if (off >= total)
            break;
        uint64_t ck2 = 0, t2 = 0;
        rv_buf_reset(buf);
        rc = f->fetch_image(f->fetch_data, addr, off, buf, &ck2, &t2, errmsg);
        if (rc == RV_OK && (ck2 != ck || t2 != total)) {
            rv_errmsg_printf(errmsg, "%s compacted again meanwhile", addr);
            rc = RV_EUNAVAILABLE;
        }
    }
    if (fflush(out) != 0 || fsync(fileno(out)) != 0)
        rc = rc == RV_OK ? RV_EIO : rc;
    fclose(out);
    /* The records up to ck, as the source holds them (compacted). */
    for (uint64_t next = applied + 1; rc == RV_OK && next <= ck;) {
        rv_buf_reset(buf);
        rc = f->fetch(f->fetch_data, addr, next, ck, buf, errmsg);
        const uint8_t *p = buf->data;
        size_t len = buf->len;
        uint64_t before = next;
        while (rc == RV_OK && len >= STORE_FETCH_RECORD_HEADER) {
            uint64_t at = rv_get_be64(p);
            size_t n = rv_get_be32(p + 8);
            if (n > len - STORE_FETCH_RECORD_HEADER) {
                rc = RV_EMALFORMED;
                break;
            }
            if (at >= next && at <= ck) {
                rc = store_append_raw(f->store, at,
                                      p + STORE_FETCH_RECORD_HEADER, n, errmsg);
                next = at + 1;
            }
            p += STORE_FETCH_RECORD_HEADER + n;
            len -= STORE_FETCH_RECORD_HEADER + n;
        }
        if (rc == RV_OK && next == before) {
            rv_errmsg_printf(errmsg, "%s sent no records from %llu", addr,
                             (unsigned long long)next);
            rc = RV_EUNAVAILABLE;
        }
    }
    if (rc == RV_OK)
        rc = store_install_image(f->store, path, errmsg);
    return rc;
}

static int
raftfsm__is_remote_error(int rc)
{
    return rc == RV_EMALFORMED || rc == RV_EUNAVAILABLE || rc == RV_ETIMEDOUT ||
           rc == RV_ENOTFOUND;
}

int
raftfsm_catch_up(struct raftfsm *f, uint64_t index,
                 char (*sources)[CONTRACT_MAX_ADDR_BYTES + 1], size_t n_sources,
                 char *errmsg)
{
    struct rv_buf buf;
    int rc = RV_EUNAVAILABLE;
    unsigned secs = f->catch_up_secs ? f->catch_up_secs : 60;
    uint64_t deadline = rv_clock_mono_ms() + (uint64_t)secs * 1000;

    rv_errmsg_printf(errmsg, "no source to fetch from");
    if (f->fetch == NULL || n_sources == 0)
        return RV_EUNAVAILABLE;
    rv_buf_init(&buf);
    f->n_catch_ups++;
    for (size_t round = 0; store_applied_index(f->store) < index; round++) {
        const char *addr = sources[round % n_sources];
        if (round > 0 && round % n_sources == 0) {
            if (rv_clock_mono_ms() > deadline)
                break;
            rv_clock_sleep_ms(200);
        }
        if (f->self_addr != NULL && strcmp(addr, f->self_addr) == 0)
            continue;
        /* Across a compaction: the source's image first. */
        rc = raftfsm__catch_up_image(f, addr, &buf, errmsg);
        if (rc != RV_OK && !raftfsm__is_remote_error(rc)) {
            rv_buf_free(&buf);
            return rc; /* A local fault. */
        }
        if (rc != RV_OK)
            continue;
        /* Stream from this source while it makes progress. */
        for (;;) {
            uint64_t from = store_applied_index(f->store) + 1;
            uint64_t before = from - 1;
            if (from > index)
                break;
            rv_buf_reset(&buf);
            rc = f->fetch(f->fetch_data, addr, from, index, &buf, errmsg);
            if (rc == RV_OK)
                rc =
                    raftfsm__apply_fetched(f, buf.data, buf.len, index, errmsg);
            if (rc != RV_OK && !raftfsm__is_remote_error(rc)) {
                rv_buf_free(&buf);
                return rc; /* A local fault. */
            }
            if (rc != RV_OK || store_applied_index(f->store) == before)
                break; /* This source failed or has nothing more. */
        }
    }
    rv_buf_free(&buf);
    if (store_applied_index(f->store) >= index)
        return RV_OK;
    if (rc == RV_OK)
        rv_errmsg_printf(errmsg, "caught up to %llu of %llu from %zu sources",
                         (unsigned long long)store_applied_index(f->store),
                         (unsigned long long)index, n_sources);
    return rc == RV_OK ? RV_EUNAVAILABLE : rc;
}

/* A descriptor at or behind the local store changes nothing (the committed
 * prefixes are identical). One ahead of it is caught up from its sources,
 * then the digests must match. */
static int
raftfsm__restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct raftfsm *f = fsm->data;
    struct raftfsm_descriptor d;
    uint8_t digest[STORE_DIGEST_BYTES];

    int drc = raftfsm_descriptor_decode(buf->base, buf->len, &d);
    if (drc == RV_EVERSION) {
        /* A newer runvault's snapshot: stop rather than guess. */
        f->is_failed = 1;
        f->fail_rc = RV_EVERSION;
        rv_errmsg_printf(f->errmsg,
                         "snapshot descriptor version %u; this runvault "
                         "knows version %d (a newer runvault took it: "
                         "upgrade this node)",
                         buf->len >= 8 ? rv_get_be32((uint8_t *)buf->base + 4)
                                       : 0,
                         RAFTFSM_SNAPSHOT_VERSION);
        rv_logf(f->log, RV_LOG_ERROR, "raftfsm", "restore: %s", f->errmsg);
        return RAFT_IOERR;
    }
    if (drc != RV_OK) {
        rv_logf(f->log, RV_LOG_ERROR, "raftfsm",
                "restore: snapshot descriptor does not decode");
        return RAFT_MALFORMED;
    }
    uint64_t applied = store_applied_index(f->store);
    if (d.index <= applied) {
        raftfsm_descriptor_free(&d);
        raft_free(buf->base); /* On success the FSM owns the buffer. */
        f->n_restores_kept++;
        return 0;
    }
    rv_logf(f->log, RV_LOG_INFO, "raftfsm",
            "restore: descriptor at %llu, store at %llu: catching up from %zu "
            "sources",
            (unsigned long long)d.index, (unsigned long long)applied,
            d.n_sources);
    uint64_t t0 = rv_clock_mono_ns();
    int rc = raftfsm_catch_up(f, d.index, d.sources, d.n_sources, f->errmsg);
    raftfsm_note_busy(f, "restore catch-up", t0);
    /* Past the descriptor (an image beyond it was installed): its digest
     * is of an earlier index. */
    if (rc == RV_OK && store_applied_index(f->store) == d.index) {
        store_digest(f->store, digest);
        if (memcmp(digest, d.digest, sizeof digest) != 0) {
            rv_errmsg_printf(f->errmsg,
                             "digest at %llu differs from the descriptor's",
                             (unsigned long long)d.index);
            rc = RV_ECORRUPT;
        }
    }
    raftfsm_descriptor_free(&d);
    if (rc != RV_OK) {
        /* Stop: a restart retries the catch-up from the stored snapshot. */
        f->is_failed = 1;
        rv_logf(f->log, RV_LOG_ERROR, "raftfsm", "restore: %s: %s",
                rv_strerror(rc), f->errmsg);
        return RAFT_IOERR;
    }
    raft_free(buf->base);
    rv_logf(f->log, RV_LOG_INFO, "raftfsm", "restore: caught up to %llu",
            (unsigned long long)store_applied_index(f->store));
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
    f->vlog_bytes_at_snapshot = store_vlog_bytes(s);
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
