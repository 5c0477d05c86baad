/* store: retention rules, trash and the sweep (store_retain.c), and the
 * divergence check's comparison (store_check.c): decisions come from the
 * command's stamped time and the replicated state only, so two stores fed
 * the same entries trash and purge the same runs with the same digest,
 * and a replay (verify) reaches it too. */
#include "proto/proto.h"
#include "store/store.h"
#include "tests/lib/harness.h"
#include "tests/lib/storefx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DAY ((int64_t)86400000)

/* Apply cmd, stamped at (0: not stamped), as the next entry; the store's
 * code, else the command's. */
static int
apply1(struct storefx *f, Rv__Command *cmd, int64_t at)
{
    cmd->has_stamped_at_ms = at != 0;
    cmd->stamped_at_ms = at;
    int rc = storefx_apply(f, &cmd, 1, NULL);
    return rc != RV_OK ? rc : f->last.code;
}

static int
create(struct storefx *f, const char *id, const char *project, int64_t created,
       Rv__RunStatus status)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunCreate c = RV__RUN_CREATE__INIT;
    c.run_id = (char *)id;
    c.project = (char *)project;
    c.experiment = "e";
    c.name = "n";
    c.created_at_ms = created;
    c.has_status = 1;
    c.status = status;
    cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd.run_create = &c;
    return apply1(f, &cmd, created);
}

static int
run_ref(struct storefx *f, Rv__Command__BodyCase which, const char *id,
        int64_t at)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RunRef ref = RV__RUN_REF__INIT;
    ref.run_id = (char *)id;
    cmd.body_case = which;
    cmd.run_delete = &ref; /* One union member; all are RunRef. */
    return apply1(f, &cmd, at);
}

static int
rule(struct storefx *f, const char *project, int64_t max_age, uint64_t keep,
     int64_t trash, const Rv__RunStatus *st, size_t n_st)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RetentionPut p = RV__RETENTION_PUT__INIT;
    p.project = (char *)project;
    p.has_max_age_ms = max_age != -1; /* -1: unset. */
    p.max_age_ms = max_age;
    p.has_keep_last = 1;
    p.keep_last = keep;
    p.has_trash_ms = trash != -1;
    p.trash_ms = trash;
    p.statuses = (Rv__RunStatus *)st;
    p.n_statuses = n_st;
    cmd.body_case = RV__COMMAND__BODY_RETENTION_PUT;
    cmd.retention_put = &p;
    return apply1(f, &cmd, 1);
}

static int
sweep(struct storefx *f, int64_t at, uint32_t max_runs)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RetentionSweep sw = RV__RETENTION_SWEEP__INIT;
    sw.has_max_runs = max_runs > 0;
    sw.max_runs = max_runs;
    cmd.body_case = RV__COMMAND__BODY_RETENTION_SWEEP;
    cmd.retention_sweep = &sw;
    return apply1(f, &cmd, at);
}

/* 'A' active, 'D' deleted (in trash), '-' gone, for run id. */
static char
state(struct storefx *f, const char *id)
{
    struct store_read *r;
    struct store_run run;
    if (store_read_begin(f->s, STORE_EVERY_TEAM, &r, f->errmsg) != RV_OK)
        abort();
    int rc = store_run_get(r, id, 0, &run, f->errmsg);
    store_read_end(r);
    if (rc == RV_ENOTFOUND)
        return '-';
    if (rc != RV_OK)
        abort();
    char c = run.lifecycle == STORE_DELETED ? 'D' : 'A';
    store_run_free(&run);
    return c;
}

static int
due(struct storefx *f, int64_t at)
{
    struct store_read *r;
    int is_due = -1;
    if (store_read_begin(f->s, STORE_EVERY_TEAM, &r, f->errmsg) != RV_OK ||
        store_retention_due(r, at, &is_due, f->errmsg) != RV_OK)
        abort();
    store_read_end(r);
    return is_due;
}

/* keep_last by creation time (newest kept), statuses, a bounded sweep,
 * trash 0: the same sweep purges. */
