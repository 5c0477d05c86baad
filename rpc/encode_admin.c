/* Store -> protobuf for the admin reads: teams with their use, tokens
 * (never a secret or its hash) and audit events. The read's scope (the
 * principal's team, or every team for a cluster-admin) is applied by the
 * store. */
#include "rpc/server_int.h"

#include <stdlib.h>
#include <string.h>

struct rpc__admin_answer {
    struct store_team *teams;
    struct store_token *tokens;
    struct store_audit *events;
    struct store_retention *rules;
    size_t n;
    Rv__RetentionInfo *rule_outs, **rule_ptrs;
    Rv__RunStatus *statuses;
    Rv__TeamInfo *team_outs, **team_ptrs;
    Rv__TokenInfo *token_outs, **token_ptrs;
    Rv__AuditEvent *event_outs, **event_ptrs;
};

static void
rpc__admin_answer_free(void *body)
{
    struct rpc__admin_answer *a = body;
    free(a->teams);
    free(a->tokens);
    free(a->events);
    free(a->team_outs);
    free(a->team_ptrs);
    free(a->token_outs);
    free(a->token_ptrs);
    free(a->event_outs);
    free(a->event_ptrs);
    free(a->rules);
    free(a->rule_outs);
    free(a->rule_ptrs);
    free(a->statuses);
    free(a);
}

static int
rpc__teams(struct store_read *rd, const Rv__AdminRequest *q,
           struct rpc__admin_answer *a, Rv__Response *resp, char *errmsg)
{
    int rc = store_teams_list(rd, q->team, &a->teams, &a->n, errmsg);
    if (rc != RV_OK || a->n == 0)
        return rc;
    a->team_outs = calloc(a->n, sizeof *a->team_outs);
    a->team_ptrs = calloc(a->n, sizeof *a->team_ptrs);
    if (a->team_outs == NULL || a->team_ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < a->n; i++) {
        Rv__TeamInfo *o = &a->team_outs[i];
        const struct store_team *t = &a->teams[i];
        rv__team_info__init(o);
        o->team = a->teams[i].team;
        o->has_max_runs = o->has_max_bytes = o->has_max_points_per_s = 1;
        o->has_n_runs = o->has_n_bytes = o->has_max_points_per_run = 1;
        o->max_runs = t->max_runs;
        o->max_bytes = t->max_bytes;
        o->max_points_per_s = t->max_points_per_s;
        o->max_points_per_run = t->max_points_per_run;
        o->n_runs = t->n_runs;
        o->n_bytes = t->n_bytes;
        a->team_ptrs[i] = o;
    }
    resp->teams = a->team_ptrs;
    resp->n_teams = a->n;
    return RV_OK;
}

static int
rpc__tokens(struct store_read *rd, const Rv__AdminRequest *q,
            struct rpc__admin_answer *a, Rv__Response *resp, char *errmsg)
{
    int rc = store_tokens_list(rd, q->team, &a->tokens, &a->n, errmsg);
    if (rc != RV_OK || a->n == 0)
        return rc;
    a->token_outs = calloc(a->n, sizeof *a->token_outs);
    a->token_ptrs = calloc(a->n, sizeof *a->token_ptrs);
    if (a->token_outs == NULL || a->token_ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < a->n; i++) {
        Rv__TokenInfo *o = &a->token_outs[i];
        struct store_token *t = &a->tokens[i];
        rv__token_info__init(o);
        o->token_id = t->token_id;
        o->team = t->team;
        o->name = t->name;
        o->role = (Rv__Role)t->role;
        o->has_created_at_ms = o->has_expires_at_ms = 1;
        o->created_at_ms = t->created_at_ms;
        o->expires_at_ms = t->expires_at_ms;
        o->has_is_revoked = o->has_revoked_index = 1;
        o->is_revoked = t->is_revoked;
        o->revoked_index = t->revoked_index;
        a->token_ptrs[i] = o;
    }
    resp->tokens = a->token_ptrs;
    resp->n_tokens = a->n;
    return RV_OK;
}

