/* The node side of `runvault backup` (proto BackupRequest): sessions of
 * pinned vlog files (store_backup_begin), their SHA-256, their bytes.
 *
 * A session holds the descriptors of every file of one backup, so a
 * segment replaced meanwhile (a compaction writes new names) stays
 * readable until END or until it is idle for RPC_BACKUP_IDLE_MS. At most
 * RPC_BACKUP_SESSIONS at a time; one lock serialises the operations of
 * every session (backups are rare; a READ is at most RPC_BACKUP_READ_BYTES
 * from the page cache). SHA-256s are remembered by (name, bytes): a vlog
 * prefix cut at a record never changes and compaction writes new names
 * (segments NNNNNNNN.c<C>.seg, image.<C>), so a second backup from this
 * node hashes only new bytes; the compaction manifest keeps its name, so
 * its hash is never remembered (it is small). */
#include "base/clock.h"
#include "raft/replica.h"
#include "rpc/server_int.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RPC_BACKUP_SESSIONS   4
#define RPC_BACKUP_IDLE_MS    120000
#define RPC_BACKUP_READ_BYTES (4u << 20)
#define RPC_BACKUP_HASHES     8192

/* How long BEGIN waits for its min_index to be applied here. */
#define RPC_BACKUP_MIN_INDEX_WAIT_MS 10000

struct rpc__backup_session {
    uint64_t id; /* 0: free. */
    uint64_t used_ms;
    struct store_backup b;
};

struct rpc__backup_hash {
    char name[48];
    uint64_t bytes;
    uint8_t sha256[32];
};

struct rpc_backups {
    pthread_mutex_t lock;
    uint64_t next_id;
    struct rpc__backup_session sessions[RPC_BACKUP_SESSIONS];
    struct rpc__backup_hash *hashes; /* A ring of RPC_BACKUP_HASHES. */
    size_t n_hashes, next_hash;
};

/* What the reply owns: the reply message, its files, the data read. */
struct rpc__backup_answer {
    Rv__BackupReply reply;
    Rv__BackupFile *files;
    Rv__BackupFile **pfiles;
    uint8_t (*sha)[32];
    char digest[2 * STORE_DIGEST_BYTES + 1];
    char (*names)[56];
    uint8_t *data;
};

static void
rpc__backup_answer_free(void *body)
{
    struct rpc__backup_answer *a = body;
    free(a->files);
    free(a->pfiles);
    free(a->sha);
    free(a->names);
    free(a->data);
    free(a);
}

int
rpc__backup_init(struct rpc_server *s)
{
    s->backups = calloc(1, sizeof *s->backups);
    if (s->backups == NULL)
        return RV_ENOMEM;
    pthread_mutex_init(&s->backups->lock, NULL);
    s->backups->next_id = 1;
    return RV_OK;
}

void
rpc__backup_close(struct rpc_server *s)
{
    struct rpc_backups *k = s->backups;
    if (k == NULL)
        return;
    for (size_t i = 0; i < RPC_BACKUP_SESSIONS; i++)
        store_backup_end(&k->sessions[i].b);
    free(k->hashes);
    pthread_mutex_destroy(&k->lock);
    free(k);
    s->backups = NULL;
}

int
rpc__backup_check(const Rv__BackupRequest *b, char *errmsg)
{
    if (b->op < RV__BACKUP_OP__BACKUP_BEGIN ||
        b->op > RV__BACKUP_OP__BACKUP_END) {
        rv_errmsg_printf(errmsg, "unknown backup operation %d", (int)b->op);
        return RV_EINVAL;
    }
    if (b->op != RV__BACKUP_OP__BACKUP_BEGIN && !b->has_session) {
        rv_errmsg_printf(errmsg, "a backup request without its session");
        return RV_EINVAL;
    }
    if ((b->op == RV__BACKUP_OP__BACKUP_HASH ||
         b->op == RV__BACKUP_OP__BACKUP_READ) &&
        (b->file == NULL || strlen(b->file) == 0 || strlen(b->file) > 64)) {
        rv_errmsg_printf(errmsg, "a backup request without a file name "
                                 "(1-64 bytes)");
        return RV_EINVAL;
    }
    return RV_OK;
}

