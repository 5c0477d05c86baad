/* verify-backup and restore (backup.h). */
#define _GNU_SOURCE /* copy_file_range */
#include "node/backup.h"

#include "base/clock.h"
#include "base/exit.h"
#include "base/fsdir.h"
#include "base/parse.h"
#include "node/cli/flags.h"
#include "node/defaults.h"
#include "node/serve.h"
#include "raft/seed.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BK_PATH      4096
#define BK_BLOCK     (1u << 20)
#define BK_MAX_FILES 100000

struct bk_file {
    char name[64];  /* "vlog/NNNNNNNN.seg", "vlog/NNNNNNNN.c<C>.seg",
                       "vlog/image.<C>", "vlog/compact" */
    char path[128]; /* Stored path inside the backup dir. */
    uint64_t bytes;
    char sha[65];
};

struct bk_manifest {
    uint64_t index;
    uint64_t checkpoint; /* The compaction checkpoint C (version 2); 0. */
    char digest[2 * STORE_DIGEST_BYTES + 1];
    struct bk_file *files;
    size_t n_files;
    uint64_t total_bytes;
};

/* A stored path: "data/" then [0-9A-Za-z.-], no "..". */
static int
bk__path_ok(const char *p)
{
    if (strncmp(p, "data/", 5) != 0 || strstr(p, "..") != NULL ||
        strlen(p) <= 5)
        return 0;
    for (const char *c = p + 5; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z') || *c == '.' || *c == '-'))
            return 0;
    return 1;
}

/* A file name a backup may list: a segment (vlog/NNNNNNNN.seg, or
 * vlog/NNNNNNNN.c<G>.seg with 0 < G <= checkpoint) and, in a backup of
 * a compacted vlog, vlog/image.<checkpoint> and vlog/compact. */
static int
bk__name_ok(const char *n, uint64_t checkpoint)
{
    char image[48];
    size_t len = strlen(n);
    if (len > 60 || strncmp(n, "vlog/", 5) != 0)
        return 0;
    n += 5;
    len -= 5;
    snprintf(image, sizeof image, "image.%llu", (unsigned long long)checkpoint);
    if (checkpoint > 0 && (strcmp(n, "compact") == 0 || strcmp(n, image) == 0))
        return 1;
    if (len < 12 || strspn(n, "0123456789") != 8 ||
        strcmp(n + len - 4, ".seg") != 0)
        return 0;
    if (len == 12)
        return 1;
    size_t digits = len - 14;
    if (n[8] != '.' || n[9] != 'c' || digits == 0 || digits > 19 ||
        n[10] == '0' || strspn(n + 10, "0123456789") != digits)
        return 0;
    uint64_t g = 0;
    for (size_t i = 0; i < digits; i++)
        g = g * 10 + (uint64_t)(n[10 + i] - '0');
    return g <= checkpoint;
}

/* Read and check DIR/manifest.json; -1 after a message. */
static int
bk__load(const char *prog, const char *dir, struct bk_manifest *m)
{
    char path[BK_PATH];
    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        fprintf(stderr, "%s: %s: %s (line %d): not a backup directory?\n", prog,
                path, je.text, je.line);
        return -1;
    }
    const char *fmt = json_string_value(json_object_get(j, "format"));
    json_t *files = json_object_get(j, "files");
    const char *digest = json_string_value(json_object_get(j, "digest"));
    json_t *ix = json_object_get(j, "applied_index");
    const char *why = NULL;
    if (fmt == NULL || strcmp(fmt, "runvault-backup") != 0)
        why = "its \"format\" is not \"runvault-backup\"";
    else if (json_integer_value(json_object_get(j, "version")) != 1 &&
             json_integer_value(json_object_get(j, "version")) != 2)
        why = "its \"version\" is not 1 or 2 (the ones this binary reads)";
    else if (!json_is_integer(ix) || json_integer_value(ix) < 0)
        why = "no \"applied_index\"";
    else if (digest == NULL || strlen(digest) != 2 * STORE_DIGEST_BYTES)
        why = "no 32-hex-digit \"digest\"";
    else if (!json_is_array(files) || json_array_size(files) > BK_MAX_FILES)
        why = "no \"files\" list";
    json_t *ckj = json_object_get(j, "checkpoint_index");
    if (why == NULL && ckj != NULL &&
        (!json_is_integer(ckj) || json_integer_value(ckj) < 0 ||
         json_integer_value(ckj) > json_integer_value(ix)))
        why = "a \"checkpoint_index\" that is no index at or below "
              "\"applied_index\"";
    if (why == NULL) {
        m->index = (uint64_t)json_integer_value(ix);
        m->checkpoint = ckj ? (uint64_t)json_integer_value(ckj) : 0;
        snprintf(m->digest, sizeof m->digest, "%s", digest);
        m->files = calloc(json_array_size(files) + 1, sizeof *m->files);
        if (m->files == NULL)
            why = "out of memory";
    }
    size_t i;
    json_t *e;
    json_array_foreach(files, i, e)
    {
        if (why != NULL)
            break;
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *p = json_string_value(json_object_get(e, "path"));
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        json_t *b = json_object_get(e, "bytes");
        if (name == NULL || !bk__name_ok(name, m->checkpoint) || p == NULL ||
            strlen(p) >= sizeof m->files[0].path || !bk__path_ok(p) ||
            sha == NULL || strlen(sha) != 64 || !json_is_integer(b) ||
            json_integer_value(b) < 0) {
            why = "a file entry without a valid name (vlog/NNNNNNNN.seg, "
                  "or with a checkpoint vlog/NNNNNNNN.c<C>.seg, "
                  "vlog/image.<C>, vlog/compact), path (data/...), bytes "
                  "and sha256";
            fprintf(stderr, "%s: %s: entry %zu\n", prog, path, i);
            break;
        }
        for (size_t k = 0; k < m->n_files && why == NULL; k++)
            if (strcmp(m->files[k].name, name) == 0)
                why = "a file listed twice";
        struct bk_file *f = &m->files[m->n_files++];
        snprintf(f->name, sizeof f->name, "%s", name);
        snprintf(f->path, sizeof f->path, "%s", p);
        snprintf(f->sha, sizeof f->sha, "%s", sha);
        f->bytes = (uint64_t)json_integer_value(b);
        m->total_bytes += f->bytes;
    }
    json_decref(j);
    if (why == NULL && m->checkpoint > 0) {
        char image[64];
        int has_image = 0, has_manifest = 0;
        snprintf(image, sizeof image, "vlog/image.%llu",
                 (unsigned long long)m->checkpoint);
        for (size_t k = 0; k < m->n_files; k++) {
            has_image |= strcmp(m->files[k].name, image) == 0;
            has_manifest |= strcmp(m->files[k].name, "vlog/compact") == 0;
        }
        if (!has_image || !has_manifest)
            why = "a checkpoint without its image and compaction manifest";
    }
    if (why != NULL) {
        fprintf(stderr, "%s: %s is not a usable manifest: %s\n", prog, path,
                why);
        free(m->files);
        m->files = NULL;
        return -1;
    }
    return 0;
}

