/* runvault team list, token list, whoami, audit (DESIGN Appendix B.1): the
 * admin reads (AdminRequest) as aligned tables or JSON. Names come from
 * the cluster: control characters in them are shown as '?' in tables so
 * that a name cannot drive the terminal. No secret is ever in an answer. */
#include "base/clock.h"
#include "base/exit.h"
#include "base/parse.h"
#include "node/cli/cli_int.h"

#include <stdio.h>
#include <string.h>

#define CLI_CELL_BYTES    (CONTRACT_MAX_TOKEN_NAME_BYTES + 64)
#define CLI_AUDIT_DEFAULT 1000 /* audit rows without --limit. */

/* One cell of row i (0..n) and column k of a table into buf; row 0 is the
 * header. */
typedef void (*cli_cell_fn)(const Rv__Response *r, size_t i, size_t k,
                            char buf[CLI_CELL_BYTES]);

/* s into buf with control characters as '?'. */
static void
cli__cell(char buf[CLI_CELL_BYTES], const char *s)
{
    size_t n = 0;
    for (s = cli__str(s); *s != '\0' && n + 1 < CLI_CELL_BYTES; s++, n++)
        buf[n] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
    buf[n] = '\0';
}

/* A table of n rows and n_cols columns made by cell, aligned; the header
 * (row 0) unless !with_head. */
static void
cli__table(const Rv__Response *r, size_t n, size_t n_cols, cli_cell_fn cell,
           int with_head)
{
    size_t w[16] = {0};
    char buf[CLI_CELL_BYTES];
    n_cols = n_cols < 16 ? n_cols : 16;
    for (size_t i = 0; i <= n; i++)
        for (size_t k = 0; k < n_cols; k++) {
            cell(r, i, k, buf);
            if (cli__width(buf) > w[k])
                w[k] = cli__width(buf);
        }
    for (size_t i = with_head ? 0 : 1; i <= n; i++) {
        for (size_t k = 0; k < n_cols; k++) {
            cell(r, i, k, buf);
            if (k > 0)
                fputs("  ", stdout);
            cli__pad(stdout, buf, k + 1 == n_cols ? 0 : w[k], 0);
        }
        fputc('\n', stdout);
    }
}

/* bytes as "512", "3K", "1.5M", "10G" (binary units). */
static void
cli__fmt_bytes(uint64_t v, char out[CLI_NUM_BYTES])
{
    static const char units[] = "KMGTPE";
    int u = -1;
    double d = (double)v;
    while (d >= 1024.0 && u < 5) {
        d /= 1024.0;
        u++;
    }
    if (u < 0)
        snprintf(out, CLI_NUM_BYTES, "%llu", (unsigned long long)v);
    else if ((v & ((UINT64_C(1) << (10 * (u + 1))) - 1)) == 0)
        snprintf(out, CLI_NUM_BYTES, "%.0f%c", d, units[u]);
    else
        snprintf(out, CLI_NUM_BYTES, "%.1f%c", d, units[u]);
}

/* An AdminRequest of op (team, since_index optional) sent as a read. */
int
cli__admin_read(struct cli *cl, Rv__AdminOp op, const char *team,
                uint64_t since, uint32_t max_events, Rv__Response **resp)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__AdminRequest ar = RV__ADMIN_REQUEST__INIT;
    ar.op = op;
    ar.team = (char *)team;
    ar.has_since_index = op == RV__ADMIN_OP__ADMIN_AUDIT;
    ar.since_index = since;
    ar.has_max_events = max_events > 0;
    ar.max_events = max_events;
    req.body_case = RV__REQUEST__BODY_ADMIN;
    req.admin = &ar;
    return cli__rpc(cl, &req, resp);
}

/* --team of a list, checked (any name, "*" too: cluster-admin tokens). */
int
cli__team_flag(const struct cli *cl, const struct cli_args *a)
{
    const char *t = a->v[O_TEAM];
    size_t n = t ? strlen(t) : 0;
    if (t != NULL &&
        (n == 0 || n > CONTRACT_MAX_TEAM_BYTES || !contract_utf8_valid(t, n))) {
        fprintf(stderr, "runvault %s: --team wants 1..%d bytes of UTF-8\n",
                cl->name, CONTRACT_MAX_TEAM_BYTES);
        return -1;
    }
    return 0;
}

