/* libFuzzer target: arbitrary bytes as a native request. As the RPC
 * worker does, the input is bounded (RPC_MAX_REQUEST_BYTES) and decoded as
 * a packed rv.Request; what decodes is answered along the leader's path
 * without the replica (fuzz_node.h): rpc_request_check's door checks of
 * every kind, then a write stamped, packed into an entry and applied to a
 * real store, a read or fetch answered from that store (filters, ORDER BY
 * and page tokens included), and every answer packed and decoded again.
 * The same bytes are also decoded as an rv.Response (what the client
 * library and a forwarding node decode) and as a whole raft entry (the
 * envelope, then its CommandBatch). No crash, leak or UB. */
#include "proto/proto.h"
#include "rpc/server.h"
#include "tests/fuzz/fuzz_node.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_node *fz_rpc_node;

static void
fz_rpc_cleanup(void)
{
    fz_node_close(fz_rpc_node);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_rpc_node = fz_node_open("rpc");
    atexit(fz_rpc_cleanup);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char errmsg[RV_ERRMSG_SIZE];
    if (size > RPC_MAX_REQUEST_BYTES)
        return 0;
    Rv__Request *req = rv__request__unpack(NULL, size, data);
    if (req != NULL) {
        const Rv__Response *r = fz_node_answer(fz_rpc_node, req);
        fz_response_check(r);
        if (getenv("RV_FUZZ_VERBOSE") != NULL) /* To look at the seeds. */
            fprintf(stderr, "request %d -> %u %s (%zu results%s%s)\n",
                    (int)req->body_case, r->code, r->message ? r->message : "",
                    r->n_results, r->n_results ? ": " : "",
                    r->n_results && r->results[0]->message
                        ? r->results[0]->message
                        : "");
        rv__request__free_unpacked(req, NULL);
    }
    Rv__Response *resp = rv__response__unpack(NULL, size, data);
    if (resp != NULL)
        rv__response__free_unpacked(resp, NULL);
    Rv__CommandBatch *batch = NULL;
    if (proto_entry_decode(data, size, &batch, errmsg) == RV_OK)
        proto_batch_free(batch);
    return 0;
}