/* Check every file's size and SHA-256; the number that differ (each
 * named on stderr), or -1 on a local failure. */
static int
bk__check_files(const char *prog, const char *dir, const struct bk_manifest *m)
{
    uint8_t *buf = malloc(BK_BLOCK);
    if (buf == NULL)
        return -1;
    int bad = 0;
    for (size_t i = 0; i < m->n_files; i++) {
        const struct bk_file *f = &m->files[i];
        char path[BK_PATH];
        snprintf(path, sizeof path, "%s/%s", dir, f->path);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0) {
            fprintf(stderr,
                    "%s: %s (%s): %s: the file is missing from the "
                    "backup\n",
                    prog, f->path, f->name, strerror(errno));
            bad++;
            continue;
        }
        if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != f->bytes) {
            fprintf(stderr,
                    "%s: %s (%s) has %lld bytes, the manifest says %llu: "
                    "the file was %s after the backup\n",
                    prog, f->path, f->name, (long long)st.st_size,
                    (unsigned long long)f->bytes,
                    (uint64_t)st.st_size < f->bytes ? "truncated" : "extended");
            close(fd);
            bad++;
            continue;
        }
        struct sha256_ctx ctx;
        sha256_init(&ctx);
        ssize_t got;
        while ((got = read(fd, buf, BK_BLOCK)) > 0)
            sha256_update(&ctx, (size_t)got, buf);
        close(fd);
        if (got < 0) {
            fprintf(stderr, "%s: reading %s: %s\n", prog, path,
                    strerror(errno));
            free(buf);
            return -1;
        }
        uint8_t sha[32];
        char hex[65];
        sha256_digest(&ctx, 32, sha);
        rv_hex(sha, 32, hex);
        if (strcmp(hex, f->sha) != 0) {
            fprintf(stderr,
                    "%s: %s (%s): SHA-256 is %s, the manifest says %s: the "
                    "file's content changed after the backup\n",
                    prog, f->path, f->name, hex, f->sha);
            bad++;
        }
    }
    free(buf);
    return bad;
}

