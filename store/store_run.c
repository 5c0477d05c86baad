/* Runs: the run record, create, update, status, lifecycle and purge, and
 * the per-run reads (store_run_get). Writes run on the writer thread
 * inside the apply transaction; reads run in a store_read transaction.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Run records ------------------------------------------------------- */

/* Decode run record v into rr, copying its bytes into rr->raw first (the
 * strings then point into rr->raw, not into the LMDB map). */
static int
store__runrec_decode(const MDB_val *v, uint64_t run_num,
                     struct store__runrec *rr)
{
    if (v->mv_size < STORE_RUN_HEADER || v->mv_size > sizeof rr->raw)
        return RV_ECORRUPT;
    memcpy(rr->raw, v->mv_data, v->mv_size);
    MDB_val copy = {v->mv_size, rr->raw};
    struct store__rview view;
    if (store__run_decode(&copy, run_num, &view) != RV_OK)
        return RV_ECORRUPT;
    rr->run_num = view.run_num;
    rr->status = view.status;
    rr->lifecycle = view.lifecycle;
    rr->created_at_ms = view.created_at_ms;
    rr->ended_at_ms = view.ended_at_ms;
    rr->n_points = view.n_points;
    rr->n_log_lines = view.n_log_lines;
    for (int i = 0; i < RUN_N_STR; i++) {
        rr->str[i] = view.str[i];
        rr->len[i] = (uint16_t)view.len[i];
    }
    return RV_OK;
}

int
store__runrec_put(struct store_wctx *w, const struct store__runrec *rr)
{
    uint8_t key[8], buf[sizeof rr->raw];
    struct rv_buf b = {buf, 0, sizeof buf, 0};

    /* A fixed buffer: rv_buf_reserve never grows it since cap suffices. */
    rv_put_be64(key, rr->run_num);
    rv_buf_append_u8(&b, STORE_FORMAT);
    rv_buf_append_u8(&b, rr->status);
    rv_buf_append_u8(&b, rr->lifecycle);
    rv_buf_append_u8(&b, 0);
    rv_buf_append_be64(&b, rv_i64_sortable(rr->created_at_ms));
    rv_buf_append_be64(&b, rv_i64_sortable(rr->ended_at_ms));
    rv_buf_append_be64(&b, rr->n_points);
    rv_buf_append_be64(&b, rr->n_log_lines);
    for (int i = 0; i < RUN_N_STR; i++)
        rv_buf_append_str16(&b, rr->str[i], rr->len[i]);
    if (b.is_failed || b.data != buf)
        return RV_ECORRUPT;
    return store__put(w, STORE_DB_RUN, key, 8, buf, b.len);
}

/* Find run_id; RV_ENOTFOUND if there is no such run. */
static int
store__runrec_get(struct store_wctx *w, const char *run_id,
                  struct store__runrec *rr)
{
    MDB_val v;
    uint64_t run_num;
    int rc = store__run_num_get(w->txn, w->s, run_id, &run_num, w->errmsg);
    if (rc != RV_OK)
        return rc;
    uint8_t key[8];
    rv_put_be64(key, run_num);
    rc = store__get(w->txn, w->s->dbi[STORE_DB_RUN], key, 8, &v, w->errmsg);
    if (rc == RV_ENOTFOUND)
        return RV_ECORRUPT;
    if (rc != RV_OK)
        return rc;
    if (store__runrec_decode(&v, run_num, rr) != RV_OK) {
        rv_errmsg_printf(w->errmsg, "run record %llu does not decode",
                         (unsigned long long)run_num);
        return RV_ECORRUPT;
    }
    return RV_OK;
}

int
store__runrec_get_active(struct store_wctx *w, const char *run_id,
                         struct store__runrec *rr)
{
    int rc = store__runrec_get(w, run_id, rr);
    if (rc == RV_OK && rr->lifecycle != STORE_ACTIVE) {
        rv_errmsg_printf(w->errmsg, "run '%.64s' is deleted", run_id);
        return RV_ESTATE;
    }
    return rc;
}

/* ---- Run create, update, status, lifecycle ----------------------------- */

static int
store__status_is_valid(int status)
{
    return status >= RV__RUN_STATUS__RUNNING &&
           status <= RV__RUN_STATUS__CRASHED;
}

