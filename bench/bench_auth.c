/* Authentication for the benchmarks (bench_auth.h). */
#include "bench/bench_auth.h"

#include "base/clock.h"
#include "base/err.h"
#include "rpc/client/client.h"

#include <stdio.h>
#include <string.h>

/* One write of cmd as token through endpoints: the command's outcome. */
static int
bench__admin_write(const char *endpoints, const struct rvc_tls *tls,
                   const char *token, Rv__Command *cmd, char *errmsg)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    Rv__Command *cmds[1] = {cmd};
    Rv__Response *resp = NULL;
    struct rvc *c;
    wr.n_commands = 1;
    wr.commands = cmds;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &wr;
    req.token = (char *)token;
    int rc = rvc_open(&c, endpoints, errmsg);
    if (rc != RV_OK)
        return rc;
    rvc_set_tls(c, tls);
    rc = rvc_call(c, &req, &resp, errmsg);
    if (rc == RV_OK) {
        rc = (int)resp->code;
        if (rc == RV_OK && resp->n_results == 1)
            rc = (int)resp->results[0]->code;
        if (rc != RV_OK)
            rv_errmsg_printf(errmsg, "%s: %s", rv_strerror(rc),
                             resp->n_results == 1 &&
                                     resp->results[0]->message != NULL
                                 ? resp->results[0]->message
                             : resp->message != NULL ? resp->message
                                                     : "");
    }
    rvc_response_free(resp);
    rvc_close(c);
    return rc;
}

/* 1 if endpoints answer whoami with token as a cluster-admin. */
static int
bench__is_cluster_admin(const char *endpoints, const struct rvc_tls *tls,
                        const char *token)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__AdminRequest ar = RV__ADMIN_REQUEST__INIT;
    Rv__Response *resp = NULL;
    char errmsg[RV_ERRMSG_SIZE];
    struct rvc *c;
    ar.op = RV__ADMIN_OP__ADMIN_WHOAMI;
    req.body_case = RV__REQUEST__BODY_ADMIN;
    req.admin = &ar;
    req.token = (char *)token;
    if (rvc_open(&c, endpoints, errmsg) != RV_OK)
        return 0;
    rvc_set_tls(c, tls);
    rvc_set_timeouts(c, 1000, 2000);
    int ok = rvc_call(c, &req, &resp, errmsg) == RV_OK && resp->code == RV_OK &&
             resp->principal != NULL &&
             resp->principal->role == RV__ROLE__ROLE_CLUSTER_ADMIN;
    rvc_response_free(resp);
    rvc_close(c);
    return ok;
}

/* dir/admin.token's token into out: 1, or 0 if there is none (yet). */
static int
bench__admin_read(const char *dir, char out[RV_TOKEN_TEXT_CHARS + 1])
{
    char path[1024], buf[RV_TOKEN_TEXT_CHARS + 8], id[RV_TOKEN_ID_CHARS + 1];
    snprintf(path, sizeof path, "%s/admin.token", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && strchr(" \t\r\n", buf[n - 1]) != NULL)
        n--;
    int ok = n == RV_TOKEN_TEXT_CHARS && rv_token_parse(buf, n, id) == RV_OK;
    if (ok) {
        memcpy(out, buf, n);
        out[n] = '\0';
    }
    memset(buf, 0, sizeof buf);
    return ok;
}

int
bench_auth_wait_admin(const char *endpoints, const struct rvc_tls *tls,
                      const char *token, unsigned timeout_ms, char *errmsg)
{
    uint64_t end = rv_clock_mono_ms() + timeout_ms;
    while (rv_clock_mono_ms() < end) {
        if (bench__is_cluster_admin(endpoints, tls, token))
            return RV_OK;
        rv_clock_sleep_ms(100);
    }
    rv_errmsg_printf(errmsg, "%s did not accept the cluster-admin token",
                     endpoints);
    return RV_ETIMEDOUT;
}

int
bench_auth_team(const char *endpoints, const struct rvc_tls *tls,
                const char *admin, const char *team, char *errmsg)
{
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__TeamPut tp = RV__TEAM_PUT__INIT;
    tp.team = (char *)team;
    cmd.body_case = RV__COMMAND__BODY_TEAM_PUT;
    cmd.team_put = &tp;
    int rc = bench__admin_write(endpoints, tls, admin, &cmd, errmsg);
    return rc == RV_EEXIST ? RV_OK : rc;
}

