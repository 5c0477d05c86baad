/* Retention and trash (DESIGN §12): the per-project rules (retention_put),
 * the trash records a delete leaves, and the sweep the leader proposes
 * (retention_sweep), which trashes the runs a rule expires and purges the
 * runs whose trash period ended. Every decision is taken from the
 * command's stamped time and the replicated state, never from a clock,
 * so every replica trashes and purges the same runs at the same index.
 * The leader asks store_retention_due on a read transaction whether a
 * sweep would do anything, with the very same selection code, so idle
 * clusters write no entries.
 *
 *   retain  str16 team, project bytes   be64 max_age_ms, be64 keep_last,
 *                                       be64 trash_ms, be32 status mask,
 *                                       u8 has_trash
 *   trash   be64 run_num                s64 deleted_at_ms (the stamped time
 *                                       of the delete) */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_RETAIN_VALUE 29
#define STORE_RETAIN_KEY_MAX \
    (2 + CONTRACT_MAX_TEAM_BYTES + CONTRACT_MAX_SCOPE_BYTES)
/* FINISHED, FAILED, KILLED, CRASHED: a rule without statuses never touches
 * a running or scheduled run. */
#define STORE_RETAIN_TERMINAL                                            \
    ((1u << RV__RUN_STATUS__FINISHED) | (1u << RV__RUN_STATUS__FAILED) | \
     (1u << RV__RUN_STATUS__KILLED) | (1u << RV__RUN_STATUS__CRASHED))

/* One run chosen by the selection. */
struct store__pick {
    uint64_t run_num;
    int64_t created_at_ms;
    int is_purge; /* 1: trash period over; 0: expired by a rule. */
};

struct store__picks {
    struct store__pick *v;
    size_t n, cap, max;
};

static int
store__picks_add(struct store__picks *p, const struct store__pick *x)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct store__pick *v = realloc(p->v, cap * sizeof *v);
        if (v == NULL)
            return RV_ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = *x;
    return RV_OK;
}

static size_t
store__retain_key(uint8_t *k, const char *team, size_t tn, const char *project,
                  size_t pn)
{
    size_t n = store__key_str16(k, team, tn);
    memcpy(k + n, project, pn);
    return n + pn;
}

static void
store__retain_encode(const struct store_retention *rt, uint8_t *v)
{
    rv_put_be64(v, (uint64_t)rt->max_age_ms);
    rv_put_be64(v + 8, rt->keep_last);
    rv_put_be64(v + 16, (uint64_t)rt->trash_ms);
    rv_put_be32(v + 24, rt->status_mask);
    v[28] = (uint8_t)(rt->has_trash != 0);
}

/* Decode a retain record (key k, value v) into rt. */
static int
store__retain_decode(const MDB_val *k, const MDB_val *v,
                     struct store_retention *rt)
{
    const uint8_t *kp = k->mv_data, *p = v->mv_data;
    memset(rt, 0, sizeof *rt);
    if (v->mv_size != STORE_RETAIN_VALUE || k->mv_size < 2)
        return RV_ECORRUPT;
    size_t tn = rv_get_be16(kp);
    if (tn > CONTRACT_MAX_TEAM_BYTES || k->mv_size < 2 + tn ||
        k->mv_size - 2 - tn > CONTRACT_MAX_SCOPE_BYTES)
        return RV_ECORRUPT;
    memcpy(rt->team, kp + 2, tn);
    memcpy(rt->project, kp + 2 + tn, k->mv_size - 2 - tn);
    rt->max_age_ms = (int64_t)rv_get_be64(p);
    rt->keep_last = rv_get_be64(p + 8);
    rt->trash_ms = (int64_t)rv_get_be64(p + 16);
    rt->status_mask = rv_get_be32(p + 24);
    rt->has_trash = p[28] != 0;
    return RV_OK;
}

