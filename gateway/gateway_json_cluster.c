/* The cluster: its members with each node's own view (state, applied
 * index, digest, asked of the node itself), and membership changes
 * (add, remove, leadership transfer). */
#include "gateway/gateway_int.h"
#include "raft/replica.h"
#include "rpc/client/client.h"

#include <string.h>

/* The compaction fields of a node (DESIGN Appendix B.4 names
 * reclaimable_bytes), from its status. */
static void
gw__compact_json(json_t *o, const Rv__CompactInfo *ci)
{
    if (ci == NULL)
        return;
    json_object_set_new(o, "reclaimable_bytes",
                        json_integer((json_int_t)ci->reclaimable_bytes));
    json_t *c = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:s?}", "checkpoint_index",
        (json_int_t)ci->checkpoint_index, "requested_index",
        (json_int_t)ci->requested_index, "n_done", (json_int_t)ci->n_done,
        "bytes_rewritten", (json_int_t)ci->bytes_rewritten, "bytes_freed",
        (json_int_t)ci->bytes_freed, "image_bytes", (json_int_t)ci->image_bytes,
        "vlog_disk_bytes", (json_int_t)ci->vlog_disk_bytes, "running",
        ci->is_running ? 1 : 0, "last_error",
        ci->last_error != NULL && ci->last_error[0] != '\0' ? ci->last_error
                                                            : NULL);
    if (c != NULL)
        json_object_set_new(o, "compaction", c);
}

/* GET /api/v2/cluster: the members, each with its own view. */
void
gw_cluster_get(struct gw_ctx *c)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    char errmsg[RV_ERRMSG_SIZE];
    struct replica_info info;
    gw__info(c, &info);
    cr.op = RV__CLUSTER_OP__CLUSTER_STATUS;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    const Rv__Response *r = gw__call(c, &req);
    if (r == NULL)
        return;
    json_t *nodes = json_array();
    uint64_t leader = r->leader_id;
    for (size_t i = 0; nodes != NULL && i < r->n_nodes; i++) {
        const Rv__NodeStatus *ns = r->nodes[i];
        json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s}", "id", (json_int_t)ns->id,
                              "raft_addr", ns->raft_addr ? ns->raft_addr : "",
                              "rpc_addr", ns->rpc_addr ? ns->rpc_addr : "",
                              "http_addr", ns->http_addr ? ns->http_addr : "",
                              "role", ns->role ? ns->role : "");
        /* Each node's own view: state, applied index, digest. */
        Rv__Request sreq = RV__REQUEST__INIT;
        Rv__StatusRequest st = RV__STATUS_REQUEST__INIT;
        Rv__Response *sr = NULL;
        sreq.body_case = RV__REQUEST__BODY_STATUS;
        sreq.status = &st;
        sreq.token = (char *)c->x->token; /* The caller's, as asked. */
        if (o != NULL && ns->rpc_addr != NULL && ns->rpc_addr[0] != '\0' &&
            rvc_call_once_tls(ns->rpc_addr, c->x->g->cfg.tls, &sreq, 500, &sr,
                              errmsg) == RV_OK &&
            sr->self != NULL) {
            json_object_set_new(
                o, "state",
                json_string(sr->self->state ? sr->self->state : ""));
            json_object_set_new(
                o, "applied_index",
                json_integer((json_int_t)sr->self->applied_index));
            json_object_set_new(o, "term",
                                json_integer((json_int_t)sr->self->term));
            json_object_set_new(
                o, "digest",
                json_string(sr->self->digest ? sr->self->digest : ""));
            json_object_set_new(
                o, "durability",
                json_string(sr->self->durability ? sr->self->durability : ""));
            json_object_set_new(o, "diverged",
                                json_boolean(sr->self->diverged));
            if (sr->self->has_diverged_index)
                json_object_set_new(
                    o, "diverged_index",
                    json_integer((json_int_t)sr->self->diverged_index));
            json_object_set_new(o, "vlog_bytes",
                                json_integer((json_int_t)sr->self->vlog_bytes));
            json_object_set_new(
                o, "disk_free_bytes",
                json_integer((json_int_t)sr->self->disk_free_bytes));
            json_object_set_new(o, "disk_low",
                                json_boolean(sr->self->disk_low));
            gw__compact_json(o, sr->self->compact);
        } else if (o != NULL) {
            json_object_set_new(o, "state", json_string("unreachable"));
            json_object_set_new(o, "applied_index", json_null());
            json_object_set_new(o, "digest", json_null());
            json_object_set_new(o, "diverged", json_null());
        }
        rvc_response_free(sr);
        json_array_append_new(nodes, o);
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:I,s:I,s:o,s:f}", "leader_id",
                            (json_int_t)leader, "node_id", (json_int_t)info.id,
                            "nodes", nodes, "query_time_ms",
                            gw__elapsed_ms(c->x)));
}

/* POST /api/v2/cluster/nodes {"id","raft_addr","rpc_addr","http_addr"},
 * DELETE /api/v2/cluster/nodes/{id}, POST /api/v2/cluster/transfer
 * {"id"?}. */
static void
gw__cluster_change(struct gw_ctx *c, Rv__ClusterOp op, uint64_t id)
{
    static const char *const fields[] = {"id", "raft_addr", "rpc_addr",
                                         "http_addr", NULL};
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    json_t *j = NULL;
    cr.op = op;
    cr.has_id = 1;
    cr.id = id;
    if (op != RV__CLUSTER_OP__CLUSTER_REMOVE && c->x->body_len > 0) {
        int64_t jid = 0;
        if ((j = gw__body(c)) == NULL)
            return;
        if (gw__only(c, j, "cluster", fields) != 0 ||
            gw__int(c, j, "id", "", 1, INT64_MAX, &jid) != 0 ||
            gw__str(c, j, "raft_addr", op == RV__CLUSTER_OP__CLUSTER_ADD,
                    CONTRACT_MAX_ADDR_BYTES, &cr.raft_addr) != 0 ||
            gw__str(c, j, "rpc_addr", 0, CONTRACT_MAX_ADDR_BYTES,
                    &cr.rpc_addr) != 0 ||
            gw__str(c, j, "http_addr", 0, CONTRACT_MAX_ADDR_BYTES,
                    &cr.http_addr) != 0)
            goto out;
        cr.id = (uint64_t)jid;
    }
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    if (gw__call(c, &req) != NULL)
        gw_reply_json(c->x, 200, json_pack("{s:b}", "ok", 1));
out:
    json_decref(j);
}

void
gw_cluster_node_add(struct gw_ctx *c)
{
    gw__cluster_change(c, RV__CLUSTER_OP__CLUSTER_ADD, 0);
}

void
gw_cluster_node_remove(struct gw_ctx *c)
{
    gw__cluster_change(c, RV__CLUSTER_OP__CLUSTER_REMOVE, c->node_id);
}

void
gw_cluster_transfer(struct gw_ctx *c)
{
    gw__cluster_change(c, RV__CLUSTER_OP__CLUSTER_TRANSFER, 0);
}
