/* The gateway's error table: every RV_* code maps to a status and an
 * error_code, and the ones clients act on map as docs/HTTP.md says. The
 * route table: which handler a method and path reach, with which path
 * parameters, and the 400/404/405/413 answers made before any handler,
 * through a fake node that records the request and answers "not found". */
#include "base/token.h"
#include "gateway/gateway_int.h"
#include "proto/proto.h"
#include "tests/lib/harness.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_every_code_has_a_status(void)
{
    for (int code = RV_OK + 1; code < RV_ERR_COUNT; code++) {
        const char *ec = NULL;
        int status = gateway_status_of(code, &ec);
        CHECK(ec != NULL && ec[0] != '\0');
        CHECK(status == 400 || status == 401 || status == 403 ||
              status == 404 || status == 409 || status == 413 ||
              status == 429 || status == 500 || status == 503 || status == 507);
        /* Only local faults are 500: every other code has its own row. */
        if (status == 500)
            CHECK(code == RV_EIO || code == RV_ECORRUPT || code == RV_EVERSION);
    }
}

static void
test_codes_clients_act_on(void)
{
    static const struct {
        int code, status;
        const char *ec;
    } want[] = {
        {RV_EINVAL, 400, "INVALID_PARAMETER_VALUE"},
        {RV_EPARSE, 400, "INVALID_PARAMETER_VALUE"},
        {RV_ECONFLICT, 400, "INVALID_PARAMETER_VALUE"},
        {RV_EMALFORMED, 400, "MALFORMED_REQUEST"},
        {RV_ENOTFOUND, 404, "RESOURCE_DOES_NOT_EXIST"},
        {RV_EEXIST, 409, "RESOURCE_ALREADY_EXISTS"},
        {RV_ESTATE, 409, "INVALID_STATE"},
        {RV_ETOOBIG, 413, "REQUEST_TOO_LARGE"},
        {RV_EQUOTA, 507, "RESOURCE_EXHAUSTED"},
        {RV_ERATE, 429, "RESOURCE_EXHAUSTED"},
        {RV_EUNAUTHENTICATED, 401, "UNAUTHENTICATED"},
        {RV_EPERM, 403, "PERMISSION_DENIED"},
        {RV_ENOTLEADER, 503, "TEMPORARILY_UNAVAILABLE"},
        {RV_EUNAVAILABLE, 503, "TEMPORARILY_UNAVAILABLE"},
        {RV_EUNKNOWN, 503, "TEMPORARILY_UNAVAILABLE"},
        {RV_ETIMEDOUT, 503, "TEMPORARILY_UNAVAILABLE"},
        {RV_ENOSPACE, 507, "INSUFFICIENT_STORAGE"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *ec = NULL;
        CHECK(gateway_status_of(want[i].code, &ec) == want[i].status);
        CHECK(ec != NULL && strcmp(ec, want[i].ec) == 0);
    }
}

/* ---- The route table, through a fake node ---------------------------- */

/* What the fake node saw of the last request (copied: the request and
 * its commands live on the handler's stack). */
struct fake_seen {
    int body_case, cmd_case;
    int has_token;
    char token[RV_TOKEN_MAX_HEADER + 1];
    char team[128], name[256], token_id[32], role[32];
    uint8_t sha[RV_TOKEN_SHA256];
    size_t sha_len;
    int has_expires_in_s;
    uint64_t expires_in_s;
    int has_max_runs, has_max_bytes, has_max_points_per_s;
    uint64_t max_runs, max_bytes, max_points_per_s;
    int admin_op, has_admin_team, has_since, has_max;
    uint64_t since_index, max_events, min_index;
    int has_read, consistency;
};

struct fake_node {
    Rv__Request last; /* A shallow copy of the last request. */
    char run_id[64], path[64];
    int n_calls;
    struct fake_seen seen;
    const Rv__Response *preset; /* Answered when set, else "not found". */
    Rv__Response answer;
    /* The token id of the last token_put; an ADMIN_TOKENS read is then
     * answered with that token expiring at expiry_ms (when not 0). */
    char made_id[32];
    uint64_t made_expires_in_s;
    int64_t expiry_ms;
    Rv__TokenInfo made;
    Rv__TokenInfo *made_list[1];
};

static void
fake_see_command(struct fake_seen *s, const Rv__Command *c)
{
    s->cmd_case = c->body_case;
    if (c->body_case == RV__COMMAND__BODY_TEAM_PUT)
        snprintf(s->team, sizeof s->team, "%s", c->team_put->team);
    if (c->body_case == RV__COMMAND__BODY_RUN_CREATE)
        snprintf(s->team, sizeof s->team, "%s",
                 c->run_create->team ? c->run_create->team : "(unset)");
    if (c->body_case == RV__COMMAND__BODY_TOKEN_DEL)
        snprintf(s->token_id, sizeof s->token_id, "%s", c->token_del->token_id);
    if (c->body_case == RV__COMMAND__BODY_QUOTA_PUT) {
        const Rv__QuotaPut *q = c->quota_put;
        snprintf(s->team, sizeof s->team, "%s", q->team);
        s->has_max_runs = q->has_max_runs;
        s->max_runs = q->max_runs;
        s->has_max_bytes = q->has_max_bytes;
        s->max_bytes = q->max_bytes;
        s->has_max_points_per_s = q->has_max_points_per_s;
        s->max_points_per_s = q->max_points_per_s;
    }
    if (c->body_case == RV__COMMAND__BODY_TOKEN_PUT) {
        const Rv__TokenPut *t = c->token_put;
        snprintf(s->team, sizeof s->team, "%s", t->team);
        snprintf(s->name, sizeof s->name, "%s", t->name ? t->name : "");
        snprintf(s->token_id, sizeof s->token_id, "%s",
                 t->token_id ? t->token_id : "");
        snprintf(s->role, sizeof s->role, "%s",
                 t->has_role ? proto_role_name((int)t->role) : "(unset)");
        s->sha_len = t->token_sha256.len;
        if (t->token_sha256.len == RV_TOKEN_SHA256)
            memcpy(s->sha, t->token_sha256.data, RV_TOKEN_SHA256);
        s->has_expires_in_s = t->has_expires_in_s;
        s->expires_in_s = t->expires_in_s;
    }
}

static void
fake_see(struct fake_seen *s, const Rv__Request *req)
{
    memset(s, 0, sizeof *s);
    s->body_case = req->body_case;
    s->has_token = req->token != NULL;
    snprintf(s->token, sizeof s->token, "%s", req->token ? req->token : "");
    if (req->read != NULL) {
        s->has_read = 1;
        s->consistency = req->read->consistency;
        s->min_index = req->read->min_index;
    }
    if (req->body_case == RV__REQUEST__BODY_WRITE && req->write->n_commands > 0)
        fake_see_command(s, req->write->commands[0]);
    if (req->body_case == RV__REQUEST__BODY_ADMIN) {
        const Rv__AdminRequest *a = req->admin;
        s->admin_op = a->op;
        s->has_admin_team = a->team != NULL;
        snprintf(s->team, sizeof s->team, "%s", a->team ? a->team : "");
        s->has_since = a->has_since_index;
        s->since_index = a->since_index;
        s->has_max = a->has_max_events;
        s->max_events = a->max_events;
    }
}

static const Rv__Response *
fake_answer(void *data, Rv__Request *req)
{
    struct fake_node *f = data;
    f->last = *req;
    fake_see(&f->seen, req);
    f->run_id[0] = f->path[0] = '\0';
    if (req->body_case == RV__REQUEST__BODY_GET_RUN)
        snprintf(f->run_id, sizeof f->run_id, "%s", req->get_run->run_id);
    if (req->body_case == RV__REQUEST__BODY_ARTIFACT) {
        snprintf(f->run_id, sizeof f->run_id, "%s", req->artifact->run_id);
        snprintf(f->path, sizeof f->path, "%s",
                 req->artifact->path ? req->artifact->path : "");
    }
    f->n_calls++;
    if (f->seen.cmd_case == RV__COMMAND__BODY_TOKEN_PUT) {
        snprintf(f->made_id, sizeof f->made_id, "%s", f->seen.token_id);
        f->made_expires_in_s = f->seen.expires_in_s;
    }
    if (f->expiry_ms != 0 && f->seen.admin_op == RV__ADMIN_OP__ADMIN_TOKENS &&
        req->body_case == RV__REQUEST__BODY_ADMIN) {
        rv__response__init(&f->answer);
        rv__token_info__init(&f->made);
        f->made.token_id = f->made_id;
        f->made.team = (char *)"vision";
        f->made.has_expires_at_ms = 1;
        f->made.expires_at_ms = f->expiry_ms;
        f->made_list[0] = &f->made;
        f->answer.n_tokens = 1;
        f->answer.tokens = f->made_list;
        return &f->answer;
    }
    if (f->preset != NULL)
        return f->preset;
    rv__response__init(&f->answer);
    f->answer.code = RV_ENOTFOUND;
    return &f->answer;
}

static void
fake_info(void *data, struct replica_info *out)
{
    (void)data;
    memset(out, 0, sizeof *out);
    out->id = 1;
}

static int
fake_is_running(void *data)
{
    (void)data;
    return 1;
}

struct answer {
    int status;
    enum gw_route route;
    char allow[64];
    char www_authenticate[128];
    unsigned retry_after_s;
    char body[4096];
};

/* Route method and uri with the Authorization header auth (NULL: none)
 * and body (NULL: body_len zero bytes) through the table; the answer into
 * *out. */
static void
route_full(struct fake_node *f, const char *method, const char *uri,
           const char *auth, const char *body_text, size_t body_len,
           struct answer *out)
{
    static struct gateway g;
    struct gw_node_ops ops = {fake_answer, fake_info, fake_is_running, f};
    struct gw_exchange x;
    struct answer a;
    char copy[GATEWAY_MAX_TARGET_BYTES + 1], errmsg[RV_ERRMSG_SIZE];
    uint64_t seq = 0;
    if (body_text != NULL)
        body_len = strlen(body_text);
    uint8_t *body = calloc(1, body_len + 1);
    if (body != NULL && body_text != NULL)
        memcpy(body, body_text, body_len);
    memset(&x, 0, sizeof x);
    memset(&a, 0, sizeof a);
    x.g = &g;
    x.ops = &ops;
    x.method = method;
    x.worker_client_id = 1;
    x.worker_seq = &seq;
    x.body = body;
    x.body_len = body_len;
    x.authorization = auth;
    rv_buf_init(&x.out);
    snprintf(copy, sizeof copy, "%s", uri);
    CHECK(body != NULL && gw_parse_uri(&x, copy, errmsg) == 0);
    gw_route(&x);
    a.status = x.status;
    a.route = x.route;
    a.retry_after_s = x.retry_after_s;
    snprintf(a.allow, sizeof a.allow, "%s", x.allow ? x.allow : "");
    snprintf(a.www_authenticate, sizeof a.www_authenticate, "%s",
             x.www_authenticate ? x.www_authenticate : "");
    snprintf(a.body, sizeof a.body, "%.*s", (int)x.out.len,
             x.out.data ? (const char *)x.out.data : "");
    rv_buf_free(&x.out);
    free(body);
    *out = a;
}

static void
route(struct fake_node *f, const char *method, const char *uri, size_t body_len,
      struct answer *out)
{
    route_full(f, method, uri, NULL, NULL, body_len, out);
}

static void
test_unknown_paths_are_404(void)
{
    struct fake_node f = {0};
    struct answer a;
    route(&f, "GET", "/nope", 0, &a);
    CHECK(a.status == 404 && a.route == GW_R_NONE);
    CHECK(strstr(a.body, "\"ENDPOINT_NOT_FOUND\"") != NULL);
    CHECK(strstr(a.body, "no endpoint /nope") != NULL);
    /* Below a run, the answer quotes the path up to the run id. */
    route(&f, "GET", "/api/v2/runs/r1/nope/x", 0, &a);
    CHECK(a.status == 404);
    CHECK(strstr(a.body, "\"no endpoint /api/v2/runs/r1\"") != NULL);
    CHECK(f.n_calls == 0);
}

static void
test_wrong_methods_are_405_with_allow(void)
{
    struct fake_node f = {0};
    struct answer a;
    route(&f, "PATCH", "/healthz", 0, &a);
    CHECK(a.status == 405 && strcmp(a.allow, "GET") == 0);
    CHECK(strstr(a.body, "PATCH is not allowed here; use GET") != NULL);
    /* One resource, two methods: Allow names both, the GET row counts. */
    route(&f, "DELETE", "/api/v2/runs/r1/logs", 0, &a);
    CHECK(a.status == 405 && strcmp(a.allow, "GET,POST") == 0);
    CHECK(a.route == GW_R_LOGS_GET);
    route(&f, "GET", "/api/v2/runs/r1/log-batch", 0, &a);
    CHECK(a.status == 405 && strcmp(a.allow, "POST") == 0);
    CHECK(a.route == GW_R_LOG_BATCH);
    /* v1 is read-only before anything else, without Allow. */
    route(&f, "POST", "/api/runs/bad!", 0, &a);
    CHECK(a.status == 405 && a.allow[0] == '\0' && a.route == GW_R_NONE);
    CHECK(strstr(a.body, "read-only") != NULL);
    CHECK(f.n_calls == 0);
}

static void
test_path_parameters_are_checked_first(void)
{
    struct fake_node f = {0};
    struct answer a;
    route(&f, "DELETE", "/api/v2/runs/bad!/x", 0, &a);
    CHECK(a.status == 400 && a.route == GW_R_NONE);
    CHECK(strstr(a.body, "invalid run_id 'bad!'") != NULL);
    route(&f, "POST", "/api/v2/runs//log-batch", 0, &a);
    CHECK(a.status == 400);
    /* A bad node id counts as a cluster request. */
    route(&f, "GET", "/api/v2/cluster/nodes/0", 0, &a);
    CHECK(a.status == 400 && a.route == GW_R_CLUSTER);
    CHECK(strstr(a.body, "a node id is a positive integer") != NULL);
    route(&f, "DELETE", "/api/v2/cluster/nodes/5/x", 0, &a);
    CHECK(a.status == 400);
    /* 2^64 does not fit: refused, not taken as 2^64 - 1. */
    route(&f, "DELETE", "/api/v2/cluster/nodes/18446744073709551616", 0, &a);
    CHECK(a.status == 400 && a.route == GW_R_CLUSTER);
    CHECK(f.n_calls == 0);
}

static void
test_parameters_reach_the_handler(void)
{
    struct fake_node f = {0};
    struct answer a;
    route(&f, "HEAD", "/api/v2/runs/r1/", 0, &a);
    CHECK(a.status == 404 && a.route == GW_R_GET);
    CHECK(strstr(a.body, "RESOURCE_DOES_NOT_EXIST") != NULL);
    CHECK(f.n_calls == 1 && f.last.body_case == RV__REQUEST__BODY_GET_RUN);
    CHECK(strcmp(f.run_id, "r1") == 0);
    /* Through the v1 alias, the artifact path with its slashes. */
    route(&f, "GET", "/api/runs/r2/artifacts/a/b.txt", 0, &a);
    CHECK(a.route == GW_R_ARTIFACT_GET && f.n_calls == 2);
    CHECK(f.last.body_case == RV__REQUEST__BODY_ARTIFACT);
    CHECK(strcmp(f.run_id, "r2") == 0 && strcmp(f.path, "a/b.txt") == 0);
    route(&f, "GET", "/api/v2/runs/r3/artifacts", 0, &a);
    CHECK(a.route == GW_R_ARTIFACT_LIST && f.n_calls == 3);
    CHECK(strcmp(f.run_id, "r3") == 0 && f.path[0] == '\0');
}

static void
test_json_bodies_over_the_limit_are_413(void)
{
    struct fake_node f = {0};
    struct answer a;
    route(&f, "POST", "/api/v2/runs", GATEWAY_MAX_JSON_BODY + 1, &a);
    CHECK(a.status == 413 && a.route == GW_R_CREATE);
    CHECK(strstr(a.body, "over the limit of 1048576") != NULL);
    route(&f, "POST", "/api/v2/runs/r1/status", 0, &a);
    CHECK(a.status == 400 && strstr(a.body, "needs a JSON body") != NULL);
    CHECK(f.n_calls == 0);
}

/* ---- Authentication: the header, 401 and 429 ------------------------- */

/* 1 if body is JSON equal to want (both parsed), else 0 (printed). */
static int
json_is(const char *body, const char *want)
{
    json_t *a = json_loads(body, 0, NULL), *b = json_loads(want, 0, NULL);
    int eq = a != NULL && b != NULL && json_equal(a, b);
    if (!eq)
        fprintf(stderr, "got  %s\nwant %s\n", body, want);
    json_decref(a);
    json_decref(b);
    return eq;
}

static void
test_authorization_header_reaches_the_node(void)
{
    char good[RV_TOKEN_TEXT_CHARS + 1], id[RV_TOKEN_ID_CHARS + 1];
    char h[9000], big[8200];
    uint8_t sha[RV_TOKEN_SHA256];
    CHECK(rv_token_make(good, id, sha) == RV_OK);
    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'a', sizeof big - 8);
    big[sizeof big - 1] = '\0';
    char non_utf8[128], ctl[128], trail[128], twice[256];
    snprintf(non_utf8, sizeof non_utf8, "Bearer %.*s\xff\xfe", 80, good);
    snprintf(ctl, sizeof ctl, "Bearer %.40s\x01%s", good, good + 41);
    snprintf(trail, sizeof trail, "Bearer %sx", good);
    /* nng 1.5.2 joins two Authorization headers into one with ", ". */
    snprintf(twice, sizeof twice, "Bearer %s, Bearer %s", good, good);
    const struct {
        const char *header; /* NULL: none. */
        int then_good;      /* The good token follows header. */
        int has_token;
        int is_good; /* Else the token sent is "". */
    } cases[] = {
        {NULL, 0, 0, 0},       {"", 0, 0, 0},        {"Bearer ", 1, 1, 1},
        {"bearer ", 1, 1, 1},  {"BEARER ", 1, 1, 1}, {"Bearer    ", 1, 1, 1},
        {"Basic x", 0, 1, 0},  {"Bearer", 0, 1, 0},  {"Bearer ", 0, 1, 0},
        {"Bearer\t", 1, 1, 0}, {"Token ", 1, 1, 0},  {"", 1, 1, 0},
        {big, 0, 1, 0},        {non_utf8, 0, 1, 0},  {ctl, 0, 1, 0},
        {trail, 0, 1, 0},      {twice, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake_node f = {0};
        struct answer a;
        const char *hv = cases[i].header;
        if (cases[i].then_good) {
            snprintf(h, sizeof h, "%s%s", cases[i].header, good);
            hv = h;
        }
        route_full(&f, "GET", "/api/v2/runs/r1", hv, NULL, 0, &a);
        CHECK(f.n_calls == 1 && a.status == 404);
        CHECK(f.seen.has_token == cases[i].has_token);
        if (cases[i].is_good)
            CHECK(strcmp(f.seen.token, good) == 0);
        else
            CHECK(f.seen.token[0] == '\0');
        if (f.seen.has_token != cases[i].has_token)
            fprintf(stderr, "header case %zu\n", i);
    }
    /* Writes carry it too. */
    struct fake_node f = {0};
    struct answer a;
    snprintf(h, sizeof h, "Bearer %s", good);
    route_full(&f, "POST", "/api/v2/runs", h,
               "{\"project\":\"p\",\"experiment\":\"e\"}", 0, &a);
    CHECK(f.n_calls == 1 && f.seen.body_case == RV__REQUEST__BODY_WRITE);
    CHECK(f.seen.has_token && strcmp(f.seen.token, good) == 0);
}

static void
test_operations_stay_open(void)
{
    /* (/metrics reads the RPC server's counters, which the fake lacks.) */
    const char *open[] = {"/healthz", "/readyz", "/api/config"};
    for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
        struct fake_node f = {0};
        struct answer a;
        route_full(&f, "GET", open[i], "Basic nope", NULL, 0, &a);
        CHECK(a.status == 200 || a.status == 503);
        CHECK(f.n_calls == 0 && a.www_authenticate[0] == '\0');
        CHECK(strstr(a.body, "run_id") == NULL);
    }
}

