/* store: compaction (store_compact.c, vlog_compact.c). Two stores fed the
 * same entries, one compacting: equal digests, the purged runs' bytes gone
 * from the compacting one's files and still read back for the kept runs;
 * verify and rebuild-index of the compacted store reach the same digest;
 * a crash at every step of the rewrite leaves the old or the new set, and
 * the store opens, verifies and rebuilds after it; a second compaction
 * with nothing new to remove rewrites no segment; a backup session pins
 * one file set across a compaction. */
#include "proto/proto.h"
#include "store/store.h"
#include "store/vlog.h"
#include "tests/lib/harness.h"

#include <dirent.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fx {
    char *dir;
    struct store *s;
    uint64_t index;
    int is_compacting;
    char errmsg[RV_ERRMSG_SIZE];
    struct store_result last;
};

static void
fx_open(struct fx *f)
{
    struct store_config cfg = {f->dir, (size_t)1 << 30, 16 << 10, NULL, NULL};
    if (store_open(&f->s, &cfg, f->errmsg) != RV_OK) {
        fprintf(stderr, "store_open: %s\n", f->errmsg);
        abort();
    }
    if (f->is_compacting && store_compact_start(f->s, 0, f->errmsg) != RV_OK)
        abort();
}

static void
fx_init(struct fx *f, const char *tag, int is_compacting)
{
    memset(f, 0, sizeof *f);
    f->dir = rv_test_tmpdir(tag);
    f->is_compacting = is_compacting;
    fx_open(f);
}

static void
fx_done(struct fx *f)
{
    store_close(f->s);
    rv_test_rmdir(f->dir);
}

static int
apply1(struct fx *f, Rv__Command *cmd)
{
    Rv__CommandBatch b = RV__COMMAND_BATCH__INIT;
    struct rv_buf e;
    struct store_result *out = NULL;
    size_t n_out = 0;
    cmd->has_stamped_at_ms = 1;
    cmd->stamped_at_ms = 1000 + (int64_t)f->index;
    b.n_commands = 1;
    b.commands = &cmd;
    rv_buf_init(&e);
    int rc = proto_envelope_encode(&b, &e, f->errmsg);
    if (rc == RV_OK)
        rc = store_apply(f->s, ++f->index, e.data, e.len, &out, &n_out,
                         f->errmsg);
    if (rc == RV_OK && n_out == 1)
        f->last = out[0];
    free(out);
    rv_buf_free(&e);
    return rc != RV_OK ? rc : f->last.code;
}

static int
create(struct fx *f, const char *id)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunCreate c = RV__RUN_CREATE__INIT;
    c.run_id = (char *)id;
    c.project = "p";
    c.experiment = "e";
    c.name = (char *)id;
    c.created_at_ms = 1000;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = &c;
    return apply1(f, &cmd);
}

static int
lines(struct fx *f, const char *id, const char *text)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__LogLines ll = RV__LOG_LINES__INIT;
    Rv__LogLine l = RV__LOG_LINE__INIT, *lp[16];
    ll.run_id = (char *)id;
    l.timestamp_ms = 5;
    l.text = (char *)text;
    for (int i = 0; i < 16; i++)
        lp[i] = &l;
    ll.lines = lp;
    ll.n_lines = 16;
    cmd.body_case = RV__COMMAND__BODY_LOG_LINES;
    cmd.log_lines = &ll;
    return apply1(f, &cmd);
}

static int
metrics(struct fx *f, const char *id, const char *key, int64_t step)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m = RV__METRICS__INIT;
    char *keys[1] = {(char *)key};
    uint32_t ki[64] = {0};
    int64_t steps[64], ts[64];
    double vals[64];
    for (int i = 0; i < 64; i++) {
        steps[i] = step + i;
        ts[i] = 1000 + i;
        vals[i] = (double)(step + i) * 0.5;
    }
    m.keys = keys;
    m.n_keys = 1;
    m.key_idx = ki;
    m.n_key_idx = 64;
    m.steps = steps;
    m.n_steps = 64;
    m.timestamps_ms = ts;
    m.n_timestamps_ms = 64;
    m.values = vals;
    m.n_values = 64;
    lb.run_id = (char *)id;
    lb.metrics = &m;
    cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd.log_batch = &lb;
    return apply1(f, &cmd);
}