/* "n/max" or "n/-" (no limit). */
static void
cli__use(char buf[CLI_CELL_BYTES], uint64_t n, uint64_t max, int is_bytes)
{
    char a[CLI_NUM_BYTES], b[CLI_NUM_BYTES];
    if (is_bytes) {
        cli__fmt_bytes(n, a);
        cli__fmt_bytes(max, b);
    } else {
        snprintf(a, sizeof a, "%llu", (unsigned long long)n);
        snprintf(b, sizeof b, "%llu", (unsigned long long)max);
    }
    snprintf(buf, CLI_CELL_BYTES, "%s/%s", a, max ? b : "-");
}

static void
cli__team_cell(const Rv__Response *r, size_t i, size_t k,
               char buf[CLI_CELL_BYTES])
{
    static const char *const head[] = {"TEAM", "RUNS", "BYTES", "POINTS/S"};
    if (i == 0) {
        cli__cell(buf, head[k]);
        return;
    }
    const Rv__TeamInfo *t = r->teams[i - 1];
    if (k == 0)
        cli__cell(buf, t->team);
    else if (k == 1)
        cli__use(buf, t->n_runs, t->max_runs, 0);
    else if (k == 2)
        cli__use(buf, t->n_bytes, t->max_bytes, 1);
    else if (t->max_points_per_s)
        snprintf(buf, CLI_CELL_BYTES, "%llu",
                 (unsigned long long)t->max_points_per_s);
    else
        cli__cell(buf, "-");
}

/* A limit for JSON: null when there is none (0). */
static json_t *
cli__json_limit(uint64_t v)
{
    return v ? json_integer((json_int_t)v) : json_null();
}

static int
cli__teams_json(const Rv__Response *r)
{
    json_t *teams = json_array(), *doc = json_object();
    for (size_t i = 0; i < r->n_teams; i++) {
        const Rv__TeamInfo *t = r->teams[i];
        json_t *o = json_object();
        json_object_set_new(o, "team", cli__json_string(t->team));
        json_object_set_new(o, "n_runs", json_integer((json_int_t)t->n_runs));
        json_object_set_new(o, "max_runs", cli__json_limit(t->max_runs));
        json_object_set_new(o, "n_bytes", json_integer((json_int_t)t->n_bytes));
        json_object_set_new(o, "max_bytes", cli__json_limit(t->max_bytes));
        json_object_set_new(o, "max_points_per_s",
                            cli__json_limit(t->max_points_per_s));
        json_array_append_new(teams, o);
    }
    json_object_set_new(doc, "teams", teams);
    return cli__json_print(stdout, doc, 0);
}

int
cli__team_list(struct cli *cl, const struct cli_args *a)
{
    Rv__Response *r;
    int rc = cli__admin_read(cl, RV__ADMIN_OP__ADMIN_TEAMS, NULL, 0, 0, &r);
    if (rc != RV_OK)
        return cli__fail(cl, rc, cli__exit_for(rc));
    if (a->v[O_JSON] != NULL)
        cli__teams_json(r);
    else
        cli__table(r, r->n_teams, 4, cli__team_cell, 1);
    rvc_response_free(r);
    return RV_EXIT_OK;
}

/* "active", "revoked" or "expired" (by this machine's clock). */
static const char *
cli__token_state(const Rv__TokenInfo *t, uint64_t now_ms)
{
    if (t->is_revoked)
        return "revoked";
    if (t->expires_at_ms > 0 && (uint64_t)t->expires_at_ms <= now_ms)
        return "expired";
    return "active";
}

static void
cli__token_cell(const Rv__Response *r, size_t i, size_t k,
                char buf[CLI_CELL_BYTES])
{
    static const char *const head[] = {"TOKEN ID", "TEAM",    "ROLE", "NAME",
                                       "CREATED",  "EXPIRES", "STATE"};
    char tm[CLI_TIME_BYTES];
    if (i == 0) {
        cli__cell(buf, head[k]);
        return;
    }
    const Rv__TokenInfo *t = r->tokens[i - 1];
    const char *s[] = {t->token_id, t->team, proto_role_name((int)t->role),
                       t->name && t->name[0] ? t->name : "-"};
    if (k < 4) {
        cli__cell(buf, s[k]);
    } else if (k < 6) {
        cli__fmt_time(k == 4 ? t->created_at_ms : t->expires_at_ms, tm);
        cli__cell(buf, k == 5 && t->expires_at_ms == 0 ? "never" : tm);
    } else {
        cli__cell(buf, cli__token_state(t, rv_clock_wall_ms()));
    }
}