static int
store__status_is_terminal(int status)
{
    return status >= RV__RUN_STATUS__FINISHED;
}

/* Change the status of rr (record written by the caller). */
static int
store__status_change(struct store_wctx *w, struct store__runrec *rr, int status,
                     int64_t ended_at_ms)
{
    int rc = RV_OK;
    int64_t was_ended = rr->ended_at_ms;
    if (status != rr->status) {
        if (rr->lifecycle == STORE_ACTIVE)
            rc = store__cnt_active(w, rr, -1);
        if (rc == RV_OK)
            rc = store__run_index(w, rr, -1);
        rr->status = (uint8_t)status;
        if (rc == RV_OK)
            rc = store__run_index(w, rr, 1);
        if (rc == RV_OK && rr->lifecycle == STORE_ACTIVE)
            rc = store__cnt_active(w, rr, 1);
    }
    rr->ended_at_ms = store__status_is_terminal(status) ? ended_at_ms : 0;
    if (rc == RV_OK && rr->ended_at_ms != was_ended) {
        int64_t now_ended = rr->ended_at_ms;
        rr->ended_at_ms = was_ended;
        rc = store__end_index(w, rr, -1);
        rr->ended_at_ms = now_ended;
        if (rc == RV_OK)
            rc = store__end_index(w, rr, 1);
    }
    return rc;
}

static int
store__run_create_check(const Rv__RunCreate *c, char *errmsg)
{
    size_t n = strlen(c->run_id);
    if (!contract_run_id_valid(c->run_id, n)) {
        rv_errmsg_printf(errmsg,
                         "invalid run_id '%.64s': 1..%d letters, "
                         "digits, '_' or '-', starting with a letter "
                         "or digit",
                         c->run_id, CONTRACT_MAX_RUN_ID_BYTES);
        return RV_EINVAL;
    }
    int rc =
        store__str_check(c->team, CONTRACT_MAX_TEAM_BYTES, 0, "team", errmsg);
    if (rc == RV_OK)
        rc = store__str_check(c->project, CONTRACT_MAX_SCOPE_BYTES, 1,
                              "project", errmsg);
    if (rc == RV_OK)
        rc = store__str_check(c->experiment, CONTRACT_MAX_SCOPE_BYTES, 1,
                              "experiment", errmsg);
    if (rc == RV_OK)
        rc = store__str_check(c->name, CONTRACT_MAX_NAME_BYTES, 0, "name",
                              errmsg);
    if (rc == RV_OK)
        rc = store__str_check(c->user, CONTRACT_MAX_SCOPE_BYTES, 0, "user",
                              errmsg);
    if (rc != RV_OK)
        return rc;
    if (c->created_at_ms < 0) {
        rv_errmsg_printf(errmsg, "created_at_ms must not be negative");
        return RV_EINVAL;
    }
    if (c->has_status && !store__status_is_valid((int)c->status)) {
        rv_errmsg_printf(errmsg, "invalid run status %d", c->status);
        return RV_EINVAL;
    }
    return RV_OK;
}

static const char *
store__team_or_default(const char *team)
{
    return team != NULL && team[0] != '\0' ? team : "default";
}

static int
store__scope_equal(const struct store__runrec *rr, int i, const char *s)
{
    return rr->len[i] == strlen(s) && memcmp(rr->str[i], s, rr->len[i]) == 0;
}

static int
store__run_resume(struct store_wctx *w, const Rv__RunCreate *c,
                  struct store__runrec *rr, struct store_result *res)
{
    if (!store__scope_equal(rr, RUN_TEAM, store__team_or_default(c->team)) ||
        !store__scope_equal(rr, RUN_PROJECT, c->project) ||
        !store__scope_equal(rr, RUN_EXPERIMENT, c->experiment)) {
        rv_errmsg_printf(w->errmsg,
                         "run '%.64s' exists in another team, "
                         "project or experiment",
                         c->run_id);
        return RV_ECONFLICT;
    }
    if (rr->lifecycle != STORE_ACTIVE) {
        rv_errmsg_printf(w->errmsg, "run '%.64s' is deleted", c->run_id);
        return RV_ESTATE;
    }
    int rc = store__kvs_apply(w, rr->run_num, c->params, c->n_params, c->tags,
                              c->n_tags);
    if (rc == RV_OK && c->has_status && c->status != rr->status) {
        rc = store__status_change(w, rr, (int)c->status, 0);
        if (rc == RV_OK)
            rc = store__runrec_put(w, rr);
    }
    res->is_resumed = 1;
    return rc;
}

