/* libFuzzer target: vlog recovery over an arbitrary file. The input is
 * written as the only segment of a fresh directory; vlog_verify, then
 * vlog_open (recovery: a torn tail is cut, corruption refused) and, if it
 * opened, an iteration over every record and one more append must behave:
 * errors are answers, never crashes or reads outside the file. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "base/err.h"
#include "store/vlog.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[4096], path[4200], errmsg[RV_ERRMSG_SIZE];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/rvfuzz-vlog-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof path, "%s/%08u.seg", dir, 1u);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL)
        abort();
    if (size > 0 && fwrite(data, 1, size, fp) != size)
        abort();
    fclose(fp);
    uint64_t n_records, n_segments, last, torn;
    (void)vlog_verify(dir, &n_records, &n_segments, &last, &torn, errmsg);
    struct vlog *v = NULL;
    struct vlog_config cfg = {dir, 1 << 20, NULL};
    if (vlog_open(&v, &cfg, errmsg) == RV_OK) {
        struct vlog_iter *it;
        if (vlog_iter_open(v, 0, &it, errmsg) == RV_OK) {
            struct vlog_record rec;
            for (int i = 0; i < 100000; i++)
                if (vlog_iter_next(it, &rec, errmsg) != RV_OK)
                    break;
            vlog_iter_close(it);
        }
        struct vlog_ptr ptr;
        (void)vlog_append(v, vlog_last_index(v) + 1, VLOG_TYPE_BATCH, "x", 1,
                          &ptr, errmsg);
        vlog_close(v);
    }
    if (nftw(dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS) != 0)
        abort();
    return 0;
}