static void
test_401_carries_www_authenticate(void)
{
    struct fake_node f = {0};
    struct answer a;
    Rv__Response r = RV__RESPONSE__INIT;
    r.code = RV_EUNAUTHENTICATED;
    r.message = (char *)"no valid token";
    f.preset = &r;
    route_full(&f, "GET", "/api/v2/experiments", NULL, NULL, 0, &a);
    CHECK(a.status == 401);
    CHECK(strcmp(a.www_authenticate, "Bearer realm=\"runvault\"") == 0);
    CHECK(json_is(a.body, "{\"error_code\":\"UNAUTHENTICATED\","
                          "\"message\":\"no valid token\"}"));
    route_full(&f, "GET", "/api/v2/experiments", "Bearer x", NULL, 0, &a);
    CHECK(a.status == 401);
    CHECK(strcmp(a.www_authenticate, "Bearer realm=\"runvault\", "
                                     "error=\"invalid_token\"") == 0);
    /* 403 and 404 say nothing of credentials. */
    r.code = RV_EPERM;
    route_full(&f, "POST", "/api/v2/runs/r1/delete", NULL, NULL, 0, &a);
    CHECK(a.status == 403 && a.www_authenticate[0] == '\0');
    CHECK(strstr(a.body, "\"PERMISSION_DENIED\"") != NULL);
    r.code = RV_ENOTFOUND;
    route_full(&f, "GET", "/api/v2/runs/r1", NULL, NULL, 0, &a);
    CHECK(a.status == 404 && a.www_authenticate[0] == '\0');
    CHECK(strstr(a.body, "\"RESOURCE_DOES_NOT_EXIST\"") != NULL);
    r.code = RV_EQUOTA;
    route_full(&f, "POST", "/api/v2/runs", NULL,
               "{\"project\":\"p\",\"experiment\":\"e\"}", 0, &a);
    CHECK(a.status == 507 && strstr(a.body, "RESOURCE_EXHAUSTED") != NULL);
    CHECK(a.retry_after_s == 0);
}