/* ---- ixend: the end-time index ---------------------------------------- */

size_t
store__end_key(uint8_t *out, const char *team, size_t tn, int64_t ended_at_ms,
               uint64_t run_num)
{
    size_t n = store__key_str16(out, team, tn);
    rv_put_be64(out + n, rv_i64_sortable(ended_at_ms));
    rv_put_be64(out + n + 8, run_num);
    return n + 16;
}

int
store__end_index(struct store_wctx *w, const struct store__runrec *rr,
                 int64_t delta)
{
    if (rr->ended_at_ms == 0)
        return RV_OK; /* Not ended: not listed. */
    uint8_t k[STORE_END_KEY_MAX];
    size_t n = store__end_key(k, rr->str[RUN_TEAM], rr->len[RUN_TEAM],
                              rr->ended_at_ms, rr->run_num);
    return delta > 0 ? store__put(w, STORE_DB_IXEND, k, n, "", 0)
                     : store__del(w, STORE_DB_IXEND, k, n);
}

/* ---- ixname: the run-name index --------------------------------------- */

size_t
store__name_scope(uint8_t *out, const char *team, size_t tn, int form)
{
    size_t n = store__key_str16(out, team, tn);
    out[n++] = (uint8_t)form;
    return n;
}

size_t
store__name_bytes(uint8_t *out, const char *name, size_t n, int form)
{
    if (n > STORE_NAME_KEY_BYTES)
        n = STORE_NAME_KEY_BYTES;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (form == STORE_NAME_FOLDED && c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        out[i] = c;
    }
    return n;
}

int
store__name_index(struct store_wctx *w, const struct store__runrec *rr,
                  int64_t delta)
{
    static const int forms[2] = {STORE_NAME_RAW, STORE_NAME_FOLDED};
    int rc = RV_OK;
    for (int i = 0; rc == RV_OK && i < 2; i++) {
        uint8_t k[STORE_NAME_KEY_MAX];
        size_t n = store__name_scope(k, rr->str[RUN_TEAM], rr->len[RUN_TEAM],
                                     forms[i]);
        n += store__name_bytes(k + n, rr->str[RUN_NAME], rr->len[RUN_NAME],
                               forms[i]);
        k[n++] = 0;
        rv_put_be64(k + n, rr->run_num);
        n += 8;
        rc = delta > 0 ? store__put(w, STORE_DB_IXNAME, k, n, "", 0)
                       : store__del(w, STORE_DB_IXNAME, k, n);
    }
    return rc;
}

static int
store__run_insert(struct store_wctx *w, const Rv__RunCreate *c,
                  struct store__runrec *rr)
{
    const char *team = store__team_or_default(c->team);
    const char *strs[RUN_N_STR] = {c->run_id,
                                   team,
                                   c->project,
                                   c->experiment,
                                   c->name ? c->name : "",
                                   c->user ? c->user : ""};
    memset(rr, 0, offsetof(struct store__runrec, raw));
    rr->run_num = ++w->s->next_run_num;
    rr->status = (uint8_t)(c->has_status ? c->status : RV__RUN_STATUS__RUNNING);
    rr->lifecycle = STORE_ACTIVE;
    rr->created_at_ms = c->created_at_ms;
    for (int i = 0; i < RUN_N_STR; i++) {
        rr->str[i] = strs[i];
        rr->len[i] = (uint16_t)strlen(strs[i]);
    }
    struct store__limits lim;
    int rc = store__team_limits(w, team, rr->len[RUN_TEAM], &lim);
    uint64_t max_runs = lim.max_runs;
    if (rc != RV_OK)
        return rc;
    uint8_t k[1 + 2 + CONTRACT_MAX_TEAM_BYTES];
    if (max_runs > 0 &&
        store__cnt_get(w->txn, w->s, k, store__cnt_key_team(k, rr)) >=
            max_runs) {
        rv_errmsg_printf(w->errmsg, "team '%s' reached its quota of %llu runs",
                         team, (unsigned long long)max_runs);
        return RV_EQUOTA;
    }
    uint8_t num[8];
    rv_put_be64(num, rr->run_num);
    rc = store__put(w, STORE_DB_RUNID, c->run_id, rr->len[RUN_ID], num, 8);
    if (rc == RV_OK)
        rc = store__runrec_put(w, rr);
    if (rc == RV_OK)
        rc = store__run_index(w, rr, 1);
    if (rc == RV_OK)
        rc = store__name_index(w, rr, 1);
    if (rc == RV_OK)
        rc = store__cnt_active(w, rr, 1);
    return rc;
}