static int
rpc__events(struct store_read *rd, const Rv__AdminRequest *q,
            struct rpc__admin_answer *a, Rv__Response *resp, char *errmsg)
{
    size_t max = q->has_max_events && q->max_events > 0
                     ? q->max_events
                     : CONTRACT_MAX_AUDIT_EVENTS;
    int rc =
        store_audit_list(rd, q->team, q->has_since_index ? q->since_index : 0,
                         max, &a->events, &a->n, errmsg);
    if (rc != RV_OK || a->n == 0)
        return rc;
    a->event_outs = calloc(a->n, sizeof *a->event_outs);
    a->event_ptrs = calloc(a->n, sizeof *a->event_ptrs);
    if (a->event_outs == NULL || a->event_ptrs == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < a->n; i++) {
        Rv__AuditEvent *o = &a->event_outs[i];
        struct store_audit *e = &a->events[i];
        rv__audit_event__init(o);
        o->index = e->index;
        o->time_ms = e->time_ms;
        o->token_id = e->token_id;
        o->action = e->action;
        o->target = e->target;
        o->team = e->team;
        a->event_ptrs[i] = o;
    }
    resp->events = a->event_ptrs;
    resp->n_events = a->n;
    return RV_OK;
}

#define RPC__STATUS_SLOTS 8 /* Statuses per rule, at most. */

static int
rpc__rules(struct store_read *rd, const Rv__AdminRequest *q,
           struct rpc__admin_answer *a, Rv__Response *resp, char *errmsg)
{
    resp->has_default_trash_ms = 1;
    resp->default_trash_ms = STORE_TRASH_DEFAULT_MS;
    int rc = store_retention_list(rd, q->team, &a->rules, &a->n, errmsg);
    if (rc != RV_OK || a->n == 0)
        return rc;
    a->rule_outs = calloc(a->n, sizeof *a->rule_outs);
    a->rule_ptrs = calloc(a->n, sizeof *a->rule_ptrs);
    a->statuses = calloc(a->n * RPC__STATUS_SLOTS, sizeof *a->statuses);
    if (a->rule_outs == NULL || a->rule_ptrs == NULL || a->statuses == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < a->n; i++) {
        Rv__RetentionInfo *o = &a->rule_outs[i];
        const struct store_retention *t = &a->rules[i];
        rv__retention_info__init(o);
        o->team = a->rules[i].team;
        o->project = a->rules[i].project;
        o->has_max_age_ms = o->has_keep_last = 1;
        o->max_age_ms = t->max_age_ms;
        o->keep_last = t->keep_last;
        o->has_trash_ms = t->has_trash != 0;
        o->trash_ms = t->trash_ms;
        o->statuses = a->statuses + i * RPC__STATUS_SLOTS;
        for (int st = 0; st < 32 && o->n_statuses < RPC__STATUS_SLOTS; st++)
            if (t->status_mask & (1u << st))
                o->statuses[o->n_statuses++] = (Rv__RunStatus)st;
        a->rule_ptrs[i] = o;
    }
    resp->retention = a->rule_ptrs;
    resp->n_retention = a->n;
    return RV_OK;
}

int
rpc__admin_read(struct store_read *rd, const Rv__AdminRequest *q,
                struct rpc_reply *rp, char *errmsg)
{
    if (q->team != NULL && strlen(q->team) > CONTRACT_MAX_TEAM_BYTES) {
        rv_errmsg_printf(errmsg, "team longer than %d bytes",
                         CONTRACT_MAX_TEAM_BYTES);
        return RV_EINVAL;
    }
    struct rpc__admin_answer *a =
        rpc__reply_body(rp, sizeof *a, rpc__admin_answer_free);
    if (a == NULL)
        return RV_ENOMEM;
    switch (q->op) {
    case RV__ADMIN_OP__ADMIN_TEAMS:
        return rpc__teams(rd, q, a, &rp->resp, errmsg);
    case RV__ADMIN_OP__ADMIN_TOKENS:
        return rpc__tokens(rd, q, a, &rp->resp, errmsg);
    case RV__ADMIN_OP__ADMIN_AUDIT:
        return rpc__events(rd, q, a, &rp->resp, errmsg);
    case RV__ADMIN_OP__ADMIN_RETENTION:
        return rpc__rules(rd, q, a, &rp->resp, errmsg);
    default: /* whoami needs no store: answered by rpc__whoami. */
        rv_errmsg_printf(errmsg, "unknown admin request");
        return RV_EINVAL;
    }
}