static void
test_429_carries_retry_after(void)
{
    struct fake_node f = {0};
    struct answer a;
    Rv__Response r = RV__RESPONSE__INIT;
    const char *batch = "{\"metrics\":[{\"key\":\"k\",\"value\":1,\"step\":0,"
                        "\"timestamp\":1}]}";
    r.code = RV_ERATE;
    r.has_retry_after_s = 1;
    r.retry_after_s = 7;
    f.preset = &r;
    route_full(&f, "POST", "/api/v2/runs/r1/log-batch", NULL, batch, 0, &a);
    CHECK(a.status == 429 && a.retry_after_s == 7);
    CHECK(strstr(a.body, "\"RESOURCE_EXHAUSTED\"") != NULL);
    /* Never below 1 second. */
    r.retry_after_s = 0;
    route_full(&f, "POST", "/api/v2/runs/r1/log-batch", NULL, batch, 0, &a);
    CHECK(a.status == 429 && a.retry_after_s == 1);
    /* As the first command's result. */
    Rv__CommandResult cr = RV__COMMAND_RESULT__INIT, *crs[1] = {&cr};
    cr.code = RV_ERATE;
    r.code = RV_OK;
    r.retry_after_s = 3;
    r.n_results = 1;
    r.results = crs;
    route_full(&f, "POST", "/api/v2/runs/r1/log-batch", NULL, batch, 0, &a);
    CHECK(a.status == 429 && a.retry_after_s == 3);
    cr.code = RV_OK;
    route_full(&f, "POST", "/api/v2/runs/r1/log-batch", NULL, batch, 0, &a);
    CHECK(a.status == 200 && a.retry_after_s == 0);
}