int
store__run_create(struct store_wctx *w, const Rv__RunCreate *c,
                  struct store_result *res)
{
    struct store__runrec rr;
    int rc = store__run_create_check(c, w->errmsg);
    if (rc != RV_OK)
        return rc;
    snprintf(res->run_id, sizeof res->run_id, "%s", c->run_id);
    rc = store__runrec_get(w, c->run_id, &rr);
    if (rc == RV_OK) {
        if (!c->has_resume || c->resume == RV__RESUME__RESUME_NEVER) {
            rv_errmsg_printf(w->errmsg, "run '%.64s' already exists",
                             c->run_id);
            return RV_EEXIST;
        }
        return store__run_resume(w, c, &rr, res);
    }
    if (rc != RV_ENOTFOUND)
        return rc;
    if (c->has_resume && c->resume == RV__RESUME__RESUME_MUST)
        return RV_ENOTFOUND;
    rc = store__run_insert(w, c, &rr);
    if (rc == RV_OK)
        rc = store__kvs_apply(w, rr.run_num, c->params, c->n_params, c->tags,
                              c->n_tags);
    /* Its scope gets an MLflow experiment id (store_mlflow.c), so the run
     * is found through MLflow's API too. */
    uint64_t exp_id;
    if (rc == RV_OK)
        rc =
            store__mlflow_ensure(w, store__team_or_default(c->team), c->project,
                                 c->experiment, c->created_at_ms, &exp_id);
    return rc;
}

int
store__run_update(struct store_wctx *w, const Rv__RunUpdate *u)
{
    struct store__runrec rr;
    int rc = store__str_check(u->name, CONTRACT_MAX_NAME_BYTES, 0, "name",
                              w->errmsg);
    if (rc == RV_OK)
        rc = store__str_check(u->user, CONTRACT_MAX_SCOPE_BYTES, 0, "user",
                              w->errmsg);
    if (rc == RV_OK)
        rc = store__runrec_get_active(w, u->run_id, &rr);
    if (rc != RV_OK)
        return rc;
    if (u->name != NULL &&
        (rr.len[RUN_NAME] != strlen(u->name) ||
         memcmp(rr.str[RUN_NAME], u->name, rr.len[RUN_NAME]) != 0)) {
        rc = store__name_index(w, &rr, -1);
        rr.str[RUN_NAME] = u->name;
        rr.len[RUN_NAME] = (uint16_t)strlen(u->name);
        if (rc == RV_OK)
            rc = store__name_index(w, &rr, 1);
        if (rc != RV_OK)
            return rc;
    }
    if (u->user != NULL) {
        rr.str[RUN_USER] = u->user;
        rr.len[RUN_USER] = (uint16_t)strlen(u->user);
    }
    return store__runrec_put(w, &rr);
}

int
store__run_status(struct store_wctx *w, const Rv__RunSetStatus *st)
{
    struct store__runrec rr;
    if (!store__status_is_valid((int)st->status)) {
        rv_errmsg_printf(w->errmsg, "invalid run status %d", st->status);
        return RV_EINVAL;
    }
    if (st->has_ended_at_ms && st->ended_at_ms < 0) {
        rv_errmsg_printf(w->errmsg, "ended_at_ms must not be negative");
        return RV_EINVAL;
    }
    int rc = store__runrec_get_active(w, st->run_id, &rr);
    if (rc == RV_OK)
        rc = store__status_change(w, &rr, (int)st->status,
                                  st->has_ended_at_ms ? st->ended_at_ms : 0);
    if (rc == RV_OK)
        rc = store__runrec_put(w, &rr);
    return rc;
}

