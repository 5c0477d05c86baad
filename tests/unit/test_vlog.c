/* store/vlog: append, read, iterate, rotation, recovery (the torn-tail
 * matrix), corruption refusal, verify, and a concurrent reader. */
#include "base/clock.h"
#include "store/vlog.h"
#include "tests/lib/harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Fixture ----------------------------------------------------------- */

#define SEG_BYTES 4096

struct fx {
    char *dir;
    struct vlog *v;
    char errmsg[RV_ERRMSG_SIZE];
};

static int
fx_open(struct fx *f, uint64_t seg_bytes)
{
    struct vlog_config cfg = {f->dir, seg_bytes, NULL};
    f->errmsg[0] = '\0';
    return vlog_open(&f->v, &cfg, f->errmsg);
}

static void
fx_init(struct fx *f, const char *tag)
{
    memset(f, 0, sizeof *f);
    f->dir = rv_test_tmpdir(tag);
}

static void
fx_done(struct fx *f)
{
    vlog_close(f->v);
    f->v = NULL;
    rv_test_rmdir(f->dir);
}

/* Payload of record i: deterministic bytes of a length that varies. */
static size_t
payload_of(uint64_t i, uint8_t *buf)
{
    size_t n = (size_t)(i * 37 % 300);
    for (size_t k = 0; k < n; k++)
        buf[k] = (uint8_t)(i * 31 + k);
    return n;
}

static int
append_range(struct fx *f, uint64_t from, uint64_t to)
{
    uint8_t buf[512];
    for (uint64_t i = from; i <= to; i++) {
        size_t n = payload_of(i, buf);
        int rc = vlog_append(f->v, i, VLOG_TYPE_BATCH, buf, n, NULL, f->errmsg);
        if (rc != RV_OK)
            return rc;
    }
    return RV_OK;
}

/* Iterate from index from and check every record up to last. */
static int
check_all(struct fx *f, uint64_t from, uint64_t last)
{
    struct vlog_iter *it;
    struct vlog_record rec;
    uint8_t buf[512];
    uint64_t want = from;
    if (vlog_iter_open(f->v, from, &it, f->errmsg) != RV_OK)
        return 0;
    int rc;
    while ((rc = vlog_iter_next(it, &rec, f->errmsg)) == RV_OK) {
        size_t n = payload_of(want, buf);
        if (rec.index != want || rec.len != n ||
            memcmp(rec.payload, buf, n) != 0) {
            vlog_iter_close(it);
            return 0;
        }
        want++;
    }
    vlog_iter_close(it);
    return rc == RV_ENOTFOUND && want == last + 1;
}

static char *
seg_path(const struct fx *f, uint32_t n)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%08u.seg", f->dir, n);
    return path;
}

static off_t
file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void
flip_byte(const char *path, off_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    if (fd < 0 || pread(fd, &b, 1, off) != 1)
        abort();
    b ^= mask;
    if (pwrite(fd, &b, 1, off) != 1)
        abort();
    close(fd);
}

/* Offsets of the records of a segment file (walking the lengths). */
static size_t
record_offsets(const char *path, off_t *out, size_t max)
{
    int fd = open(path, O_RDONLY);
    off_t size = file_size(path), off = VLOG_SEGMENT_HEADER;
    size_t n = 0;
    uint8_t h[4];
    while (fd >= 0 && off + VLOG_RECORD_HEADER <= size && n < max &&
           pread(fd, h, 4, off) == 4) {
        out[n++] = off;
        off += VLOG_RECORD_HEADER + (off_t)rv_get_be32(h);
    }
    if (fd >= 0)
        close(fd);
    return n;
}

/* ---- Tests ------------------------------------------------------------- */

