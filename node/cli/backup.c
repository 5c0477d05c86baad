/* runvault backup (node/cli): an online, incremental copy of one node's
 * vlog up to one applied index, streamed over the native RPC
 * (BackupRequest), with a manifest (docs: README "Archive", ARCHITECTURE
 * "Backup and restore").
 *
 * Layout of DIR: manifest.json (format "runvault-backup", version 1: the
 * applied index, its digest, the source node, and per file its name in
 * the data dir, its stored path, bytes and SHA-256; version 2 when the
 * node's vlog was compacted: also "checkpoint_index" C, and the files
 * include the image vlog/image.<C>, the compaction manifest vlog/compact
 * and the rewritten segments vlog/NNNNNNNN.c<C>.seg) and data/, the
 * stored files. The manifest lists exactly the files of the backup. A
 * stored path carries the file's size (data/NNNNNNNN-BYTES.seg,
 * data/NNNNNNNN.c<C>-BYTES.seg, data/image.<C>-BYTES,
 * data/compact.<C>-BYTES): a file that grew (the newest segment) is
 * stored under a new path, so the old manifest stays true until the new
 * one replaces it with one rename. Files the new manifest does not name
 * (old segments a compaction replaced, an older image) are removed
 * afterwards; verify-backup and restore read only the files the
 * manifest names. A crash at any point leaves the old backup or the new
 * one, and maybe stray files the next run removes.
 *
 * Incremental: a file the old manifest lists with the same name and size,
 * whose stored copy has that size and whose SHA-256 the node reports equal
 * to the manifest's, is kept; everything else is copied. */
#include "base/clock.h"
#include "base/exit.h"
#include "base/fsdir.h"
#include "node/cli/cli_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLI_BACKUP_FORMAT    "runvault-backup"
#define CLI_BACKUP_VERSION   1 /* Version 2: with a compaction checkpoint. */
#define CLI_BACKUP_READ      (4u << 20)
#define CLI_BACKUP_MAX_FILES 100000

struct cli_bfile {
    char name[64]; /* "vlog/NNNNNNNN.seg", ... (file comment) */
    char path[96]; /* "data/NNNNNNNN-BYTES.seg", ... */
    uint64_t bytes;
    uint8_t sha[32];
};

struct cli_bset {
    struct cli_bfile *f;
    size_t n;
};

static int
cli__unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] | v) : v << 4);
    }
    return 0;
}

/* The files of DIR's manifest, if it has a readable one; 0 with an
 * empty set if there is none, -1 (why in cl->errmsg) if it does not
 * parse. */
