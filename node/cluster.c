/* runvault cluster status | add | remove | transfer: membership through
 * the native RPC of any node (the client follows the leader). */
#include "base/clock.h"
#include "base/exit.h"
#include "base/parse.h"
#include "node/cli/cli.h"
#include "node/cli/flags.h"
#include "node/defaults.h"
#include "node/serve.h"
#include "rpc/client/client.h"
#include "rpc/client/tls.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cluster_args {
    const char *verb, *endpoint, *raft_addr, *rpc_addr, *http_addr;
    struct rvc_tls *tls; /* NULL without --tls-ca. Owned. */
    uint64_t id;
    int has_id, is_json;
    unsigned timeout_ms;
    char token[RV_TOKEN_TEXT_CHARS + 1]; /* The caller's, "" for none. */
};

enum {
    CL_ENDPOINT,
    CL_RAFT_ADDR,
    CL_RPC_ADDR,
    CL_HTTP_ADDR,
    CL_ID,
    CL_TIMEOUT,
    CL_JSON,
    CL_TOKEN_FILE,
    CL_TLS_CA,
    CL_TLS_CERT,
    CL_TLS_KEY,
    CL_COUNT
};

static const struct cli_flag cluster_flags[CL_COUNT] = {
    [CL_ENDPOINT] = {"endpoint", 1},
    [CL_RAFT_ADDR] = {"raft-addr", 1},
    [CL_RPC_ADDR] = {"rpc-addr", 1},
    [CL_HTTP_ADDR] = {"http-addr", 1},
    [CL_ID] = {"id", 1},
    [CL_TIMEOUT] = {"timeout-ms", 1},
    [CL_JSON] = {"json", 0},
    [CL_TOKEN_FILE] = {"token-file", 1},
    [CL_TLS_CA] = {"tls-ca", 1},
    [CL_TLS_CERT] = {"tls-cert", 1},
    [CL_TLS_KEY] = {"tls-key", 1},
};

static const char cluster_usage[] =
    "usage: runvault cluster status [--json]\n"
    "       runvault cluster add --id N --raft-addr IP:PORT "
    "[--rpc-addr tcp://IP:PORT] [--http-addr IP:PORT]\n"
    "       runvault cluster remove --id N\n"
    "       runvault cluster transfer [--id N]\n"
    "options: --endpoint tcp://IP:PORT[,...] (or RUNVAULT_ENDPOINT), "
    "--timeout-ms MS,\n"
    "         --token-file FILE (or RUNVAULT_TOKEN),\n"
    "         --tls-ca FILE [--tls-cert FILE --tls-key FILE] (or "
    "RUNVAULT_TLS_*)\n";

static int
cluster__parse(int argc, char **argv, struct cluster_args *a)
{
    struct cli_spec spec = {
        "runvault cluster", cluster_flags, CL_COUNT, CLI_FLAGS_ALL, 0, 1};
    struct cli_args f;
    uint64_t timeout_ms = 60000;
    memset(a, 0, sizeof *a);
    int rc = cli_flags_parse(&spec, argc, argv, &f);
    if (rc == CLI_FLAGS_HELP) {
        fputs(cluster_usage, stdout);
        return CLI_FLAGS_HELP;
    }
    if (rc != 0 || f.n_pos == 0)
        goto bad;
    a->verb = f.pos[0];
    a->endpoint = cli_flags_value(f.v[CL_ENDPOINT], "RUNVAULT_ENDPOINT",
                                  NODE_DEFAULT_ENDPOINT);
    a->raft_addr = f.v[CL_RAFT_ADDR];
    a->rpc_addr = f.v[CL_RPC_ADDR];
    a->http_addr = f.v[CL_HTTP_ADDR];
    a->is_json = f.v[CL_JSON] != NULL;
    a->has_id = f.v[CL_ID] != NULL;
    if ((a->has_id && (rv_parse_u64(f.v[CL_ID], &a->id) != 0 || a->id == 0)) ||
        (f.v[CL_TIMEOUT] != NULL &&
         (rv_parse_u64(f.v[CL_TIMEOUT], &timeout_ms) != 0 ||
          timeout_ms > UINT32_MAX)))
        goto bad;
    a->timeout_ms = (unsigned)timeout_ms;
    if (cli_flags_tls("runvault cluster", f.v[CL_TLS_CA], f.v[CL_TLS_CERT],
                      f.v[CL_TLS_KEY], &a->tls) != 0)
        return -1;
    return cli_token_read("runvault cluster", f.v[CL_TOKEN_FILE], a->token);
bad:
    fputs(cluster_usage, stderr);
    return -1;
}