/* ---- Teams, quotas, tokens, whoami, audit ------------------------------ */

/* POST/PUT uri with each body; each must be a 400 that never reaches the
 * node. */
static void
check_bad_bodies(const char *method, const char *uri, const char *const *bodies)
{
    for (size_t i = 0; bodies[i] != NULL; i++) {
        struct fake_node f = {0};
        struct answer a;
        route_full(&f, method, uri, NULL, bodies[i], 0, &a);
        if (a.status != 400 || f.n_calls != 0)
            fprintf(stderr, "%s %s %s -> %d %s\n", method, uri, bodies[i],
                    a.status, a.body);
        CHECK(a.status == 400 && f.n_calls == 0);
    }
}

/* A write's answer: success at index with one command result. */
struct write_answer {
    Rv__Response r;
    Rv__CommandResult cr, *crs[1];
};

static Rv__CommandResult *
write_answer_set(struct write_answer *w, struct fake_node *f, uint64_t index)
{
    rv__response__init(&w->r);
    rv__command_result__init(&w->cr);
    w->crs[0] = &w->cr;
    w->r.index = index;
    w->r.n_results = 1;
    w->r.results = w->crs;
    f->preset = &w->r;
    return &w->cr;
}

static void
test_team_create(void)
{
    struct fake_node f = {0};
    struct answer a;
    struct write_answer w;
    Rv__CommandResult *cr = write_answer_set(&w, &f, 42);
    route_full(&f, "POST", "/api/v2/teams", NULL, "{\"team\":\"vision\"}", 0,
               &a);
    CHECK(a.status == 201 && a.route == GW_R_TEAMS);
    CHECK(json_is(a.body, "{\"team\":\"vision\",\"index\":42}"));
    CHECK(f.seen.cmd_case == RV__COMMAND__BODY_TEAM_PUT);
    CHECK(strcmp(f.seen.team, "vision") == 0);
    cr->code = RV_EEXIST;
    route_full(&f, "POST", "/api/v2/teams", NULL, "{\"team\":\"vision\"}", 0,
               &a);
    CHECK(a.status == 409 && strstr(a.body, "RESOURCE_ALREADY_EXISTS"));
    static const char *const bad[] = {
        "{}",
        "{\"team\":\"\"}",
        "{\"team\":\"*\"}",
        "{\"team\":7}",
        "{\"team\":\"v\",\"max_runs\":1}",
        "{\"team\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""
        "}",
        "[\"vision\"]",
        "{\"team\":",
        "{\"team\":\"a\",\"team\":\"b\"}",
        NULL,
    };
    check_bad_bodies("POST", "/api/v2/teams", bad);
}