/* The rule of (team, project) into rt; *has 0 when there is none. */
static int
store__retain_get(MDB_txn *txn, const struct store *s, const char *team,
                  size_t tn, const char *project, size_t pn,
                  struct store_retention *rt, int *has, char *errmsg)
{
    uint8_t k[STORE_RETAIN_KEY_MAX];
    MDB_val v, kv;
    *has = 0;
    if (tn > CONTRACT_MAX_TEAM_BYTES || pn > CONTRACT_MAX_SCOPE_BYTES ||
        pn == 0)
        return RV_OK;
    kv.mv_size = store__retain_key(k, team, tn, project, pn);
    kv.mv_data = k;
    int rc =
        store__get(txn, s->dbi[STORE_DB_RETAIN], k, kv.mv_size, &v, errmsg);
    if (rc == RV_ENOTFOUND)
        return RV_OK;
    if (rc == RV_OK)
        rc = store__retain_decode(&kv, &v, rt);
    if (rc == RV_OK)
        *has = 1;
    return rc;
}

/* ---- retention_put ------------------------------------------------------ */

int
store__retention_put(struct store_wctx *w, const Rv__RetentionPut *p)
{
    const char *team =
        p->team != NULL && p->team[0] != '\0' ? p->team : "default";
    struct store_retention rt;
    uint8_t k[STORE_RETAIN_KEY_MAX], v[STORE_RETAIN_VALUE];
    int rc =
        store__str_check(team, CONTRACT_MAX_TEAM_BYTES, 1, "team", w->errmsg);
    if (rc == RV_OK)
        rc = store__str_check(p->project, CONTRACT_MAX_SCOPE_BYTES, 1,
                              "project", w->errmsg);
    if (rc != RV_OK)
        return rc;
    size_t kn = store__retain_key(k, team, strlen(team), p->project,
                                  strlen(p->project));
    if (p->has_clear && p->clear)
        return store__del(w, STORE_DB_RETAIN, k, kn);
    if ((p->has_max_age_ms && p->max_age_ms < 0) ||
        (p->has_trash_ms && p->trash_ms < 0)) {
        rv_errmsg_printf(w->errmsg, "retention periods may not be negative");
        return RV_EINVAL;
    }
    if (p->n_statuses > 8) {
        rv_errmsg_printf(w->errmsg, "at most 8 statuses");
        return RV_EINVAL;
    }
    memset(&rt, 0, sizeof rt);
    for (size_t i = 0; i < p->n_statuses; i++) {
        int st = (int)p->statuses[i];
        if (st < RV__RUN_STATUS__RUNNING || st > RV__RUN_STATUS__CRASHED) {
            rv_errmsg_printf(w->errmsg, "unknown run status %d", st);
            return RV_EINVAL;
        }
        rt.status_mask |= 1u << st;
    }
    if (rt.status_mask == 0)
        rt.status_mask = STORE_RETAIN_TERMINAL;
    rt.max_age_ms = p->has_max_age_ms ? p->max_age_ms : 0;
    rt.keep_last = p->has_keep_last ? p->keep_last : 0;
    rt.has_trash = p->has_trash_ms;
    rt.trash_ms = p->has_trash_ms ? p->trash_ms : 0;
    store__retain_encode(&rt, v);
    return store__put(w, STORE_DB_RETAIN, k, kn, v, sizeof v);
}

/* ---- Trash records ------------------------------------------------------ */

int
store__trash_mark(struct store_wctx *w, uint64_t run_num, int is_deleted)
{
    uint8_t k[8], v[8];
    rv_put_be64(k, run_num);
    if (!is_deleted)
        return store__del(w, STORE_DB_TRASH, k, 8);
    rv_put_be64(v, (uint64_t)w->at_ms);
    return store__put(w, STORE_DB_TRASH, k, 8, v, 8);
}

/* ---- The selection (read or write transaction) ------------------------- */

static int
store__pick_newer(const void *a, const void *b)
{
    const struct store__pick *x = a, *y = b;
    if (x->created_at_ms != y->created_at_ms)
        return x->created_at_ms > y->created_at_ms ? -1 : 1;
    return x->run_num > y->run_num ? -1 : x->run_num < y->run_num ? 1 : 0;
}