static void
test_append_read_iterate_across_rotations(void)
{
    struct fx f;
    fx_init(&f, "vlog-rot");
    CHECK_OK(fx_open(&f, SEG_BYTES), f.errmsg);
    CHECK_OK(append_range(&f, 1, 200), f.errmsg);
    CHECK(vlog_last_index(f.v) == 200);
    CHECK(check_all(&f, 1, 200));
    CHECK(check_all(&f, 137, 200));
    /* Read one record by pointer. */
    uint8_t buf[512];
    struct vlog_ptr ptr;
    struct rv_buf out;
    uint64_t idx;
    size_t n = payload_of(201, buf);
    CHECK_OK(vlog_append(f.v, 201, VLOG_TYPE_BATCH, buf, n, &ptr, f.errmsg),
             f.errmsg);
    rv_buf_init(&out);
    CHECK_OK(vlog_read(f.v, ptr, &out, &idx, f.errmsg), f.errmsg);
    CHECK(idx == 201 && out.len == n && memcmp(out.data, buf, n) == 0);
    CHECK(ptr.segment > 3); /* 200 records of ~150 B rotated often. */
    struct vlog_ptr bad = {ptr.segment + 5, 32, 0};
    CHECK_RC(vlog_read(f.v, bad, &out, NULL, f.errmsg), RV_ENOTFOUND, f.errmsg);
    rv_buf_free(&out);
    CHECK(vlog_size_bytes(f.v) > 200u * VLOG_RECORD_HEADER);
    /* Reopen: everything is still there and appends continue. */
    vlog_close(f.v);
    CHECK_OK(fx_open(&f, SEG_BYTES), f.errmsg);
    CHECK(vlog_last_index(f.v) == 201);
    CHECK_OK(append_range(&f, 202, 260), f.errmsg);
    CHECK(check_all(&f, 1, 260));
    uint64_t n_rec, n_seg, last, torn;
    CHECK_OK(vlog_verify(f.dir, &n_rec, &n_seg, &last, &torn, f.errmsg),
             f.errmsg);
    CHECK(n_rec == 260 && last == 260 && torn == 0 && n_seg >= ptr.segment);
    fx_done(&f);
}

static void
test_bad_appends_are_refused(void)
{
    struct fx f;
    fx_init(&f, "vlog-bad");
    CHECK_OK(fx_open(&f, SEG_BYTES), f.errmsg);
    CHECK_OK(append_range(&f, 5, 6), f.errmsg);
    CHECK_RC(vlog_append(f.v, 6, VLOG_TYPE_BATCH, "x", 1, NULL, f.errmsg),
             RV_EINVAL, f.errmsg);
    CHECK_RC(vlog_append(f.v, 3, VLOG_TYPE_BATCH, "x", 1, NULL, f.errmsg),
             RV_EINVAL, f.errmsg);
    CHECK_RC(vlog_append(f.v, 9, VLOG_TYPE_SEAL, "x", 1, NULL, f.errmsg),
             RV_EINVAL, f.errmsg);
    static uint8_t big[VLOG_MAX_PAYLOAD_BYTES + 1];
    CHECK_RC(
        vlog_append(f.v, 9, VLOG_TYPE_BATCH, big, sizeof big, NULL, f.errmsg),
        RV_EINVAL, f.errmsg);
    /* A record larger than a segment gets a segment of its own. */
    static uint8_t large[3 * SEG_BYTES];
    CHECK_OK(vlog_append(f.v, 9, VLOG_TYPE_BATCH, large, sizeof large, NULL,
                         f.errmsg),
             f.errmsg);
    CHECK_OK(vlog_sync(f.v, f.errmsg), f.errmsg);
    vlog_close(f.v);
    f.v = NULL;
    struct vlog_config cfg = {f.dir, 100, NULL};
    CHECK_RC(vlog_open(&f.v, &cfg, f.errmsg), RV_EINVAL, f.errmsg);
    CHECK_OK(fx_open(&f, SEG_BYTES), f.errmsg);
    CHECK(vlog_last_index(f.v) == 9);
    fx_done(&f);
}

/* Cut the newest segment at every byte inside its last records: open must
 * truncate to the last whole record, and the log must keep working. */
