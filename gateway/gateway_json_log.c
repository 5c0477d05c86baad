/* Log lines: JSON lines -> one Rv__LogLines command, and a range of
 * numbered lines out. */
#include "base/clock.h"
#include "gateway/gateway_int.h"

#include <stdio.h>
#include <string.h>

/* POST /api/v2/runs/{run}/logs {"lines":[{"timestamp","stream","text"}]} */
void
gw_log_append(struct gw_ctx *c)
{
    char *run_id = c->param[GW_P_RUN];
    static const char *const fields[] = {"lines", NULL};
    static const char *const lfields[] = {"timestamp", "stream", "text", NULL};
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__LogLines ll = RV__LOG_LINES__INIT;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "logs", fields) != 0)
        goto out;
    json_t *ls = json_object_get(j, "lines");
    if (!json_is_array(ls) || json_array_size(ls) == 0 ||
        json_array_size(ls) > GATEWAY_MAX_LOG_LINES) {
        gw__reject(c, RV_EINVAL,
                   "'lines' must be an array of 1 to %d "
                   "lines",
                   GATEWAY_MAX_LOG_LINES);
        goto out;
    }
    size_t n = json_array_size(ls);
    Rv__LogLine *lines = gw__alloc(c, n * sizeof *lines);
    ll.lines = gw__alloc(c, n * sizeof *ll.lines);
    if (lines == NULL || ll.lines == NULL) {
        gw_reply_error(c->x, RV_ENOMEM, NULL);
        goto out;
    }
    int64_t now = (int64_t)rv_clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(ls, i);
        char where[32], *stream;
        snprintf(where, sizeof where, "lines[%zu]", i);
        rv__log_line__init(&lines[i]);
        lines[i].timestamp_ms = now;
        if (!json_is_object(l)) {
            gw__reject(c, RV_EINVAL, "%s must be an object", where);
            goto out;
        }
        if (gw__only(c, l, where, lfields) != 0 ||
            gw__str(c, l, "text", 1, CONTRACT_MAX_LOG_LINE_BYTES,
                    &lines[i].text) != 0 ||
            gw__str(c, l, "stream", 0, 8, &stream) != 0 ||
            gw__int(c, l, "timestamp", where, 0, INT64_MAX,
                    &lines[i].timestamp_ms) != 0)
            goto out;
        lines[i].has_stream = 1;
        if (stream == NULL || strcmp(stream, "stdout") == 0)
            lines[i].stream = RV__STREAM__STDOUT;
        else if (strcmp(stream, "stderr") == 0)
            lines[i].stream = RV__STREAM__STDERR;
        else {
            gw__reject(c, RV_EINVAL, "%s.stream must be stdout or stderr",
                       where);
            goto out;
        }
        ll.lines[i] = &lines[i];
    }
    ll.n_lines = n;
    ll.run_id = run_id;
    if (gw__stamp(c, &cmd) != 0)
        goto out;
    cmd.body_case = RV__COMMAND__BODY_LOG_LINES;
    cmd.log_lines = &ll;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r != NULL) {
        atomic_fetch_add(&c->x->g->stats.n_log_lines, n);
        gw_reply_json(c->x, 200, gw__index_reply(r));
    }
out:
    json_decref(j);
}

/* GET /api/v2/runs/{run}/logs?from_line=&max_lines= */
void
gw_log_read(struct gw_ctx *c)
{
    char *run_id = c->param[GW_P_RUN];
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    Rv__LogsRequest l = RV__LOGS_REQUEST__INIT;
    uint64_t from = 0, max = 0;
    int has_from, has_max;
    if (gw__read_options(c, &req, &ro) != 0 ||
        gw__q_u64(c, "from_line", UINT64_MAX, &from, &has_from) != 0 ||
        gw__q_u64(c, "max_lines", CONTRACT_MAX_LOG_LINES_READ, &max,
                  &has_max) != 0)
        return;
    if (has_max && max == 0) {
        gw_reply_error(c->x, RV_EINVAL, "max_lines must be at least 1");
        return;
    }
    l.run_id = run_id;
    l.has_from_line = has_from;
    l.from_line = from;
    l.has_max_lines = has_max;
    l.max_lines = (uint32_t)max;
    req.body_case = RV__REQUEST__BODY_LOGS;
    req.logs = &l;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < r->n_lines; i++) {
        const Rv__LogLineOut *o = r->lines[i];
        json_array_append_new(
            arr,
            json_pack("{s:I,s:I,s:s,s:s}", "line_no", (json_int_t)o->line_no,
                      "timestamp", (json_int_t)o->timestamp_ms, "stream",
                      o->stream == RV__STREAM__STDERR ? "stderr" : "stdout",
                      "text", o->text));
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:o,s:I,s:f}", "lines", arr, "next_line",
                            (json_int_t)r->next_line, "query_time_ms",
                            gw__elapsed_ms(c->x)));
}
