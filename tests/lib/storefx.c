/* The unit tests' store fixture (storefx.h). */
#include "tests/lib/storefx.h"

#include "base/buf.h"
#include "tests/lib/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
storefx_open(struct storefx *f)
{
    struct store_config cfg = {f->dir, (size_t)1 << 30, 64 << 10, NULL, NULL};
    return store_open(&f->s, &cfg, f->errmsg);
}

void
storefx_init(struct storefx *f, const char *tag)
{
    memset(f, 0, sizeof *f);
    f->dir = rv_test_tmpdir(tag);
    if (storefx_open(f) != RV_OK) {
        fprintf(stderr, "store_open: %s\n", f->errmsg);
        abort();
    }
}

void
storefx_done(struct storefx *f)
{
    store_close(f->s);
    rv_test_rmdir(f->dir);
}

int
storefx_apply_at(struct store *s, uint64_t index, Rv__Command **cmds, size_t n,
                 struct store_result **out, size_t *n_out, char *errmsg)
{
    Rv__CommandBatch b = RV__COMMAND_BATCH__INIT;
    struct rv_buf e;
    b.n_commands = n;
    b.commands = cmds;
    *out = NULL;
    *n_out = 0;
    rv_buf_init(&e);
    int rc = proto_envelope_encode(&b, &e, errmsg);
    if (rc == RV_OK)
        rc = store_apply(s, index, e.data, e.len, out, n_out, errmsg);
    rv_buf_free(&e);
    return rc;
}

int
storefx_apply(struct storefx *f, Rv__Command **cmds, size_t n,
              struct store_result *res)
{
    struct store_result *out;
    size_t n_out;
    int rc =
        storefx_apply_at(f->s, ++f->index, cmds, n, &out, &n_out, f->errmsg);
    if (rc == RV_OK && res != NULL)
        memcpy(res, out, n_out * sizeof *out);
    if (rc == RV_OK && n_out > 0)
        f->last = out[n_out - 1];
    free(out);
    return rc;
}