static void
test_torn_tail_matrix_cut_at_every_byte(void)
{
    struct fx f;
    fx_init(&f, "vlog-torn");
    CHECK_OK(fx_open(&f, 1u << 20), f.errmsg);
    CHECK_OK(append_range(&f, 1, 40), f.errmsg);
    vlog_close(f.v);
    f.v = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s", seg_path(&f, 1));
    off_t offs[64];
    size_t n = record_offsets(path, offs, 64);
    CHECK(n == 40);
    off_t full = file_size(path);
    /* Keep the original bytes to restore before each cut. */
    int in = open(path, O_RDONLY);
    static uint8_t orig[1 << 16];
    CHECK(in >= 0 && full < (off_t)sizeof orig &&
          pread(in, orig, (size_t)full, 0) == full);
    close(in);
    int n_cases = 0;
    for (off_t cut = offs[n - 3]; cut < full; cut++) {
        int fd = open(path, O_WRONLY | O_TRUNC);
        CHECK(fd >= 0 && pwrite(fd, orig, (size_t)cut, 0) == cut);
        close(fd);
        /* Whole records before the cut. */
        uint64_t whole = 0;
        for (size_t k = 0; k < n; k++) {
            off_t end = k + 1 < n ? offs[k + 1] : full;
            if (end <= cut)
                whole = k + 1;
        }
        CHECK_OK(fx_open(&f, 1u << 20), f.errmsg);
        CHECK_EQ_U64(vlog_last_index(f.v), whole);
        CHECK(check_all(&f, 1, whole));
        off_t want = whole < n ? offs[whole] : full;
        CHECK(file_size(path) == want);
        /* The log keeps working after the repair. */
        CHECK_OK(append_range(&f, whole + 1, whole + 2), f.errmsg);
        vlog_close(f.v);
        f.v = NULL;
        CHECK_OK(fx_open(&f, 1u << 20), f.errmsg);
        CHECK(check_all(&f, 1, whole + 2));
        vlog_close(f.v);
        f.v = NULL;
        n_cases++;
    }
    CHECK(n_cases > 100);
    fx_done(&f);
}

static void
test_zeroed_tail_is_truncated(void)
{
    struct fx f;
    fx_init(&f, "vlog-zero");
    CHECK_OK(fx_open(&f, 1u << 20), f.errmsg);
    CHECK_OK(append_range(&f, 1, 20), f.errmsg);
    vlog_close(f.v);
    f.v = NULL;
    const char *path = seg_path(&f, 1);
    off_t offs[32];
    size_t n = record_offsets(path, offs, 32);
    CHECK(n == 20);
    /* Zero the last two records and add 4 KiB of zeros past the end. */
    off_t size = file_size(path);
    static uint8_t zeros[8192];
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, zeros, (size_t)(size - offs[18]), offs[18]) ==
          size - offs[18]);
    CHECK(pwrite(fd, zeros, 4096, size) == 4096);
    close(fd);
    uint64_t torn = 0;
    CHECK_OK(vlog_verify(f.dir, NULL, NULL, NULL, &torn, f.errmsg), f.errmsg);
    CHECK(torn == (uint64_t)(size + 4096 - offs[18]));
    CHECK_OK(fx_open(&f, 1u << 20), f.errmsg);
    CHECK(vlog_last_index(f.v) == 18);
    CHECK(file_size(path) == offs[18]);
    CHECK(check_all(&f, 1, 18));
    fx_done(&f);
}

static void
test_bit_flip_in_the_tail_is_torn_in_the_middle_refused(void)
{
    struct fx f;
    fx_init(&f, "vlog-flip");
    CHECK_OK(fx_open(&f, 1u << 20), f.errmsg);
    CHECK_OK(append_range(&f, 1, 30), f.errmsg);
    vlog_close(f.v);
    f.v = NULL;
    const char *path = seg_path(&f, 1);
    off_t offs[32];
    CHECK(record_offsets(path, offs, 32) == 30);
    /* A flip inside a middle record (valid records follow): refused. */
    flip_byte(path, offs[10] + VLOG_RECORD_HEADER + 1, 0x10);
    CHECK_RC(fx_open(&f, 1u << 20), RV_ECORRUPT, f.errmsg);
    CHECK(strstr(f.errmsg, "00000001.seg") != NULL);
    CHECK(strstr(f.errmsg, "offset") != NULL);
    CHECK_RC(vlog_verify(f.dir, NULL, NULL, NULL, NULL, f.errmsg), RV_ECORRUPT,
             f.errmsg);
    CHECK(file_size(path) > offs[29]); /* Nothing was dropped. */
    flip_byte(path, offs[10] + VLOG_RECORD_HEADER + 1, 0x10);
    /* A flip in the last record: a torn tail, truncated. */
    flip_byte(path, offs[29] + VLOG_RECORD_HEADER, 0x01);
    CHECK_OK(fx_open(&f, 1u << 20), f.errmsg);
    CHECK(vlog_last_index(f.v) == 29);
    CHECK(file_size(path) == offs[29]);
    fx_done(&f);
}