static void
test_team_list(void)
{
    struct fake_node f = {0};
    struct answer a;
    Rv__Response r = RV__RESPONSE__INIT;
    Rv__TeamInfo t = RV__TEAM_INFO__INIT, *ts[1] = {&t};
    t.team = (char *)"vision";
    t.has_max_runs = t.has_n_runs = t.has_n_bytes = 1;
    t.max_runs = 100;
    t.n_runs = 3;
    t.n_bytes = 4096;
    t.max_points_per_s = 5000;
    t.has_max_points_per_s = 1;
    r.n_teams = 1;
    r.teams = ts;
    f.preset = &r;
    route_full(&f, "GET", "/api/v2/teams?consistency=stale&min_index=5", NULL,
               NULL, 0, &a);
    CHECK(a.status == 200);
    CHECK(json_is(a.body,
                  "{\"teams\":[{\"team\":\"vision\",\"max_runs\":100,"
                  "\"max_bytes\":0,\"max_points_per_s\":5000,\"n_runs\":3,"
                  "\"n_bytes\":4096}]}"));
    CHECK(f.seen.body_case == RV__REQUEST__BODY_ADMIN);
    CHECK(f.seen.admin_op == RV__ADMIN_OP__ADMIN_TEAMS &&
          !f.seen.has_admin_team);
    CHECK(f.seen.has_read && f.seen.min_index == 5);
    CHECK(f.seen.consistency == RV__CONSISTENCY__STALE);
    route_full(&f, "GET", "/api/v2/teams?consistency=often", NULL, NULL, 0, &a);
    CHECK(a.status == 400);
}