/* Say how many files of DIR/data the manifest does not name: they are
 * not part of the backup (left by an interrupted backup) and ignored. */
static void
bk__strays(const char *prog, const char *dir, const struct bk_manifest *m)
{
    char data[BK_PATH];
    snprintf(data, sizeof data, "%s/data", dir);
    DIR *d = opendir(data);
    if (d == NULL)
        return;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int is_named = 0;
        for (size_t i = 0; i < m->n_files && !is_named; i++)
            is_named = strcmp(m->files[i].path + 5, e->d_name) == 0;
        n += !is_named;
    }
    closedir(d);
    if (n > 0)
        printf("%s: %zu file%s in %s the manifest does not name (left by an "
               "interrupted backup; the next backup removes them): "
               "ignored\n",
               prog, n, n == 1 ? "" : "s", data);
}

/* Copy src to dst (new file), n bytes. */
static int
bk__copy(const char *src, const char *dst, uint64_t n, char *errmsg)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out =
        in < 0 ? -1 : open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    int rc = RV_OK;
    if (in < 0 || out < 0) {
        rv_errmsg_printf(errmsg, "copy %s to %s: %s", src, dst,
                         strerror(errno));
        rc = RV_EIO;
    }
    uint64_t done = 0;
    while (rc == RV_OK && done < n) {
        ssize_t w = copy_file_range(in, NULL, out, NULL, (size_t)(n - done), 0);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rv_errmsg_printf(errmsg, "copy %s to %s: %s", src, dst,
                             w < 0 ? strerror(errno) : "short file");
            rc = RV_EIO;
        } else {
            done += (uint64_t)w;
        }
    }
    if (rc == RV_OK && fsync(out) != 0) {
        rv_errmsg_printf(errmsg, "fsync %s: %s", dst, strerror(errno));
        rc = RV_EIO;
    }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Build the vlog of m in target (a new data dir) and replay it: RV_OK
 * when the applied index and digest equal the manifest's (said on
 * stdout), RV_ECORRUPT when they differ (said on stderr). */
static int
bk__replay(const char *prog, const char *dir, const struct bk_manifest *m,
           const char *target, const struct rv_log *log)
{
    char vdir[BK_PATH], src[BK_PATH], dst[BK_PATH];
    char errmsg[RV_ERRMSG_SIZE] = "";
    snprintf(vdir, sizeof vdir, "%s/vlog", target);
    int err = rv_mkdir_durable(target);
    if (err == 0)
        err = rv_mkdir_durable(vdir);
    if (err != 0) {
        fprintf(stderr, "%s: mkdir %s: %s\n", prog, vdir, strerror(err));
        return RV_EIO;
    }
    uint64_t t0 = rv_clock_mono_ns();
    for (size_t i = 0; i < m->n_files; i++) {
        snprintf(src, sizeof src, "%s/%s", dir, m->files[i].path);
        snprintf(dst, sizeof dst, "%s/%s", target, m->files[i].name);
        int rc = bk__copy(src, dst, m->files[i].bytes, errmsg);
        if (rc != RV_OK) {
            fprintf(stderr, "%s: %s\n", prog, errmsg);
            return rc;
        }
    }
    if (rv_fsync_dir(vdir) != 0) {
        fprintf(stderr, "%s: fsync %s: %s\n", prog, vdir, strerror(errno));
        return RV_EIO;
    }
    uint64_t t1 = rv_clock_mono_ns();
    struct store_config cfg = {0};
    cfg.dir = target;
    cfg.log = log;
    struct store *s = NULL;
    int rc = store_open(&s, &cfg, errmsg);
    if (rc != RV_OK) {
        fprintf(stderr,
                "%s: replaying the backup's vlog failed: %s: %s (the "
                "files match the manifest, so the backup was taken from a "
                "damaged vlog, or the manifest lists the wrong files)\n",
                prog, rv_strerror(rc), errmsg);
        return rc == RV_ECORRUPT ? RV_ECORRUPT : rc;
    }
    uint8_t d[STORE_DIGEST_BYTES];
    char hex[2 * STORE_DIGEST_BYTES + 1];
    store_digest(s, d);
    store_digest_hex(d, hex);
    uint64_t applied = store_applied_index(s);
    rc = store_sync(s, errmsg);
    store_close(s);
    if (rc != RV_OK) {
        fprintf(stderr, "%s: sync of %s: %s\n", prog, target, errmsg);
        return rc;
    }
    double copy_s = (double)(t1 - t0) / 1e9;
    double replay_s = (double)(rv_clock_mono_ns() - t1) / 1e9;
    if (applied != m->index || strcmp(hex, m->digest) != 0) {
        fprintf(stderr,
                "%s: the replayed vlog reaches index %llu with digest %s; "
                "the manifest says index %llu with digest %s: the backup "
                "does not hold what the node had\n",
                prog, (unsigned long long)applied, hex,
                (unsigned long long)m->index, m->digest);
        return RV_ECORRUPT;
    }
    char from[96] = "";
    if (m->checkpoint > 0)
        snprintf(from, sizeof from,
                 " from the image of the compaction checkpoint at %llu",
                 (unsigned long long)m->checkpoint);
    printf("%s: replayed %zu files (%.1f MB)%s to index %llu: digest %s "
           "equals the manifest's (copy %.2f s, replay %.2f s)\n",
           prog, m->n_files, (double)m->total_bytes / 1e6, from,
           (unsigned long long)applied, hex, copy_s, replay_s);
    return RV_OK;
}