static void
test_damaged_sealed_segment_is_refused(void)
{
    struct fx f;
    fx_init(&f, "vlog-sealed");
    CHECK_OK(fx_open(&f, SEG_BYTES), f.errmsg);
    CHECK_OK(append_range(&f, 1, 120), f.errmsg);
    vlog_close(f.v);
    f.v = NULL;
    const char *path = seg_path(&f, 2);
    off_t offs[64];
    size_t n = record_offsets(path, offs, 64);
    CHECK(n > 3);
    /* A flip in a middle record of a sealed segment: open succeeds (seals
     * are checked there) but every read path reports it. */
    flip_byte(path, offs[1] + VLOG_RECORD_HEADER, 0x04);
    CHECK_RC(vlog_verify(f.dir, NULL, NULL, NULL, NULL, f.errmsg), RV_ECORRUPT,
             f.errmsg);
    CHECK(strstr(f.errmsg, "00000002.seg") != NULL);
    CHECK_OK(fx_open(&f, SEG_BYTES), f.errmsg);
    struct vlog_iter *it;
    struct vlog_record rec;
    CHECK_OK(vlog_iter_open(f.v, 1, &it, f.errmsg), f.errmsg);
    int rc;
    while ((rc = vlog_iter_next(it, &rec, f.errmsg)) == RV_OK)
        ;
    vlog_iter_close(it);
    CHECK_RC(rc, RV_ECORRUPT, f.errmsg);
    vlog_close(f.v);
    f.v = NULL;
    /* Truncating a sealed segment (its seal gone): open refuses. */
    CHECK(truncate(path, offs[n - 1]) == 0);
    CHECK_RC(fx_open(&f, SEG_BYTES), RV_ECORRUPT, f.errmsg);
    CHECK(strstr(f.errmsg, "00000002.seg") != NULL);
    fx_done(&f);
}

static void
test_scrub_visits_sealed_segments_and_finds_a_flip(void)
{
    struct fx f;
    fx_init(&f, "vlog-scrub");
    uint32_t cursor = 0;
    uint64_t bytes = 0;
    CHECK_OK(fx_open(&f, SEG_BYTES), f.errmsg);
    CHECK_OK(append_range(&f, 1, 5), f.errmsg);
    /* One open segment only: nothing to scrub. */
    CHECK_RC(vlog_scrub(f.dir, &cursor, &bytes, f.errmsg), RV_ENOTFOUND,
             f.errmsg);
    CHECK_OK(append_range(&f, 6, 160), f.errmsg);
    size_t n_segs = 0;
    while (file_size(seg_path(&f, (uint32_t)n_segs + 1)) >= 0)
        n_segs++;
    CHECK(n_segs >= 4);
    /* Round and round over the sealed ones, never the newest, while the
     * vlog is open and appended to. */
    for (size_t round = 0; round < 2 * (n_segs - 1); round++) {
        CHECK_OK(vlog_scrub(f.dir, &cursor, &bytes, f.errmsg), f.errmsg);
        CHECK(cursor == (uint32_t)(round % (n_segs - 1)) + 1);
        CHECK(bytes == (uint64_t)file_size(seg_path(&f, cursor)));
    }
    /* A flip in a record of segment 2, read by nobody: the scrub finds it
     * when its turn comes, and names the file. */
    const char *path = seg_path(&f, 2);
    off_t offs[64];
    size_t n = record_offsets(path, offs, 64);
    CHECK(n > 3);
    flip_byte(path, offs[2] + VLOG_RECORD_HEADER, 0x20);
    cursor = 1;
    CHECK_RC(vlog_scrub(f.dir, &cursor, &bytes, f.errmsg), RV_ECORRUPT,
             f.errmsg);
    CHECK(cursor == 2);
    CHECK(strstr(f.errmsg, "00000002.seg") != NULL);
    fx_done(&f);
}

