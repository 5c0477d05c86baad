/* What every read shares: query parameters checked at the door, the read
 * options (consistency=, min_index=), this node's replica state, and the
 * JSON of numbers and timings in read answers (contracts in
 * gateway_int.h). */
#include "base/clock.h"
#include "base/parse.h"
#include "gateway/gateway_int.h"
#include "raft/replica.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double
gw__elapsed_ms(const struct gw_exchange *x)
{
    /* Rounded to 1/1024 ms: exact in binary, so it prints short. */
    uint64_t us = rv_clock_mono_ns() / 1000u - x->start_us;
    return (double)((us * 1024u + 500u) / 1000u) / 1024.0;
}

json_t *
gw_json_double(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

int
gw__q_i64(struct gw_ctx *c, const char *name, int64_t min, int64_t max,
          int64_t *out, int *is_set)
{
    const char *v = gw_query(c->x, name);
    *is_set = 0;
    if (v == NULL)
        return 0;
    int64_t n;
    if (rv_parse_i64(v, &n) != 0 || n < min || n > max) {
        return gw__reject(c, RV_EINVAL,
                          "query parameter %s must be an integer from %lld to "
                          "%lld",
                          name, (long long)min, (long long)max);
    }
    *out = (int64_t)n;
    *is_set = 1;
    return 0;
}

int
gw__q_u64(struct gw_ctx *c, const char *name, uint64_t max, uint64_t *out,
          int *is_set)
{
    const char *v = gw_query(c->x, name);
    *is_set = 0;
    if (v == NULL)
        return 0;
    uint64_t n;
    if (rv_parse_u64(v, &n) != 0 || n > max) {
        return gw__reject(c, RV_EINVAL,
                          "query parameter %s must be an integer from 0 to "
                          "%llu",
                          name, (unsigned long long)max);
    }
    *out = (uint64_t)n;
    *is_set = 1;
    return 0;
}

/* A string parameter of at most max bytes, or NULL. */
int
gw__q_str(struct gw_ctx *c, const char *name, size_t max, const char **out)
{
    const char *v = gw_query(c->x, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (strlen(v) > max) {
        return gw__reject(c, RV_EINVAL,
                          "query parameter %s is longer than %zu bytes", name,
                          max);
    }
    *out = v;
    return 0;
}

/* Every read takes consistency= and min_index=. */
int
gw__read_options(struct gw_ctx *c, Rv__Request *req, Rv__ReadOptions *ro)
{
    const char *cs = gw_query(c->x, "consistency");
    uint64_t min_index;
    int is_set;
    rv__read_options__init(ro);
    if (cs != NULL) {
        ro->has_consistency = 1;
        if (strcmp(cs, "stale") == 0)
            ro->consistency = RV__CONSISTENCY__STALE;
        else if (strcmp(cs, "leader") == 0)
            ro->consistency = RV__CONSISTENCY__LEADER;
        else if (strcmp(cs, "linearizable") == 0)
            ro->consistency = RV__CONSISTENCY__LINEARIZABLE;
        else {
            gw_reply_error(c->x, RV_EINVAL,
                           "consistency must be stale, leader or "
                           "linearizable");
            return -1;
        }
    }
    if (gw__q_u64(c, "min_index", UINT64_MAX, &min_index, &is_set) != 0)
        return -1;
    ro->has_min_index = is_set;
    ro->min_index = min_index;
    req->read = ro;
    return 0;
}

void
gw__info(struct gw_ctx *c, struct replica_info *info)
{
    const struct gw_node_ops *ops = c->x->ops;
    if (ops != NULL)
        ops->info(ops->data, info);
    else
        rpc_node_info(c->x->g->cfg.rpc, info);
}

int
gw__is_running(struct gw_ctx *c)
{
    const struct gw_node_ops *ops = c->x->ops;
    if (ops != NULL)
        return ops->is_running(ops->data);
    return rpc_node_is_running(c->x->g->cfg.rpc);
}
