/* Requests to the cluster on behalf of one command (cli_int.h): the read
 * options, the failure text, the exit code of an outcome, metric history
 * fetched whole, pages of runs. */
#include "base/clock.h"
#include "base/exit.h"
#include "node/cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

static int
cli__is_no_answer(int code)
{
    return code == RV_ENOTLEADER || code == RV_EUNAVAILABLE ||
           code == RV_ETIMEDOUT || code == RV_EUNKNOWN;
}

/* The codes of a failure on this machine (a file, memory, an answer that
 * does not decode or an artifact whose SHA-256 differs); any other code
 * is the cluster's answer. RV_ENOSPACE is the cluster's: a node under its
 * free-space threshold refusing writes (the CLI's own files report
 * RV_EIO). */
static int
cli__is_local(int code)
{
    return code == RV_EIO || code == RV_ENOMEM || code == RV_EMALFORMED ||
           code == RV_ECORRUPT;
}

/* The exit code for an RV_* outcome of a read or of an argument check. */
int
cli__exit_for(int code)
{
    if (code == RV_OK)
        return RV_EXIT_OK;
    if (code == RV_ENOTFOUND)
        return RV_EXIT_NOTFOUND;
    if (code == RV_EINVAL || code == RV_EPARSE)
        return RV_EXIT_USAGE;
    if (cli__is_no_answer(code))
        return RV_EXIT_UNAVAILABLE;
    if (cli__is_local(code))
        return RV_EXIT_FAILURE;
    return RV_EXIT_REFUSED;
}

/* The exit code for an RV_* outcome of a write of input data. */
int
cli__exit_for_data(int code)
{
    if (code == RV_EINVAL || code == RV_ECONFLICT || code == RV_EEXIST ||
        code == RV_ETOOBIG || code == RV_ESTATE || code == RV_ENOTFOUND)
        return RV_EXIT_DATA;
    return cli__exit_for(code);
}

/* Send req (a read gets cl->read). On RV_OK *resp is an RV_OK response
 * (free with rvc_response_free). Otherwise the code of the failure with its
 * text in cl->errmsg, and *resp NULL. */
int
cli__rpc(struct cli *cl, Rv__Request *req, Rv__Response **resp)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    *resp = NULL;
    if (req->body_case != RV__REQUEST__BODY_WRITE)
        req->read = &cl->read;
    Rv__Response *r = NULL;
    int rc = rvc_call(cl->c, req, &r, errmsg);
    if (rc != RV_OK) {
        rv_errmsg_printf(cl->errmsg, "no node answered: %s", errmsg);
        return cli__is_no_answer(rc) ? rc : RV_EUNAVAILABLE;
    }
    if (r->code != RV_OK) {
        rc = (int)r->code;
        if (cli__is_no_answer(rc))
            rv_errmsg_printf(cl->errmsg, "no node could serve it (%s): %s",
                             rvc_last_endpoint(cl->c),
                             r->message ? r->message : rv_strerror(rc));
        else if (rc == RV_ERATE && r->has_retry_after_s)
            rv_errmsg_printf(
                cl->errmsg, "%s%s (retry after %u s)", cli__refusal_hint(rc),
                r->message && r->message[0] ? r->message : rv_strerror(rc),
                (unsigned)r->retry_after_s);
        else
            rv_errmsg_printf(cl->errmsg, "%s%s", cli__refusal_hint(rc),
                             r->message && r->message[0] ? r->message
                                                         : rv_strerror(rc));
        rvc_response_free(r);
        return rc;
    }
    *resp = r;
    return RV_OK;
}

/* Print the failure of the command and return its exit code. */
int
cli__fail(struct cli *cl, int code, int exit_code)
{
    fprintf(stderr, "runvault %s: %s\n", cl->name,
            cl->errmsg[0] ? cl->errmsg : rv_strerror(code));
    return exit_code;
}

int
cli__get_run(struct cli *cl, const char *run_id, Rv__Response **resp)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__GetRunRequest g = RV__GET_RUN_REQUEST__INIT;
    g.run_id = (char *)run_id;
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &g;
    int rc = cli__rpc(cl, &req, resp);
    if (rc == RV_OK && (*resp)->run == NULL) {
        rvc_response_free(*resp);
        *resp = NULL;
        rv_errmsg_printf(cl->errmsg, "run '%s': the answer holds no run",
                         run_id);
        return RV_EMALFORMED;
    }
    if (rc == RV_ENOTFOUND)
        rv_errmsg_printf(cl->errmsg, "run '%s' not found", run_id);
    return rc;
}