/* Close sessions idle too long. Lock held. */
static void
rpc__backup_expire(struct rpc_backups *k, uint64_t now,
                   const struct rv_log *log)
{
    for (size_t i = 0; i < RPC_BACKUP_SESSIONS; i++) {
        struct rpc__backup_session *x = &k->sessions[i];
        if (x->id != 0 && now - x->used_ms > RPC_BACKUP_IDLE_MS) {
            rv_logf(log, RV_LOG_WARN, "backup",
                    "backup session %llu idle for %u s: closing its %zu "
                    "files",
                    (unsigned long long)x->id, RPC_BACKUP_IDLE_MS / 1000,
                    x->b.n_files);
            store_backup_end(&x->b);
            x->id = 0;
        }
    }
}

static struct rpc__backup_session *
rpc__backup_find(struct rpc_backups *k, uint64_t id)
{
    for (size_t i = 0; i < RPC_BACKUP_SESSIONS; i++)
        if (id != 0 && k->sessions[i].id == id)
            return &k->sessions[i];
    return NULL;
}

static struct store_backup_file *
rpc__backup_file(const struct rpc__backup_session *x, const char *name)
{
    /* Names are "vlog/" and the file's name in the vlog dir. */
    if (strncmp(name, "vlog/", 5) != 0)
        return NULL;
    for (size_t i = 0; i < x->b.n_files; i++)
        if (strcmp(x->b.files[i].name, name + 5) == 0)
            return &x->b.files[i];
    return NULL;
}

static int
rpc__backup_begin(struct rpc_server *s, struct rpc__backup_answer *a,
                  char *errmsg)
{
    struct rpc_backups *k = s->backups;
    struct rpc__backup_session *x = NULL;
    for (size_t i = 0; i < RPC_BACKUP_SESSIONS && x == NULL; i++)
        if (k->sessions[i].id == 0)
            x = &k->sessions[i];
    if (x == NULL) {
        rv_errmsg_printf(errmsg,
                         "%d backups are already running on this node: try "
                         "again when one ends (idle ones close after %u s)",
                         RPC_BACKUP_SESSIONS, RPC_BACKUP_IDLE_MS / 1000);
        return RV_ESTATE;
    }
    int rc = store_backup_begin(replica_store(s->rep), &x->b, errmsg);
    if (rc != RV_OK)
        return rc;
    size_t n = x->b.n_files;
    a->files = calloc(n ? n : 1, sizeof *a->files);
    a->pfiles = calloc(n ? n : 1, sizeof *a->pfiles);
    a->names = calloc(n ? n : 1, sizeof *a->names);
    if (a->files == NULL || a->pfiles == NULL || a->names == NULL) {
        store_backup_end(&x->b);
        return RV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        Rv__BackupFile *f = &a->files[i];
        rv__backup_file__init(f);
        snprintf(a->names[i], sizeof a->names[i], "vlog/%s",
                 x->b.files[i].name);
        f->name = a->names[i];
        f->bytes = x->b.files[i].bytes;
        a->pfiles[i] = f;
    }
    x->id = k->next_id++;
    x->used_ms = rv_clock_mono_ms();
    struct replica_info info;
    replica_info(s->rep, &info);
    store_digest_hex(x->b.digest, a->digest);
    a->reply.has_session = 1;
    a->reply.session = x->id;
    a->reply.has_applied_index = 1;
    a->reply.applied_index = x->b.index;
    a->reply.digest = a->digest;
    a->reply.has_node_id = 1;
    a->reply.node_id = info.id;
    a->reply.n_files = n;
    a->reply.files = a->pfiles;
    a->reply.has_checkpoint_index = 1;
    a->reply.checkpoint_index = x->b.checkpoint;
    char from[128] = "";
    if (x->b.checkpoint > 0)
        snprintf(from, sizeof from,
                 " (the compaction checkpoint at %llu: its image, manifest "
                 "and rewritten segments)",
                 (unsigned long long)x->b.checkpoint);
    rv_logf(s->log, RV_LOG_INFO, "backup",
            "backup session %llu: index %llu (digest %s), %zu vlog files "
            "opened%s",
            (unsigned long long)x->id, (unsigned long long)x->b.index,
            a->digest, n, from);
    return RV_OK;
}

