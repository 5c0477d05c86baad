/* The fuzz targets' store (fuzz_store.h). */
#include "tests/fuzz/fuzz_store.h"

#include <stdio.h>
#include <stdlib.h>

static struct store *fs_store;
static const char *fs_target;
static char fs_dir[4096];

static void
fs_cleanup(void)
{
    char cmd[4200];
    store_close(fs_store);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fs_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "%s: could not remove %s\n", fs_target, fs_dir);
}

struct store *
fuzz_store_open(const char *target)
{
    char errmsg[RV_ERRMSG_SIZE];
    const char *tmp = getenv("TMPDIR");
    fs_target = target;
    snprintf(fs_dir, sizeof fs_dir, "%s/rv%s-XXXXXX",
             tmp && *tmp ? tmp : "/tmp", target);
    if (mkdtemp(fs_dir) == NULL)
        abort();
    struct store_config cfg = {fs_dir, (size_t)4 << 30, 4 << 20, NULL, NULL};
    if (store_open(&fs_store, &cfg, errmsg) != RV_OK) {
        fprintf(stderr, "%s: store_open: %s\n", target, errmsg);
        abort();
    }
    atexit(fs_cleanup);
    return fs_store;
}
