/* Retention rules (DESIGN §12, Appendix B.4): JSON <-> retention_put and
 * the ADMIN_RETENTION read. Periods are given in days, fractions allowed
 * (0.5 is twelve hours); the command carries milliseconds. The node
 * authorises (a team admin, for its own team; a cluster-admin for any
 * team named in "team"). Shapes in docs/HTTP.md, "Retention and trash".
 * Also POST /api/v2/compact (a cluster-admin asks for a compaction). */
#include "gateway/gateway_int.h"
#include "proto/proto.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define GW_MAX_RETENTION_DAYS 36500.0 /* A hundred years. */
#define GW_DAY_MS             86400000.0
#define GW_MAX_STATUSES       8

/* A period in days (a non-negative number) into *ms; absent leaves *has
 * 0. -1 when answered. */
static int
gw__days(struct gw_ctx *c, json_t *j, const char *name, int64_t *ms,
         protobuf_c_boolean *has)
{
    json_t *v = json_object_get(j, name);
    *has = 0;
    if (v == NULL)
        return 0;
    double d = json_is_number(v) ? json_number_value(v) : -1.0;
    if (!isfinite(d) || d < 0.0 || d > GW_MAX_RETENTION_DAYS)
        return gw__reject(c, RV_EINVAL,
                          "retention: %s must be a number of days from 0 to "
                          "%.0f",
                          name, GW_MAX_RETENTION_DAYS);
    *ms = (int64_t)llround(d * GW_DAY_MS);
    *has = 1;
    return 0;
}

static int
gw__statuses(struct gw_ctx *c, json_t *j, Rv__RunStatus *out, size_t *n)
{
    json_t *a = json_object_get(j, "statuses");
    *n = 0;
    if (a == NULL)
        return 0;
    if (!json_is_array(a) || json_array_size(a) == 0 ||
        json_array_size(a) > GW_MAX_STATUSES)
        return gw__reject(c, RV_EINVAL,
                          "retention: statuses must be a list of 1 to %d run "
                          "statuses",
                          GW_MAX_STATUSES);
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (s == NULL || proto_status_parse(s, &out[*n]) != 0 ||
            out[*n] == RV__RUN_STATUS__RUN_STATUS_UNSPECIFIED)
            return gw__reject(c, RV_EINVAL,
                              "retention: statuses[%zu] is not a run status "
                              "(RUNNING, SCHEDULED, FINISHED, FAILED, KILLED, "
                              "CRASHED)",
                              i);
        (*n)++;
    }
    return 0;
}

/* PUT /api/v2/projects/{project}/retention {"max_age_days"?,"keep_last"?,
 * "statuses"?,"trash_days"?,"team"?} -> 200 {"project","index"}. The rule
 * replaces the project's. */
void
gw_retention_put(struct gw_ctx *c)
{
    static const char *const fields[] = {
        "max_age_days", "keep_last", "statuses", "trash_days", "team", NULL};
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RetentionPut rp = RV__RETENTION_PUT__INIT;
    Rv__RunStatus st[GW_MAX_STATUSES];
    int64_t keep = -1;
    json_t *j = gw__body(c);
    if (j == NULL)
        return;
    if (gw__only(c, j, "retention", fields) != 0 ||
        gw__days(c, j, "max_age_days", &rp.max_age_ms, &rp.has_max_age_ms) !=
            0 ||
        gw__days(c, j, "trash_days", &rp.trash_ms, &rp.has_trash_ms) != 0 ||
        gw__int(c, j, "keep_last", "retention", 0, INT32_MAX, &keep) != 0 ||
        gw__statuses(c, j, st, &rp.n_statuses) != 0 ||
        gw__str(c, j, "team", 0, CONTRACT_MAX_TEAM_BYTES, &rp.team) != 0 ||
        (rp.team != NULL && gw__team(c, "team", rp.team) != 0))
        goto out;
    rp.has_keep_last = keep >= 0;
    rp.keep_last = keep >= 0 ? (uint64_t)keep : 0;
    if (!rp.has_max_age_ms && !rp.has_keep_last && !rp.has_trash_ms) {
        gw_reply_error(c->x, RV_EINVAL,
                       "retention: give max_age_days, keep_last or "
                       "trash_days");
        goto out;
    }
    rp.statuses = st;
    rp.project = c->param[GW_P_PROJECT];
    cmd.body_case = RV__COMMAND__BODY_RETENTION_PUT;
    cmd.retention_put = &rp;
    gw__admin_write_answer(c, &cmd, 200, "project", rp.project);
out:
    json_decref(j);
}

/* DELETE /api/v2/projects/{project}/retention?team= -> 200
 * {"project","index"}: the project's rule is gone (the default trash
 * period applies again). */
void
gw_retention_delete(struct gw_ctx *c)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__RetentionPut rp = RV__RETENTION_PUT__INIT;
    const char *team;
    if (gw__q_team(c, 0, &team) != 0)
        return;
    rp.team = (char *)team;
    rp.project = c->param[GW_P_PROJECT];
    rp.has_clear = 1;
    rp.clear = 1;
    cmd.body_case = RV__COMMAND__BODY_RETENTION_PUT;
    cmd.retention_put = &rp;
    gw__admin_write_answer(c, &cmd, 200, "project", rp.project);
}

static json_t *
gw__days_json(int64_t ms)
{
    return json_real((double)ms / GW_DAY_MS);
}

/* GET /api/v2/retention?team= -> {"rules":[{"team","project",
 * "max_age_days","keep_last","statuses","trash_days"}],
 * "default_trash_days"}; null: no such limit (trash_days: the default). */
void
gw_retention_list(struct gw_ctx *c)
{
    Rv__AdminRequest ar = RV__ADMIN_REQUEST__INIT;
    const char *team;
    if (gw__q_team(c, 0, &team) != 0)
        return;
    const Rv__Response *r =
        gw__admin_read(c, RV__ADMIN_OP__ADMIN_RETENTION, team, &ar);
    if (r == NULL)
        return;
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < r->n_retention; i++) {
        const Rv__RetentionInfo *t = r->retention[i];
        json_t *sts = json_array();
        for (size_t k = 0; sts != NULL && k < t->n_statuses; k++)
            json_array_append_new(
                sts, json_string(proto_status_name(t->statuses[k])));
        json_array_append_new(
            a,
            json_pack(
                "{s:s,s:s,s:o,s:o,s:o,s:o}", "team", t->team, "project",
                t->project, "max_age_days",
                t->max_age_ms > 0 ? gw__days_json(t->max_age_ms) : json_null(),
                "keep_last",
                t->keep_last > 0 ? json_integer((json_int_t)t->keep_last)
                                 : json_null(),
                "statuses", sts ? sts : json_array(), "trash_days",
                t->has_trash_ms ? gw__days_json(t->trash_ms) : json_null()));
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:o*,s:o}", "rules", a, "default_trash_days",
                            gw__days_json(r->default_trash_ms)));
}

/* POST /api/v2/compact -> 202 {"index"}: a compaction at that index
 * (cluster-admin; every node rewrites in the background, GET
 * /api/v2/cluster shows each node's progress). */
void
gw_compact(struct gw_ctx *c)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__Compact cp = RV__COMPACT__INIT;
    Rv__Command *cmds[1] = {&cmd};
    cmd.body_case = RV__COMMAND__BODY_COMPACT;
    cmd.compact = &cp;
    if (gw__stamp(c, &cmd) != 0)
        return;
    const Rv__Response *r = gw__write(c, cmds, 1);
    if (r != NULL)
        gw_reply_json(c->x, 202,
                      json_pack("{s:I}", "index", (json_int_t)r->index));
}