static void
test_quota_put(void)
{
    struct fake_node f = {0};
    struct answer a;
    Rv__Response r = RV__RESPONSE__INIT;
    r.index = 8;
    f.preset = &r;
    route_full(&f, "PUT", "/api/v2/teams/vision/quota", NULL,
               "{\"max_runs\":10,\"max_bytes\":0}", 0, &a);
    CHECK(a.status == 200 && a.route == GW_R_QUOTA);
    CHECK(json_is(a.body, "{\"team\":\"vision\",\"index\":8}"));
    CHECK(f.seen.cmd_case == RV__COMMAND__BODY_QUOTA_PUT);
    CHECK(strcmp(f.seen.team, "vision") == 0);
    CHECK(f.seen.has_max_runs && f.seen.max_runs == 10);
    CHECK(f.seen.has_max_bytes && f.seen.max_bytes == 0);
    CHECK(!f.seen.has_max_points_per_s);
    static const char *const bad[] = {
        "{}",
        "{\"max_runs\":-1}",
        "{\"max_runs\":1.5}",
        "{\"max_runs\":\"10\"}",
        "{\"max_bytes\":null}",
        "{\"max_runs\":1,\"max_points\":2}",
        "{\"max_points_per_s\":1e3}",
        NULL,
    };
    check_bad_bodies("PUT", "/api/v2/teams/vision/quota", bad);
    route_full(&f, "PUT", "/api/v2/teams/*/quota", NULL, "{\"max_runs\":1}", 0,
               &a);
    CHECK(a.status == 400 && a.route == GW_R_QUOTA);
    route_full(&f, "GET", "/api/v2/teams/vision/quota", NULL, NULL, 0, &a);
    CHECK(a.status == 405 && strcmp(a.allow, "PUT") == 0);
}

static void
test_token_create(void)
{
    struct fake_node f = {0};
    struct answer a;
    struct write_answer w;
    Rv__CommandResult *cr = write_answer_set(&w, &f, 9);
    f.expiry_ms = 1700000000000;
    route_full(&f, "POST", "/api/v2/tokens", NULL,
               "{\"team\":\"vision\",\"role\":\"writer\",\"name\":\"ci\","
               "\"expires_in_s\":3600}",
               0, &a);
    CHECK(a.status == 201 && a.route == GW_R_TOKENS);
    json_t *j = json_loads(a.body, 0, NULL);
    const char *tok = NULL, *tid = NULL, *team = NULL, *role = NULL,
               *name = NULL;
    json_int_t exp = 0, index = 0;
    CHECK(j != NULL &&
          json_unpack(j, "{s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "token", &tok,
                      "token_id", &tid, "team", &team, "role", &role, "name",
                      &name, "expires_at", &exp, "index", &index) == 0);
    if (tok != NULL && tid != NULL) {
        char id[RV_TOKEN_ID_CHARS + 1];
        CHECK(rv_token_parse(tok, strlen(tok), id) == RV_OK);
        CHECK(strcmp(id, tid) == 0 && strcmp(f.made_id, tid) == 0);
        /* The expiry came from a read of the team's tokens after it. */
        CHECK(f.n_calls == 2 && f.seen.admin_op == RV__ADMIN_OP__ADMIN_TOKENS);
        CHECK(f.seen.min_index == 9);
        CHECK(strcmp(team, "vision") == 0 && strcmp(role, "writer") == 0);
        CHECK(strcmp(name, "ci") == 0 && exp == 1700000000000 && index == 9);
        CHECK(f.made_expires_in_s == 3600);
    }
    json_decref(j);
    /* Without an expiry, no read: the write is the last request, and it
     * carried the hash of the secret answered, never the secret. */
    f.expiry_ms = 0;
    route_full(&f, "POST", "/api/v2/tokens", NULL,
               "{\"team\":\"*\",\"role\":\"cluster-admin\",\"name\":\"ops\"}",
               0, &a);
    CHECK(a.status == 201 && f.n_calls == 3);
    CHECK(f.seen.cmd_case == RV__COMMAND__BODY_TOKEN_PUT);
    CHECK(strcmp(f.seen.team, "*") == 0);
    CHECK(strcmp(f.seen.role, "cluster-admin") == 0);
    CHECK(strcmp(f.seen.name, "ops") == 0 && !f.seen.has_expires_in_s);
    CHECK(f.seen.sha_len == RV_TOKEN_SHA256);
    j = json_loads(a.body, 0, NULL);
    tok = j != NULL ? json_string_value(json_object_get(j, "token")) : NULL;
    CHECK(tok != NULL && json_object_get(j, "expires_at") == NULL);
    if (tok != NULL) {
        uint8_t sha[RV_TOKEN_SHA256];
        rv_token_hash(tok, strlen(tok), sha);
        CHECK(memcmp(sha, f.seen.sha, sizeof sha) == 0);
        CHECK(strncmp(tok + 4, f.seen.token_id, RV_TOKEN_ID_CHARS) == 0);
    }
    json_decref(j);
    /* A repeated Idempotency-Key: this secret was never stored. */
    cr->has_is_duplicate = cr->is_duplicate = 1;
    route_full(&f, "POST", "/api/v2/tokens", NULL,
               "{\"team\":\"vision\",\"role\":\"reader\",\"name\":\"x\"}", 0,
               &a);
    CHECK(a.status == 409 && strstr(a.body, "rvt_") == NULL);
}