void
cli__points_free(struct cli_points *p)
{
    free(p->steps);
    free(p->ts);
    free(p->values);
    memset(p, 0, sizeof *p);
}

static int
cli__points_append(struct cli_points *p, const Rv__Response *r)
{
    size_t n = r->n_values;
    if (r->n_steps != n || r->n_timestamps_ms != n)
        return RV_EMALFORMED;
    if (n == 0)
        return RV_OK;
    if (p->n + n > p->cap) {
        size_t cap = p->cap ? p->cap : 1024;
        while (cap < p->n + n)
            cap *= 2;
        int64_t *s = realloc(p->steps, cap * sizeof *s);
        if (s != NULL)
            p->steps = s;
        int64_t *t = realloc(p->ts, cap * sizeof *t);
        if (t != NULL)
            p->ts = t;
        double *v = realloc(p->values, cap * sizeof *v);
        if (v != NULL)
            p->values = v;
        if (s == NULL || t == NULL || v == NULL)
            return RV_ENOMEM;
        p->cap = cap;
    }
    memcpy(p->steps + p->n, r->steps, n * sizeof *p->steps);
    memcpy(p->ts + p->n, r->timestamps_ms, n * sizeof *p->ts);
    memcpy(p->values + p->n, r->values, n * sizeof *p->values);
    p->n += n;
    return RV_OK;
}

/* Points of series (key, ctx) of run_id with steps in [lo, hi], in step
 * order. Without downsampling a node answers at most
 * CONTRACT_MAX_HISTORY_POINTS per request (RV_ETOOBIG beyond): the range is
 * then split in halves until each half fits, so any series can be read
 * whole. */
int
cli__history(struct cli *cl, const char *run_id, const char *key,
             const char *ctx, int64_t lo, int64_t hi, uint32_t downsample,
             struct cli_points *out)
{
    int64_t st_lo[CLI_SPLIT_DEPTH], st_hi[CLI_SPLIT_DEPTH];
    size_t sp = 0;
    st_lo[sp] = lo;
    st_hi[sp++] = hi;
    while (sp > 0) {
        int64_t a = st_lo[--sp], b = st_hi[sp];
        Rv__Request req = RV__REQUEST__INIT;
        Rv__HistoryRequest h = RV__HISTORY_REQUEST__INIT;
        Rv__Response *resp;
        h.run_id = (char *)run_id;
        h.key = (char *)key;
        h.context = (char *)ctx;
        h.has_min_step = h.has_max_step = 1;
        h.min_step = a;
        h.max_step = b;
        h.has_downsample = downsample > 0;
        h.downsample = downsample;
        req.body_case = RV__REQUEST__BODY_HISTORY;
        req.history = &h;
        int rc = cli__rpc(cl, &req, &resp);
        if (rc == RV_ETOOBIG && downsample == 0 && a < b &&
            sp + 2 <= CLI_SPLIT_DEPTH) {
            int64_t mid = a + (int64_t)(((uint64_t)b - (uint64_t)a) / 2);
            st_lo[sp] = mid + 1;
            st_hi[sp++] = b;
            st_lo[sp] = a;
            st_hi[sp++] = mid;
            continue;
        }
        if (rc == RV_ENOTFOUND)
            rv_errmsg_printf(cl->errmsg, "run '%s' has no metric '%s'%s%s%s",
                             run_id, key, ctx && ctx[0] ? " (context '" : "",
                             ctx && ctx[0] ? ctx : "",
                             ctx && ctx[0] ? "')" : "");
        if (rc != RV_OK)
            return rc;
        rc = cli__points_append(out, resp);
        rvc_response_free(resp);
        if (rc != RV_OK) {
            rv_errmsg_printf(cl->errmsg, "metric history: %s", rv_strerror(rc));
            return rc;
        }
    }
    return RV_OK;
}

int
cli__logs_page(struct cli *cl, const char *run_id, uint64_t from,
               Rv__Response **resp)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__LogsRequest l = RV__LOGS_REQUEST__INIT;
    l.run_id = (char *)run_id;
    l.has_from_line = l.has_max_lines = 1;
    l.from_line = from;
    l.max_lines = CLI_LOG_PAGE;
    req.body_case = RV__REQUEST__BODY_LOGS;
    req.logs = &l;
    return cli__rpc(cl, &req, resp);
}