/* An artifact of n bytes of fill, in chunks of 1 KiB. */
static int
artifact(struct fx *f, const char *id, const char *path, const char *fill,
         size_t n)
{
    uint8_t *data = malloc(n), sum[32];
    size_t fl = strlen(fill);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)fill[i % fl];
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, n, data);
    sha256_digest(&ctx, 32, sum);
    int rc = RV_OK;
    for (size_t off = 0; off < n && rc == RV_OK; off += 1024) {
        Rv__Command cmd = RV__COMMAND__INIT;
        Rv__ArtifactChunk ch = RV__ARTIFACT_CHUNK__INIT;
        ch.run_id = (char *)id;
        ch.path = (char *)path;
        ch.offset = off;
        ch.data.data = data + off;
        ch.data.len = n - off < 1024 ? n - off : 1024;
        if (off + ch.data.len == n) {
            ch.has_is_last = 1;
            ch.is_last = 1;
            ch.has_sha256 = 1;
            ch.sha256.data = sum;
            ch.sha256.len = 32;
        }
        cmd.body_case = RV__COMMAND__BODY_ARTIFACT_CHUNK;
        cmd.artifact_chunk = &ch;
        rc = apply1(f, &cmd);
    }
    free(data);
    return rc;
}

static int
run_ref(struct fx *f, Rv__Command__BodyCase which, const char *id)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunRef ref = RV__RUN_REF__INIT;
    ref.run_id = (char *)id;
    cmd.body_case = which;
    cmd.run_delete = &ref;
    return apply1(f, &cmd);
}

static int
compact(struct fx *f)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__Compact c = RV__COMPACT__INIT;
    cmd.body_case = RV__COMMAND__BODY_COMPACT;
    cmd.compact = &c;
    return apply1(f, &cmd);
}

/* The entries every test feeds: runs kept and purged, each with log lines,
 * metrics and an artifact; "dup" uploads a copy of "keep"'s artifact
 * (its chunks are superseded); then enough to seal the segments. */
static void
feed(struct fx *f)
{
    char text[512];
    CHECK_OK(create(f, "keep"), f->last.message);
    CHECK_OK(create(f, "dup"), f->last.message);
    for (int r = 0; r < 3; r++) {
        char id[16];
        snprintf(id, sizeof id, "gone%d", r);
        CHECK_OK(create(f, id), f->last.message);
    }
    for (int i = 0; i < 6; i++) {
        for (int r = 0; r < 3; r++) {
            char id[16];
            snprintf(id, sizeof id, "gone%d", r);
            snprintf(text, sizeof text, "PURGEDSECRET-%s-line-%d-%0400d", id, i,
                     0);
            CHECK_OK(lines(f, id, text), f->last.message);
            CHECK_OK(metrics(f, id, "PURGEDKEY.loss", i * 64), f->last.message);
        }
        snprintf(text, sizeof text, "kept line %d", i);
        CHECK_OK(lines(f, "keep", text), f->last.message);
        CHECK_OK(metrics(f, "keep", "acc", i * 64), f->last.message);
    }
    CHECK_OK(artifact(f, "gone1", "a.bin", "PURGEDBLOB-", 5000),
             f->last.message);
    CHECK_OK(artifact(f, "keep", "k.bin", "keptblob-", 5000), f->last.message);
    CHECK_OK(artifact(f, "dup", "copy.bin", "keptblob-", 5000),
             f->last.message);
    for (int r = 0; r < 3; r++) {
        char id[16];
        snprintf(id, sizeof id, "gone%d", r);
        CHECK_OK(run_ref(f, RV__COMMAND__BODY_RUN_DELETE, id), f->last.message);
        CHECK_OK(run_ref(f, RV__COMMAND__BODY_RUN_PURGE, id), f->last.message);
    }
    for (int i = 0; i < 40; i++) {
        snprintf(text, sizeof text, "after purge %d", i);
        CHECK_OK(lines(f, "keep", text), f->last.message);
    }
}

/* Occurrences of needle in every regular file under dir (recursively;
 * index.mdb too unless skip_index). */
