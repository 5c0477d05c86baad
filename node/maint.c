/* verify and rebuild-index (maint.h). */
#include "node/maint.h"

#include "base/clock.h"
#include "base/exit.h"
#include "store/store.h"

#include <stdio.h>

int
maint_exit_code(int rc)
{
    if (rc == RV_OK)
        return RV_EXIT_OK;
    if (rc == RV_ECORRUPT)
        return RV_EXIT_CORRUPT;
    if (rc == RV_EVERSION)
        return RV_EXIT_VERSION;
    return RV_EXIT_FAILURE;
}

static void
maint__print_check(const struct store_check *chk)
{
    char stored[2 * STORE_DIGEST_BYTES + 1],
        computed[2 * STORE_DIGEST_BYTES + 1];
    store_digest_hex(chk->stored_digest, stored);
    store_digest_hex(chk->computed_digest, computed);
    printf("segments:        %llu\n", (unsigned long long)chk->n_segments);
    printf("records:         %llu\n", (unsigned long long)chk->n_records);
    printf("vlog last index: %llu\n", (unsigned long long)chk->vlog_last_index);
    printf("applied index:   %llu\n", (unsigned long long)chk->applied_index);
    printf("stored digest:   %s\n", stored);
    printf("computed digest: %s\n", computed);
}

int
maint_verify(struct maint *m)
{
    struct store_check chk;
    char errmsg[RV_ERRMSG_SIZE] = "";
    int rc = store_verify(m->data_dir, &m->log, &chk, errmsg);
    maint__print_check(&chk);
    if (rc != RV_OK) {
        fprintf(stderr, "verify: FAILED: %s: %s\n", rv_strerror(rc), errmsg);
        return maint_exit_code(rc);
    }
    printf("verify: OK (every CRC holds, digests equal)\n");
    return RV_EXIT_OK;
}

int
maint_rebuild_index(struct maint *m)
{
    struct store_check chk;
    char errmsg[RV_ERRMSG_SIZE] = "";
    uint64_t t0 = rv_clock_mono_ns();
    int rc = store_rebuild_index(m->data_dir, &m->log, &chk, errmsg);
    if (rc != RV_OK) {
        fprintf(stderr, "rebuild-index: FAILED: %s: %s\n", rv_strerror(rc),
                errmsg);
        return maint_exit_code(rc);
    }
    maint__print_check(&chk);
    printf("rebuild-index: rebuilt to index %llu in %.1f ms; digest %s the "
           "previous index's\n",
           (unsigned long long)chk.vlog_last_index,
           (double)(rv_clock_mono_ns() - t0) / 1e6,
           chk.is_digest_equal ? "equals" : "DIFFERS FROM");
    return chk.is_digest_equal || chk.applied_index == 0 ? RV_EXIT_OK
                                                         : RV_EXIT_CORRUPT;
}
