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

/* FNV-1a, 64 bits. */
static uint64_t
proto_metrics_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* The slot of d's index holding s, or the empty one where s goes. */
static size_t
proto_metrics_slot(const struct proto_metrics_dict *d, const char *s)
{
    size_t mask = d->n_slots - 1;
    for (size_t i = (size_t)proto_metrics_hash(s) & mask;; i = (i + 1) & mask)
        if (d->slots[i] == 0 || strcmp(d->s[d->slots[i] - 1], s) == 0)
            return i;
}

/* Index of s in d (hint tried first, and moved to it), or -1. */
static long
proto_metrics_find(struct proto_metrics_dict *d, const char *s)
{
    if (d->hint < d->n && strcmp(d->s[d->hint], s) == 0)
        return (long)d->hint;
    if (d->slots != NULL) {
        uint32_t e = d->slots[proto_metrics_slot(d, s)];
        if (e == 0)
            return -1;
        d->hint = e - 1;
        return (long)d->hint;
    }
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->s[i], s) == 0) {
            d->hint = i;
            return (long)i;
        }
    }
    return -1;
}

/* Room in d for one more entry: the array, and the index once d is past
 * PROTO_METRICS_SCAN_MAX (rebuilt at twice the size; load under 1/2).
 * RV_ENOMEM leaves d as it was, usable. */
static int
proto_metrics_reserve(struct proto_metrics_dict *d)
{
    if (d->n == d->cap) {
        size_t c = d->cap ? 2 * d->cap : 8;
        char **s = realloc(d->s, c * sizeof *s);
        if (s == NULL)
            return RV_ENOMEM;
        d->s = s;
        d->cap = c;
    }
    if (d->n + 1 <= PROTO_METRICS_SCAN_MAX || d->n_slots > 2 * (d->n + 1))
        return RV_OK;
    size_t n_slots = d->n_slots ? 2 * d->n_slots : 4 * PROTO_METRICS_SCAN_MAX;
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (slots == NULL)
        return RV_ENOMEM;
    free(d->slots);
    d->slots = slots;
    d->n_slots = n_slots;
    for (size_t i = 0; i < d->n; i++)
        d->slots[proto_metrics_slot(d, d->s[i])] = (uint32_t)(i + 1);
    return RV_OK;
}

/* Append copy (owned from now on) to d, reserved for it. Its index. */
static long
proto_metrics_push(struct proto_metrics_dict *d, char *copy)
{
    if (d->slots != NULL)
        d->slots[proto_metrics_slot(d, copy)] = (uint32_t)(d->n + 1);
    d->s[d->n] = copy;
    d->hint = d->n;
    return (long)d->n++;
}

/* A copy of s, or NULL out of memory. */
static char *
proto_metrics_strdup(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy != NULL)
        memcpy(copy, s, len + 1);
    return copy;
}

static void
proto_metrics_dict_reset(struct proto_metrics_dict *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->s[i]);
    if (d->slots != NULL)
        memset(d->slots, 0, d->n_slots * sizeof *d->slots);
    d->n = d->hint = 0;
}

static void
proto_metrics_dict_free(struct proto_metrics_dict *d)
{
    proto_metrics_dict_reset(d);
    free(d->s);
    free(d->slots);
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
    proto_metrics_dict_reset(&mb->keys);
    proto_metrics_dict_reset(&mb->ctxs);
    mb->n = 0;
}

void
proto_metrics_free(struct proto_metrics_builder *mb)
{
    proto_metrics_dict_free(&mb->keys);
    proto_metrics_dict_free(&mb->ctxs);
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
    long ki = proto_metrics_find(&mb->keys, key);
    long ci = proto_metrics_find(&mb->ctxs, ctx);
    char *kcopy = NULL, *ccopy = NULL;
    /* Everything that can fail, before anything changes. */
    if (proto_metrics_grow(mb) != RV_OK ||
        (ki < 0 && (proto_metrics_reserve(&mb->keys) != RV_OK ||
                    (kcopy = proto_metrics_strdup(key)) == NULL)) ||
        (ci < 0 && (proto_metrics_reserve(&mb->ctxs) != RV_OK ||
                    (ccopy = proto_metrics_strdup(ctx)) == NULL))) {
        free(kcopy);
        return RV_ENOMEM;
    }
    if (ki < 0)
        ki = proto_metrics_push(&mb->keys, kcopy);
    if (ci < 0)
        ci = proto_metrics_push(&mb->ctxs, ccopy);
    mb->key_idx[mb->n] = (uint32_t)ki;
    mb->ctx_idx[mb->n] = (uint32_t)ci;
    mb->steps[mb->n] = step;
    mb->ts[mb->n] = ts_ms;
    mb->values[mb->n] = value;
    mb->n++;
    if (n_bytes != NULL) {
        size_t add =
            proto_metrics_point_bytes((uint32_t)ki, (uint32_t)ci, step, ts_ms);
        add += kcopy != NULL ? strlen(key) + 3 : 0;
        add += ccopy != NULL ? strlen(ctx) + 3 : 0;
        *n_bytes = add;
    }
    return RV_OK;
}

size_t
proto_metrics_n_series_with(struct proto_metrics_builder *mb, const char *key,
                            const char *ctx)
{
    size_t nk = mb->keys.n, nc = mb->ctxs.n;
    if (proto_metrics_find(&mb->keys, key) < 0)
        nk++;
    if (proto_metrics_find(&mb->ctxs, ctx != NULL ? ctx : "") < 0)
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
    m->n_keys = mb->keys.n;
    m->keys = mb->keys.s;
    /* One context: no per-point index; only "": no dictionary either. */
    if (mb->ctxs.n > 1) {
        m->n_contexts = mb->ctxs.n;
        m->contexts = mb->ctxs.s;
        m->n_ctx_idx = mb->n;
        m->ctx_idx = mb->ctx_idx;
    } else if (mb->ctxs.n == 1 && mb->ctxs.s[0][0] != '\0') {
        m->n_contexts = 1;
        m->contexts = mb->ctxs.s;
    }
    m->n_key_idx = m->n_steps = m->n_timestamps_ms = m->n_values = mb->n;
    m->key_idx = mb->key_idx;
    m->steps = mb->steps;
    m->timestamps_ms = mb->ts;
    m->values = mb->values;
}
