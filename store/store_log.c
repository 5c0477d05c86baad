/* Log lines: written by LogLines commands (the text stays in the vlog,
 * the logs table points at it) and read back by store_log_lines. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Writes ------------------------------------------------------------ */

int
store__log_lines(struct store_wctx *w, const Rv__LogLines *ll,
                 struct vlog_ptr ptr, uint16_t cmd_no)
{
    struct store__runrec rr;
    if (ll->n_lines == 0 || ll->n_lines > CONTRACT_MAX_LOG_LINES_PER_COMMAND) {
        rv_errmsg_printf(w->errmsg, "a logs request holds 1..%d lines, got %zu",
                         CONTRACT_MAX_LOG_LINES_PER_COMMAND, ll->n_lines);
        return RV_EINVAL;
    }
    for (size_t i = 0; i < ll->n_lines; i++) {
        const Rv__LogLine *l = ll->lines[i];
        size_t n = strlen(l->text);
        if (n > CONTRACT_MAX_LOG_LINE_BYTES ||
            !contract_utf8_valid(l->text, n)) {
            rv_errmsg_printf(w->errmsg,
                             "log line %zu must be UTF-8 of at most "
                             "%d bytes",
                             i, CONTRACT_MAX_LOG_LINE_BYTES);
            return RV_EINVAL;
        }
        if (l->has_stream && l->stream != RV__STREAM__STDOUT &&
            l->stream != RV__STREAM__STDERR) {
            rv_errmsg_printf(w->errmsg, "log line %zu: unknown stream", i);
            return RV_EINVAL;
        }
    }
    int rc = store__runrec_get_active(w, ll->run_id, &rr);
    if (rc != RV_OK)
        return rc;
    uint8_t k[16], v[18];
    rv_put_be64(k, rr.run_num);
    rv_put_be64(k + 8, rr.n_log_lines);
    rv_put_be32(v, ptr.segment);
    rv_put_be32(v + 4, ptr.offset);
    rv_put_be32(v + 8, ptr.len);
    rv_put_be16(v + 12, cmd_no);
    rv_put_be32(v + 14, (uint32_t)ll->n_lines);
    rc = store__put(w, STORE_DB_LOGS, k, sizeof k, v, sizeof v);
    if (rc != RV_OK)
        return rc;
    rr.n_log_lines += ll->n_lines;
    return store__runrec_put(w, &rr);
}

/* ---- Reads ------------------------------------------------------------- */

void
store_log_lines_free(struct store_log_line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i].text);
    free(lines);
}

static int
store__log_chunk(struct store_read *r, const MDB_val *v, uint64_t first,
                 uint64_t from_line, size_t max_lines,
                 struct store_log_line *out, size_t *n_out, char *errmsg)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != 18)
        return RV_ECORRUPT;
    struct vlog_ptr ptr = {rv_get_be32(p), rv_get_be32(p + 4),
                           rv_get_be32(p + 8)};
    uint16_t cmd_no = rv_get_be16(p + 12);
    Rv__CommandBatch *b = NULL;
    int rc = vlog_read(r->s->vlog, ptr, &r->vbuf, NULL, errmsg);
    if (rc == RV_OK)
        rc = proto_batch_decode(r->vbuf.data, r->vbuf.len, &b, errmsg);
    if (rc != RV_OK)
        return rc == RV_EMALFORMED ? RV_ECORRUPT : rc;
    if (cmd_no >= b->n_commands ||
        b->commands[cmd_no]->body_case != RV__COMMAND__BODY_LOG_LINES) {
        proto_batch_free(b);
        return RV_ECORRUPT;
    }
    const Rv__LogLines *ll = b->commands[cmd_no]->log_lines;
    for (size_t i = 0; i < ll->n_lines && *n_out < max_lines; i++) {
        if (first + i < from_line)
            continue;
        struct store_log_line *l = &out[(*n_out)];
        l->line_no = first + i;
        l->timestamp_ms = ll->lines[i]->timestamp_ms;
        l->stream = ll->lines[i]->has_stream ? (int)ll->lines[i]->stream : 0;
        l->text =
            store__strndup(ll->lines[i]->text, strlen(ll->lines[i]->text));
        if (l->text == NULL) {
            proto_batch_free(b);
            return RV_ENOMEM;
        }
        (*n_out)++;
    }
    proto_batch_free(b);
    return RV_OK;
}

int
store_log_lines(struct store_read *r, const char *run_id, uint64_t from_line,
                size_t max_lines, struct store_log_line **lines,
                size_t *n_lines, uint64_t *next_line, char *errmsg)
{
    uint64_t run_num;
    struct store__rview rv;
    *lines = NULL;
    *n_lines = 0;
    if (max_lines == 0 || max_lines > CONTRACT_MAX_LOG_LINES_READ) {
        rv_errmsg_printf(errmsg, "max_lines must be 1..%d",
                         CONTRACT_MAX_LOG_LINES_READ);
        return RV_EINVAL;
    }
    int rc = store__read_run_num(r, run_id, &run_num, errmsg);
    if (rc == RV_OK)
        rc = store__rview_get(r, run_num, &rv, errmsg);
    if (rc != RV_OK)
        return rc;
    *next_line = from_line < rv.n_log_lines ? from_line : rv.n_log_lines;
    if (from_line >= rv.n_log_lines)
        return RV_OK;
    struct store_log_line *out = calloc(max_lines, sizeof *out);
    if (out == NULL)
        return RV_ENOMEM;
    MDB_cursor *cur;
    rc = mdb_cursor_open(r->txn, r->s->dbi[STORE_DB_LOGS], &cur);
    if (rc != 0) {
        free(out);
        return store__err_mdb(rc, "cursor", errmsg);
    }
    uint8_t k[16];
    rv_put_be64(k, run_num);
    rv_put_be64(k + 8, from_line);
    MDB_val key = {16, k}, v;
    /* The chunk holding from_line starts at or before it. */
    int mrc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
    if (mrc != 0 || memcmp(key.mv_data, k, 8) != 0 ||
        rv_get_be64((const uint8_t *)key.mv_data + 8) > from_line)
        mrc = mdb_cursor_get(cur, &key, &v,
                             mrc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    int err = RV_OK;
    for (; mrc == 0 && *n_lines < max_lines;
         mrc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
        if (key.mv_size != 16 || memcmp(key.mv_data, k, 8) != 0)
            break;
        uint64_t first = rv_get_be64((const uint8_t *)key.mv_data + 8);
        err = store__log_chunk(r, &v, first, from_line, max_lines, out, n_lines,
                               errmsg);
        if (err != RV_OK)
            break;
    }
    mdb_cursor_close(cur);
    if (err != RV_OK) {
        store_log_lines_free(out, *n_lines);
        *n_lines = 0;
        return err;
    }
    *lines = out;
    *next_line = *n_lines ? out[*n_lines - 1].line_no + 1 : *next_line;
    return RV_OK;
}