/* Remember the SHA-256 of an immutable file by (name, bytes). Lock held. */
static int
rpc__backup_remember(struct rpc_backups *k, const struct store_backup_file *f,
                     const uint8_t sha256[32])
{
    if (k->hashes == NULL &&
        (k->hashes = calloc(RPC_BACKUP_HASHES, sizeof *k->hashes)) == NULL)
        return RV_ENOMEM;
    struct rpc__backup_hash *h = &k->hashes[k->next_hash];
    snprintf(h->name, sizeof h->name, "%s", f->name);
    h->bytes = f->bytes;
    memcpy(h->sha256, sha256, 32);
    k->next_hash = (k->next_hash + 1) % RPC_BACKUP_HASHES;
    if (k->n_hashes < RPC_BACKUP_HASHES)
        k->n_hashes++;
    return RV_OK;
}

static int
rpc__backup_hash(struct rpc_backups *k, const struct rpc__backup_session *x,
                 const char *name, struct rpc__backup_answer *a, char *errmsg)
{
    const struct store_backup_file *f = rpc__backup_file(x, name);
    if (f == NULL) {
        rv_errmsg_printf(errmsg, "%s is not a file of backup session %llu",
                         name, (unsigned long long)x->id);
        return RV_ENOTFOUND;
    }
    a->files = calloc(1, sizeof *a->files);
    a->pfiles = calloc(1, sizeof *a->pfiles);
    a->sha = calloc(1, sizeof *a->sha);
    a->names = calloc(1, sizeof *a->names);
    if (a->files == NULL || a->pfiles == NULL || a->sha == NULL ||
        a->names == NULL)
        return RV_ENOMEM;
    int found = 0;
    for (size_t i = 0; f->is_immutable && i < k->n_hashes && !found; i++) {
        if (strcmp(k->hashes[i].name, f->name) == 0 &&
            k->hashes[i].bytes == f->bytes) {
            memcpy(a->sha[0], k->hashes[i].sha256, 32);
            found = 1;
        }
    }
    if (!found) {
        int rc = store_backup_sha256(f, a->sha[0], errmsg);
        if (rc != RV_OK)
            return rc;
    }
    if (!found && f->is_immutable &&
        rpc__backup_remember(k, f, a->sha[0]) != RV_OK)
        return RV_ENOMEM;
    rv__backup_file__init(&a->files[0]);
    snprintf(a->names[0], sizeof a->names[0], "vlog/%s", f->name);
    a->files[0].name = a->names[0];
    a->files[0].bytes = f->bytes;
    a->files[0].has_sha256 = 1;
    a->files[0].sha256.data = a->sha[0];
    a->files[0].sha256.len = 32;
    a->pfiles[0] = &a->files[0];
    a->reply.n_files = 1;
    a->reply.files = a->pfiles;
    return RV_OK;
}

