/* Teams, quotas, tokens, whoami and the audit log: JSON <-> the admin
 * commands (team_put, quota_put, token_put, token_del) and the admin reads
 * (AdminRequest). The node authorises every one of them; the gateway only
 * checks shapes. A token is made here (rv_token_make): only its SHA-256
 * goes into the command, the secret is answered once and never logged
 * (shapes in docs/HTTP.md, "Authentication and teams"). */
#include "gateway/gateway_int.h"
#include "proto/proto.h"

#include <stdio.h>
#include <string.h>

/* memset through a volatile pointer: a wipe of a secret the compiler
 * cannot drop as a dead store. */
static void *(*const volatile gw_wipe)(void *, int, size_t) = memset;

/* Ten years of 365 days: the longest expires_in_s taken. */
#define GW_MAX_EXPIRES_IN_S (10ll * 365 * 86400)

int
gw__team(struct gw_ctx *c, const char *where, const char *team)
{
    size_t n = strlen(team);
    if (n == 0 || n > CONTRACT_MAX_TEAM_BYTES ||
        !contract_utf8_valid(team, n)) {
        return gw__reject(c, RV_EINVAL, "%s must be 1 to %d bytes of UTF-8",
                          where, CONTRACT_MAX_TEAM_BYTES);
    }
    if (strcmp(team, "*") == 0) {
        return gw__reject(c, RV_EINVAL, "%s: '*' names every team, not one",
                          where);
    }
    return 0;
}

/* Send one admin command; the response, or NULL when answered. */
static const Rv__Response *
gw__admin_write(struct gw_ctx *c, Rv__Command *cmd)
{
    Rv__Command *cmds[1] = {cmd};
    if (gw__stamp(c, cmd) != 0)
        return NULL;
    return gw__write(c, cmds, 1);
}

/* Send one admin command and answer status {key: value, "index"}. */
void
gw__admin_write_answer(struct gw_ctx *c, Rv__Command *cmd, int status,
                       const char *key, const char *value)
{
    const Rv__Response *r = gw__admin_write(c, cmd);
    if (r != NULL)
        gw_reply_json(
            c->x, status,
            json_pack("{s:s,s:I}", key, value, "index", (json_int_t)r->index));
}

/* An admin read of op with the read options; the response, or NULL when
 * answered. team narrows it (NULL: every team the token sees). */
const Rv__Response *
gw__admin_read(struct gw_ctx *c, Rv__AdminOp op, const char *team,
               Rv__AdminRequest *ar)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro;
    if (gw__read_options(c, &req, &ro) != 0)
        return NULL;
    ar->op = op;
    ar->team = (char *)team;
    req.body_case = RV__REQUEST__BODY_ADMIN;
    req.admin = ar;
    return gw__call(c, &req);
}

/* team= of a read: NULL (absent or empty: every team the token sees) or a
 * team name ("*" too when is_star_ok: the cluster-admin tokens); -1 when
 * answered. */
int
gw__q_team(struct gw_ctx *c, int is_star_ok, const char **team)
{
    if (gw__q_str(c, "team", CONTRACT_MAX_TEAM_BYTES, team) != 0)
        return -1;
    if (*team != NULL && (*team)[0] == '\0')
        *team = NULL;
    if (*team == NULL || (is_star_ok && strcmp(*team, "*") == 0))
        return 0;
    return gw__team(c, "query parameter team", *team);
}

/* ---- Teams and quotas -------------------------------------------------- */

/* POST /api/v2/teams {"team"} -> 201 {"team","index"} */
void
gw_admin_team_create(struct gw_ctx *c)
{
    static const char *const fields[] = {"team", NULL};
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__TeamPut tp = RV__TEAM_PUT__INIT;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "team", fields) != 0 ||
        gw__str(c, j, "team", 1, CONTRACT_MAX_TEAM_BYTES, &tp.team) != 0 ||
        gw__team(c, "team", tp.team) != 0)
        goto out;
    cmd.body_case = RV__COMMAND__BODY_TEAM_PUT;
    cmd.team_put = &tp;
    gw__admin_write_answer(c, &cmd, 201, "team", tp.team);
out:
    json_decref(j);
}