static void
feed_keep_last(struct storefx *f)
{
    static const Rv__RunStatus fin[] = {RV__RUN_STATUS__FINISHED};
    char id[16];
    /* Created out of index order: "newest" is by created_at_ms. */
    static const int64_t created[8] = {5000, 1000, 7000, 3000,
                                       2000, 8000, 6000, 4000};
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof id, "k%d", i);
        CHECK_OK(create(f, id, "p", created[i], RV__RUN_STATUS__FINISHED),
                 f->last.message);
    }
    CHECK_OK(create(f, "k-fail", "p", 100, RV__RUN_STATUS__FAILED),
             f->last.message);
    CHECK_OK(create(f, "k-run", "p", 100, RV__RUN_STATUS__RUNNING),
             f->last.message);
    CHECK_OK(create(f, "q0", "q", 100, RV__RUN_STATUS__FINISHED),
             f->last.message);
    CHECK(due(f, 10000) == 0);
    CHECK_OK(rule(f, "p", -1, 3, 0, fin, 1), f->last.message);
    CHECK(due(f, 10000) == 1);
    /* A budget of 2: two trashed and (trash 0) purged per sweep. */
    CHECK_OK(sweep(f, 10000, 2), f->last.message);
    CHECK_OK(sweep(f, 10001, 2), f->last.message);
    CHECK_OK(sweep(f, 10002, 2), f->last.message);
    CHECK(due(f, 10003) == 0);
    CHECK_OK(sweep(f, 10003, 2), f->last.message); /* Nothing: a no-op. */
}

static void
test_keep_last_is_deterministic_and_bounded(void)
{
    struct storefx a, b;
    uint8_t da[STORE_DIGEST_BYTES], db[STORE_DIGEST_BYTES];
    struct store_check chk;
    storefx_init(&a, "retain-a");
    storefx_init(&b, "retain-b");
    feed_keep_last(&a);
    feed_keep_last(&b);
    /* Kept: the three newest FINISHED (8000 k5, 7000 k2, 6000 k6), and the
     * runs the rule does not cover. */
    const char *kept = "k2 k5 k6 k-fail k-run q0";
    for (int i = 0; i < 8; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%d", i);
        CHECK(state(&a, id) == (strstr(kept, id) ? 'A' : '-'));
    }
    CHECK(state(&a, "k-fail") == 'A' && state(&a, "k-run") == 'A' &&
          state(&a, "q0") == 'A');
    store_digest(a.s, da);
    store_digest(b.s, db);
    CHECK(memcmp(da, db, sizeof da) == 0);
    /* A replay of the vlog reaches the same digest. */
    CHECK_OK(store_sync(a.s, a.errmsg), a.errmsg);
    store_close(a.s);
    a.s = NULL;
    CHECK_OK(store_verify(a.dir, NULL, &chk, a.errmsg), a.errmsg);
    CHECK(chk.is_digest_equal);
    storefx_done(&a);
    storefx_done(&b);
}

static void
test_decisions_come_from_the_stamped_time(void)
{
    struct storefx f;
    storefx_init(&f, "retain-time");
    CHECK_OK(create(&f, "old", "p", 5000, RV__RUN_STATUS__KILLED),
             f.last.message);
    CHECK_OK(rule(&f, "p", 1000, 0, -1, NULL, 0), f.last.message);
    /* Age 999 ms: kept; 1000 ms: trashed (default trash period). */
    CHECK(due(&f, 5999) == 0);
    CHECK_OK(sweep(&f, 5999, 0), f.last.message);
    CHECK(state(&f, "old") == 'A');
    CHECK(due(&f, 6000) == 1);
    CHECK_OK(sweep(&f, 6000, 0), f.last.message);
    CHECK(state(&f, "old") == 'D');
    /* In trash for the default 30 days from the sweep's time. */
    CHECK(due(&f, 6000 + 30 * DAY - 1) == 0);
    CHECK_OK(sweep(&f, 6000 + 30 * DAY - 1, 0), f.last.message);
    CHECK(state(&f, "old") == 'D');
    CHECK_OK(sweep(&f, 6000 + 30 * DAY, 0), f.last.message);
    CHECK(state(&f, "old") == '-');
    /* A restore forgets the trash time; the next delete starts again. */
    CHECK_OK(create(&f, "r", "z", 1, RV__RUN_STATUS__FINISHED), f.last.message);
    CHECK_OK(run_ref(&f, RV__COMMAND__BODY_RUN_DELETE, "r", 100 * DAY),
             f.last.message);
    CHECK_OK(run_ref(&f, RV__COMMAND__BODY_RUN_RESTORE, "r", 101 * DAY),
             f.last.message);
    CHECK_OK(sweep(&f, 140 * DAY, 0), f.last.message);
    CHECK(state(&f, "r") == 'A');
    /* Stamped behind the sweep at 140 days: apply's time never goes back,
     * so the delete counts from 140 days, not 120 (ARCHITECTURE.md,
     * "Time"). */
    CHECK_OK(run_ref(&f, RV__COMMAND__BODY_RUN_DELETE, "r", 120 * DAY),
             f.last.message);
    CHECK_OK(sweep(&f, 150 * DAY, 0), f.last.message);
    CHECK(state(&f, "r") == 'D');
    CHECK_OK(sweep(&f, 170 * DAY - 1, 0), f.last.message);
    CHECK(state(&f, "r") == 'D');
    CHECK_OK(sweep(&f, 170 * DAY, 0), f.last.message);
    CHECK(state(&f, "r") == '-');
    storefx_done(&f);
}

