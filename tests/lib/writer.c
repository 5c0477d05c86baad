/* The writer harness (contract in writer.h). */
#include "tests/lib/writer.h"

#include "base/err.h"

static const char *testwriter_token;

void
testwriter_set_token(const char *token)
{
    testwriter_token = token;
}

int
testwriter_send(struct rvc *c, Rv__Command *cmd, int durability,
                uint64_t *index)
{
    return testwriter_send_as(c, NULL, cmd, durability, index);
}

int
testwriter_send_as(struct rvc *c, const char *token, Rv__Command *cmd,
                   int durability, uint64_t *index)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    Rv__Command *cmds[1] = {cmd};
    Rv__Response *resp = NULL;
    char errmsg[RV_ERRMSG_SIZE];
    wr.n_commands = 1;
    wr.commands = cmds;
    wr.has_durability = durability != 0;
    wr.durability = (Rv__Durability)durability;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &wr;
    req.token = (char *)(token != NULL ? token : testwriter_token);
    int rc = rvc_call(c, &req, &resp, errmsg);
    if (index != NULL)
        *index = 0;
    if (rc == RV_OK) {
        rc = (int)resp->code;
        if (rc == RV_OK && resp->n_results > 0)
            rc = resp->n_results == 1 ? (int)resp->results[0]->code
                                      : RV_EUNKNOWN;
        if (index != NULL)
            *index = resp->index;
    }
    rvc_response_free(resp);
    return rc;
}

void
testwriter_run_create(Rv__Command *cmd, Rv__RunCreate *rc, const char *run_id,
                      const char *project, const char *experiment)
{
    rv__run_create__init(rc);
    rc->run_id = (char *)run_id;
    rc->project = (char *)project;
    rc->experiment = (char *)experiment;
    rc->has_resume = 1;
    rc->resume = RV__RESUME__RESUME_ALLOW;
    cmd->body_case = RV__COMMAND__BODY_RUN_CREATE;
    cmd->run_create = rc;
}

void
testwriter_log_batch(Rv__Command *cmd, Rv__LogBatch *lb, Rv__Metrics *m,
                     const char *run_id, const struct proto_metrics_builder *mb)
{
    rv__log_batch__init(lb);
    proto_metrics_view(mb, m);
    lb->run_id = (char *)run_id;
    lb->metrics = m;
    cmd->body_case = RV__COMMAND__BODY_LOG_BATCH;
    cmd->log_batch = lb;
}
