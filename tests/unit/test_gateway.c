/* The gateway's error table: every RV_* code maps to a status and an
 * error_code, and the ones clients act on map as docs/HTTP.md says. The
 * route table: which handler a method and path reach, with which path
 * parameters, and the 400/404/405/413 answers made before any handler,
 * through a fake node that records the request and answers "not found". */
#include "gateway/gateway_int.h"
#include "tests/lib/harness.h"

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
            CHECK(code == RV_EIO || code == RV_ECORRUPT);
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

struct fake_node {
    Rv__Request last; /* A shallow copy of the last request. */
    char run_id[64], path[64];
    int n_calls;
    Rv__Response answer;
};

static const Rv__Response *
fake_answer(void *data, Rv__Request *req)
{
    struct fake_node *f = data;
    f->last = *req;
    f->run_id[0] = f->path[0] = '\0';
    if (req->body_case == RV__REQUEST__BODY_GET_RUN)
        snprintf(f->run_id, sizeof f->run_id, "%s", req->get_run->run_id);
    if (req->body_case == RV__REQUEST__BODY_ARTIFACT) {
        snprintf(f->run_id, sizeof f->run_id, "%s", req->artifact->run_id);
        snprintf(f->path, sizeof f->path, "%s",
                 req->artifact->path ? req->artifact->path : "");
    }
    f->n_calls++;
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
    char body[512];
};

/* Route method and uri with a body of body_len zero bytes through the
 * table; the answer into *out. */
static void
route(struct fake_node *f, const char *method, const char *uri, size_t body_len,
      struct answer *out)
{
    static struct gateway g;
    struct gw_node_ops ops = {fake_answer, fake_info, fake_is_running, f};
    struct gw_exchange x;
    struct answer a;
    char copy[GATEWAY_MAX_PATH_BYTES + 1], errmsg[RV_ERRMSG_SIZE];
    uint64_t seq = 0;
    uint8_t *body = calloc(1, body_len + 1);
    memset(&x, 0, sizeof x);
    memset(&a, 0, sizeof a);
    x.g = &g;
    x.ops = &ops;
    x.method = method;
    x.worker_client_id = 1;
    x.worker_seq = &seq;
    x.body = body;
    x.body_len = body_len;
    rv_buf_init(&x.out);
    snprintf(copy, sizeof copy, "%s", uri);
    CHECK(body != NULL && gw_parse_uri(&x, copy, errmsg) == 0);
    gw_route(&x);
    a.status = x.status;
    a.route = x.route;
    snprintf(a.allow, sizeof a.allow, "%s", x.allow ? x.allow : "");
    snprintf(a.body, sizeof a.body, "%.*s", (int)x.out.len,
             x.out.data ? (const char *)x.out.data : "");
    rv_buf_free(&x.out);
    free(body);
    *out = a;
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
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