int
store__run_lifecycle(struct store_wctx *w, const char *run_id,
                     enum store_lifecycle to)
{
    struct store__runrec rr;
    int rc = store__runrec_get(w, run_id, &rr);
    if (rc != RV_OK || rr.lifecycle == to)
        return rc;
    rc = store__cnt_active(w, &rr, to == STORE_ACTIVE ? 1 : -1);
    if (rc == RV_OK)
        rc = store__trash_mark(w, rr.run_num, to == STORE_DELETED);
    rr.lifecycle = (uint8_t)to;
    if (rc == RV_OK)
        rc = store__runrec_put(w, &rr);
    return rc;
}

/* Drop the posting of one param or tag (key after the 8-byte run prefix). */
static int
store__purge_kv(struct store_wctx *w, const MDB_val *k, const MDB_val *v,
                void *data)
{
    const struct store__purge *p = data;
    char val[CONTRACT_MAX_PARAM_VALUE_BYTES];
    char key[CONTRACT_MAX_KEY_BYTES];
    if (v->mv_size > sizeof val || k->mv_size < 8 ||
        k->mv_size - 8 > sizeof key)
        return RV_ECORRUPT;
    size_t kn = k->mv_size - 8;
    memcpy(val, v->mv_data, v->mv_size);
    memcpy(key, (const uint8_t *)k->mv_data + 8, kn);
    int rc = store__posting(w, p->posting_db, key, kn, val, v->mv_size,
                            p->run_num, -1);
    if (rc == RV_OK && p->posting_db == STORE_DB_IXPARAM) {
        uint8_t pk[STORE_PV_KEY_MAX];
        rc =
            store__del(w, STORE_DB_IXPV, pk,
                       store__pv_key(pk, key, kn, val, v->mv_size, p->run_num));
    }
    return rc;
}

/* A purged series: its chunks, and its ixmv entries when its context is
 * "" (data: the run's record). */
static int
store__purge_series(struct store_wctx *w, const MDB_val *k, const MDB_val *v,
                    void *data)
{
    const struct store__runrec *rr = data;
    const uint8_t *kp = k->mv_data;
    if (v->mv_size != STORE_SUMMARY_BYTES || k->mv_size < 10 ||
        k->mv_size < 10 + (size_t)rv_get_be16(kp + 8))
        return RV_ECORRUPT;
    uint8_t sid[8];
    memcpy(sid, v->mv_data, 8);
    size_t kn = rv_get_be16(kp + 8);
    double last =
        rv_f64_from_bits(rv_get_be64((const uint8_t *)v->mv_data + 16));
    int has = rv_get_be64((const uint8_t *)v->mv_data + 8) > 0;
    int rc = RV_OK;
    if (k->mv_size == 10 + kn && has && kn <= CONTRACT_MAX_KEY_BYTES) {
        char key[CONTRACT_MAX_KEY_BYTES];
        memcpy(key, kp + 10, kn);
        rc = store__mv_update(w, rr, key, kn, 1, last, 0, 0);
    }
    if (rc == RV_OK)
        rc = store__del(w, STORE_DB_OPEN, sid, 8);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_CHUNK, sid, 8, NULL, NULL);
    return rc;
}

int
store__run_purge(struct store_wctx *w, const char *run_id)
{
    struct store__runrec rr;
    int rc = store__runrec_get(w, run_id, &rr);
    if (rc != RV_OK)
        return rc;
    if (rr.lifecycle != STORE_DELETED) {
        rv_errmsg_printf(w->errmsg,
                         "run '%.64s' must be deleted before it is "
                         "purged",
                         run_id);
        return RV_ESTATE;
    }
    struct store__purge p = {rr.run_num, STORE_DB_IXPARAM};
    struct store__purge pt = {rr.run_num, STORE_DB_IXTAG};
    uint8_t pre[8];
    rv_put_be64(pre, rr.run_num);
    rc = store__run_index(w, &rr, -1);
    if (rc == RV_OK)
        rc = store__name_index(w, &rr, -1);
    if (rc == RV_OK)
        rc = store__end_index(w, &rr, -1);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_PARAM, pre, 8, store__purge_kv, &p);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_TAG, pre, 8, store__purge_kv, &pt);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_SERIES, pre, 8, store__purge_series,
                               &rr);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_LOGS, pre, 8, NULL, NULL);
    if (rc == RV_OK)
        rc = store__del_prefix(w, STORE_DB_ART, pre, 8, store__artifact_release,
                               &p);
    if (rc == RV_OK)
        rc = store__del(w, STORE_DB_TRASH, pre, 8);
    if (rc == RV_OK) {
        uint8_t ck[9];
        memcpy(ck, pre, 8);
        ck[8] = 'K';
        rc = store__del(w, STORE_DB_CLIENT, ck, sizeof ck);
    }
    if (rc == RV_OK)
        rc = store__del(w, STORE_DB_RUN, pre, 8);
    if (rc == RV_OK)
        rc = store__del(w, STORE_DB_RUNID, rr.str[RUN_ID], rr.len[RUN_ID]);
    return rc;
}