static int
cluster__exit(int rc)
{
    switch (rc) {
    case RV_OK:
        return RV_EXIT_OK;
    case RV_EINVAL:
    case RV_ENOTFOUND:
    case RV_EEXIST:
    case RV_ECONFLICT:
    case RV_ESTATE:
    case RV_EUNAUTHENTICATED:
    case RV_EPERM:
        return RV_EXIT_REFUSED; /* The cluster said no. */
    default:
        return RV_EXIT_UNAVAILABLE;
    }
}

static json_t *
cluster__str(const char *s)
{
    return json_string_nocheck(s != NULL ? s : "");
}

/* Member m, with what it says of itself (asked directly, 1 s), as a table
 * row on stdout or, with list, an object appended to it. */
static void
cluster__status_row(const Rv__NodeStatus *m, const char *token,
                    const struct rvc_tls *tls, json_t *list)
{
    Rv__Request sreq = RV__REQUEST__INIT;
    Rv__StatusRequest sr = RV__STATUS_REQUEST__INIT;
    Rv__Response *s = NULL;
    char errmsg[RV_ERRMSG_SIZE];
    sreq.body_case = RV__REQUEST__BODY_STATUS;
    sreq.status = &sr;
    sreq.token = (char *)token;
    const Rv__NodeStatus *me = NULL;
    if (m->rpc_addr != NULL && m->rpc_addr[0] != '\0' &&
        rvc_call_once_tls(m->rpc_addr, tls, &sreq, 1000, &s, errmsg) == RV_OK &&
        s->self != NULL)
        me = s->self;
    const char *rpc = m->rpc_addr && m->rpc_addr[0] ? m->rpc_addr : "-";
    const char *state = me && me->state ? me->state : "unreachable";
    const char *digest = me && me->digest ? me->digest : "-";
    unsigned long long term = me ? (unsigned long long)me->term : 0;
    unsigned long long applied = me ? (unsigned long long)me->applied_index : 0;
    if (list != NULL) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer((json_int_t)m->id));
        json_object_set_new(o, "raft_addr", cluster__str(m->raft_addr));
        json_object_set_new(o, "rpc_addr", cluster__str(rpc));
        json_object_set_new(o, "http_addr", cluster__str(m->http_addr));
        json_object_set_new(o, "role", cluster__str(m->role));
        json_object_set_new(o, "state", cluster__str(state));
        json_object_set_new(o, "term", json_integer((json_int_t)term));
        json_object_set_new(o, "applied_index",
                            json_integer((json_int_t)applied));
        json_object_set_new(o, "digest", cluster__str(digest));
        json_object_set_new(o, "diverged",
                            me ? json_boolean(me->diverged) : json_null());
        if (me && me->has_diverged_index)
            json_object_set_new(o, "diverged_index",
                                json_integer((json_int_t)me->diverged_index));
        json_object_set_new(o, "disk_low",
                            me ? json_boolean(me->disk_low) : json_null());
        json_array_append_new(list, o);
    } else {
        char alarm[96] = "";
        if (me && me->diverged)
            snprintf(alarm, sizeof alarm, "  DIVERGED at %llu",
                     (unsigned long long)me->diverged_index);
        if (me && me->disk_low)
            snprintf(alarm + strlen(alarm), sizeof alarm - strlen(alarm),
                     "  DISK LOW (%llu bytes free)",
                     (unsigned long long)me->disk_free_bytes);
        printf("%-4llu %-8s %-11s %-21s %-27s %6llu %10llu  %s%s\n",
               (unsigned long long)m->id, m->role ? m->role : "-", state,
               m->raft_addr ? m->raft_addr : "-", rpc, term, applied, digest,
               alarm);
    }
    rvc_response_free(s);
}