/* Remove dir and everything under it (two levels: the data dir layout). */
static void
bk__remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[BK_PATH];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                bk__remove_tree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* The sha check, then the replay into target; an exit code. */
static int
bk__verify(const char *prog, const char *dir, const struct bk_manifest *m,
           const char *target, const struct rv_log *log)
{
    int bad = bk__check_files(prog, dir, m);
    if (bad < 0)
        return RV_EXIT_FAILURE;
    if (bad > 0) {
        fprintf(stderr,
                "%s: %d of %zu files differ from the manifest: the backup in "
                "%s is damaged\n",
                prog, bad, m->n_files, dir);
        return RV_EXIT_CORRUPT;
    }
    printf("%s: %zu files, %llu bytes: every size and SHA-256 equals the "
           "manifest's\n",
           prog, m->n_files, (unsigned long long)m->total_bytes);
    bk__strays(prog, dir, m);
    int rc = bk__replay(prog, dir, m, target, log);
    if (rc == RV_OK)
        return RV_EXIT_OK;
    return rc == RV_ECORRUPT ? RV_EXIT_CORRUPT : RV_EXIT_FAILURE;
}

enum {
    BK_SCRATCH,
    BK_DATA_DIR,
    BK_FROM,
    BK_ID,
    BK_RAFT_ADDR,
    BK_PEERS,
    BK_LOG_LEVEL,
    BK_COUNT
};

static const struct cli_flag bk_flags[BK_COUNT] = {
    [BK_SCRATCH] = {"scratch", 1},     [BK_DATA_DIR] = {"data-dir", 1},
    [BK_FROM] = {"from", 1},           [BK_ID] = {"id", 1},
    [BK_RAFT_ADDR] = {"raft-addr", 1}, [BK_PEERS] = {"peers", 1},
    [BK_LOG_LEVEL] = {"log-level", 1},
};

static int
bk__args(const struct cli_spec *spec, int argc, char **argv, const char *usage,
         struct cli_args *a, struct rv_log *log)
{
    int p = cli_flags_parse(spec, argc, argv, a);
    if (p == CLI_FLAGS_HELP) {
        fputs(usage, stdout);
        return 1;
    }
    if (p != 0)
        return -1;
    *log = (struct rv_log){rv_log_stderr, NULL, RV_LOG_WARN};
    if (a->v[BK_LOG_LEVEL] != NULL) {
        enum rv_log_level lvl;
        if (rv_log_level_parse(a->v[BK_LOG_LEVEL], &lvl) != 0) {
            fprintf(stderr, "%s: unknown log level '%s'\n", spec->prog,
                    a->v[BK_LOG_LEVEL]);
            return -1;
        }
        log->min_level = (int)lvl;
    }
    return 0;
}

static const char bk_verify_usage[] =
    "usage: runvault verify-backup DIR [--scratch DIR]\n"
    "Check every file of a backup against its manifest (size, SHA-256),\n"
    "then replay it into a scratch data dir (under --scratch, else DIR's\n"
    "parent) and compare the digest at the manifest's index. Exit 0 ok,\n"
    "2 damaged or the digest differs.\n";