static size_t
scan_dir(const char *dir, const char *needle, int skip_index)
{
    size_t found = 0, nl = strlen(needle);
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (skip_index && strncmp(e->d_name, "index.mdb", 9) == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            found += scan_dir(path, needle, skip_index);
            continue;
        }
        FILE *fp = fopen(path, "rb");
        if (fp == NULL)
            continue;
        char *buf = malloc((size_t)st.st_size + 1);
        size_t n = fread(buf, 1, (size_t)st.st_size, fp);
        fclose(fp);
        for (size_t i = 0; i + nl <= n; i++)
            if (memcmp(buf + i, needle, nl) == 0)
                found++;
        free(buf);
    }
    closedir(d);
    return found;
}

/* The kept runs read back: 46 log lines of "keep", its artifact, and the
 * copy's (which reads the owner's parts). */
static void
check_kept(struct fx *f)
{
    struct store_read *r;
    struct store_log_line *ls = NULL;
    size_t n = 0;
    uint64_t next = 0;
    CHECK_OK(store_read_begin(f->s, STORE_EVERY_TEAM, &r, f->errmsg),
             f->errmsg);
    CHECK_OK(store_log_lines(r, "keep", 0, 1000, &ls, &n, &next, f->errmsg),
             f->errmsg);
    CHECK(n >= (6 + 40) * 16);
    CHECK(n > 0 && strcmp(ls[0].text, "kept line 0") == 0);
    store_log_lines_free(ls, n);
    struct rv_buf b;
    rv_buf_init(&b);
    CHECK_OK(store_artifact_read(r, "keep", "k.bin", 0, 5000, &b, f->errmsg),
             f->errmsg);
    CHECK(b.len == 5000 && memcmp(b.data, "keptblob-", 9) == 0);
    rv_buf_reset(&b);
    CHECK_OK(store_artifact_read(r, "dup", "copy.bin", 0, 5000, &b, f->errmsg),
             f->errmsg);
    CHECK(b.len == 5000 && memcmp(b.data + 4995, "keptb", 5) == 0);
    rv_buf_free(&b);
    store_read_end(r);
}

static void
digest_of(struct fx *f, uint8_t d[STORE_DIGEST_BYTES])
{
    store_digest(f->s, d);
}

/* Whether the segment files of dir are the old set (no manifest, only
 * NNNNNNNN.seg) or the new one (manifest at index, and files named by
 * it): 1 old, 2 new, 0 a mix or anything else. */
static int
which_set(const char *dir, uint64_t index)
{
    char vdir[4096];
    struct vlog_checkpoint ck;
    char em[RV_ERRMSG_SIZE];
    snprintf(vdir, sizeof vdir, "%s/vlog", dir);
    if (vlog_checkpoint_read(vdir, &ck, em) != RV_OK)
        return 0;
    size_t n_plain = 0, n_gen = 0, n_other = 0, n_image = 0;
    DIR *d = opendir(vdir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (nm[0] == '.')
            continue;
        if (strlen(nm) == 12 && strstr(nm, ".seg") != NULL)
            n_plain++;
        else if (strstr(nm, ".c") != NULL && strstr(nm, ".seg") != NULL)
            n_gen++;
        else if (strncmp(nm, "image.", 6) == 0)
            n_image++;
        else if (strcmp(nm, "compact") != 0)
            n_other++;
    }
    closedir(d);
    if (n_other > 0)
        return 0;
    if (ck.index == 0)
        return n_gen == 0 && n_image == 0 ? 1 : 0;
    return ck.index == index && n_gen > 0 && n_image == 1 ? 2 : 0;
}