/* The runs rule rt expires at now into out (up to out->max in all). */
static int
store__select_rule(MDB_txn *txn, const struct store *s,
                   const struct store_retention *rt, int64_t now,
                   struct store__picks *out, char *errmsg)
{
    struct store__picks all = {0};
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t pre[8];
    size_t tn = strlen(rt->team), pn = strlen(rt->project);
    if (rt->max_age_ms == 0 && rt->keep_last == 0)
        return RV_OK;
    rv_put_be64(pre, store__value_hash(rt->project, pn));
    int rc = mdb_cursor_open(txn, s->dbi[STORE_DB_IXSCOPE], &cur);
    if (rc != 0)
        return store__err_mdb(rc, "mdb_cursor_open", errmsg);
    k.mv_size = 8;
    k.mv_data = pre;
    int code = RV_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && code == RV_OK && k.mv_size == 24 &&
         memcmp(k.mv_data, pre, 8) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t num = rv_get_be64((const uint8_t *)k.mv_data + 16);
        uint8_t nk[8];
        MDB_val rv;
        struct store__rview view;
        rv_put_be64(nk, num);
        code = store__get(txn, s->dbi[STORE_DB_RUN], nk, 8, &rv, errmsg);
        if (code == RV_OK)
            code = store__run_decode(&rv, num, &view);
        if (code == RV_ENOTFOUND)
            code = RV_ECORRUPT;
        if (code != RV_OK)
            break;
        if (view.lifecycle != STORE_ACTIVE || view.len[RUN_TEAM] != tn ||
            memcmp(view.str[RUN_TEAM], rt->team, tn) != 0 ||
            view.len[RUN_PROJECT] != pn ||
            memcmp(view.str[RUN_PROJECT], rt->project, pn) != 0 ||
            view.status >= 32 || !(rt->status_mask & (1u << view.status)))
            continue;
        struct store__pick pk = {num, view.created_at_ms, 0};
        code = store__picks_add(&all, &pk);
    }
    mdb_cursor_close(cur);
    if (code == RV_OK && rc != 0 && rc != MDB_NOTFOUND)
        code = store__err_mdb(rc, "cursor", errmsg);
    if (code == RV_OK && all.n > 0) {
        qsort(all.v, all.n, sizeof *all.v, store__pick_newer);
        for (size_t i = 0; i < all.n && out->n < out->max && code == RV_OK;
             i++) {
            if (rt->keep_last > 0 && i < rt->keep_last)
                continue;
            if (rt->max_age_ms > 0 &&
                all.v[i].created_at_ms > now - rt->max_age_ms)
                continue;
            code = store__picks_add(out, &all.v[i]);
        }
    }
    free(all.v);
    return code;
}

/* What the walks over the trash and retain tables carry. */
struct store__select {
    MDB_txn *txn;
    const struct store *s;
    int64_t now;
    struct store__picks *out;
    char *errmsg;
};

/* A trash record: its run, if the trash period of its project ended. */
static int
store__select_trashed(const MDB_val *k, const MDB_val *v, void *data)
{
    struct store__select *sel = data;
    MDB_val rv;
    struct store__rview view;
    struct store_retention rt;
    int has;
    if (sel->out->n >= sel->out->max)
        return STORE_WALK_STOP;
    if (k->mv_size != 8 || v->mv_size != 8)
        return RV_ECORRUPT;
    uint64_t num = rv_get_be64(k->mv_data);
    int64_t deleted = (int64_t)rv_get_be64(v->mv_data);
    int rc = store__get(sel->txn, sel->s->dbi[STORE_DB_RUN], k->mv_data, 8, &rv,
                        sel->errmsg);
    if (rc == RV_OK)
        rc = store__run_decode(&rv, num, &view);
    if (rc == RV_ENOTFOUND)
        rc = RV_ECORRUPT;
    if (rc == RV_OK)
        rc = store__retain_get(sel->txn, sel->s, view.str[RUN_TEAM],
                               view.len[RUN_TEAM], view.str[RUN_PROJECT],
                               view.len[RUN_PROJECT], &rt, &has, sel->errmsg);
    if (rc != RV_OK)
        return rc;
    int64_t period = has && rt.has_trash ? rt.trash_ms : STORE_TRASH_DEFAULT_MS;
    if (view.lifecycle != STORE_DELETED || deleted > sel->now - period)
        return RV_OK;
    struct store__pick pk = {num, view.created_at_ms, 1};
    return store__picks_add(sel->out, &pk);
}

