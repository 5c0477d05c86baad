/* The builder of columnar metric batches (contract in metrics_builder.h). */
#include "proto/metrics_builder.h"

#include "base/err.h"

#include <stdlib.h>
#include <string.h>

static size_t
proto_metrics_varint_bytes(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint64_t
proto_metrics_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

/* Packed bytes a point adds, dictionary entries aside. */
static size_t
proto_metrics_point_bytes(uint32_t key_idx, uint32_t ctx_idx, int64_t step,
                          int64_t ts_ms)
{
    return proto_metrics_varint_bytes(key_idx) +
           proto_metrics_varint_bytes(ctx_idx) +
           proto_metrics_varint_bytes(proto_metrics_zigzag(step)) +
           proto_metrics_varint_bytes(proto_metrics_zigzag(ts_ms)) +
           sizeof(double);
}

/* Index of s in dict[0, n) (hint tried first, and moved to it), or -1. */
static long
proto_metrics_find(char *const *dict, size_t n, size_t *hint, const char *s)
{
    if (*hint < n && strcmp(dict[*hint], s) == 0)
        return (long)*hint;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(dict[i], s) == 0) {
            *hint = i;
            return (long)i;
        }
    }
    return -1;
}

/* Index of s in the dictionary, a copy appended if missing; -1 out of
 * memory. */
static long
proto_metrics_intern(char ***dict, size_t *n, size_t *cap, size_t *hint,
                     const char *s)
{
    long i = proto_metrics_find(*dict, *n, hint, s);
    if (i >= 0)
        return i;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        char **d = realloc(*dict, c * sizeof *d);
        if (d == NULL)
            return -1;
        *dict = d;
        *cap = c;
    }
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, s, len + 1);
    (*dict)[*n] = copy;
    *hint = *n;
    return (long)(*n)++;
}

/* p resized to cap elements of size bytes, or p itself (*ok cleared) if
 * that fails. */
static void *
proto_metrics_resize(void *p, size_t cap, size_t size, int *ok)
{
    void *q = realloc(p, cap * size);
    if (q == NULL) {
        *ok = 0;
        return p;
    }
    return q;
}

static int
proto_metrics_grow(struct proto_metrics_builder *mb)
{
    if (mb->n < mb->cap)
        return RV_OK;
    size_t cap = mb->cap ? 2 * mb->cap : 64;
    /* Each array that grew keeps its new room; cap only counts when all
     * did, so a failure leaves the builder usable. */
    int ok = 1;
    mb->key_idx = proto_metrics_resize(mb->key_idx, cap, sizeof(uint32_t), &ok);
    mb->ctx_idx = proto_metrics_resize(mb->ctx_idx, cap, sizeof(uint32_t), &ok);
    mb->steps = proto_metrics_resize(mb->steps, cap, sizeof(int64_t), &ok);
    mb->ts = proto_metrics_resize(mb->ts, cap, sizeof(int64_t), &ok);
    mb->values = proto_metrics_resize(mb->values, cap, sizeof(double), &ok);
    if (!ok)
        return RV_ENOMEM;
    mb->cap = cap;
    return RV_OK;
}

void
proto_metrics_init(struct proto_metrics_builder *mb)
{
    memset(mb, 0, sizeof *mb);
}

void
proto_metrics_reset(struct proto_metrics_builder *mb)
{
    for (size_t i = 0; i < mb->n_keys; i++)
        free(mb->keys[i]);
    for (size_t i = 0; i < mb->n_ctxs; i++)
        free(mb->ctxs[i]);
    mb->n_keys = mb->n_ctxs = mb->hint_key = mb->hint_ctx = mb->n = 0;
}

void
proto_metrics_free(struct proto_metrics_builder *mb)
{
    proto_metrics_reset(mb);
    free(mb->keys);
    free(mb->ctxs);
    free(mb->key_idx);
    free(mb->ctx_idx);
    free(mb->steps);
    free(mb->ts);
    free(mb->values);
    proto_metrics_init(mb);
}

int
proto_metrics_add(struct proto_metrics_builder *mb, const char *key,
                  const char *ctx, int64_t step, int64_t ts_ms, double value,
                  size_t *n_bytes)
{
    if (ctx == NULL)
        ctx = "";
    size_t nk0 = mb->n_keys, nc0 = mb->n_ctxs;
    if (proto_metrics_grow(mb) != RV_OK)
        return RV_ENOMEM;
    long ki = proto_metrics_intern(&mb->keys, &mb->n_keys, &mb->cap_keys,
                                   &mb->hint_key, key);
    long ci = ki < 0 ? -1
                     : proto_metrics_intern(&mb->ctxs, &mb->n_ctxs,
                                            &mb->cap_ctxs, &mb->hint_ctx, ctx);
    if (ci < 0) {
        if (mb->n_keys != nk0) /* Undo the new key: unchanged on error. */
            free(mb->keys[--mb->n_keys]);
        mb->hint_key = 0;
        return RV_ENOMEM;
    }
    mb->key_idx[mb->n] = (uint32_t)ki;
    mb->ctx_idx[mb->n] = (uint32_t)ci;
    mb->steps[mb->n] = step;
    mb->ts[mb->n] = ts_ms;
    mb->values[mb->n] = value;
    mb->n++;
    if (n_bytes != NULL) {
        size_t add =
            proto_metrics_point_bytes((uint32_t)ki, (uint32_t)ci, step, ts_ms);
        add += mb->n_keys != nk0 ? strlen(key) + 3 : 0;
        add += mb->n_ctxs != nc0 ? strlen(ctx) + 3 : 0;
        *n_bytes = add;
    }
    return RV_OK;
}

size_t
proto_metrics_n_series_with(struct proto_metrics_builder *mb, const char *key,
                            const char *ctx)
{
    size_t nk = mb->n_keys, nc = mb->n_ctxs;
    if (proto_metrics_find(mb->keys, mb->n_keys, &mb->hint_key, key) < 0)
        nk++;
    if (proto_metrics_find(mb->ctxs, mb->n_ctxs, &mb->hint_ctx,
                           ctx != NULL ? ctx : "") < 0)
        nc++;
    return nk * (nc ? nc : 1);
}

size_t
proto_metrics_point_bytes_max(size_t kn, size_t cn, int64_t step, int64_t ts_ms)
{
    return kn + 3 + cn + 3 +
           proto_metrics_point_bytes(UINT32_MAX, UINT32_MAX, step, ts_ms);
}

void
proto_metrics_view(const struct proto_metrics_builder *mb, Rv__Metrics *m)
{
    rv__metrics__init(m);
    m->n_keys = mb->n_keys;
    m->keys = mb->keys;
    /* One context: no per-point index; only "": no dictionary either. */
    if (mb->n_ctxs > 1) {
        m->n_contexts = mb->n_ctxs;
        m->contexts = mb->ctxs;
        m->n_ctx_idx = mb->n;
        m->ctx_idx = mb->ctx_idx;
    } else if (mb->n_ctxs == 1 && mb->ctxs[0][0] != '\0') {
        m->n_contexts = 1;
        m->contexts = mb->ctxs;
    }
    m->n_key_idx = m->n_steps = m->n_timestamps_ms = m->n_values = mb->n;
    m->key_idx = mb->key_idx;
    m->steps = mb->steps;
    m->timestamps_ms = mb->ts;
    m->values = mb->values;
}
