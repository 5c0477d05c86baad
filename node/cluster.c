/* runvault cluster status | add | remove | transfer: membership through
 * the native RPC of any node (the client follows the leader). */
#include "base/clock.h"
#include "base/exit.h"
#include "node/defaults.h"
#include "node/serve.h"
#include "rpc/client.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cluster_args {
    const char *verb, *endpoint, *raft_addr, *rpc_addr, *http_addr;
    uint64_t id;
    int has_id, is_json;
    unsigned timeout_ms;
};

static int
cluster__parse(int argc, char **argv, struct cluster_args *a)
{
    const char *env = getenv("RUNVAULT_ENDPOINT");
    memset(a, 0, sizeof *a);
    a->endpoint = env != NULL && env[0] ? env : NODE_DEFAULT_ENDPOINT;
    a->timeout_ms = 60000;
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i];
        if (strcmp(k, "--json") == 0) {
            a->is_json = 1;
            continue;
        }
        if (k[0] != '-') {
            if (a->verb != NULL)
                goto bad;
            a->verb = k;
            continue;
        }
        if (i + 1 >= argc)
            goto bad;
        const char *v = argv[++i];
        if (strcmp(k, "--endpoint") == 0) {
            a->endpoint = v;
        } else if (strcmp(k, "--raft-addr") == 0) {
            a->raft_addr = v;
        } else if (strcmp(k, "--rpc-addr") == 0) {
            a->rpc_addr = v;
        } else if (strcmp(k, "--http-addr") == 0) {
            a->http_addr = v;
        } else if (strcmp(k, "--id") == 0) {
            char *end;
            a->id = strtoull(v, &end, 10);
            if (*end != '\0' || a->id == 0 || v[0] == '-')
                goto bad;
            a->has_id = 1;
        } else if (strcmp(k, "--timeout-ms") == 0) {
            a->timeout_ms = (unsigned)strtoul(v, NULL, 10);
        } else {
            goto bad;
        }
    }
    if (a->verb != NULL)
        return 0;
bad:
    fprintf(stderr,
            "usage: runvault cluster status [--json]\n"
            "       runvault cluster add --id N --raft-addr IP:PORT "
            "[--rpc-addr tcp://IP:PORT] [--http-addr IP:PORT]\n"
            "       runvault cluster remove --id N\n"
            "       runvault cluster transfer [--id N]\n"
            "options: --endpoint tcp://IP:PORT[,...] (or RUNVAULT_ENDPOINT), "
            "--timeout-ms MS\n");
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
        return RV_EXIT_USAGE;
    default:
        return RV_EXIT_UNAVAILABLE;
    }
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
    if (a->is_json)
        printf("{\"leader_id\":%llu,\"nodes\":[",
               (unsigned long long)resp->leader_id);
    else
        printf("leader: %llu\n%-4s %-8s %-11s %-21s %-27s %6s %10s  %s\n",
               (unsigned long long)resp->leader_id, "ID", "ROLE", "STATE",
               "RAFT", "RPC", "TERM", "APPLIED", "DIGEST");
    for (size_t i = 0; i < resp->n_nodes; i++) {
        const Rv__NodeStatus *m = resp->nodes[i];
        Rv__Request sreq = RV__REQUEST__INIT;
        Rv__StatusRequest sr = RV__STATUS_REQUEST__INIT;
        Rv__Response *s = NULL;
        sreq.body_case = RV__REQUEST__BODY_STATUS;
        sreq.status = &sr;
        const Rv__NodeStatus *me = NULL;
        if (m->rpc_addr != NULL && m->rpc_addr[0] != '\0' &&
            rvc_call_once(m->rpc_addr, &sreq, 1000, &s, errmsg) == RV_OK &&
            s->self != NULL)
            me = s->self;
        const char *rpc = m->rpc_addr && m->rpc_addr[0] ? m->rpc_addr : "-";
        const char *state = me && me->state ? me->state : "unreachable";
        const char *digest = me && me->digest ? me->digest : "-";
        unsigned long long term = me ? (unsigned long long)me->term : 0;
        unsigned long long applied =
            me ? (unsigned long long)me->applied_index : 0;
        if (a->is_json)
            printf("%s{\"id\":%llu,\"raft_addr\":\"%s\",\"rpc_addr\":\"%s\","
                   "\"http_addr\":\"%s\",\"role\":\"%s\",\"state\":\"%s\","
                   "\"term\":%llu,\"applied_index\":%llu,\"digest\":\"%s\"}",
                   i ? "," : "", (unsigned long long)m->id,
                   m->raft_addr ? m->raft_addr : "", rpc,
                   m->http_addr ? m->http_addr : "", m->role ? m->role : "",
                   state, term, applied, digest);
        else
            printf("%-4llu %-8s %-11s %-21s %-27s %6llu %10llu  %s\n",
                   (unsigned long long)m->id, m->role ? m->role : "-", state,
                   m->raft_addr ? m->raft_addr : "-", rpc, term, applied,
                   digest);
        rvc_response_free(s);
    }
    if (a->is_json)
        printf("]}\n");
    rvc_response_free(resp);
    return RV_EXIT_OK;
}

int
rv_cmd_cluster(int argc, char **argv)
{
    struct cluster_args a;
    struct rvc *c;
    char errmsg[RV_ERRMSG_SIZE];
    if (cluster__parse(argc, argv, &a) != 0)
        return RV_EXIT_USAGE;
    if (rvc_open(&c, a.endpoint, errmsg) != RV_OK) {
        fprintf(stderr, "runvault cluster: %s\n", errmsg);
        return RV_EXIT_USAGE;
    }
    rvc_set_timeouts(c, a.timeout_ms < 5000 ? a.timeout_ms : 5000,
                     a.timeout_ms);
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
        char *help[] = {"x"};
        cluster__parse(0, help, &a);
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