static void
test_missing_middle_segment_is_refused(void)
{
    struct fx f;
    fx_init(&f, "vlog-gap");
    CHECK_OK(fx_open(&f, SEG_BYTES), f.errmsg);
    CHECK_OK(append_range(&f, 1, 120), f.errmsg);
    vlog_close(f.v);
    f.v = NULL;
    CHECK(unlink(seg_path(&f, 2)) == 0);
    CHECK_RC(fx_open(&f, SEG_BYTES), RV_ECORRUPT, f.errmsg);
    CHECK(strstr(f.errmsg, "missing") != NULL);
    fx_done(&f);
}

static void
test_garbage_newest_segment_never_crashes(void)
{
    struct rv_rng rng;
    uint64_t seed = rv_test_seed(99);
    rv_rng_seed(&rng, seed);
    for (int round = 0; round < 30; round++) {
        struct fx f;
        fx_init(&f, "vlog-garbage");
        CHECK_OK(fx_open(&f, 1u << 20), f.errmsg);
        CHECK_OK(append_range(&f, 1, 5), f.errmsg);
        vlog_close(f.v);
        f.v = NULL;
        /* Keep the header, replace the body by random bytes. */
        const char *path = seg_path(&f, 1);
        uint8_t junk[2048];
        size_t n = (size_t)rv_rng_below(&rng, sizeof junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rv_rng_next(&rng);
        int fd = open(path, O_WRONLY | O_TRUNC);
        uint8_t hdr[VLOG_SEGMENT_HEADER] = "RVVLOG01";
        rv_put_be32(hdr + 8, VLOG_FORMAT_VERSION);
        rv_put_be64(hdr + 16, 1);
        rv_put_be64(hdr + 24, 1);
        CHECK(fd >= 0 && pwrite(fd, hdr, sizeof hdr, 0) == sizeof hdr);
        CHECK(pwrite(fd, junk, n, sizeof hdr) == (ssize_t)n);
        close(fd);
        int rc = fx_open(&f, 1u << 20);
        if (rc != RV_OK && rc != RV_ECORRUPT)
            RV_CHECK_FAIL("seed %llu round %d: %s", (unsigned long long)seed,
                          round, rv_errname(rc));
        /* Random bytes almost never form a valid record; whatever opens
         * must iterate cleanly up to its last index. */
        if (rc == RV_OK) {
            struct vlog_iter *it;
            struct vlog_record rec;
            uint64_t count = 0;
            CHECK_OK(vlog_iter_open(f.v, 1, &it, f.errmsg), f.errmsg);
            while (vlog_iter_next(it, &rec, f.errmsg) == RV_OK)
                count++;
            vlog_iter_close(it);
            CHECK(count <= 1 && (count == 0) == (vlog_last_index(f.v) == 0));
        }
        fx_done(&f);
    }
}

/* Set segment n's header version (bytes 8-11). */
static void
set_seg_version(struct fx *f, uint32_t n, uint32_t version)
{
    uint8_t v[4];
    rv_put_be32(v, version);
    int fd = open(seg_path(f, n), O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, v, 4, 8) == 4);
    close(fd);
}

/* A segment a newer runvault wrote (header version 2) is refused with
 * RV_EVERSION, newest or sealed, and never repaired or truncated: the
 * newest segment's header path rewrites headers it cannot read. */