static int
rpc__backup_read(struct rpc_backups *k, const struct rpc__backup_session *x,
                 const Rv__BackupRequest *q, struct rpc__backup_answer *a,
                 char *errmsg)
{
    struct store_backup_file *f = rpc__backup_file(x, q->file);
    if (f == NULL) {
        rv_errmsg_printf(errmsg, "%s is not a file of backup session %llu",
                         q->file, (unsigned long long)x->id);
        return RV_ENOTFOUND;
    }
    uint64_t off = q->has_offset ? q->offset : 0;
    if (off > f->bytes) {
        rv_errmsg_printf(errmsg, "offset %llu is past the %llu bytes of %s",
                         (unsigned long long)off, (unsigned long long)f->bytes,
                         q->file);
        return RV_EINVAL;
    }
    size_t max = q->has_max_bytes && q->max_bytes > 0 &&
                         q->max_bytes < RPC_BACKUP_READ_BYTES
                     ? q->max_bytes
                     : RPC_BACKUP_READ_BYTES;
    size_t n = f->bytes - off < max ? (size_t)(f->bytes - off) : max;
    if ((a->data = malloc(n ? n : 1)) == NULL)
        return RV_ENOMEM;
    int rc = store_backup_read(f, off, a->data, n, errmsg);
    if (rc != RV_OK)
        return rc;
    /* A file streamed whole, in order, is hashed on the way: the next
     * backup's HASH of it is answered without reading it again. */
    if (f->has_read_sha256 && f->is_immutable && off + n == f->bytes &&
        rpc__backup_remember(k, f, f->read_sha256) != RV_OK)
        return RV_ENOMEM;
    a->reply.has_data = 1;
    a->reply.data.data = a->data;
    a->reply.data.len = n;
    return RV_OK;
}

void
rpc__backup(struct rpc_server *s, const Rv__BackupRequest *q,
            struct rpc_reply *rp)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    struct rpc__backup_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__backup_answer_free);
    if (a == NULL) {
        rpc__fail(rp, RV_ENOMEM, NULL);
        return;
    }
    rv__backup_reply__init(&a->reply);
    struct rpc_backups *k = s->backups;
    int rc = RV_OK;
    if (q->op == RV__BACKUP_OP__BACKUP_BEGIN && q->has_min_index &&
        q->min_index > 0 &&
        replica_wait_applied(s->rep, q->min_index,
                             RPC_BACKUP_MIN_INDEX_WAIT_MS) != RV_OK) {
        /* Outside the lock: other sessions go on meanwhile. */
        rv_errmsg_printf(errmsg,
                         "this node has not applied index %llu (the leader's "
                         "when the backup started) after %d s: it lags the "
                         "leader; back up from another node",
                         (unsigned long long)q->min_index,
                         RPC_BACKUP_MIN_INDEX_WAIT_MS / 1000);
        rpc__fail(rp, RV_EUNAVAILABLE, errmsg);
        return;
    }
    pthread_mutex_lock(&k->lock);
    uint64_t now = rv_clock_mono_ms();
    rpc__backup_expire(k, now, s->log);
    if (q->op == RV__BACKUP_OP__BACKUP_BEGIN) {
        rc = rpc__backup_begin(s, a, errmsg);
    } else {
        struct rpc__backup_session *x = rpc__backup_find(k, q->session);
        if (x == NULL) {
            rv_errmsg_printf(errmsg,
                             "no backup session %llu on this node (ended, "
                             "idle for %u s, or begun on another node)",
                             (unsigned long long)q->session,
                             RPC_BACKUP_IDLE_MS / 1000);
            rc = RV_ENOTFOUND;
        } else {
            x->used_ms = now;
            if (q->op == RV__BACKUP_OP__BACKUP_HASH) {
                rc = rpc__backup_hash(k, x, q->file, a, errmsg);
            } else if (q->op == RV__BACKUP_OP__BACKUP_READ) {
                rc = rpc__backup_read(k, x, q, a, errmsg);
            } else {
                store_backup_end(&x->b);
                x->id = 0;
            }
        }
    }
    pthread_mutex_unlock(&k->lock);
    if (rc != RV_OK) {
        rpc__fail(rp, rc, errmsg);
        return;
    }
    rp->resp.backup = &a->reply;
}
