/* The RPC answering path without a replica (rpc/answer.h): the checks at
 * the door keep their answers, and reads are answered from a store. */
#include "rpc/answer.h"
#include "tests/lib/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers ------------------------------------------------------------ */

static int
check_of(const Rv__Request *req, char *errmsg)
{
    errmsg[0] = '\0';
    return rpc_request_check(req, errmsg);
}

/* ---- Tests -------------------------------------------------------------- */

static void
test_request_check_answers(void)
{
    char errmsg[RV_ERRMSG_SIZE];
    Rv__Request req = RV__REQUEST__INIT;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strcmp(errmsg, "empty request") == 0);

    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &wr;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strcmp(errmsg, "a write carries 1 to 4096 commands") == 0);
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    wr.n_commands = 1;
    wr.commands = cmds;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strcmp(errmsg, "command 0 has no body") == 0);
    Rv__RunRef ref = RV__RUN_REF__INIT;
    ref.run_id = (char *)"bad id";
    cmd.body_case = RV__COMMAND__BODY_RUN_DELETE;
    cmd.run_delete = &ref;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strstr(errmsg, "invalid run_id 'bad id'") != NULL);
    ref.run_id = (char *)"good-id";
    CHECK(check_of(&req, errmsg) == RV_OK);
    wr.has_durability = 1;
    wr.durability = (Rv__Durability)7;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strcmp(errmsg, "unknown durability") == 0);

    Rv__ReadOptions ro = RV__READ_OPTIONS__INIT;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    gr.run_id = (char *)"r";
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    req.read = &ro;
    ro.has_consistency = 1;
    ro.consistency = RV__CONSISTENCY__CONSISTENCY_DEFAULT;
    CHECK(check_of(&req, errmsg) == RV_OK);
    ro.consistency = RV__CONSISTENCY__LINEARIZABLE;
    CHECK(check_of(&req, errmsg) == RV_OK);
    ro.consistency = (Rv__Consistency)4;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strcmp(errmsg, "unknown consistency") == 0);
    ro.consistency = (Rv__Consistency)-1;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    req.read = NULL;

    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    CHECK(check_of(&req, errmsg) == RV_OK); /* CLUSTER_STATUS */
    cr.op = RV__CLUSTER_OP__CLUSTER_ADD;
    cr.has_id = 1;
    cr.id = 4;
    cr.raft_addr = (char *)"localhost:26004";
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strcmp(errmsg, "add needs an id > 0 and a raft address "
                         "a.b.c.d:port") == 0);
    /* A port with trailing junk, none, or a sign is refused. */
    const char *bad[] = {"127.0.0.1:26004abc", "127.0.0.1:", "127.0.0.1:+80",
                         "127.0.0.1:65536", "127.0.0.1:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr.raft_addr = (char *)bad[i];
        CHECK(check_of(&req, errmsg) == RV_EINVAL);
    }
    cr.raft_addr = (char *)"127.0.0.1:26004";
    CHECK(check_of(&req, errmsg) == RV_OK);
    /* An announced address too long to keep is refused, not truncated. */
    char long_addr[CONTRACT_MAX_ADDR_BYTES + 8];
    memset(long_addr, 'a', sizeof long_addr - 1);
    long_addr[sizeof long_addr - 1] = '\0';
    cr.rpc_addr = long_addr;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    cr.rpc_addr = NULL;
    cr.http_addr = long_addr;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    cr.http_addr = NULL;
    cr.op = RV__CLUSTER_OP__CLUSTER_REMOVE;
    cr.id = 0;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strcmp(errmsg, "remove needs an id") == 0);
    cr.op = (Rv__ClusterOp)9;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strcmp(errmsg, "unknown cluster operation") == 0);

    Rv__FetchRequest f = RV__FETCH_REQUEST__INIT;
    req.body_case = RV__REQUEST__BODY_FETCH;
    req.fetch = &f;
    CHECK(check_of(&req, errmsg) == RV_EINVAL);
    CHECK(strcmp(errmsg, "from_index starts at 1") == 0);
}

