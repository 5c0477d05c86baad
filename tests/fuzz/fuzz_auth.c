/* libFuzzer target: the auth door of the gateway. The first byte of the
 * input picks what the rest is:
 *   0  an Authorization header value: rv_token_from_header (on the bytes
 *      as given, NUL and all) and the gateway's gw_token_take (on the
 *      value as nng would give it, up to its first NUL), which must agree;
 *      an accepted token is exactly the tail of the value in token form;
 *   1  a token text: rv_token_parse, and its id and hash;
 *   2  a POST /api/v2/tokens body, 3 a POST /api/v2/teams body, 4 a
 *      PUT /api/v2/teams/{team}/quota body (its first line the team),
 *      through gw_route with a fake node that answers every write with
 *      success: every command that reaches the node must be in range (a
 *      token_put: a 32-byte hash, a token id, a role, a name and a team of
 *      the contract's lengths, expires_in_s at most ten years), and a
 *      201's token must be in token form and hash to the hash sent.
 * Every answer must have a status and parse as JSON. No crash, leak or
 * UB. */
#include "base/token.h"
#include "gateway/gateway_int.h"
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                  \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "fuzz_auth: %s failed at line %d\n", #cond, \
                    __LINE__);                                          \
            abort();                                                    \
        }                                                               \
    } while (0)

/* ---- Header and token text ----------------------------------------------- */

static void
fz_auth_header(const uint8_t *data, size_t n)
{
    const char *v = (const char *)data, *tok = NULL;
    size_t tn = 0;
    int rc = rv_token_from_header(v, n, &tok, &tn);
    FZ_CHECK(rc == RV_OK || rc == RV_ENOTFOUND || rc == RV_EUNAUTHENTICATED);
    FZ_CHECK((rc == RV_ENOTFOUND) == (n == 0));
    if (rc == RV_OK) {
        char id[RV_TOKEN_ID_CHARS + 1];
        FZ_CHECK(tok > v && tok + tn == v + n && n <= RV_TOKEN_MAX_HEADER);
        FZ_CHECK(tn == RV_TOKEN_TEXT_CHARS);
        FZ_CHECK(rv_token_parse(tok, tn, id) == RV_OK);
        FZ_CHECK(memchr(v, ',', n) == NULL);
    }
    /* As nng hands it over: NUL-terminated, cut at the first NUL. */
    char *copy = malloc(n + 1);
    FZ_CHECK(copy != NULL);
    memcpy(copy, data, n);
    copy[n] = '\0';
    size_t cn = strlen(copy);
    struct gw_exchange x;
    memset(&x, 0, sizeof x);
    x.authorization = copy;
    gw_token_take(&x);
    rc = rv_token_from_header(copy, cn, &tok, &tn);
    if (rc == RV_ENOTFOUND)
        FZ_CHECK(x.token == NULL);
    else if (rc != RV_OK)
        FZ_CHECK(x.token != NULL && x.token[0] == '\0');
    else
        FZ_CHECK(x.token == x.token_buf && strlen(x.token) == tn &&
                 memcmp(x.token, tok, tn) == 0);
    free(copy);
}

static void
fz_auth_text(const uint8_t *data, size_t n)
{
    char id[RV_TOKEN_ID_CHARS + 1];
    const char *t = (const char *)data;
    if (rv_token_parse(t, n, id) != RV_OK)
        return;
    FZ_CHECK(n == RV_TOKEN_TEXT_CHARS && memcmp(t, "rvt_", 4) == 0);
    FZ_CHECK(strlen(id) == RV_TOKEN_ID_CHARS && memcmp(id, t + 4, 16) == 0);
    FZ_CHECK(rv_token_id_valid(id, RV_TOKEN_ID_CHARS));
    uint8_t a[RV_TOKEN_SHA256], b[RV_TOKEN_SHA256];
    char other[RV_TOKEN_TEXT_CHARS];
    rv_token_hash(t, n, a);
    rv_token_hash(t, n, b);
    FZ_CHECK(rv_token_hash_equal(a, b));
    memcpy(other, t, n);
    other[n - 1] = other[n - 1] == '0' ? '1' : '0';
    rv_token_hash(other, n, b);
    FZ_CHECK(!rv_token_hash_equal(a, b));
}

/* ---- Admin bodies through the route table ---------------------------------
 */

struct fz_auth_node {
    Rv__Response r;
    int has_sha;
    uint8_t sha[RV_TOKEN_SHA256];
};

static void
fz_auth_token_put(struct fz_auth_node *f, const Rv__TokenPut *t)
{
    size_t tn = strlen(t->team), nn = t->name ? strlen(t->name) : 0;
    FZ_CHECK(t->token_sha256.len == RV_TOKEN_SHA256);
    FZ_CHECK(t->token_id != NULL &&
             rv_token_id_valid(t->token_id, strlen(t->token_id)));
    FZ_CHECK(t->has_role && proto_role_name((int)t->role)[0] != 'u');
    FZ_CHECK((t->role == RV__ROLE__ROLE_CLUSTER_ADMIN) ==
             (strcmp(t->team, "*") == 0));
    FZ_CHECK(tn >= 1 && tn <= CONTRACT_MAX_TEAM_BYTES);
    FZ_CHECK(nn >= 1 && nn <= CONTRACT_MAX_TOKEN_NAME_BYTES);
    FZ_CHECK(!t->has_expires_in_s ||
             (t->expires_in_s >= 1 && t->expires_in_s <= 315360000u));
    f->has_sha = 1;
    memcpy(f->sha, t->token_sha256.data, RV_TOKEN_SHA256);
}