/* A rule: the runs it expires. */
static int
store__select_by_rule(const MDB_val *k, const MDB_val *v, void *data)
{
    struct store__select *sel = data;
    struct store_retention rt;
    if (sel->out->n >= sel->out->max)
        return STORE_WALK_STOP;
    int rc = store__retain_decode(k, v, &rt);
    return rc != RV_OK ? rc
                       : store__select_rule(sel->txn, sel->s, &rt, sel->now,
                                            sel->out, sel->errmsg);
}

/* Into out (up to out->max): with is_trash the runs whose trash period
 * ended at now, in run order; else every rule's expired runs, in key order
 * of the rules. A run a rule expires now is trashed now and so, with a
 * trash period of 0, also purged by the same sweep (store__retention_sweep
 * takes the trash pass after the rules). */
static int
store__select(MDB_txn *txn, const struct store *s, int64_t now, int is_trash,
              struct store__picks *out, char *errmsg)
{
    struct store__select sel = {txn, s, now, out, errmsg};
    return store__walk(txn, s, is_trash ? STORE_DB_TRASH : STORE_DB_RETAIN,
                       is_trash ? store__select_trashed : store__select_by_rule,
                       &sel, errmsg);
}

/* ---- retention_sweep ---------------------------------------------------- */

/* The audit record of one run the sweep trashed or purged: key be64 index,
 * be16 command no, be32 n (one sweep writes several). */
static int
store__sweep_audit(struct store_wctx *w, uint16_t cmd_no, uint32_t n,
                   const char *action, const struct store__runrec *rr)
{
    uint8_t k[14];
    struct rv_buf b;
    rv_put_be64(k, w->index);
    rv_put_be16(k + 8, cmd_no);
    rv_put_be32(k + 10, n);
    rv_buf_init(&b);
    rv_buf_append_be64(&b, (uint64_t)w->at_ms);
    rv_buf_append_str16(&b, "", 0);
    rv_buf_append_str16(&b, action, strlen(action));
    rv_buf_append_str16(&b, rr->str[RUN_TEAM], rr->len[RUN_TEAM]);
    rv_buf_append_str16(&b, rr->str[RUN_ID], rr->len[RUN_ID]);
    int rc = b.is_failed ? RV_ENOMEM
                         : store__put(w, STORE_DB_AUDIT, k, 14, b.data, b.len);
    rv_buf_free(&b);
    return rc;
}

/* The run record of run_num, decoded into a private copy. */
static int
store__runrec_of(struct store_wctx *w, uint64_t run_num,
                 struct store__runrec *rr)
{
    uint8_t k[8];
    MDB_val v;
    struct store__rview view;
    rv_put_be64(k, run_num);
    int rc = store__get(w->txn, w->s->dbi[STORE_DB_RUN], k, 8, &v, w->errmsg);
    if (rc == RV_OK)
        rc = store__run_decode(&v, run_num, &view);
    if (rc != RV_OK)
        return rc == RV_ENOTFOUND ? RV_ECORRUPT : rc;
    memset(rr, 0, sizeof *rr);
    size_t off = 0;
    for (int i = 0; i < RUN_N_STR; i++) {
        memcpy(rr->raw + off, view.str[i], view.len[i]);
        rr->raw[off + view.len[i]] = '\0';
        rr->str[i] = (const char *)rr->raw + off;
        rr->len[i] = (uint16_t)view.len[i];
        off += view.len[i] + 1;
    }
    rr->run_num = run_num;
    return RV_OK;
}