static void
test_bad_commands_are_refused(void)
{
    static const Rv__RunStatus bad[] = {(Rv__RunStatus)42};
    struct storefx f;
    uint8_t d0[STORE_DIGEST_BYTES], d1[STORE_DIGEST_BYTES];
    storefx_init(&f, "retain-bad");
    store_digest(f.s, d0);
    CHECK(rule(&f, "p", -5, 0, -1, NULL, 0) == RV_EINVAL);
    CHECK(rule(&f, "p", -1, 0, -7, NULL, 0) == RV_EINVAL);
    CHECK(rule(&f, "p", -1, 1, -1, bad, 1) == RV_EINVAL);
    CHECK(rule(&f, "", -1, 1, -1, NULL, 0) == RV_EINVAL);
    CHECK(sweep(&f, 0, 0) == RV_EINVAL); /* No stamped time. */
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__Check ck = RV__CHECK__INIT;
    uint8_t h[3] = {1, 2, 3};
    ck.has_hash_index = 1;
    ck.hash_index = 1;
    ck.has_hash = 1;
    ck.hash.data = h;
    ck.hash.len = sizeof h;
    cmd.body_case = RV__COMMAND__BODY_CHECK;
    cmd.check = &ck;
    CHECK(apply1(&f, &cmd, 1) == RV_EINVAL); /* A 3-byte hash. */
    store_digest(f.s, d1);
    CHECK(memcmp(d0, d1, sizeof d0) != 0); /* Entries count in the chain, */
    struct store_read *r;
    struct store_retention *rules;
    size_t n = 9;
    CHECK_OK(store_read_begin(f.s, STORE_EVERY_TEAM, &r, f.errmsg), f.errmsg);
    CHECK_OK(store_retention_list(r, NULL, &rules, &n, f.errmsg), f.errmsg);
    CHECK(n == 0); /* but no refused command wrote anything. */
    free(rules);
    store_read_end(r);
    storefx_done(&f);
}

/* A check entry at the next index, carrying (at, hash) when hash. */
static int
check_entry(struct storefx *f, uint64_t at, const uint8_t *hash)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__Check ck = RV__CHECK__INIT;
    ck.has_hash_index = hash != NULL;
    ck.hash_index = at;
    ck.has_hash = hash != NULL;
    ck.hash.data = (uint8_t *)hash;
    ck.hash.len = hash != NULL ? STORE_DIGEST_BYTES : 0;
    cmd.body_case = RV__COMMAND__BODY_CHECK;
    cmd.check = &ck;
    return apply1(f, &cmd, 1);
}