static void
test_store_answer_reads(void)
{
    char dir[] = "/tmp/rvtest-rpc-XXXXXX", errmsg[RV_ERRMSG_SIZE];
    struct store *st;
    CHECK(mkdtemp(dir) != NULL);
    struct store_config cfg = {dir, (size_t)64 << 20, 1 << 20, NULL, NULL};
    CHECK_RC(store_open(&st, &cfg, errmsg), RV_OK, errmsg);

    Rv__Request req = RV__REQUEST__INIT;
    Rv__GetRunRequest gr = RV__GET_RUN_REQUEST__INIT;
    struct rpc_reply *rp = NULL;
    gr.run_id = (char *)"nope";
    req.body_case = RV__REQUEST__BODY_GET_RUN;
    req.get_run = &gr;
    CHECK(rpc_store_answer(st, &req, &rp) == RV_OK);
    CHECK(rpc_reply_response(rp)->code == RV_ENOTFOUND);
    rpc_reply_free(rp);

    Rv__ListRunsRequest l = RV__LIST_RUNS_REQUEST__INIT;
    l.has_per_page = 1;
    l.per_page = 0;
    req.body_case = RV__REQUEST__BODY_LIST_RUNS;
    req.list_runs = &l;
    CHECK(rpc_store_answer(st, &req, &rp) == RV_OK);
    CHECK(rpc_reply_response(rp)->code == RV_EINVAL);
    CHECK(strcmp(rpc_reply_response(rp)->message,
                 "per_page must be 1 to 1000") == 0);
    rpc_reply_free(rp);
    l.per_page = 10;
    CHECK(rpc_store_answer(st, &req, &rp) == RV_OK);
    CHECK(rpc_reply_response(rp)->code == RV_OK);
    CHECK(rpc_reply_response(rp)->n_runs == 0);
    rpc_reply_free(rp);

    Rv__StatusRequest sr = RV__STATUS_REQUEST__INIT;
    req.body_case = RV__REQUEST__BODY_STATUS;
    req.status = &sr;
    CHECK(rpc_store_answer(st, &req, &rp) == RV_EINVAL);
    rpc_reply_free(NULL);

    store_close(st);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* A write's answer carries the index and one result per command, with
 * the strings of the results (owned by the answer). */
static void
test_write_answer_results(void)
{
    struct rpc_reply *rp = NULL;
    struct store_result *res = calloc(2, sizeof *res);
    CHECK(res != NULL);
    res[0].code = RV_OK;
    snprintf(res[0].run_id, sizeof res[0].run_id, "run-a");
    res[0].is_duplicate = 1;
    res[1].code = RV_EINVAL;
    snprintf(res[1].message, sizeof res[1].message, "bad key");
    CHECK(rpc_write_answer(42, res, 2, &rp) == RV_OK);
    const Rv__Response *r = rpc_reply_response(rp);
    CHECK(r->code == RV_OK && r->has_index && r->index == 42);
    CHECK(r->n_results == 2);
    CHECK(strcmp(r->results[0]->run_id, "run-a") == 0);
    CHECK(r->results[0]->message == NULL && r->results[0]->is_duplicate);
    CHECK(r->results[1]->code == RV_EINVAL && r->results[1]->run_id == NULL);
    CHECK(strcmp(r->results[1]->message, "bad key") == 0);
    rpc_reply_free(rp);

    CHECK(rpc_write_answer(0, NULL, 0, &rp) == RV_OK);
    CHECK(!rpc_reply_response(rp)->has_index);
    CHECK(rpc_reply_response(rp)->n_results == 0);
    rpc_reply_free(rp);
}

static const struct rv_test tests[] = {
    {"request_check_answers", test_request_check_answers},
    {"store_answer_reads", test_store_answer_reads},
    {"write_answer_results", test_write_answer_results},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