static const Rv__Response *
fz_auth_answer(void *data, Rv__Request *req)
{
    struct fz_auth_node *f = data;
    rv__response__init(&f->r);
    f->r.code = RV_OK;
    f->r.index = 5;
    if (req->body_case != RV__REQUEST__BODY_WRITE)
        return &f->r; /* The expiry read: no tokens. */
    FZ_CHECK(req->write->n_commands == 1);
    const Rv__Command *c = req->write->commands[0];
    if (c->body_case == RV__COMMAND__BODY_TOKEN_PUT)
        fz_auth_token_put(f, c->token_put);
    else if (c->body_case == RV__COMMAND__BODY_TEAM_PUT)
        FZ_CHECK(strlen(c->team_put->team) >= 1 &&
                 strlen(c->team_put->team) <= CONTRACT_MAX_TEAM_BYTES &&
                 strcmp(c->team_put->team, "*") != 0);
    else
        FZ_CHECK(c->body_case == RV__COMMAND__BODY_QUOTA_PUT &&
                 (c->quota_put->has_max_runs || c->quota_put->has_max_bytes ||
                  c->quota_put->has_max_points_per_s));
    return &f->r;
}

static void
fz_auth_info(void *data, struct replica_info *out)
{
    (void)data;
    memset(out, 0, sizeof *out);
    out->id = 1;
}

static int
fz_auth_is_running(void *data)
{
    (void)data;
    return 1;
}

/* A 201 from POST /api/v2/tokens: its token must hash to what was sent. */
static void
fz_auth_check_made(const struct fz_auth_node *f, json_t *j)
{
    const char *tok = json_string_value(json_object_get(j, "token"));
    char id[RV_TOKEN_ID_CHARS + 1];
    uint8_t sha[RV_TOKEN_SHA256];
    FZ_CHECK(tok != NULL && f->has_sha);
    FZ_CHECK(rv_token_parse(tok, strlen(tok), id) == RV_OK);
    rv_token_hash(tok, strlen(tok), sha);
    FZ_CHECK(rv_token_hash_equal(sha, f->sha));
}

static void
fz_auth_route(int kind, const uint8_t *data, size_t n)
{
    static struct gateway g;
    struct fz_auth_node f;
    struct gw_node_ops ops = {fz_auth_answer, fz_auth_info, fz_auth_is_running,
                              &f};
    struct gw_exchange x;
    char uri[GATEWAY_MAX_TARGET_BYTES + 1], errmsg[RV_ERRMSG_SIZE];
    uint64_t seq = 0;
    const uint8_t *body = data;
    size_t body_len = n;
    memset(&f, 0, sizeof f);
    memset(&x, 0, sizeof x);
    if (kind == 4) { /* First line: the team of the path, as given. */
        const uint8_t *nl = memchr(data, '\n', n);
        size_t tn = nl != NULL ? (size_t)(nl - data) : 0;
        snprintf(uri, sizeof uri, "/api/v2/teams/%.*s/quota",
                 (int)(tn < 200 ? tn : 200), (const char *)data);
        if (memchr(data, '\0', tn) != NULL || memchr(data, '?', tn) != NULL)
            snprintf(uri, sizeof uri, "/api/v2/teams/t/quota");
        body = nl != NULL ? nl + 1 : data;
        body_len = nl != NULL ? n - tn - 1 : n;
    } else {
        snprintf(uri, sizeof uri, "%s",
                 kind == 2 ? "/api/v2/tokens" : "/api/v2/teams");
    }
    /* A copy of its own size, so a read past the body is caught. */
    uint8_t *copy = malloc(body_len ? body_len : 1);
    FZ_CHECK(copy != NULL);
    memcpy(copy, body, body_len);
    x.g = &g;
    x.ops = &ops;
    x.method = kind == 4 ? "PUT" : "POST";
    x.worker_client_id = 1;
    x.worker_seq = &seq;
    x.body = copy;
    x.body_len = body_len;
    rv_buf_init(&x.out);
    if (gw_parse_uri(&x, uri, errmsg) == 0) {
        gw_route(&x);
        FZ_CHECK(x.status >= 200 && x.status <= 599);
        json_t *j = json_loadb((const char *)x.out.data, x.out.len, 0, NULL);
        FZ_CHECK(j != NULL);
        if (kind == 2 && x.status == 201)
            fz_auth_check_made(&f, j);
        json_decref(j);
    }
    rv_buf_free(&x.out);
    free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int kind = data[0] % 5;
    if (kind == 0)
        fz_auth_header(data + 1, size - 1);
    else if (kind == 1)
        fz_auth_text(data + 1, size - 1);
    else
        fz_auth_route(kind, data + 1, size - 1);
    return 0;
}