/* GET /api/v2/teams?team= -> {"teams":[...]}, use against quota. */
void
gw_admin_team_list(struct gw_ctx *c)
{
    Rv__AdminRequest ar = RV__ADMIN_REQUEST__INIT;
    const char *team;
    if (gw__q_team(c, 0, &team) != 0)
        return;
    const Rv__Response *r =
        gw__admin_read(c, RV__ADMIN_OP__ADMIN_TEAMS, team, &ar);
    if (r == NULL)
        return;
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < r->n_teams; i++) {
        const Rv__TeamInfo *t = r->teams[i];
        json_array_append_new(
            a, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "team", t->team,
                         "max_runs", (json_int_t)t->max_runs, "max_bytes",
                         (json_int_t)t->max_bytes, "max_points_per_s",
                         (json_int_t)t->max_points_per_s, "n_runs",
                         (json_int_t)t->n_runs, "n_bytes",
                         (json_int_t)t->n_bytes));
    }
    gw_reply_json(c->x, 200, json_pack("{s:o*}", "teams", a));
}

/* A quota member: absent leaves it unset; else a non-negative integer. */
static int
gw__quota_field(struct gw_ctx *c, json_t *j, const char *name, uint64_t *out,
                protobuf_c_boolean *has)
{
    int64_t v = -1;
    if (gw__int(c, j, name, "quota", 0, INT64_MAX, &v) != 0)
        return -1;
    *has = v >= 0;
    *out = v >= 0 ? (uint64_t)v : 0;
    return 0;
}

/* PUT /api/v2/teams/{team}/quota {"max_runs"?,"max_bytes"?,
 * "max_points_per_s"?} -> 200 {"team","index"}; 0 removes a limit. */
void
gw_admin_quota_put(struct gw_ctx *c)
{
    static const char *const fields[] = {"max_runs", "max_bytes",
                                         "max_points_per_s", NULL};
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__QuotaPut qp = RV__QUOTA_PUT__INIT;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "quota", fields) != 0 ||
        gw__quota_field(c, j, "max_runs", &qp.max_runs, &qp.has_max_runs) !=
            0 ||
        gw__quota_field(c, j, "max_bytes", &qp.max_bytes, &qp.has_max_bytes) !=
            0 ||
        gw__quota_field(c, j, "max_points_per_s", &qp.max_points_per_s,
                        &qp.has_max_points_per_s) != 0)
        goto out;
    if (!qp.has_max_runs && !qp.has_max_bytes && !qp.has_max_points_per_s) {
        gw_reply_error(c->x, RV_EINVAL,
                       "quota: give max_runs, max_bytes or max_points_per_s");
        goto out;
    }
    qp.team = c->param[GW_P_TEAM];
    cmd.body_case = RV__COMMAND__BODY_QUOTA_PUT;
    cmd.quota_put = &qp;
    gw__admin_write_answer(c, &cmd, 200, "team", qp.team);
out:
    json_decref(j);
}

/* ---- Tokens ------------------------------------------------------------ */

/* The members of a token-create body, checked; strings borrowed from the
 * body. */
struct gw_token_req {
    char *team, *role_name, *name;
    Rv__Role role;
    int64_t expires_in_s; /* 0: never. */
};

static int
gw__token_req(struct gw_ctx *c, json_t *j, struct gw_token_req *t)
{
    static const char *const fields[] = {"team", "role", "name", "expires_in_s",
                                         NULL};
    memset(t, 0, sizeof *t);
    if (gw__only(c, j, "token", fields) != 0 ||
        gw__str(c, j, "team", 1, CONTRACT_MAX_TEAM_BYTES, &t->team) != 0 ||
        gw__str(c, j, "role", 1, 32, &t->role_name) != 0 ||
        gw__str(c, j, "name", 1, CONTRACT_MAX_TOKEN_NAME_BYTES, &t->name) !=
            0 ||
        gw__int(c, j, "expires_in_s", "", 1, GW_MAX_EXPIRES_IN_S,
                &t->expires_in_s) != 0)
        return -1;
    if (proto_role_parse(t->role_name, &t->role) != 0) {
        return gw__reject(c, RV_EINVAL,
                          "role must be reader, writer, admin or "
                          "cluster-admin");
    }
    if (t->role == RV__ROLE__ROLE_CLUSTER_ADMIN) {
        if (strcmp(t->team, "*") != 0)
            return gw__reject(c, RV_EINVAL,
                              "a cluster-admin token's team is \"*\"");
        return 0;
    }
    return gw__team(c, "team", t->team);
}