static void
test_newer_format_segment_is_refused_untouched(void)
{
    struct fx f;
    fx_init(&f, "vlog-version");
    CHECK_OK(fx_open(&f, 4096), f.errmsg);
    CHECK_OK(append_range(&f, 1, 60), f.errmsg);
    vlog_close(f.v);
    f.v = NULL;
    uint32_t newest = 1;
    while (file_size(seg_path(&f, newest + 1)) >= 0)
        newest++;
    CHECK(newest >= 2);
    off_t size = file_size(seg_path(&f, newest));
    for (int round = 0; round < 2; round++) {
        uint32_t n = round == 0 ? newest : 1;
        set_seg_version(&f, n, VLOG_FORMAT_VERSION + 1);
        CHECK_RC(fx_open(&f, 4096), RV_EVERSION, f.errmsg);
        CHECK(strstr(f.errmsg, "format version 2") != NULL);
        CHECK(strstr(f.errmsg, seg_path(&f, n)) != NULL);
        CHECK(f.v == NULL);
        CHECK(file_size(seg_path(&f, newest)) == size);
        set_seg_version(&f, n, VLOG_FORMAT_VERSION);
    }
    CHECK_OK(fx_open(&f, 4096), f.errmsg);
    CHECK(vlog_last_index(f.v) == 60);
    CHECK(check_all(&f, 1, 60));
    fx_done(&f);
}

struct reader_arg {
    struct vlog *v;
    uint64_t target;
    int ok;
};

/* Iterate repeatedly while the writer appends: every pass sees a gap-free
 * prefix 1..k with correct payloads. */
static void *
reader_main(void *p)
{
    struct reader_arg *a = p;
    char errmsg[RV_ERRMSG_SIZE];
    uint8_t buf[512];
    uint64_t seen = 0;
    a->ok = 1;
    while (seen < a->target && a->ok) {
        struct vlog_iter *it;
        struct vlog_record rec;
        uint64_t want = 1;
        if (vlog_iter_open(a->v, 1, &it, errmsg) != RV_OK) {
            a->ok = 0;
            break;
        }
        int rc;
        while ((rc = vlog_iter_next(it, &rec, errmsg)) == RV_OK) {
            size_t n = payload_of(want, buf);
            if (rec.index != want || rec.len != n ||
                memcmp(rec.payload, buf, n) != 0)
                a->ok = 0;
            want++;
        }
        if (rc != RV_ENOTFOUND)
            a->ok = 0;
        vlog_iter_close(it);
        seen = want - 1;
    }
    return NULL;
}

static void
test_concurrent_reader_sees_a_consistent_prefix(void)
{
    struct fx f;
    fx_init(&f, "vlog-conc");
    CHECK_OK(fx_open(&f, 16384), f.errmsg);
    struct reader_arg a = {f.v, 3000, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, reader_main, &a) == 0);
    int rc = append_range(&f, 1, 3000);
    pthread_join(th, NULL);
    CHECK_OK(rc, f.errmsg);
    CHECK(a.ok);
    fx_done(&f);
}

static const struct rv_test tests[] = {
    {"append_read_iterate_across_rotations",
     test_append_read_iterate_across_rotations},
    {"bad_appends_are_refused", test_bad_appends_are_refused},
    {"torn_tail_matrix_cut_at_every_byte",
     test_torn_tail_matrix_cut_at_every_byte},
    {"zeroed_tail_is_truncated", test_zeroed_tail_is_truncated},
    {"bit_flip_in_the_tail_is_torn_in_the_middle_refused",
     test_bit_flip_in_the_tail_is_torn_in_the_middle_refused},
    {"damaged_sealed_segment_is_refused",
     test_damaged_sealed_segment_is_refused},
    {"scrub_visits_sealed_segments_and_finds_a_flip",
     test_scrub_visits_sealed_segments_and_finds_a_flip},
    {"missing_middle_segment_is_refused",
     test_missing_middle_segment_is_refused},
    {"newer_format_segment_is_refused_untouched",
     test_newer_format_segment_is_refused_untouched},
    {"garbage_newest_segment_never_crashes",
     test_garbage_newest_segment_never_crashes},
    {"concurrent_reader_sees_a_consistent_prefix",
     test_concurrent_reader_sees_a_consistent_prefix},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