static const char bk_restore_usage[] =
    "usage: runvault restore DIR --data-dir D [--id N] [--raft-addr A]\n"
    "           [--peers 1=IP:PORT,2=IP:PORT,...]   (or --from DIR)\n"
    "Verify the backup in DIR (refused if it does not), build the data dir\n"
    "D from it (D must be absent or empty) and seed its raft log at the\n"
    "backup's index: a one-node cluster (id N, default 1, at A, "
    "default\n" NODE_DEFAULT_RAFT_ADDR
    ") or, with --peers, node N of a new cluster of\n"
    "those voters (restore each one's data dir from the same backup). Then\n"
    "start it with runvault serve --data-dir D --id N --raft-addr A\n"
    "[--peers ...] and its HTTP and RPC addresses.\n";

int
rv_cmd_verify_backup(int argc, char **argv)
{
    struct cli_spec spec = {"runvault verify-backup",
                            bk_flags,
                            BK_COUNT,
                            CLI_FLAG_BIT(BK_SCRATCH) |
                                CLI_FLAG_BIT(BK_LOG_LEVEL),
                            1,
                            1};
    const char *prog = spec.prog;
    struct cli_args a;
    struct rv_log log;
    int p = bk__args(&spec, argc, argv, bk_verify_usage, &a, &log);
    if (p != 0)
        return p > 0 ? RV_EXIT_OK : RV_EXIT_USAGE;
    const char *dir = a.pos[0];
    struct bk_manifest m;
    if (bk__load(prog, dir, &m) != 0)
        return RV_EXIT_CORRUPT;
    char scratch[BK_PATH + 32];
    const char *under = a.v[BK_SCRATCH];
    char parent[BK_PATH];
    if (under == NULL) {
        snprintf(parent, sizeof parent, "%s/..", dir);
        under = parent;
    }
    if ((size_t)snprintf(scratch, sizeof scratch, "%s/.runvault-verify-XXXXXX",
                         under) >= sizeof scratch) {
        fprintf(stderr, "%s: the scratch path is too long\n", prog);
        free(m.files);
        return RV_EXIT_USAGE;
    }
    if (mkdtemp(scratch) == NULL) {
        fprintf(stderr, "%s: cannot make a scratch dir under %s: %s\n", prog,
                under, strerror(errno));
        free(m.files);
        return RV_EXIT_FAILURE;
    }
    int code = bk__verify(prog, dir, &m, scratch, &log);
    bk__remove_tree(scratch);
    free(m.files);
    if (code == RV_EXIT_OK)
        printf("%s: OK: %s restores to index %llu\n", prog, dir,
               (unsigned long long)m.index);
    else
        fprintf(stderr, "%s: FAILED: %s must not be restored\n", prog, dir);
    return code;
}

/* mkdir -p of path's parent directories (each made durable). */
static int
bk__mkdir_parents(const char *path)
{
    char p[BK_PATH];
    snprintf(p, sizeof p, "%s", path);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        int err = rv_mkdir_durable(p);
        *c = '/';
        if (err != 0 && err != EEXIST)
            return err;
    }
    return 0;
}