static void
test_token_create_bad_bodies(void)
{
    static const char *const bad[] = {
        "{}",
        "{\"team\":\"v\",\"role\":\"owner\",\"name\":\"n\"}",
        "{\"team\":\"v\",\"role\":\"Reader\",\"name\":\"n\"}",
        "{\"team\":\"v\",\"role\":\"reader\"}",
        "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"\"}",
        "{\"role\":\"reader\",\"name\":\"n\"}",
        "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"n\",\"expires_in_s\":"
        "0}",
        "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"n\",\"expires_in_s\":-"
        "5}",
        "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"n\","
        "\"expires_in_s\":315360001}",
        "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"n\","
        "\"expires_in_s\":\"3600\"}",
        "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"n\",\"expires_in_s\":1."
        "5}",
        "{\"team\":\"v\",\"role\":\"cluster-admin\",\"name\":\"n\"}",
        "{\"team\":\"*\",\"role\":\"admin\",\"name\":\"n\"}",
        "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"n\",\"token\":\"x\"}",
        "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"n\",\"sha256\":\"x\"}",
        "{\"team\":\"v\",\"role\":[],\"name\":\"n\"}",
        NULL,
    };
    check_bad_bodies("POST", "/api/v2/tokens", bad);
    /* Name and team lengths at the limit pass, one over does not. */
    char body[512], name[CONTRACT_MAX_TOKEN_NAME_BYTES + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(body, sizeof body,
             "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"%s\"}", name);
    const char *const over[] = {body, NULL};
    check_bad_bodies("POST", "/api/v2/tokens", over);
    struct fake_node f = {0};
    struct answer a;
    Rv__Response r = RV__RESPONSE__INIT;
    f.preset = &r;
    name[CONTRACT_MAX_TOKEN_NAME_BYTES] = '\0';
    snprintf(body, sizeof body,
             "{\"team\":\"v\",\"role\":\"reader\",\"name\":\"%s\","
             "\"expires_in_s\":315360000}",
             name);
    route_full(&f, "POST", "/api/v2/tokens", NULL, body, 0, &a);
    CHECK(a.status == 201 && f.made_expires_in_s == 315360000);
}

static void
test_token_list_and_revoke(void)
{
    struct fake_node f = {0};
    struct answer a;
    Rv__Response r = RV__RESPONSE__INIT;
    Rv__TokenInfo t1 = RV__TOKEN_INFO__INIT, t2 = RV__TOKEN_INFO__INIT;
    Rv__TokenInfo *ts[2] = {&t1, &t2};
    t1.token_id = (char *)"0123456789abcdef";
    t1.team = (char *)"vision";
    t1.role = RV__ROLE__ROLE_WRITER;
    t1.name = (char *)"ci";
    t1.has_created_at_ms = 1;
    t1.created_at_ms = 1000;
    t2 = t1;
    t2.token_id = (char *)"fedcba9876543210";
    t2.role = RV__ROLE__ROLE_ADMIN;
    t2.has_expires_at_ms = t2.has_is_revoked = t2.has_revoked_index = 1;
    t2.expires_at_ms = 5000;
    t2.is_revoked = 1;
    t2.revoked_index = 77;
    r.n_tokens = 2;
    r.tokens = ts;
    f.preset = &r;
    route_full(&f, "GET", "/api/v2/tokens?team=vision", NULL, NULL, 0, &a);
    CHECK(a.status == 200);
    CHECK(json_is(
        a.body,
        "{\"tokens\":[{\"token_id\":\"0123456789abcdef\",\"team\":\"vision\","
        "\"role\":\"writer\",\"name\":\"ci\",\"created_at\":1000,"
        "\"expires_at\":null,\"revoked\":false,\"revoked_index\":null},"
        "{\"token_id\":\"fedcba9876543210\",\"team\":\"vision\","
        "\"role\":\"admin\",\"name\":\"ci\",\"created_at\":1000,"
        "\"expires_at\":5000,\"revoked\":true,\"revoked_index\":77}]}"));
    CHECK(f.seen.admin_op == RV__ADMIN_OP__ADMIN_TOKENS);
    CHECK(f.seen.has_admin_team && strcmp(f.seen.team, "vision") == 0);
    /* An empty team= is every team; "*" names the cluster-admin tokens. */
    route_full(&f, "GET", "/api/v2/tokens?team=", NULL, NULL, 0, &a);
    CHECK(a.status == 200 && !f.seen.has_admin_team);
    route_full(&f, "GET", "/api/v2/tokens?team=*", NULL, NULL, 0, &a);
    CHECK(a.status == 200 && strcmp(f.seen.team, "*") == 0);
    /* Revoke by id. */
    Rv__Response w = RV__RESPONSE__INIT;
    w.index = 12;
    f.preset = &w;
    route_full(&f, "DELETE", "/api/v2/tokens/0123456789abcdef", NULL, NULL, 0,
               &a);
    CHECK(a.status == 200 && a.route == GW_R_TOKEN_DEL);
    CHECK(json_is(a.body, "{\"token_id\":\"0123456789abcdef\",\"index\":12}"));
    CHECK(f.seen.cmd_case == RV__COMMAND__BODY_TOKEN_DEL);
    CHECK(strcmp(f.seen.token_id, "0123456789abcdef") == 0);
    int n = f.n_calls;
    const char *bad[] = {
        "/api/v2/tokens/xyz", "/api/v2/tokens/0123456789ABCDEF",
        "/api/v2/tokens/0123456789abcdef0", "/api/v2/tokens/0123456789abcde"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        route_full(&f, "DELETE", bad[i], NULL, NULL, 0, &a);
        CHECK(a.status == 404 && strstr(a.body, "RESOURCE_DOES_NOT_EXIST"));
    }
    CHECK(f.n_calls == n);
}

static void
test_whoami_and_audit(void)
{
    struct fake_node f = {0};
    struct answer a;
    Rv__Response r = RV__RESPONSE__INIT;
    Rv__Principal p = RV__PRINCIPAL__INIT;
    p.token_id = (char *)"0123456789abcdef";
    p.team = (char *)"vision";
    p.role = RV__ROLE__ROLE_READER;
    p.name = (char *)"nb";
    r.principal = &p;
    f.preset = &r;
    route_full(&f, "GET", "/api/v2/whoami", NULL, NULL, 0, &a);
    CHECK(a.status == 200 && a.route == GW_R_WHOAMI);
    CHECK(json_is(a.body, "{\"token_id\":\"0123456789abcdef\",\"team\":"
                          "\"vision\",\"role\":\"reader\",\"name\":\"nb\"}"));
    CHECK(f.seen.admin_op == RV__ADMIN_OP__ADMIN_WHOAMI);
    Rv__Response e = RV__RESPONSE__INIT;
    Rv__AuditEvent ev = RV__AUDIT_EVENT__INIT, *evs[1] = {&ev};
    ev.index = 31;
    ev.time_ms = 1234;
    ev.token_id = (char *)"0123456789abcdef";
    ev.action = (char *)"token_del";
    ev.target = (char *)"fedcba9876543210";
    ev.team = (char *)"vision";
    e.n_events = 1;
    e.events = evs;
    f.preset = &e;
    route_full(&f, "GET", "/api/v2/audit?team=vision&since_index=3&max=50",
               NULL, NULL, 0, &a);
    CHECK(a.status == 200 && a.route == GW_R_AUDIT);
    CHECK(json_is(a.body, "{\"events\":[{\"index\":31,\"time\":1234,"
                          "\"token_id\":\"0123456789abcdef\",\"action\":"
                          "\"token_del\",\"target\":\"fedcba9876543210\","
                          "\"team\":\"vision\"}]}"));
    CHECK(f.seen.admin_op == RV__ADMIN_OP__ADMIN_AUDIT);
    CHECK(strcmp(f.seen.team, "vision") == 0);
    CHECK(f.seen.has_since && f.seen.since_index == 3);
    CHECK(f.seen.has_max && f.seen.max_events == 50);
    int n = f.n_calls;
    const char *bad[] = {"/api/v2/audit?max=0", "/api/v2/audit?max=1001",
                         "/api/v2/audit?since_index=-1", "/api/v2/audit?team=*",
                         "/api/v2/audit?min_index=x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        route_full(&f, "GET", bad[i], NULL, NULL, 0, &a);
        CHECK(a.status == 400);
    }
    CHECK(f.n_calls == n);
}

static void
test_run_create_takes_a_team(void)
{
    struct fake_node f = {0};
    struct answer a;
    route_full(&f, "POST", "/api/v2/runs", NULL,
               "{\"project\":\"p\",\"experiment\":\"e\",\"team\":\"vision\"}",
               0, &a);
    CHECK(f.n_calls == 1 && strcmp(f.seen.team, "vision") == 0);
    route_full(&f, "POST", "/api/v2/runs", NULL,
               "{\"project\":\"p\",\"experiment\":\"e\"}", 0, &a);
    CHECK(f.n_calls == 2 && strcmp(f.seen.team, "(unset)") == 0);
    route_full(&f, "POST", "/api/v2/runs", NULL,
               "{\"project\":\"p\",\"experiment\":\"e\",\"team\":\"*\"}", 0,
               &a);
    CHECK(a.status == 400 && f.n_calls == 2);
    route_full(&f, "POST", "/api/v2/runs", NULL,
               "{\"project\":\"p\",\"experiment\":\"e\",\"team\":\"\"}", 0, &a);
    CHECK(a.status == 400 && f.n_calls == 2);
}

static const struct rv_test tests[] = {
    {"every_code_has_a_status", test_every_code_has_a_status},
    {"codes_clients_act_on", test_codes_clients_act_on},
    {"unknown_paths_are_404", test_unknown_paths_are_404},
    {"wrong_methods_are_405_with_allow", test_wrong_methods_are_405_with_allow},
    {"path_parameters_are_checked_first",
     test_path_parameters_are_checked_first},
    {"parameters_reach_the_handler", test_parameters_reach_the_handler},
    {"json_bodies_over_the_limit_are_413",
     test_json_bodies_over_the_limit_are_413},
    {"authorization_header_reaches_the_node",
     test_authorization_header_reaches_the_node},
    {"operations_stay_open", test_operations_stay_open},
    {"401_carries_www_authenticate", test_401_carries_www_authenticate},
    {"429_carries_retry_after", test_429_carries_retry_after},
    {"team_create", test_team_create},
    {"team_list", test_team_list},
    {"quota_put", test_quota_put},
    {"token_create", test_token_create},
    {"token_create_bad_bodies", test_token_create_bad_bodies},
    {"token_list_and_revoke", test_token_list_and_revoke},
    {"whoami_and_audit", test_whoami_and_audit},
    {"run_create_takes_a_team", test_run_create_takes_a_team},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
