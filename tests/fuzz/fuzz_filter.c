/* libFuzzer target: the filter language. The input up to the first '\n'
 * is the filter, the rest the ORDER BY list. Whatever parses is evaluated
 * against a fixed run whose lookups answer for some keys and not others;
 * LIKE runs on the raw halves too. Nothing may crash or leak. */
#include "store/filter.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fz_param(void *ctx, const char *key, size_t key_len, const char **val,
         size_t *val_len)
{
    (void)ctx;
    if (key_len == 0 || key[0] < 'm')
        return 0;
    *val = "0.01";
    *val_len = 4;
    return 1;
}

static int
fz_metric(void *ctx, const char *key, size_t key_len, double *val)
{
    (void)ctx;
    if (key_len == 0)
        return 0;
    *val = key[0] == 'n' ? __builtin_nan("") : (double)key_len / 3.0;
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t n1 = nl != NULL ? (size_t)(nl - s) : size;
    const char *ob = nl != NULL ? nl + 1 : NULL;
    size_t n2 = nl != NULL ? size - n1 - 1 : 0;
    char errmsg[256];
    struct filter *f = NULL;
    if (filter_parse(s, n1, ob, n2, &f, errmsg) == 0) {
        struct filter_run run = {
            .run_id = "run-1",
            .name = "a name",
            .status = "FINISHED",
            .user = "ada",
            .project = "vision",
            .experiment = "sweep",
            .team = "default",
            .lifecycle = "active",
            .created_at_ms = 1700000000000,
            .ended_at_ms = 0,
            .ctx = NULL,
            .param = fz_param,
            .tag = fz_param,
            .metric = fz_metric,
        };
        (void)filter_match(f, &run);
        filter_free(f);
    }
    (void)filter_like(s, n1, ob != NULL ? ob : "", n2, 0);
    (void)filter_like(s, n1, ob != NULL ? ob : "", n2, 1);
    return 0;
}
