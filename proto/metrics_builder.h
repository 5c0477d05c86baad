/* The one builder of columnar metric batches (rv.Metrics, see
 * proto/runvault.proto): points are added one by one, with their key and
 * context strings; the builder keeps the key and context dictionaries (the
 * entry used last is tried first, so runs of one series cost one strcmp)
 * and the per-point columns, and hands them out as an Rv__Metrics that
 * borrows its arrays.
 *
 * The Rv__Metrics it gives is the smallest form the format allows: no
 * context dictionary when every point's context is "", and no ctx_idx
 * when there is one context.
 *
 * Packed size: proto_metrics_add() reports the bytes a point adds to the
 * packed message, an estimate that never falls short (it counts a ctx_idx
 * entry even when none is sent), so a caller can cut batches at a byte
 * limit without packing (rpc/client/batch.c does).
 *
 * Cost: a lookup is the hint check, then a short scan while a dictionary
 * holds at most PROTO_METRICS_SCAN_MAX entries; past that a hash index
 * (FNV-1a, open addressing) keeps it O(1) expected, so n points over k
 * series cost O(n) whatever k (the gateway feeds it untrusted input).
 *
 * Threads: a builder is used by one thread at a time. */
#ifndef RV_PROTO_METRICS_BUILDER_H
#define RV_PROTO_METRICS_BUILDER_H

#include "proto/runvault.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Entries a dictionary holds before it gets a hash index. */
#define PROTO_METRICS_SCAN_MAX 16

/* One dictionary (keys or contexts) of a builder. */
struct proto_metrics_dict {
    char **s; /* Entries; strings owned. */
    size_t n, cap;
    size_t hint;     /* The entry used last. */
    uint32_t *slots; /* Hash index: entry + 1, 0 empty; NULL when small. */
    size_t n_slots;  /* A power of two, over twice n; 0 when no index. */
};

/* Caller-allocated; the fields are read-only for the caller. */
struct proto_metrics_builder {
    struct proto_metrics_dict keys, ctxs;
    uint32_t *key_idx, *ctx_idx;
    int64_t *steps, *ts;
    double *values;
    size_t n, cap; /* Points held; room for. */
};

/* Make an empty builder. Nothing is allocated until the first point. */
void proto_metrics_init(struct proto_metrics_builder *mb);

/* Free what the builder holds; it is empty again (init state) after. */
void proto_metrics_free(struct proto_metrics_builder *mb);

/* Drop every point and both dictionaries, keeping the arrays' room. */
void proto_metrics_reset(struct proto_metrics_builder *mb);

/* Add one point of series (key, ctx). key and ctx are borrowed (copied
 * when new to the dictionary); ctx NULL means "". Lengths are not checked
 * here (see proto/contract.h). If n_bytes is not NULL, *n_bytes is set to
 * the packed bytes the point adds, new dictionary entries included.
 * Errors: RV_ENOMEM (the builder is unchanged). */
int proto_metrics_add(struct proto_metrics_builder *mb, const char *key,
                      const char *ctx, int64_t step, int64_t ts_ms,
                      double value, size_t *n_bytes);

/* How many series (keys times contexts, at least one context counted) the
 * builder would span after a point of (key, ctx), ctx NULL meaning "":
 * for checking CONTRACT_MAX_SERIES_PER_COMMAND before adding. */
size_t proto_metrics_n_series_with(struct proto_metrics_builder *mb,
                                   const char *key, const char *ctx);

/* The most packed bytes one point with a key of kn bytes and a context of
 * cn bytes can add (new dictionary entries, largest indexes). */
size_t proto_metrics_point_bytes_max(size_t kn, size_t cn, int64_t step,
                                     int64_t ts_ms);

/* Fill *m (initialised here) with the builder's points. m's arrays and
 * strings are borrowed from the builder: valid until its next add, reset
 * or free; never free m's fields. */
void proto_metrics_view(const struct proto_metrics_builder *mb, Rv__Metrics *m);

#endif /* RV_PROTO_METRICS_BUILDER_H */