static int
cli__tokens_json(const Rv__Response *r)
{
    json_t *tokens = json_array(), *doc = json_object();
    uint64_t now = rv_clock_wall_ms();
    for (size_t i = 0; i < r->n_tokens; i++) {
        const Rv__TokenInfo *t = r->tokens[i];
        json_t *o = json_object();
        json_object_set_new(o, "token_id", cli__json_string(t->token_id));
        json_object_set_new(o, "team", cli__json_string(t->team));
        json_object_set_new(o, "role",
                            cli__json_string(proto_role_name((int)t->role)));
        json_object_set_new(o, "name", cli__json_string(t->name));
        json_object_set_new(o, "created_at",
                            cli__json_time(1, t->created_at_ms));
        json_object_set_new(o, "expires_at",
                            cli__json_time(1, t->expires_at_ms));
        json_object_set_new(o, "state",
                            cli__json_string(cli__token_state(t, now)));
        json_object_set_new(o, "revoked_index",
                            t->is_revoked
                                ? json_integer((json_int_t)t->revoked_index)
                                : json_null());
        json_array_append_new(tokens, o);
    }
    json_object_set_new(doc, "tokens", tokens);
    return cli__json_print(stdout, doc, 0);
}

int
cli__token_list(struct cli *cl, const struct cli_args *a)
{
    Rv__Response *r;
    if (cli__team_flag(cl, a) != 0)
        return RV_EXIT_USAGE;
    int rc =
        cli__admin_read(cl, RV__ADMIN_OP__ADMIN_TOKENS, a->v[O_TEAM], 0, 0, &r);
    if (rc != RV_OK)
        return cli__fail(cl, rc, cli__exit_for(rc));
    if (a->v[O_JSON] != NULL)
        cli__tokens_json(r);
    else
        cli__table(r, r->n_tokens, 7, cli__token_cell, 1);
    rvc_response_free(r);
    return RV_EXIT_OK;
}

int
cli__whoami(struct cli *cl, const struct cli_args *a)
{
    Rv__Response *r;
    char buf[CLI_CELL_BYTES];
    int rc = cli__admin_read(cl, RV__ADMIN_OP__ADMIN_WHOAMI, NULL, 0, 0, &r);
    if (rc == RV_OK && r->principal == NULL) {
        rvc_response_free(r);
        rv_errmsg_printf(cl->errmsg, "the answer holds no principal");
        rc = RV_EMALFORMED;
    }
    if (rc != RV_OK)
        return cli__fail(cl, rc, cli__exit_for(rc));
    const Rv__Principal *p = r->principal;
    const char *role = proto_role_name((int)p->role);
    if (a->v[O_JSON] != NULL) {
        json_t *doc = json_object();
        json_object_set_new(doc, "token_id", cli__json_string(p->token_id));
        json_object_set_new(doc, "team", cli__json_string(p->team));
        json_object_set_new(doc, "role", cli__json_string(role));
        json_object_set_new(doc, "name", cli__json_string(p->name));
        cli__json_print(stdout, doc, 0);
    } else {
        cli__cell(buf, p->token_id[0] ? p->token_id : "- (auth is off)");
        printf("token_id  %s\n", buf);
        cli__cell(buf, p->team);
        printf("team      %s\n", buf);
        printf("role      %s\n", role);
        cli__cell(buf, p->name && p->name[0] ? p->name : "-");
        printf("name      %s\n", buf);
    }
    rvc_response_free(r);
    return RV_EXIT_OK;
}

static void
cli__event_cell(const Rv__Response *r, size_t i, size_t k,
                char buf[CLI_CELL_BYTES])
{
    static const char *const head[] = {"INDEX",  "TIME",   "TOKEN ID",
                                       "ACTION", "TARGET", "TEAM"};
    char tm[CLI_TIME_BYTES];
    if (i == 0) {
        cli__cell(buf, head[k]);
        return;
    }
    const Rv__AuditEvent *e = r->events[i - 1];
    if (k == 0) {
        snprintf(buf, CLI_CELL_BYTES, "%llu", (unsigned long long)e->index);
    } else if (k == 1) {
        cli__fmt_time(e->time_ms, tm);
        cli__cell(buf, tm);
    } else {
        const char *s[] = {e->token_id, e->action, e->target, e->team};
        cli__cell(buf, s[k - 2] && s[k - 2][0] ? s[k - 2] : "-");
    }
}