static int
cluster__status(struct rvc *c, const struct cluster_args *a)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    Rv__Response *resp = NULL;
    char errmsg[RV_ERRMSG_SIZE];
    cr.op = RV__CLUSTER_OP__CLUSTER_STATUS;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    int rc = rvc_call(c, &req, &resp, errmsg);
    if (rc != RV_OK) {
        fprintf(stderr, "runvault cluster status: %s\n", errmsg);
        return RV_EXIT_UNAVAILABLE;
    }
    if (resp->code != RV_OK) {
        fprintf(stderr, "runvault cluster status: %s\n", resp->message);
        rc = (int)resp->code;
        rvc_response_free(resp);
        return cluster__exit(rc);
    }
    json_t *list = a->is_json ? json_array() : NULL;
    if (!a->is_json)
        printf("leader: %llu\n%-4s %-8s %-11s %-21s %-27s %6s %10s  %s\n",
               (unsigned long long)resp->leader_id, "ID", "ROLE", "STATE",
               "RAFT", "RPC", "TERM", "APPLIED", "DIGEST");
    for (size_t i = 0; i < resp->n_nodes; i++)
        cluster__status_row(resp->nodes[i], a->token[0] ? a->token : NULL,
                            a->tls, list);
    if (a->is_json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "leader_id",
                            json_integer((json_int_t)resp->leader_id));
        json_object_set_new(doc, "nodes", list);
        json_dumpf(doc, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(doc);
    }
    rvc_response_free(resp);
    return RV_EXIT_OK;
}

static int cluster__cmd(struct cluster_args *a0);

int
rv_cmd_cluster(int argc, char **argv)
{
    struct cluster_args a;
    int rc = cluster__parse(argc, argv, &a);
    if (rc != 0)
        return rc == CLI_FLAGS_HELP ? RV_EXIT_OK : RV_EXIT_USAGE;
    int code = cluster__cmd(&a);
    rvc_tls_close(a.tls);
    return code;
}

/* The verb of a0, through a client with its TLS; the exit code. */
static int
cluster__cmd(struct cluster_args *a0)
{
    struct cluster_args a = *a0;
    struct rvc *c;
    char errmsg[RV_ERRMSG_SIZE];
    if (rvc_open(&c, a.endpoint, errmsg) != RV_OK) {
        fprintf(stderr, "runvault cluster: %s\n", errmsg);
        return RV_EXIT_USAGE;
    }
    rvc_set_tls(c, a.tls);
    rvc_set_timeouts(c, a.timeout_ms < 5000 ? a.timeout_ms : 5000,
                     a.timeout_ms);
    rvc_set_token(c, a.token[0] ? a.token : NULL);
    if (strcmp(a.verb, "status") == 0) {
        int code = cluster__status(c, &a);
        rvc_close(c);
        return code;
    }
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    Rv__Response *resp = NULL;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    cr.has_id = a.has_id;
    cr.id = a.id;
    cr.raft_addr = (char *)a.raft_addr;
    cr.rpc_addr = (char *)a.rpc_addr;
    cr.http_addr = (char *)a.http_addr;
    if (strcmp(a.verb, "add") == 0 && a.has_id && a.raft_addr != NULL) {
        cr.op = RV__CLUSTER_OP__CLUSTER_ADD;
    } else if (strcmp(a.verb, "remove") == 0 && a.has_id) {
        cr.op = RV__CLUSTER_OP__CLUSTER_REMOVE;
    } else if (strcmp(a.verb, "transfer") == 0) {
        cr.op = RV__CLUSTER_OP__CLUSTER_TRANSFER;
    } else {
        rvc_close(c);
        fputs(cluster_usage, stderr);
        return RV_EXIT_USAGE;
    }
    /* A change in progress (RV_ESTATE) is worth waiting for. */
    int rc = RV_ESTATE;
    for (int i = 0; i < 600 && rc == RV_ESTATE; i++) {
        rvc_response_free(resp);
        resp = NULL;
        rc = rvc_call(c, &req, &resp, errmsg);
        if (rc == RV_OK)
            rc = (int)resp->code;
        if (rc == RV_ESTATE)
            rv_clock_sleep_ms(100);
    }
    if (rc == RV_OK)
        printf("cluster %s: done\n", a.verb);
    else
        fprintf(stderr, "runvault cluster %s: %s: %s\n", a.verb,
                rv_strerror(rc),
                resp && resp->message ? resp->message : errmsg);
    rvc_response_free(resp);
    rvc_close(c);
    return cluster__exit(rc);
}