/* The expiry the leader stamped on token id (ms), or 0 when unknown: a
 * read of the team's tokens at the write's index. Nothing is answered. */
static int64_t
gw__token_expiry(struct gw_ctx *c, const char *team, const char *id,
                 uint64_t index)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ReadOptions ro = RV__READ_OPTIONS__INIT;
    Rv__AdminRequest ar = RV__ADMIN_REQUEST__INIT;
    ro.has_min_index = 1;
    ro.min_index = index;
    req.read = &ro;
    ar.op = RV__ADMIN_OP__ADMIN_TOKENS;
    ar.team = (char *)team;
    req.body_case = RV__REQUEST__BODY_ADMIN;
    req.admin = &ar;
    const Rv__Response *r = gw__call_quiet(c, &req);
    for (size_t i = 0; r->code == RV_OK && i < r->n_tokens; i++)
        if (strcmp(r->tokens[i]->token_id, id) == 0)
            return r->tokens[i]->expires_at_ms;
    return 0;
}

/* The answer to a token made: the secret, once. */
static json_t *
gw__token_made_json(const struct gw_token_req *t, const char *id,
                    const char *text, int64_t expires_at, uint64_t index)
{
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "token_id", id, "token", text,
                  "team", t->team, "role", proto_role_name((int)t->role),
                  "name", t->name, "index", (json_int_t)index);
    if (o != NULL && expires_at > 0)
        json_object_set_new(o, "expires_at", json_integer(expires_at));
    return o;
}

/* POST /api/v2/tokens {"team","role","name","expires_in_s"?} -> 201
 * {"token_id","token","team","role","name","expires_at"?,"index"} */
void
gw_admin_token_create(struct gw_ctx *c)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__TokenPut tp = RV__TOKEN_PUT__INIT;
    struct gw_token_req t;
    char text[RV_TOKEN_TEXT_CHARS + 1], id[RV_TOKEN_ID_CHARS + 1];
    uint8_t sha[RV_TOKEN_SHA256];
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__token_req(c, j, &t) != 0)
        goto out;
    if (rv_token_make(text, id, sha) != RV_OK) {
        gw_reply_error(c->x, RV_EIO, "no random bytes for a token");
        goto out;
    }
    tp.token_sha256.data = sha;
    tp.token_sha256.len = sizeof sha;
    tp.team = t.team;
    tp.has_role = 1;
    tp.role = t.role;
    tp.token_id = id;
    tp.name = t.name;
    tp.has_expires_in_s = t.expires_in_s > 0;
    tp.expires_in_s = (uint64_t)t.expires_in_s;
    cmd.body_case = RV__COMMAND__BODY_TOKEN_PUT;
    cmd.token_put = &tp;
    const Rv__Response *r = gw__admin_write(c, &cmd);
    if (r == NULL)
        goto wipe;
    if (r->n_results > 0 && r->results[0]->has_is_duplicate &&
        r->results[0]->is_duplicate) {
        /* The key's first request made the token; this secret was never
         * stored, so it must not be shown as if it worked. */
        gw_reply_error(c->x, RV_EEXIST,
                       "this Idempotency-Key already made a token; its "
                       "secret was shown once, in the first answer");
        goto wipe;
    }
    uint64_t index = r->index;
    int64_t expires_at =
        t.expires_in_s > 0 ? gw__token_expiry(c, t.team, id, index) : 0;
    gw_reply_json(c->x, 201,
                  gw__token_made_json(&t, id, text, expires_at, index));
wipe:
    gw_wipe(text, 0, sizeof text);
out:
    json_decref(j);
}

/* A time in ms, or null for 0 (never / not set). */
static json_t *
gw__ms_or_null(int64_t ms)
{
    return ms > 0 ? json_integer(ms) : json_null();
}