static int
cli__backup_load(struct cli *cl, const char *dir, struct cli_bset *old)
{
    char path[CLI_PATH_BYTES];
    old->f = NULL;
    old->n = 0;
    if (cli__join(path, sizeof path, dir, "manifest.json") != 0)
        return -1;
    if (access(path, F_OK) != 0)
        return 0;
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    json_t *files = m ? json_object_get(m, "files") : NULL;
    json_int_t version =
        m ? json_integer_value(json_object_get(m, "version")) : 0;
    if (m == NULL || !json_is_array(files) ||
        json_array_size(files) > CLI_BACKUP_MAX_FILES ||
        (version != CLI_BACKUP_VERSION && version != CLI_BACKUP_VERSION + 1)) {
        rv_errmsg_printf(cl->errmsg, "%s: %s", path,
                         m ? "not a version 1 or 2 backup manifest" : je.text);
        json_decref(m);
        return -1;
    }
    old->f = calloc(json_array_size(files) + 1, sizeof *old->f);
    if (old->f == NULL) {
        json_decref(m);
        return -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(files, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *p = json_string_value(json_object_get(e, "path"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        json_int_t bytes = json_integer_value(json_object_get(e, "bytes"));
        struct cli_bfile *f = &old->f[old->n];
        if (name == NULL || p == NULL || sha == NULL || bytes < 0 ||
            strlen(name) >= sizeof f->name || strlen(p) >= sizeof f->path ||
            cli__unhex(sha, f->sha, 32) != 0)
            continue; /* Not kept: copied again. */
        snprintf(f->name, sizeof f->name, "%s", name);
        snprintf(f->path, sizeof f->path, "%s", p);
        f->bytes = (uint64_t)bytes;
        old->n++;
    }
    json_decref(m);
    return 0;
}

/* req carrying b: op of session (0 for BEGIN) on file (or NULL). */
static void
cli__backup_req(Rv__Request *req, Rv__BackupRequest *b, Rv__BackupOp op,
                uint64_t session, const char *file)
{
    rv__request__init(req);
    rv__backup_request__init(b);
    b->op = op;
    b->has_session = op != RV__BACKUP_OP__BACKUP_BEGIN;
    b->session = session;
    b->file = (char *)file;
    req->body_case = RV__REQUEST__BODY_BACKUP;
    req->backup = b;
}

static int
cli__write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copy file f of session from the node into DIR/f->path, hashing it. */
static int
cli__backup_copy(struct cli *cl, uint64_t session, const char *dir,
                 struct cli_bfile *f)
{
    char path[CLI_PATH_BYTES], tmp[CLI_PATH_BYTES + 8];
    if (cli__join(path, sizeof path, dir, f->path) != 0)
        return RV_EINVAL;
    snprintf(tmp, sizeof tmp, "%s.part", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        rv_errmsg_printf(cl->errmsg, "create %s: %s", tmp, strerror(errno));
        return RV_EIO;
    }
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    uint64_t off = 0;
    int rc = RV_OK;
    while (rc == RV_OK && off < f->bytes) {
        Rv__Request req;
        Rv__BackupRequest b;
        cli__backup_req(&req, &b, RV__BACKUP_OP__BACKUP_READ, session, f->name);
        b.has_offset = 1;
        b.offset = off;
        b.has_max_bytes = 1;
        b.max_bytes = CLI_BACKUP_READ;
        Rv__Response *r;
        rc = cli__rpc(cl, &req, &r);
        if (rc != RV_OK)
            break;
        if (r->backup == NULL || !r->backup->has_data ||
            r->backup->data.len == 0 || r->backup->data.len > f->bytes - off) {
            rv_errmsg_printf(
                cl->errmsg,
                "%s: the node answered %zu bytes at offset %llu "
                "of %llu",
                f->name,
                r->backup && r->backup->has_data ? r->backup->data.len
                                                 : (size_t)0,
                (unsigned long long)off, (unsigned long long)f->bytes);
            rc = RV_EMALFORMED;
        } else if (cli__write_all(fd, r->backup->data.data,
                                  r->backup->data.len) != 0) {
            rv_errmsg_printf(cl->errmsg, "write %s: %s", tmp, strerror(errno));
            rc = errno == ENOSPC ? RV_ENOSPACE : RV_EIO;
        } else {
            sha256_update(&ctx, r->backup->data.len, r->backup->data.data);
            off += r->backup->data.len;
        }
        rvc_response_free(r);
    }
    if (rc == RV_OK && fsync(fd) != 0) {
        rv_errmsg_printf(cl->errmsg, "fsync %s: %s", tmp, strerror(errno));
        rc = RV_EIO;
    }
    close(fd);
    if (rc == RV_OK && rename(tmp, path) != 0) {
        rv_errmsg_printf(cl->errmsg, "rename %s: %s", tmp, strerror(errno));
        rc = RV_EIO;
    }
    if (rc != RV_OK)
        unlink(tmp);
    sha256_digest(&ctx, 32, f->sha);
    return rc;
}

/* The node's SHA-256 of file name of session into sha. */
static int
cli__backup_hash(struct cli *cl, uint64_t session, const char *name,
                 uint8_t sha[32])
{
    Rv__Request req;
    Rv__BackupRequest b;
    cli__backup_req(&req, &b, RV__BACKUP_OP__BACKUP_HASH, session, name);
    Rv__Response *r;
    int rc = cli__rpc(cl, &req, &r);
    if (rc != RV_OK)
        return rc;
    if (r->backup == NULL || r->backup->n_files != 1 ||
        !r->backup->files[0]->has_sha256 ||
        r->backup->files[0]->sha256.len != 32) {
        rv_errmsg_printf(cl->errmsg, "%s: the node answered no SHA-256", name);
        rc = RV_EMALFORMED;
    } else {
        memcpy(sha, r->backup->files[0]->sha256.data, 32);
    }
    rvc_response_free(r);
    return rc;
}

static void
cli__backup_end(struct cli *cl, uint64_t session)
{
    Rv__Request req;
    Rv__BackupRequest b;
    cli__backup_req(&req, &b, RV__BACKUP_OP__BACKUP_END, session, NULL);
    Rv__Response *r;
    char keep[RV_ERRMSG_SIZE];
    memcpy(keep, cl->errmsg, sizeof keep);
    if (cli__rpc(cl, &req, &r) == RV_OK)
        rvc_response_free(r);
    memcpy(cl->errmsg, keep, sizeof keep); /* The first failure stays. */
}

/* Write DIR/manifest.json (through a synced temporary and one rename). */
static int
cli__backup_manifest(struct cli *cl, const char *dir, const Rv__BackupReply *b,
                     const struct cli_bset *set, const char *endpoint)
{
    json_t *m = json_object(), *files = json_array();
    char hex[65], when[CLI_TIME_BYTES];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    uint64_t total = 0;
    for (size_t i = 0; i < set->n; i++) {
        rv_hex(set->f[i].sha, 32, hex);
        json_array_append_new(
            files, json_pack("{s:s,s:s,s:I,s:s}", "name", set->f[i].name,
                             "path", set->f[i].path, "bytes",
                             (json_int_t)set->f[i].bytes, "sha256", hex));
        total += set->f[i].bytes;
    }
    json_object_set_new(m, "format", json_string(CLI_BACKUP_FORMAT));
    uint64_t ck = b->has_checkpoint_index ? b->checkpoint_index : 0;
    json_object_set_new(m, "version",
                        json_integer(CLI_BACKUP_VERSION + (ck > 0)));
    json_object_set_new(m, "applied_index",
                        json_integer((json_int_t)b->applied_index));
    if (ck > 0)
        json_object_set_new(m, "checkpoint_index",
                            json_integer((json_int_t)ck));
    json_object_set_new(m, "digest", json_string(b->digest ? b->digest : ""));
    json_object_set_new(m, "source_node_id",
                        json_integer((json_int_t)b->node_id));
    json_object_set_new(m, "source_endpoint", json_string(endpoint));
    json_object_set_new(m, "created_at", json_string(when));
    json_object_set_new(m, "total_bytes", json_integer((json_int_t)total));
    json_object_set_new(m, "files", files);
    char path[CLI_PATH_BYTES], tmp[CLI_PATH_BYTES + 8];
    int rc = RV_OK;
    if (cli__join(path, sizeof path, dir, "manifest.json") != 0) {
        json_decref(m);
        return RV_EINVAL;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char *text = json_dumps(m, JSON_INDENT(1));
    json_decref(m);
    int fd =
        text ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640) : -1;
    if (fd < 0 || cli__write_all(fd, (const uint8_t *)text, strlen(text)) ||
        fsync(fd) != 0) {
        rv_errmsg_printf(cl->errmsg, "write %s: %s", tmp, strerror(errno));
        rc = RV_EIO;
    }
    if (fd >= 0)
        close(fd);
    free(text);
    if (rc == RV_OK && rename(tmp, path) != 0) {
        rv_errmsg_printf(cl->errmsg, "rename %s: %s", tmp, strerror(errno));
        rc = RV_EIO;
    }
    if (rc == RV_OK && rv_fsync_dir(dir) != 0) {
        rv_errmsg_printf(cl->errmsg, "fsync %s: %s", dir, strerror(errno));
        rc = RV_EIO;
    }
    return rc;
}

/* Remove files of DIR/data the manifest set does not name. */
static size_t
cli__backup_prune(const char *dir, const struct cli_bset *set)
{
    char data[CLI_PATH_BYTES];
    if (cli__join(data, sizeof data, dir, "data") != 0)
        return 0;
    DIR *d = opendir(data);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int is_named = 0;
        for (size_t i = 0; i < set->n && !is_named; i++)
            is_named = strcmp(set->f[i].path + 5, e->d_name) == 0;
        if (!is_named && unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* The stored path of the file the node names name (bytes long, in a
 * backup of checkpoint ck) into path; -1 if name is none a node sends. */
static int
cli__backup_path(const char *name, uint64_t bytes, uint64_t ck, char *path,
                 size_t size)
{
    unsigned long long b = (unsigned long long)bytes;
    char expect[48];
    if (strncmp(name, "vlog/", 5) != 0 || strlen(name) > 60)
        return -1;
    const char *n = name + 5;
    snprintf(expect, sizeof expect, "image.%llu", (unsigned long long)ck);
    if (ck > 0 && strcmp(n, "compact") == 0) {
        snprintf(path, size, "data/compact.%llu-%llu", (unsigned long long)ck,
                 b);
        return 0;
    }
    if (ck > 0 && strcmp(n, expect) == 0) {
        snprintf(path, size, "data/%s-%llu", expect, b);
        return 0;
    }
    size_t len = strlen(n);
    if (len < 12 || strspn(n, "0123456789") != 8 ||
        strncmp(n, "00000000", 8) == 0 || strcmp(n + len - 4, ".seg") != 0)
        return -1;
    if (len == 12) {
        snprintf(path, size, "data/%.8s-%llu.seg", n, b);
        return 0;
    }
    /* NNNNNNNN.c<G>.seg, 0 < G <= ck. */
    size_t digits = len - 14;
    unsigned long long g = 0;
    if (n[8] != '.' || n[9] != 'c' || digits == 0 || digits > 20 ||
        strspn(n + 10, "0123456789") != digits || n[10] == '0')
        return -1;
    for (size_t i = 0; i < digits; i++)
        g = g * 10 + (unsigned long long)(n[10 + i] - '0');
    if (digits > 19 || g > ck)
        return -1;
    snprintf(path, size, "data/%.*s-%llu.seg", (int)(len - 4), n, b);
    return 0;
}

/* 1 if old holds f (same name, bytes, stored copy of that size). */
static const struct cli_bfile *
cli__backup_old(const char *dir, const struct cli_bset *old,
                const struct cli_bfile *f)
{
    for (size_t i = 0; i < old->n; i++) {
        if (strcmp(old->f[i].name, f->name) != 0 || old->f[i].bytes != f->bytes)
            continue;
        char path[CLI_PATH_BYTES];
        struct stat st;
        if (cli__join(path, sizeof path, dir, old->f[i].path) == 0 &&
            stat(path, &st) == 0 && (uint64_t)st.st_size == f->bytes)
            return &old->f[i];
    }
    return NULL;
}

/* The leader's applied index now (every write acknowledged so far is at
 * or below it), asked of the leader itself; 0 with the reason in why when
 * it cannot be learnt. */
static uint64_t
cli__leader_applied(struct cli *cl, char *why, size_t size)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    Rv__Response *resp = NULL, *s = NULL;
    char errmsg[RV_ERRMSG_SIZE] = "";
    uint64_t out = 0;
    cr.op = RV__CLUSTER_OP__CLUSTER_STATUS;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    if (cli__rpc(cl, &req, &resp) != RV_OK) {
        snprintf(why, size, "%s", cl->errmsg);
        return 0;
    }
    const char *addr = NULL;
    for (size_t i = 0; i < resp->n_nodes; i++)
        if (resp->nodes[i]->id == resp->leader_id)
            addr = resp->nodes[i]->rpc_addr;
    if (resp->leader_id == 0 || addr == NULL || addr[0] == '\0') {
        snprintf(why, size, "no leader is known");
    } else {
        Rv__Request sreq = RV__REQUEST__INIT;
        Rv__StatusRequest sr = RV__STATUS_REQUEST__INIT;
        sreq.body_case = RV__REQUEST__BODY_STATUS;
        sreq.status = &sr;
        sreq.token = cl->token[0] ? cl->token : NULL;
        if (rvc_call_once_tls(addr, cl->tls, &sreq, 2000, &s, errmsg) !=
                RV_OK ||
            s->self == NULL || s->self->state == NULL ||
            strcmp(s->self->state, "leader") != 0)
            snprintf(why, size, "the leader (node %llu, %s) did not say: %s",
                     (unsigned long long)resp->leader_id, addr,
                     errmsg[0] ? errmsg : "not the leader any more");
        else
            out = s->self->applied_index;
    }
    rvc_response_free(s);
    rvc_response_free(resp);
    return out;
}

int
cli__backup(struct cli *cl, const struct cli_args *a)
{
    const char *dir = a->v[O_OUT] ? a->v[O_OUT] : a->v[O_TO];
    if (dir == NULL || dir[0] == '\0') {
        fprintf(stderr, "runvault backup: --out DIR (or --to DIR) is "
                        "required\n");
        return RV_EXIT_USAGE;
    }
    char data[CLI_PATH_BYTES];
    if (cli__join(data, sizeof data, dir, "data") != 0 ||
        rv_mkdir_durable(dir) != 0 || rv_mkdir_durable(data) != 0) {
        fprintf(stderr, "runvault backup: cannot create %s/data: %s\n", dir,
                strerror(errno));
        return RV_EXIT_FAILURE;
    }
    struct cli_bset old, set = {NULL, 0};
    if (cli__backup_load(cl, dir, &old) != 0) {
        fprintf(stderr,
                "runvault backup: the manifest in %s does not parse (%s): "
                "copying every file again\n",
                dir, cl->errmsg);
        old.n = 0;
    }
    uint64_t t0 = rv_clock_mono_ns();
    Rv__Request req;
    Rv__BackupRequest b;
    cli__backup_req(&req, &b, RV__BACKUP_OP__BACKUP_BEGIN, 0, NULL);
    /* Every write acknowledged before now is in the backup: the node
     * pins only once it applied the leader's index (a follower may lag). */
    char why[RV_ERRMSG_SIZE] = "";
    uint64_t min = cli__leader_applied(cl, why, sizeof why);
    if (min > 0) {
        b.has_min_index = 1;
        b.min_index = min;
    } else {
        fprintf(stderr,
                "runvault backup: WARNING: the leader's index is unknown "
                "(%s): the backup holds what the node answering applied, "
                "which may miss the newest acknowledged writes\n",
                why);
    }
    Rv__Response *begin;
    int rc = cli__rpc(cl, &req, &begin);
    if (rc != RV_OK) {
        free(old.f);
        return cli__fail(cl, rc, cli__exit_for(rc));
    }
    const Rv__BackupReply *br = begin->backup;
    if (br == NULL || !br->has_session || br->n_files > CLI_BACKUP_MAX_FILES) {
        free(old.f);
        rvc_response_free(begin);
        rv_errmsg_printf(cl->errmsg, "the node's answer holds no session");
        return cli__fail(cl, RV_EMALFORMED, RV_EXIT_FAILURE);
    }
    char endpoint[CONTRACT_MAX_ADDR_BYTES + 1];
    snprintf(endpoint, sizeof endpoint, "%s", rvc_last_endpoint(cl->c));
    fprintf(stderr,
            "runvault backup: node %llu (%s) pinned index %llu (digest %s): "
            "%zu vlog files\n",
            (unsigned long long)br->node_id, endpoint,
            (unsigned long long)br->applied_index, br->digest ? br->digest : "",
            br->n_files);
    uint64_t ck = br->has_checkpoint_index ? br->checkpoint_index : 0;
    if (ck > 0)
        fprintf(stderr,
                "runvault backup: the node's vlog was compacted at index "
                "%llu: the backup holds its image and manifest and the "
                "rewritten segments\n",
                (unsigned long long)ck);
    set.f = calloc(br->n_files + 1, sizeof *set.f);
    uint64_t copied_bytes = 0, kept_bytes = 0;
    size_t n_copied = 0, n_kept = 0;
    for (size_t i = 0; set.f != NULL && rc == RV_OK && i < br->n_files; i++) {
        const Rv__BackupFile *bf = br->files[i];
        struct cli_bfile *f = &set.f[set.n];
        if (bf->name == NULL ||
            cli__backup_path(bf->name, bf->bytes, ck, f->path,
                             sizeof f->path) != 0) {
            rv_errmsg_printf(cl->errmsg,
                             "the node named a file '%s' (checkpoint %llu)",
                             bf->name ? bf->name : "", (unsigned long long)ck);
            rc = RV_EMALFORMED;
            break;
        }
        snprintf(f->name, sizeof f->name, "%s", bf->name);
        f->bytes = bf->bytes;
        const struct cli_bfile *o = cli__backup_old(dir, &old, f);
        uint8_t sha[32];
        if (o != NULL &&
            (rc = cli__backup_hash(cl, br->session, f->name, sha)) == RV_OK &&
            memcmp(sha, o->sha, 32) == 0) {
            memcpy(f->sha, sha, 32);
            snprintf(f->path, sizeof f->path, "%s", o->path);
            n_kept++;
            kept_bytes += f->bytes;
        } else if (rc == RV_OK) {
            if (o != NULL)
                fprintf(stderr,
                        "runvault backup: %s: same size as in %s but another "
                        "SHA-256: copying it again\n",
                        f->name, dir);
            rc = cli__backup_copy(cl, br->session, dir, f);
            n_copied++;
            copied_bytes += f->bytes;
        }
        set.n++;
    }
    if (set.f == NULL)
        rc = RV_ENOMEM;
    cli__backup_end(cl, br->session);
    if (rc == RV_OK && rv_fsync_dir(data) != 0) {
        rv_errmsg_printf(cl->errmsg, "fsync %s: %s", data, strerror(errno));
        rc = RV_EIO;
    }
    if (rc == RV_OK)
        rc = cli__backup_manifest(cl, dir, br, &set, endpoint);
    size_t n_removed = rc == RV_OK ? cli__backup_prune(dir, &set) : 0;
    double secs = (double)(rv_clock_mono_ns() - t0) / 1e9;
    if (rc == RV_OK) {
        printf("{\"applied_index\":%llu,\"digest\":\"%s\",\"source_node_id\":"
               "%llu,\"files\":%zu,\"copied_files\":%zu,\"copied_bytes\":%llu,"
               "\"kept_files\":%zu,\"kept_bytes\":%llu,\"removed_files\":%zu,"
               "\"seconds\":%.3f}\n",
               (unsigned long long)br->applied_index,
               br->digest ? br->digest : "", (unsigned long long)br->node_id,
               set.n, n_copied, (unsigned long long)copied_bytes, n_kept,
               (unsigned long long)kept_bytes, n_removed, secs);
        fprintf(stderr,
                "runvault backup: %s holds index %llu: %zu files copied "
                "(%llu bytes, %.1f MB/s), %zu already there (same name, "
                "size and SHA-256), %zu no longer needed removed\n",
                dir, (unsigned long long)br->applied_index, n_copied,
                (unsigned long long)copied_bytes,
                secs > 0 ? (double)copied_bytes / 1e6 / secs : 0.0, n_kept,
                n_removed);
    }
    free(old.f);
    free(set.f);
    rvc_response_free(begin);
    if (rc != RV_OK) {
        fprintf(stderr,
                "runvault backup: FAILED, %s keeps its previous manifest "
                "(if any)\n",
                dir);
        return cli__fail(cl, rc, cli__exit_for(rc));
    }
    return RV_EXIT_OK;
}