static void
test_compaction_removes_purged_bytes(void)
{
    struct fx a, b;
    uint8_t da[STORE_DIGEST_BYTES], dbb[STORE_DIGEST_BYTES];
    fx_init(&a, "compact-a", 1);
    fx_init(&b, "compact-b", 0);
    feed(&a);
    feed(&b);
    CHECK(scan_dir(a.dir, "PURGEDSECRET", 1) > 0);
    CHECK_OK(compact(&a), a.last.message);
    CHECK_OK(compact(&b), b.last.message);
    uint64_t c = a.index;
    CHECK_OK(store_compact_wait(a.s, c, 20000), "compaction");
    struct store_compact_info ia, ib;
    store_compact_info(a.s, &ia);
    store_compact_info(b.s, &ib);
    CHECK(ia.checkpoint_index == c && ia.n_done == 1);
    CHECK(ib.checkpoint_index == 0);
    CHECK(ia.vlog_disk_bytes < ib.vlog_disk_bytes);
    /* Compaction changes no replicated state: equal digests. */
    digest_of(&a, da);
    digest_of(&b, dbb);
    CHECK(memcmp(da, dbb, sizeof da) == 0);
    CHECK(lines(&a, "keep", "x") == RV_OK && lines(&b, "keep", "x") == RV_OK);
    digest_of(&a, da);
    digest_of(&b, dbb);
    CHECK(memcmp(da, dbb, sizeof da) == 0);
    /* Gone from the vlog (index.mdb's free pages: see the rebuild). */
    CHECK(scan_dir(a.dir, "PURGEDSECRET", 1) == 0);
    CHECK(scan_dir(a.dir, "PURGEDKEY", 1) == 0);
    CHECK(scan_dir(a.dir, "PURGEDBLOB", 1) == 0);
    CHECK(scan_dir(b.dir, "PURGEDSECRET", 1) > 0);
    check_kept(&a);
    CHECK(which_set(a.dir, c) == 2);
    CHECK(store_sync(a.s, a.errmsg) == RV_OK);
    store_close(a.s);

    /* verify and rebuild-index reach the peer's digest. */
    struct store_check chk;
    CHECK_OK(store_verify(a.dir, NULL, &chk, a.errmsg), a.errmsg);
    CHECK(chk.is_digest_equal);
    CHECK_OK(store_rebuild_index(a.dir, NULL, &chk, a.errmsg), a.errmsg);
    CHECK(chk.is_digest_equal);
    CHECK(memcmp(chk.computed_digest, dbb, sizeof dbb) == 0);
    /* The rebuilt index is written from the image: no free page of the
     * old one survives, so the whole data dir is clean. */
    CHECK(scan_dir(a.dir, "PURGEDSECRET", 0) == 0);
    CHECK(scan_dir(a.dir, "PURGEDBLOB", 0) == 0);
    fx_open(&a);
    check_kept(&a);
    /* Idempotent: a second compaction has nothing to rewrite. */
    CHECK_OK(compact(&a), a.last.message);
    CHECK_OK(store_compact_wait(a.s, a.index, 20000), "compaction 2");
    store_compact_info(a.s, &ia);
    CHECK(ia.checkpoint_index == a.index && ia.bytes_freed == 0);
    CHECK(which_set(a.dir, c) == 0); /* new checkpoint ... */
    CHECK(scan_dir(a.dir, "PURGEDSECRET", 1) == 0);
    check_kept(&a);
    CHECK_OK(compact(&b), b.last.message);
    digest_of(&a, da);
    digest_of(&b, dbb);
    CHECK(memcmp(da, dbb, sizeof da) == 0);
    fx_done(&a);
    fx_done(&b);
}

/* A crash at step k of the compaction (k = 1 .. the steps of a whole one):
 * the store reopens on the old or the new set, verify passes, its digest
 * is the peer's, and the kept runs read back; a later compaction
 * finishes the job. */