/* GET /api/v2/tokens?team= -> {"tokens":[...]} (never a secret or hash). */
void
gw_admin_token_list(struct gw_ctx *c)
{
    Rv__AdminRequest ar = RV__ADMIN_REQUEST__INIT;
    const char *team;
    if (gw__q_team(c, 1, &team) != 0)
        return;
    const Rv__Response *r =
        gw__admin_read(c, RV__ADMIN_OP__ADMIN_TOKENS, team, &ar);
    if (r == NULL)
        return;
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < r->n_tokens; i++) {
        const Rv__TokenInfo *t = r->tokens[i];
        int is_revoked = t->has_is_revoked && t->is_revoked;
        json_array_append_new(
            a, json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:b,s:o}", "token_id",
                         t->token_id, "team", t->team, "role",
                         proto_role_name((int)t->role), "name",
                         t->name != NULL ? t->name : "", "created_at",
                         gw__ms_or_null(t->created_at_ms), "expires_at",
                         gw__ms_or_null(t->expires_at_ms), "revoked",
                         is_revoked, "revoked_index",
                         is_revoked ? json_integer((json_int_t)t->revoked_index)
                                    : json_null()));
    }
    gw_reply_json(c->x, 200, json_pack("{s:o*}", "tokens", a));
}

/* DELETE /api/v2/tokens/{token} -> 200 {"token_id","index"} */
void
gw_admin_token_revoke(struct gw_ctx *c)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__TokenDel td = RV__TOKEN_DEL__INIT;
    td.token_id = c->param[GW_P_TOKEN];
    cmd.body_case = RV__COMMAND__BODY_TOKEN_DEL;
    cmd.token_del = &td;
    gw__admin_write_answer(c, &cmd, 200, "token_id", td.token_id);
}

/* ---- Whoami and the audit log ------------------------------------------ */

/* GET /api/v2/whoami -> {"token_id","team","role","name"} */
void
gw_admin_whoami(struct gw_ctx *c)
{
    Rv__AdminRequest ar = RV__ADMIN_REQUEST__INIT;
    const Rv__Response *r =
        gw__admin_read(c, RV__ADMIN_OP__ADMIN_WHOAMI, NULL, &ar);
    if (r == NULL)
        return;
    const Rv__Principal *p = r->principal;
    if (p == NULL) {
        gw_reply_error(c->x, RV_EIO, "the node answered no principal");
        return;
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:s,s:s,s:s,s:s}", "token_id", p->token_id,
                            "team", p->team, "role",
                            proto_role_name((int)p->role), "name",
                            p->name != NULL ? p->name : ""));
}

/* GET /api/v2/audit?team=&since_index=&max= -> {"events":[...]} */
void
gw_admin_audit(struct gw_ctx *c)
{
    Rv__AdminRequest ar = RV__ADMIN_REQUEST__INIT;
    const char *team;
    uint64_t since = 0, max = 0;
    int is_since, is_max;
    if (gw__q_team(c, 0, &team) != 0 ||
        gw__q_u64(c, "since_index", UINT64_MAX, &since, &is_since) != 0 ||
        gw__q_u64(c, "max", CONTRACT_MAX_AUDIT_EVENTS, &max, &is_max) != 0)
        return;
    if (is_max && max == 0) {
        gw__reject(c, RV_EINVAL, "query parameter max must be from 1 to %d",
                   CONTRACT_MAX_AUDIT_EVENTS);
        return;
    }
    ar.has_since_index = is_since;
    ar.since_index = since;
    ar.has_max_events = is_max;
    ar.max_events = (uint32_t)max;
    const Rv__Response *r =
        gw__admin_read(c, RV__ADMIN_OP__ADMIN_AUDIT, team, &ar);
    if (r == NULL)
        return;
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < r->n_events; i++) {
        const Rv__AuditEvent *e = r->events[i];
        json_array_append_new(
            a, json_pack("{s:I,s:I,s:s,s:s,s:s,s:s}", "index",
                         (json_int_t)e->index, "time", (json_int_t)e->time_ms,
                         "token_id", e->token_id != NULL ? e->token_id : "",
                         "action", e->action, "target",
                         e->target != NULL ? e->target : "", "team",
                         e->team != NULL ? e->team : ""));
    }
    gw_reply_json(c->x, 200, json_pack("{s:o*}", "events", a));
}