int
rv_cmd_restore(int argc, char **argv)
{
    struct cli_spec spec = {"runvault restore",
                            bk_flags,
                            BK_COUNT,
                            CLI_FLAGS_ALL & ~CLI_FLAG_BIT(BK_SCRATCH),
                            0,
                            1};
    const char *prog = spec.prog;
    struct cli_args a;
    struct rv_log log;
    int p = bk__args(&spec, argc, argv, bk_restore_usage, &a, &log);
    if (p != 0)
        return p > 0 ? RV_EXIT_OK : RV_EXIT_USAGE;
    const char *dir = a.n_pos ? a.pos[0] : a.v[BK_FROM];
    const char *data = a.v[BK_DATA_DIR];
    if (dir == NULL || data == NULL || (a.n_pos && a.v[BK_FROM])) {
        fprintf(stderr,
                "%s: give the backup (DIR or --from DIR, once) and "
                "--data-dir D\n",
                prog);
        return RV_EXIT_USAGE;
    }
    uint64_t id = 1;
    if (a.v[BK_ID] != NULL && (rv_parse_u64(a.v[BK_ID], &id) != 0 || id == 0)) {
        fprintf(stderr, "%s: --id wants a number > 0\n", prog);
        return RV_EXIT_USAGE;
    }
    struct replica_peer peers[REPLICA_MAX_PEERS];
    size_t n_peers = 0;
    const char *raft_addr =
        a.v[BK_RAFT_ADDR] ? a.v[BK_RAFT_ADDR] : NODE_DEFAULT_RAFT_ADDR;
    if (a.v[BK_PEERS] != NULL) {
        if (node_parse_peers(a.v[BK_PEERS], peers, &n_peers) != 0 ||
            n_peers == 0) {
            fprintf(stderr,
                    "%s: --peers must look like "
                    "1=IP:PORT,2=IP:PORT\n",
                    prog);
            return RV_EXIT_USAGE;
        }
        int is_self = 0;
        for (size_t i = 0; i < n_peers; i++)
            if (peers[i].id == id) {
                is_self = 1;
                if (a.v[BK_RAFT_ADDR] == NULL)
                    raft_addr = peers[i].raft_addr;
            }
        if (!is_self) {
            fprintf(stderr, "%s: --peers does not list this node's id %llu\n",
                    prog, (unsigned long long)id);
            return RV_EXIT_USAGE;
        }
    }
    if (rv_dir_used(data) != 0) {
        fprintf(stderr,
                "%s: %s is not empty: a restore builds a new data dir and "
                "never writes over one (move it away first)\n",
                prog, data);
        return RV_EXIT_USAGE;
    }
    struct bk_manifest m;
    if (bk__load(prog, dir, &m) != 0) {
        fprintf(stderr, "%s: REFUSED: %s is not a readable backup\n", prog,
                dir);
        return RV_EXIT_CORRUPT;
    }
    char tmp[BK_PATH];
    snprintf(tmp, sizeof tmp, "%s.restore-XXXXXX", data);
    if (bk__mkdir_parents(tmp) != 0 || mkdtemp(tmp) == NULL) {
        fprintf(stderr, "%s: cannot make %s: %s\n", prog, tmp, strerror(errno));
        free(m.files);
        return RV_EXIT_FAILURE;
    }
    int code = bk__verify(prog, dir, &m, tmp, &log);
    if (code != RV_EXIT_OK) {
        fprintf(stderr,
                "%s: REFUSED: the backup in %s does not verify; nothing was "
                "written to %s\n",
                prog, dir, data);
        bk__remove_tree(tmp);
        free(m.files);
        return code;
    }
    char errmsg[RV_ERRMSG_SIZE] = "";
    if (m.index > 0) {
        uint8_t d[STORE_DIGEST_BYTES];
        for (size_t i = 0; i < STORE_DIGEST_BYTES; i++) {
            unsigned v;
            sscanf(m.digest + 2 * i, "%2x", &v);
            d[i] = (uint8_t)v;
        }
        int rc =
            raft_seed(tmp, id, raft_addr, peers, n_peers, m.index, d, errmsg);
        if (rc != RV_OK) {
            fprintf(stderr, "%s: seeding the raft log at index %llu: %s\n",
                    prog, (unsigned long long)m.index, errmsg);
            bk__remove_tree(tmp);
            free(m.files);
            return RV_EXIT_FAILURE;
        }
    }
    rmdir(data); /* Absent or empty: checked above. */
    char parent[BK_PATH];
    snprintf(parent, sizeof parent, "%s/..", data);
    if (rename(tmp, data) != 0 || rv_fsync_dir(parent) != 0) {
        fprintf(stderr, "%s: rename %s to %s: %s\n", prog, tmp, data,
                strerror(errno));
        bk__remove_tree(tmp);
        free(m.files);
        return RV_EXIT_FAILURE;
    }
    printf("%s: %s holds the backup at index %llu (digest %s) and a raft "
           "log starting after it, for node %llu of %zu voter%s\n",
           prog, data, (unsigned long long)m.index, m.digest,
           (unsigned long long)id, n_peers ? n_peers : 1,
           n_peers > 1 ? "s" : "");
    /* The raft address is in the seeded configuration: the node must
     * serve on it (its HTTP and RPC addresses are the operator's). */
    printf("%s: start it with: runvault serve --data-dir %s --id %llu "
           "--raft-addr %s%s%s (and its --http-addr and --rpc-addr)\n",
           prog, data, (unsigned long long)id, raft_addr,
           n_peers ? " --peers " : "", n_peers ? a.v[BK_PEERS] : "");
    free(m.files);
    return RV_EXIT_OK;
}