int
bench_auth_token(const char *endpoints, const struct rvc_tls *tls,
                 const char *admin, const char *team, Rv__Role role,
                 const char *name, char out[RV_TOKEN_TEXT_CHARS + 1],
                 char *errmsg)
{
    char id[RV_TOKEN_ID_CHARS + 1];
    uint8_t sha[RV_TOKEN_SHA256];
    Rv__Command cmd = RV__COMMAND__INIT;
    Rv__TokenPut tp = RV__TOKEN_PUT__INIT;
    int rc = rv_token_make(out, id, sha);
    if (rc != RV_OK) {
        rv_errmsg_printf(errmsg, "no random bytes for a token");
        return rc;
    }
    tp.token_sha256.data = sha;
    tp.token_sha256.len = sizeof sha;
    tp.team = (char *)team;
    tp.has_role = 1;
    tp.role = role;
    tp.token_id = id;
    tp.name = (char *)name;
    cmd.body_case = RV__COMMAND__BODY_TOKEN_PUT;
    cmd.token_put = &tp;
    rc = bench__admin_write(endpoints, tls, admin, &cmd, errmsg);
    if (rc != RV_OK)
        memset(out, 0, RV_TOKEN_TEXT_CHARS + 1);
    return rc;
}

/* 1 if node i of c answers status to token as the leader. */
static int
bench__is_leader(struct cluster *c, int i, const char *token)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__StatusRequest sr = RV__STATUS_REQUEST__INIT;
    Rv__Response *resp = NULL;
    char errmsg[RV_ERRMSG_SIZE];
    req.body_case = RV__REQUEST__BODY_STATUS;
    req.status = &sr;
    req.token = (char *)token;
    int ok = rvc_call_once_tls(c->nodes[i].rpc, c->tls, &req, 1000, &resp,
                               errmsg) == RV_OK &&
             resp->code == RV_OK && resp->self != NULL &&
             resp->self->state != NULL &&
             strcmp(resp->self->state, "leader") == 0;
    rvc_response_free(resp);
    return ok;
}

int
bench_auth_cluster_start(struct cluster *c, unsigned timeout_ms,
                         char admin[RV_TOKEN_TEXT_CHARS + 1], int *leader,
                         char *errmsg)
{
    uint64_t end = rv_clock_mono_ms() + timeout_ms;
    c->extra[0] = "--auth";
    c->extra[1] = "on";
    for (int i = 0; i < c->n; i++)
        cluster_start(c, i, 0);
    *leader = -1;
    int has_admin = 0;
    while (rv_clock_mono_ms() < end) {
        for (int i = 0; i < c->n && !has_admin; i++)
            has_admin = bench__admin_read(c->nodes[i].dir, admin) &&
                        bench__is_cluster_admin(c->endpoints, c->tls, admin);
        for (int i = 0; i < c->n && has_admin; i++)
            if (bench__is_leader(c, i, admin)) {
                *leader = i;
                return RV_OK;
            }
        rv_clock_sleep_ms(100);
    }
    memset(admin, 0, RV_TOKEN_TEXT_CHARS + 1);
    rv_errmsg_printf(errmsg,
                     has_admin ? "no leader answered status to the admin token"
                               : "no node wrote an admin.token it accepts");
    return RV_ETIMEDOUT;
}

int
bench_auth_cluster_principal(struct cluster *c, const char *team, Rv__Role role,
                             const char *name,
                             char out[RV_TOKEN_TEXT_CHARS + 1], int *leader,
                             char *errmsg)
{
    char admin[RV_TOKEN_TEXT_CHARS + 1];
    int rc = bench_auth_cluster_start(c, 30000, admin, leader, errmsg);
    if (rc == RV_OK)
        rc = bench_auth_team(c->endpoints, c->tls, admin, team, errmsg);
    if (rc == RV_OK)
        rc = bench_auth_token(c->endpoints, c->tls, admin, team, role, name,
                              out, errmsg);
    memset(admin, 0, sizeof admin);
    return rc;
}