static void
wait_hashed(struct storefx *f, uint64_t n)
{
    struct store_check_info ci;
    for (int i = 0; i < 2000; i++) {
        store_check_info(f->s, &ci);
        if (ci.n_hashed >= n)
            return;
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    CHECK(!"the check thread hashed in time");
}

static void
test_check_compares_index_hashes(void)
{
    struct storefx a, b;
    struct store_check_info ca, cb;
    storefx_init(&a, "check-a");
    storefx_init(&b, "check-b");
    CHECK_OK(store_check_start(a.s, a.errmsg), a.errmsg);
    CHECK_OK(store_check_start(b.s, b.errmsg), b.errmsg);
    for (struct storefx *f = &a; f != NULL; f = f == &a ? &b : NULL) {
        CHECK_OK(create(f, "r", "p", 10, RV__RUN_STATUS__FINISHED),
                 f->last.message);
        CHECK_OK(check_entry(f, 0, NULL), f->last.message);
        wait_hashed(f, 1);
    }
    store_check_info(a.s, &ca);
    store_check_info(b.s, &cb);
    CHECK(ca.last_index == 2 && cb.last_index == 2);
    CHECK(memcmp(ca.last_hash, cb.last_hash, STORE_DIGEST_BYTES) == 0);
    /* A carries its own hash: equal. B is told another one: diverged. */
    uint8_t other[STORE_DIGEST_BYTES];
    memcpy(other, ca.last_hash, sizeof other);
    other[5] ^= 0x20;
    CHECK_OK(check_entry(&a, 2, ca.last_hash), a.last.message);
    CHECK_OK(check_entry(&b, 2, other), b.last.message);
    store_check_info(a.s, &ca);
    store_check_info(b.s, &cb);
    CHECK(!ca.is_diverged && ca.n_compared == 1);
    CHECK(cb.is_diverged && cb.diverged_index == 2 && cb.n_compared == 1);
    /* The flag is kept (meta "diverged") by the next entry and survives a
     * restart; the digests stay equal (it is local state). */
    wait_hashed(&b, 2);
    CHECK_OK(check_entry(&b, 0, NULL), b.last.message);
    CHECK_OK(check_entry(&a, 0, NULL), a.last.message);
    uint8_t da[STORE_DIGEST_BYTES], db[STORE_DIGEST_BYTES];
    store_digest(a.s, da);
    store_digest(b.s, db);
    CHECK(memcmp(da, db, sizeof da) == 0);
    store_close(b.s);
    struct store_config cfg = {b.dir, (size_t)1 << 30, 64 << 10, NULL, NULL};
    CHECK_OK(store_open(&b.s, &cfg, b.errmsg), b.errmsg);
    store_check_info(b.s, &cb);
    CHECK(cb.is_diverged && cb.diverged_index == 2);
    storefx_done(&a);
    storefx_done(&b);
}

/* A log sink keeping the last warning and counting them. */
struct warns {
    int n;
    char last[512];
};

static void
warns_fn(void *data, enum rv_log_level level, const char *module,
         const char *msg)
{
    struct warns *w = data;
    (void)module;
    if (level >= RV_LOG_WARN) {
        w->n++;
        snprintf(w->last, sizeof w->last, "%s", msg);
    }
}

/* rebuild-index on a cleanly closed store, twice: nothing to warn about
 * (the marker describing the removed index goes with it); an index file
 * removed by hand is rebuilt with a message saying so. */
static void
test_rebuild_index_says_what_it_found(void)
{
    struct storefx f;
    struct warns w = {0};
    struct rv_log log = {warns_fn, &w, RV_LOG_DEBUG};
    struct store_check chk;
    char path[4200];
    storefx_init(&f, "retain-rebuild");
    CHECK_OK(create(&f, "r", "p", 10, RV__RUN_STATUS__FINISHED),
             f.last.message);
    CHECK_OK(store_sync(f.s, f.errmsg), f.errmsg);
    store_close(f.s);
    f.s = NULL;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(store_rebuild_index(f.dir, &log, &chk, f.errmsg), f.errmsg);
        CHECK(chk.is_digest_equal && chk.applied_index == 1);
    }
    CHECK(w.n == 0);
    if (w.n != 0)
        fprintf(stderr, "warned: %s\n", w.last);
    snprintf(path, sizeof path, "%s/index.mdb", f.dir);
    CHECK(unlink(path) == 0);
    struct store_config cfg = {f.dir, (size_t)1 << 30, 64 << 10, &log, NULL};
    CHECK_OK(store_open(&f.s, &cfg, f.errmsg), f.errmsg);
    CHECK(w.n == 1 && strstr(w.last, "index at 0 is empty, but the last "
                                     "sync recorded index 1") != NULL);
    CHECK(store_applied_index(f.s) == 1);
    storefx_done(&f);
}

static const struct rv_test tests[] = {
    {"rebuild_index_says_what_it_found", test_rebuild_index_says_what_it_found},
    {"keep_last_is_deterministic_and_bounded",
     test_keep_last_is_deterministic_and_bounded},
    {"decisions_come_from_the_stamped_time",
     test_decisions_come_from_the_stamped_time},
    {"bad_commands_are_refused", test_bad_commands_are_refused},
    {"check_compares_index_hashes", test_check_compares_index_hashes},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