int
store__retention_sweep(struct store_wctx *w, const Rv__RetentionSweep *sw,
                       uint16_t cmd_no)
{
    struct store__picks picks = {0};
    uint32_t n_audit = 0;
    if (w->at_ms <= 0) {
        rv_errmsg_printf(w->errmsg, "retention_sweep carries no stamped time");
        return RV_EINVAL;
    }
    picks.max = sw->has_max_runs && sw->max_runs > 0 ? sw->max_runs
                                                     : STORE_SWEEP_MAX_RUNS;
    if (picks.max > STORE_SWEEP_MAX_RUNS)
        picks.max = STORE_SWEEP_MAX_RUNS;
    int rc = store__select(w->txn, w->s, w->at_ms, 0, &picks, w->errmsg);
    /* Trash what the rules expired (each is a run_delete of its own). */
    for (size_t i = 0; i < picks.n && rc == RV_OK; i++) {
        struct store__runrec rr;
        rc = store__runrec_of(w, picks.v[i].run_num, &rr);
        if (rc == RV_OK)
            rc = store__run_lifecycle(w, rr.str[RUN_ID], STORE_DELETED);
        if (rc == RV_OK)
            rc = store__sweep_audit(w, cmd_no, n_audit++, "retention_trash",
                                    &rr);
    }
    /* Then purge what stayed in trash past its period (this includes the
     * runs just trashed when their project's trash period is 0). */
    if (rc == RV_OK) {
        picks.n = 0;
        rc = store__select(w->txn, w->s, w->at_ms, 1, &picks, w->errmsg);
    }
    for (size_t i = 0; i < picks.n && rc == RV_OK; i++) {
        struct store__runrec rr;
        rc = store__runrec_of(w, picks.v[i].run_num, &rr);
        if (rc == RV_OK)
            rc = store__sweep_audit(w, cmd_no, n_audit++, "retention_purge",
                                    &rr);
        if (rc == RV_OK)
            rc = store__use_release(w, rr.str[RUN_TEAM], rr.run_num);
        if (rc == RV_OK)
            rc = store__run_purge(w, rr.str[RUN_ID]);
    }
    free(picks.v);
    return rc;
}

/* ---- Reads -------------------------------------------------------------- */

int
store_retention_due(struct store_read *r, int64_t now_ms, int *is_due,
                    char *errmsg)
{
    struct store__picks picks = {0};
    picks.max = 1;
    *is_due = 0;
    int rc = store__select(r->txn, r->s, now_ms, 0, &picks, errmsg);
    if (rc == RV_OK && picks.n == 0)
        rc = store__select(r->txn, r->s, now_ms, 1, &picks, errmsg);
    *is_due = picks.n > 0;
    free(picks.v);
    return rc;
}

/* What store_retention_list's walk fills. */
struct store__rule_list {
    const char *team;
    struct store_retention *v;
    size_t n, cap;
};

static int
store__rule_listed(const MDB_val *k, const MDB_val *v, void *data)
{
    struct store__rule_list *l = data;
    struct store_retention rt;
    int rc = store__retain_decode(k, v, &rt);
    if (rc != RV_OK || (l->team != NULL && strcmp(rt.team, l->team) != 0))
        return rc;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct store_retention *nv = realloc(l->v, cap * sizeof *nv);
        if (nv == NULL)
            return RV_ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = rt;
    return RV_OK;
}

int
store_retention_list(struct store_read *r, const char *team,
                     struct store_retention **out, size_t *n, char *errmsg)
{
    struct store__rule_list l = {team, NULL, 0, 0};
    *out = NULL;
    *n = 0;
    if (r->is_scoped) {
        if (team != NULL && strcmp(team, r->team) != 0)
            return RV_OK;
        l.team = r->team;
    }
    int rc = store__walk(r->txn, r->s, STORE_DB_RETAIN, store__rule_listed, &l,
                         errmsg);
    if (rc != RV_OK) {
        free(l.v);
        return rc;
    }
    *out = l.v;
    *n = l.n;
    return RV_OK;
}