/* ---- Per-run reads ----------------------------------------------------- */

int
store__run_decode(const MDB_val *v, uint64_t run_num, struct store__rview *rv)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    if (v->mv_size < STORE_RUN_HEADER || p[0] != STORE_FORMAT)
        return RV_ECORRUPT;
    rv->run_num = run_num;
    rv->status = p[1];
    rv->lifecycle = p[2];
    rv->created_at_ms = rv_i64_from_sortable(rv_get_be64(p + 4));
    rv->ended_at_ms = rv_i64_from_sortable(rv_get_be64(p + 12));
    rv->n_points = rv_get_be64(p + 20);
    rv->n_log_lines = rv_get_be64(p + 28);
    p += STORE_RUN_HEADER;
    for (int i = 0; i < RUN_N_STR; i++) {
        if (end - p < 2 || (size_t)(end - p - 2) < rv_get_be16(p))
            return RV_ECORRUPT;
        rv->len[i] = rv_get_be16(p);
        rv->str[i] = (const char *)p + 2;
        p += 2 + rv->len[i];
    }
    return RV_OK;
}

int
store__rview_get(struct store_read *r, uint64_t run_num,
                 struct store__rview *rv, char *errmsg)
{
    uint8_t k[8];
    MDB_val v;
    rv_put_be64(k, run_num);
    int rc = store__get(r->txn, r->s->dbi[STORE_DB_RUN], k, 8, &v, errmsg);
    if (rc != RV_OK)
        return rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    if (store__run_decode(&v, run_num, rv) != RV_OK) {
        rv_errmsg_printf(errmsg, "run record %llu does not decode",
                         (unsigned long long)run_num);
        return RV_ECORRUPT;
    }
    return RV_OK;
}

int
store__run_num_get(MDB_txn *txn, const struct store *s, const char *run_id,
                   uint64_t *run_num, char *errmsg)
{
    MDB_val v;
    size_t n = strlen(run_id);
    /* No run has an id outside 1..CONTRACT_MAX_RUN_ID_BYTES (run_create
     * checks), and LMDB refuses an empty or over-long key as a fault. */
    if (n == 0 || n > CONTRACT_MAX_RUN_ID_BYTES) {
        rv_errmsg_printf(errmsg, "run '%.64s' does not exist", run_id);
        return RV_ENOTFOUND;
    }
    int rc = store__get(txn, s->dbi[STORE_DB_RUNID], run_id, n, &v, errmsg);
    if (rc == RV_ENOTFOUND) {
        rv_errmsg_printf(errmsg, "run '%.64s' does not exist", run_id);
        return RV_ENOTFOUND;
    }
    if (rc != RV_OK)
        return rc;
    if (v.mv_size != 8)
        return RV_ECORRUPT;
    *run_num = rv_get_be64(v.mv_data);
    return RV_OK;
}

void
store_run_free(struct store_run *run)
{
    if (run == NULL)
        return;
    free(run->run_id);
    free(run->team);
    free(run->project);
    free(run->experiment);
    free(run->name);
    free(run->user);
    for (size_t i = 0; i < run->n_params; i++) {
        free(run->params[i].key);
        free(run->params[i].value);
    }
    free(run->params);
    for (size_t i = 0; i < run->n_tags; i++) {
        free(run->tags[i].key);
        free(run->tags[i].value);
    }
    free(run->tags);
    for (size_t i = 0; i < run->n_summary; i++) {
        free(run->summary[i].key);
        free(run->summary[i].context);
    }
    free(run->summary);
    memset(run, 0, sizeof *run);
}

