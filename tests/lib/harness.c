#define _XOPEN_SOURCE 700 /* nftw */
#include "tests/lib/harness.h"

#include <ftw.h>
#include <string.h>
#include <unistd.h>

int rv_test_failed;

int
rv_test_main(int argc, char **argv, const struct rv_test *tests)
{
    int n_passed = 0, n_failed = 0;

    for (const struct rv_test *t = tests; t->name != NULL; t++) {
        if (argc > 1 && strcmp(argv[1], t->name) != 0)
            continue;
        rv_test_failed = 0;
        fprintf(stderr, "-- %s\n", t->name);
        t->fn();
        if (rv_test_failed) {
            fprintf(stderr, "FAIL %s\n", t->name);
            n_failed++;
        } else {
            n_passed++;
        }
    }
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed == 0 && n_passed > 0 ? 0 : 1;
}

char *
rv_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char path[4096];

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    snprintf(path, sizeof path, "%s/rvtest-%s-XXXXXX", base, tag);
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        abort();
    }
    return strdup(path);
}

static int
rv_test_rm_one(const char *path, const struct stat *st, int flag,
               struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
rv_test_rmdir(char *path)
{
    if (path == NULL)
        return;
    nftw(path, rv_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

uint64_t
rv_test_seed(uint64_t dflt)
{
    const char *s = getenv("RV_TEST_SEED");
    if (s == NULL || s[0] == '\0')
        return dflt;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end != '\0')
        return dflt;
    return v;
}