static void
test_crash_at_every_step(void)
{
    struct fx ref;
    uint8_t want[STORE_DIGEST_BYTES], got[STORE_DIGEST_BYTES];
    fx_init(&ref, "compact-ref", 1);
    feed(&ref);
    CHECK_OK(compact(&ref), ref.last.message);
    CHECK_OK(store_compact_wait(ref.s, ref.index, 20000), "compaction");
    int n_steps = vlog_compact_steps();
    digest_of(&ref, want);
    fx_done(&ref);
    CHECK(n_steps >= 5);
    int n_old = 0, n_new = 0;
    for (int k = 1; k <= n_steps; k++) {
        struct fx f;
        fx_init(&f, "compact-crash", 1);
        feed(&f);
        vlog_compact_crash_at = k;
        CHECK_OK(compact(&f), f.last.message);
        uint64_t c = f.index;
        int rc = store_compact_wait(f.s, c, 20000);
        vlog_compact_crash_at = 0;
        CHECK(rc == RV_EIO);
        CHECK(store_sync(f.s, f.errmsg) == RV_OK);
        store_close(f.s); /* As after kill -9: files as they are. */
        fx_open(&f);      /* Recovery. */
        int set = which_set(f.dir, c);
        CHECK(set == 1 || set == 2);
        if (set == 1)
            n_old++;
        else
            n_new++;
        digest_of(&f, got);
        CHECK(memcmp(got, want, sizeof got) == 0);
        check_kept(&f);
        store_close(f.s);
        struct store_check chk;
        CHECK_OK(store_verify(f.dir, NULL, &chk, f.errmsg), f.errmsg);
        CHECK(chk.is_digest_equal);
        CHECK_OK(store_rebuild_index(f.dir, NULL, &chk, f.errmsg), f.errmsg);
        CHECK(chk.is_digest_equal);
        fx_open(&f);
        check_kept(&f);
        /* The next compaction completes it. */
        CHECK_OK(compact(&f), f.last.message);
        CHECK_OK(store_compact_wait(f.s, f.index, 20000), "compaction");
        CHECK(scan_dir(f.dir, "PURGEDSECRET", 1) == 0);
        check_kept(&f);
        fx_done(&f);
    }
    printf("# %d crash points: %d left the old set, %d the new\n", n_steps,
           n_old, n_new);
    CHECK(n_old > 0 && n_new > 0);
}

/* A damaged manifest or image is refused, never skipped. */
static void
test_damaged_manifest_is_refused(void)
{
    struct fx f;
    fx_init(&f, "compact-bad", 1);
    feed(&f);
    CHECK_OK(compact(&f), f.last.message);
    CHECK_OK(store_compact_wait(f.s, f.index, 20000), "compaction");
    uint64_t c = f.index;
    store_close(f.s);
    char path[4096];
    snprintf(path, sizeof path, "%s/vlog/compact", f.dir);
    FILE *fp = fopen(path, "r+b");
    CHECK(fp != NULL);
    fseek(fp, 20, SEEK_SET);
    int orig = fgetc(fp);
    fseek(fp, 20, SEEK_SET);
    fputc(orig ^ 0x5a, fp);
    fclose(fp);
    struct store_config cfg = {f.dir, (size_t)1 << 30, 16 << 10, NULL, NULL};
    CHECK(store_open(&f.s, &cfg, f.errmsg) == RV_ECORRUPT);
    CHECK(strstr(f.errmsg, "compact") != NULL);
    /* An image that does not hash to the checkpoint stops a rebuild. */
    fp = fopen(path, "r+b");
    fseek(fp, 20, SEEK_SET);
    fputc(orig, fp); /* Flipped back: the manifest is whole again. */
    fclose(fp);
    char ipath[4096];
    snprintf(ipath, sizeof ipath, "%s/vlog/image.%llu", f.dir,
             (unsigned long long)c);
    struct stat st;
    CHECK(stat(ipath, &st) == 0);
    fp = fopen(ipath, "r+b");
    fseek(fp, st.st_size / 2, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, st.st_size / 2, SEEK_SET);
    fputc(ch ^ 0x01, fp);
    fclose(fp);
    struct store_check chk;
    CHECK(store_verify(f.dir, NULL, &chk, f.errmsg) == RV_ECORRUPT);
    printf("# verify: %s\n", f.errmsg);
    CHECK(store_rebuild_index(f.dir, NULL, &chk, f.errmsg) == RV_ECORRUPT);
    f.s = NULL;
    fx_done(&f);
}

/* Write the files of backup b (read through its session) into the data
 * dir dir/vlog, open a store there (the replay a restore makes) and
 * check it reaches b's index and digest. */