/* Load every (key, value) of db under the 8-byte run prefix. */
static int
store__kv_load(struct store_read *r, enum store_db db, uint64_t run_num,
               struct store_kv **out, size_t *n_out, char *errmsg)
{
    uint8_t pre[8];
    MDB_cursor *cur;
    size_t n = 0, cap = 0;
    struct store_kv *kv = NULL;
    rv_put_be64(pre, run_num);
    int rc = mdb_cursor_open(r->txn, r->s->dbi[db], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "cursor", errmsg);
    MDB_val k = {8, pre}, v;
    int err = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, pre, 8) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            struct store_kv *p = realloc(kv, cap * sizeof *kv);
            if (p == NULL) {
                err = RV_ENOMEM;
                break;
            }
            kv = p;
        }
        kv[n].key = store__strndup((const char *)k.mv_data + 8, k.mv_size - 8);
        kv[n].value = store__strndup(v.mv_data, v.mv_size);
        n++;
        if (kv[n - 1].key == NULL || kv[n - 1].value == NULL) {
            err = RV_ENOMEM;
            break;
        }
    }
    mdb_cursor_close(cur);
    *out = kv;
    *n_out = n;
    return err;
}

int
store__run_fill(struct store_read *r, const struct store__rview *rv,
                int is_full, struct store_run *run, char *errmsg)
{
    memset(run, 0, sizeof *run);
    char **dst[RUN_N_STR] = {&run->run_id,     &run->team, &run->project,
                             &run->experiment, &run->name, &run->user};
    for (int i = 0; i < RUN_N_STR; i++) {
        *dst[i] = store__strndup(rv->str[i], rv->len[i]);
        if (*dst[i] == NULL) {
            store_run_free(run);
            return RV_ENOMEM;
        }
    }
    run->status = rv->status;
    run->lifecycle = rv->lifecycle;
    run->created_at_ms = rv->created_at_ms;
    run->ended_at_ms = rv->ended_at_ms;
    run->n_points = rv->n_points;
    run->n_log_lines = rv->n_log_lines;
    int rc = RV_OK;
    if (is_full) {
        rc = store__kv_load(r, STORE_DB_PARAM, rv->run_num, &run->params,
                            &run->n_params, errmsg);
        if (rc == RV_OK)
            rc = store__kv_load(r, STORE_DB_TAG, rv->run_num, &run->tags,
                                &run->n_tags, errmsg);
        if (rc == RV_OK)
            rc = store__summary_load(r, rv->run_num, run, errmsg);
    }
    if (rc != RV_OK)
        store_run_free(run);
    return rc;
}

int
store__read_sees(const struct store_read *r, const char *team, size_t n)
{
    return !r->is_scoped ||
           (strlen(r->team) == n && memcmp(r->team, team, n) == 0);
}

/* The scope check of every read that names a run: a run the scope may not
 * see is answered exactly as a run that does not exist. */
static int
store__read_rview(struct store_read *r, const char *run_id,
                  struct store__rview *rv, char *errmsg)
{
    uint64_t run_num;
    int rc = store__run_num_get(r->txn, r->s, run_id, &run_num, errmsg);
    if (rc == RV_OK)
        rc = store__rview_get(r, run_num, rv, errmsg);
    if (rc == RV_OK &&
        !store__read_sees(r, rv->str[RUN_TEAM], rv->len[RUN_TEAM])) {
        rv_errmsg_printf(errmsg, "run '%.64s' does not exist", run_id);
        rc = RV_ENOTFOUND;
    }
    return rc;
}

int
store__read_run_num(struct store_read *r, const char *run_id, uint64_t *run_num,
                    char *errmsg)
{
    struct store__rview rv;
    int rc = store__read_rview(r, run_id, &rv, errmsg);
    if (rc == RV_OK)
        *run_num = rv.run_num;
    return rc;
}

int
store_run_get(struct store_read *r, const char *run_id, int is_full,
              struct store_run *run, char *errmsg)
{
    struct store__rview rv;
    int rc = store__read_rview(r, run_id, &rv, errmsg);
    if (rc == RV_OK)
        rc = store__run_fill(r, &rv, is_full, run, errmsg);
    return rc;
}