static json_t *
cli__event_json(const Rv__AuditEvent *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "index", json_integer((json_int_t)e->index));
    json_object_set_new(o, "time", cli__json_time(1, e->time_ms));
    json_object_set_new(o, "token_id", cli__json_string(e->token_id));
    json_object_set_new(o, "action", cli__json_string(e->action));
    json_object_set_new(o, "target", cli__json_string(e->target));
    json_object_set_new(o, "team", cli__json_string(e->team));
    return o;
}

/* audit's flags: --team, --since-index, --limit (default
 * CLI_AUDIT_DEFAULT, 0: all). */
static int
cli__audit_args(const struct cli *cl, const struct cli_args *a, uint64_t *since,
                uint64_t *limit)
{
    *since = 0;
    *limit = CLI_AUDIT_DEFAULT;
    if (cli__team_flag(cl, a) != 0)
        return -1;
    if (a->v[O_SINCE_INDEX] != NULL &&
        rv_parse_u64(a->v[O_SINCE_INDEX], since) != 0) {
        fprintf(stderr, "runvault %s: --since-index wants a log index\n",
                cl->name);
        return -1;
    }
    if (a->v[O_LIMIT] != NULL && rv_parse_u64(a->v[O_LIMIT], limit) != 0) {
        fprintf(stderr, "runvault %s: --limit wants a number (0: all)\n",
                cl->name);
        return -1;
    }
    return 0;
}

/* Where the audit log is read from: events of one log entry share its
 * index, so a page may end inside an entry; the next page starts at that
 * index again and passes over the n_seen events of it already shown. */
struct cli_audit_pos {
    uint64_t since;
    size_t n_seen;
};

/* At most left new events of page r shown (as a table, or appended to
 * arr), *pos moved past them; returns how many. */
static size_t
cli__audit_page(const Rv__Response *r, uint64_t left, json_t *arr, int is_first,
                struct cli_audit_pos *pos)
{
    size_t i0 = 0;
    while (i0 < r->n_events && i0 < pos->n_seen &&
           r->events[i0]->index == pos->since)
        i0++;
    size_t n = r->n_events - i0;
    n = n < left ? n : (size_t)left;
    Rv__Response view = *r; /* The new events only. */
    view.events = r->events + i0;
    view.n_events = n;
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = view.events[i]->index;
        pos->n_seen = idx == pos->since ? pos->n_seen + 1 : 1;
        pos->since = idx;
        if (arr != NULL)
            json_array_append_new(arr, cli__event_json(view.events[i]));
    }
    if (arr == NULL && (n > 0 || is_first))
        cli__table(&view, n, 6, cli__event_cell, is_first);
    return n;
}

int
cli__audit(struct cli *cl, const struct cli_args *a)
{
    uint64_t limit, shown = 0;
    struct cli_audit_pos pos = {0, 0};
    if (cli__audit_args(cl, a, &pos.since, &limit) != 0)
        return RV_EXIT_USAGE;
    json_t *arr = a->v[O_JSON] != NULL ? json_array() : NULL;
    int rc = RV_OK;
    /* Each page shows at least one new event or is the last. */
    for (int page = 0; rc == RV_OK && (limit == 0 || shown < limit); page++) {
        Rv__Response *r;
        rc = cli__admin_read(cl, RV__ADMIN_OP__ADMIN_AUDIT, a->v[O_TEAM],
                             pos.since, CONTRACT_MAX_AUDIT_EVENTS, &r);
        if (rc != RV_OK)
            break;
        size_t n = cli__audit_page(r, limit ? limit - shown : UINT64_MAX, arr,
                                   page == 0, &pos);
        rvc_response_free(r);
        shown += n;
        if (n == 0)
            break;
    }
    if (rc != RV_OK) {
        json_decref(arr);
        return cli__fail(cl, rc, cli__exit_for(rc));
    }
    if (arr != NULL) {
        json_t *doc = json_object();
        json_object_set_new(doc, "events", arr);
        cli__json_print(stdout, doc, 0);
    }
    return RV_EXIT_OK;
}