static void
materialise(struct store_backup *b, const char *dir)
{
    char path[4096], em[RV_ERRMSG_SIZE];
    snprintf(path, sizeof path, "%s/vlog", dir);
    CHECK(mkdir(path, 0755) == 0);
    for (size_t i = 0; i < b->n_files; i++) {
        struct store_backup_file *f = &b->files[i];
        uint8_t *buf = malloc(f->bytes ? f->bytes : 1);
        CHECK_OK(store_backup_read(f, 0, buf, f->bytes, em), em);
        /* Read whole, in order: hashed on the way, as a hash would be. */
        uint8_t sha[32];
        CHECK_OK(store_backup_sha256(f, sha, em), em);
        CHECK(f->bytes == 0 ||
              (f->has_read_sha256 && memcmp(sha, f->read_sha256, 32) == 0));
        snprintf(path, sizeof path, "%s/vlog/%s", dir, f->name);
        FILE *fp = fopen(path, "wb");
        CHECK(fp != NULL && fwrite(buf, 1, f->bytes, fp) == f->bytes);
        fclose(fp);
        free(buf);
    }
    struct store_config cfg = {dir, (size_t)1 << 30, 16 << 10, NULL, NULL};
    struct store *s = NULL;
    CHECK_OK(store_open(&s, &cfg, em), em);
    uint8_t d[STORE_DIGEST_BYTES];
    store_digest(s, d);
    CHECK(store_applied_index(s) == b->index);
    CHECK(memcmp(d, b->digest, sizeof d) == 0);
    store_close(s);
}

static int
has_file(const struct store_backup *b, const char *name)
{
    for (size_t i = 0; i < b->n_files; i++)
        if (strcmp(b->files[i].name, name) == 0)
            return 1;
    return 0;
}

/* A backup session pins one file set: one opened before a compaction
 * keeps the old segments (unlinked meanwhile) and replays to its index;
 * one opened after it holds the image, the manifest and the rewritten
 * segments, and replays from the image to its index and digest, with no
 * purged byte anywhere. */
static void
test_backup_pins_one_set(void)
{
    struct fx a;
    struct store_backup b0, b1;
    char name[64];
    fx_init(&a, "compact-bk", 1);
    feed(&a);
    CHECK_OK(store_backup_begin(a.s, &b0, a.errmsg), a.errmsg);
    CHECK(b0.checkpoint == 0 && b0.index == a.index && b0.n_files > 2);
    CHECK(!has_file(&b0, "compact"));
    CHECK_OK(compact(&a), a.last.message);
    uint64_t c = a.index;
    CHECK_OK(store_compact_wait(a.s, c, 20000), "compaction");
    CHECK(which_set(a.dir, c) == 2); /* The old files are unlinked. */
    CHECK_OK(lines(&a, "keep", "after the compaction"), a.last.message);
    CHECK_OK(store_backup_begin(a.s, &b1, a.errmsg), a.errmsg);
    CHECK(b1.checkpoint == c && b1.index == a.index);
    snprintf(name, sizeof name, "image.%llu", (unsigned long long)c);
    CHECK(has_file(&b1, name) && has_file(&b1, "compact"));
    snprintf(name, sizeof name, "00000001.c%llu.seg", (unsigned long long)c);
    CHECK(has_file(&b1, name) && !has_file(&b1, "00000001.seg"));
    /* Image and manifest first, then the segments in order. */
    CHECK(b1.files[0].number == 0 && b1.files[1].number == 0);
    CHECK(!b1.files[0].is_immutable || !b1.files[1].is_immutable);
    for (size_t i = 3; i < b1.n_files; i++)
        CHECK(b1.files[i].number == b1.files[i - 1].number + 1);
    char *d0 = rv_test_tmpdir("compact-bk-old");
    char *d1 = rv_test_tmpdir("compact-bk-new");
    materialise(&b0, d0);
    materialise(&b1, d1);
    CHECK(scan_dir(d0, "PURGEDSECRET", 1) > 0);
    CHECK(scan_dir(d1, "PURGEDSECRET", 0) == 0);
    CHECK(scan_dir(d1, "PURGEDBLOB", 0) == 0);
    store_backup_end(&b0);
    store_backup_end(&b1);
    rv_test_rmdir(d0);
    rv_test_rmdir(d1);
    fx_done(&a);
}

static const struct rv_test tests[] = {
    {"compaction_removes_purged_bytes", test_compaction_removes_purged_bytes},
    {"crash_at_every_step", test_crash_at_every_step},
    {"damaged_manifest_is_refused", test_damaged_manifest_is_refused},
    {"backup_pins_one_set", test_backup_pins_one_set},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
