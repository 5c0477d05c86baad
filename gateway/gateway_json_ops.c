/* The operations endpoints: /healthz, /readyz, /api/config and /metrics
 * (Prometheus text from the per-route counters, the RPC counters, raft's
 * state and the disk). gw__count records what /metrics reports. */
#include "base/clock.h"
#include "gateway/gateway_int.h"
#include "raft/replica.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const double gw_bucket_s[GW_N_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void
gw__count(struct gateway *g, const struct gw_exchange *x)
{
    struct gw_route_stats *rs = &g->stats.routes[x->route];
    uint64_t us = rv_clock_mono_ns() / 1000u - x->start_us;
    int cls = x->status / 100;
    atomic_fetch_add(&rs->n_by_class[cls >= 1 && cls <= 5 ? cls : 0], 1);
    atomic_fetch_add(&rs->sum_us, us);
    atomic_fetch_add(&rs->n, 1);
    for (int i = 0; i < GW_N_BUCKETS; i++)
        if ((double)us / 1e6 <= gw_bucket_s[i]) {
            atomic_fetch_add(&rs->n_bucket[i], 1);
            break;
        }
}

/* GET /api/config: this node and the limits clients must respect. */
void
gw_ops_config(struct gw_ctx *c)
{
    struct replica_info info;
    gw__info(c, &info);
    json_t *limits =
        json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "max_key_bytes",
                  CONTRACT_MAX_KEY_BYTES, "max_param_value_bytes",
                  CONTRACT_MAX_PARAM_VALUE_BYTES, "max_tag_value_bytes",
                  CONTRACT_MAX_TAG_VALUE_BYTES, "max_metrics_per_batch",
                  GATEWAY_MAX_METRICS, "max_params_per_batch",
                  CONTRACT_MAX_PARAMS_PER_COMMAND, "max_tags_per_batch",
                  CONTRACT_MAX_TAGS_PER_COMMAND, "max_json_body_bytes",
                  GATEWAY_MAX_JSON_BODY, "max_artifact_put_bytes",
                  GATEWAY_MAX_RAW_BODY, "max_per_page", CONTRACT_MAX_PER_PAGE,
                  "max_downsample", CONTRACT_MAX_DOWNSAMPLE);
    gw_reply_json(c->x, 200,
                  json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:o}", "node_id",
                            (json_int_t)info.id, "http_addr",
                            c->x->g->http_addr, "rpc_addr", c->x->g->rpc_addr,
                            "raft_addr", c->x->g->raft_addr, "durability",
                            replica_durability_name(info.durability), "version",
                            "0.1", "limits", limits));
}

static void
gw__health(struct gw_ctx *c, int is_ready)
{
    struct replica_info info;
    gw__info(c, &info);
    if (!is_ready) {
        gw_reply_json(c->x, 200,
                      json_pack("{s:s,s:I}", "status", "ok", "node_id",
                                (json_int_t)info.id));
        return;
    }
    int ok = gw__is_running(c) && info.leader_id != 0 &&
             (info.state != RAFT_LEADER || info.is_serving);
    if (!ok) {
        gw_reply_status(c->x, 503, "TEMPORARILY_UNAVAILABLE",
                        gw__is_running(c) ? "no leader is known yet"
                                          : "the node is stopping");
        return;
    }
    if (info.is_diverged || info.is_disk_low) {
        char why[256];
        if (info.is_diverged)
            snprintf(why, sizeof why,
                     "replica diverged: its index hash at index %llu differs "
                     "from the leader's; reads are refused until it is "
                     "repaired",
                     (unsigned long long)info.diverged_index);
        else
            snprintf(why, sizeof why,
                     "disk space low: %llu bytes free, under the threshold "
                     "of %llu; writes are refused",
                     (unsigned long long)info.disk_free_bytes,
                     (unsigned long long)info.disk_min_free_bytes);
        gw_reply_status(c->x, 503, "TEMPORARILY_UNAVAILABLE", why);
        return;
    }
    gw_reply_json(c->x, 200,
                  json_pack("{s:s,s:I,s:s,s:I,s:I,s:I}", "status", "ready",
                            "node_id", (json_int_t)info.id, "state",
                            replica_state_name(info.state), "leader_id",
                            (json_int_t)info.leader_id, "applied_index",
                            (json_int_t)info.applied_index, "term",
                            (json_int_t)info.term));
}

/* GET /healthz: liveness. */
void
gw_ops_healthz(struct gw_ctx *c)
{
    gw__health(c, 0);
}

/* GET /readyz: 200 once a leader is known. */
void
gw_ops_readyz(struct gw_ctx *c)
{
    gw__health(c, 1);
}

/* GET /metrics */
void
gw_ops_metrics(struct gw_ctx *c)
{
    struct gw_exchange *x = c->x;
    rv_buf_reset(&x->out);
    gw_metrics_text(x->g, &x->out);
    x->status = 200;
    x->out_type = "text/plain; version=0.0.4";
}

/* ---- /metrics ------------------------------------------------------------ */

static uint64_t
gw__file_bytes(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    /* Blocks actually used: LMDB's map file is sparse. */
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

static const char *const gw_route_names[GW_N_ROUTES] = {
#define GW_ROUTE_NAME(r, name) name,
    GATEWAY_ROUTES(GW_ROUTE_NAME)
#undef GW_ROUTE_NAME
};

/* Requests by route and status class. */
static void
gw__metrics_requests(const struct gateway *g, struct rv_buf *b)
{
    rv_buf_printf(b, "# HELP runvault_http_requests_total HTTP requests "
                     "answered, by route and status class.\n"
                     "# TYPE runvault_http_requests_total counter\n");
    for (int r = 0; r < GW_N_ROUTES; r++)
        for (int c = 0; c < 6; c++) {
            uint64_t n = atomic_load(&g->stats.routes[r].n_by_class[c]);
            if (n > 0)
                rv_buf_printf(b,
                              "runvault_http_requests_total{route=\"%s\","
                              "code=\"%s\"} %llu\n",
                              gw_route_names[r],
                              c == 0   ? "other"
                              : c == 1 ? "1xx"
                              : c == 2 ? "2xx"
                              : c == 3 ? "3xx"
                              : c == 4 ? "4xx"
                                       : "5xx",
                              (unsigned long long)n);
        }
}

/* The latency histogram of each route. */
static void
gw__metrics_latency(const struct gateway *g, struct rv_buf *b)
{
    rv_buf_printf(b,
                  "# HELP runvault_http_request_duration_seconds Time from "
                  "dequeue to answer.\n"
                  "# TYPE runvault_http_request_duration_seconds histogram\n");
    for (int r = 0; r < GW_N_ROUTES; r++) {
        const struct gw_route_stats *rs = &g->stats.routes[r];
        uint64_t n = atomic_load(&rs->n), cum = 0;
        if (n == 0)
            continue;
        for (int i = 0; i < GW_N_BUCKETS; i++) {
            cum += atomic_load(&rs->n_bucket[i]);
            rv_buf_printf(b,
                          "runvault_http_request_duration_seconds_bucket{route="
                          "\"%s\",le=\"%g\"} %llu\n",
                          gw_route_names[r], gw_bucket_s[i],
                          (unsigned long long)cum);
        }
        rv_buf_printf(
            b,
            "runvault_http_request_duration_seconds_bucket{route="
            "\"%s\",le=\"+Inf\"} %llu\n"
            "runvault_http_request_duration_seconds_sum{route=\"%s\"} "
            "%.6f\n"
            "runvault_http_request_duration_seconds_count{route="
            "\"%s\"} %llu\n",
            gw_route_names[r], (unsigned long long)n, gw_route_names[r],
            (double)atomic_load(&rs->sum_us) / 1e6, gw_route_names[r],
            (unsigned long long)n);
    }
}

/* Points per batch, the gateway's totals and the RPC counters. */
static void
gw__metrics_http(const struct gateway *g, const struct rpc_counters *rc,
                 struct rv_buf *b)
{
    static const char *const bp[8] = {"1",   "10",  "100", "1000",
                                      "1e4", "1e5", "1e6", "+Inf"};
    rv_buf_printf(b, "# HELP runvault_http_batch_points Points per log-batch "
                     "request.\n# TYPE runvault_http_batch_points histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < 8; i++) {
        cum += atomic_load(&g->stats.batch_points_bucket[i]);
        rv_buf_printf(b, "runvault_http_batch_points_bucket{le=\"%s\"} %llu\n",
                      bp[i], (unsigned long long)cum);
    }
    rv_buf_printf(b, "runvault_http_batch_points_count %llu\n",
                  (unsigned long long)cum);
    rv_buf_printf(b,
                  "# TYPE runvault_http_points_total counter\n"
                  "runvault_http_points_total %llu\n"
                  "# TYPE runvault_http_log_lines_total counter\n"
                  "runvault_http_log_lines_total %llu\n"
                  "# TYPE runvault_http_artifact_bytes_total counter\n"
                  "runvault_http_artifact_bytes_total %llu\n"
                  "# TYPE runvault_http_rejected_busy_total counter\n"
                  "runvault_http_rejected_busy_total %llu\n"
                  "# TYPE runvault_http_queue_depth gauge\n"
                  "runvault_http_queue_depth %llu\n",
                  (unsigned long long)atomic_load(&g->stats.n_points),
                  (unsigned long long)atomic_load(&g->stats.n_log_lines),
                  (unsigned long long)atomic_load(&g->stats.n_artifact_bytes),
                  (unsigned long long)atomic_load(&g->stats.n_rejected_queue),
                  (unsigned long long)atomic_load(&g->stats.n_queued));
    rv_buf_printf(b,
                  "# TYPE runvault_rpc_requests_total counter\n"
                  "runvault_rpc_requests_total %llu\n"
                  "# TYPE runvault_rpc_forwarded_total counter\n"
                  "runvault_rpc_forwarded_total %llu\n"
                  "# TYPE runvault_rpc_forward_failed_total counter\n"
                  "runvault_rpc_forward_failed_total %llu\n",
                  (unsigned long long)rc->n_requests,
                  (unsigned long long)rc->n_forwarded,
                  (unsigned long long)rc->n_forward_failed);
}

/* A replica_hist as a Prometheus histogram in seconds. */
static void
gw__hist(struct rv_buf *b, const char *name, const char *help,
         const struct replica_hist *h)
{
    uint64_t cum = 0;
    rv_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < REPLICA_LAG_BUCKETS; i++) {
        cum += h->bucket[i];
        rv_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
                      (double)replica_lag_bucket_us[i] / 1e6,
                      (unsigned long long)cum);
    }
    rv_buf_printf(b,
                  "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count "
                  "%llu\n# TYPE %s_max gauge\n%s_max %.6f\n",
                  name, (unsigned long long)h->count, name,
                  (double)h->sum_us / 1e6, name, (unsigned long long)h->count,
                  name, name, (double)h->max_us / 1e6);
}

/* Raft's state and counters, the loop's lag, and the disk. */
static void
gw__metrics_raft(const struct gateway *g, struct rv_buf *b)
{
    struct replica_info info;
    rpc_node_info(g->cfg.rpc, &info);
    rv_buf_printf(
        b,
        "# TYPE runvault_raft_term gauge\nrunvault_raft_term %llu\n"
        "# TYPE runvault_raft_last_index gauge\n"
        "runvault_raft_last_index %llu\n"
        "# TYPE runvault_raft_commit_index gauge\n"
        "runvault_raft_commit_index %llu\n"
        "# TYPE runvault_raft_applied_index gauge\n"
        "runvault_raft_applied_index %llu\n"
        "# HELP runvault_apply_lag_entries Committed entries not yet "
        "applied here.\n"
        "# TYPE runvault_apply_lag_entries gauge\n"
        "runvault_apply_lag_entries %llu\n"
        "# TYPE runvault_raft_leader_id gauge\n"
        "runvault_raft_leader_id %llu\n",
        (unsigned long long)info.term, (unsigned long long)info.last_index,
        (unsigned long long)info.commit_index,
        (unsigned long long)info.applied_index,
        (unsigned long long)(info.commit_index > info.applied_index
                                 ? info.commit_index - info.applied_index
                                 : 0),
        (unsigned long long)info.leader_id);
    rv_buf_printf(b, "# TYPE runvault_raft_state gauge\n");
    static const char *const states[] = {"follower", "candidate", "leader",
                                         "unavailable"};
    for (int i = 0; i < 4; i++)
        rv_buf_printf(b, "runvault_raft_state{state=\"%s\"} %d\n", states[i],
                      strcmp(replica_state_name(info.state), states[i]) == 0);
    rv_buf_printf(
        b,
        "# HELP runvault_raft_entries_total Command entries proposed "
        "by this node as leader; commands/entries is the batch "
        "size.\n"
        "# TYPE runvault_raft_entries_total counter\n"
        "runvault_raft_entries_total %llu\n"
        "# TYPE runvault_raft_commands_total counter\n"
        "runvault_raft_commands_total %llu\n"
        "# TYPE runvault_raft_barriers_total counter\n"
        "runvault_raft_barriers_total %llu\n"
        "# TYPE runvault_store_syncs_total counter\n"
        "runvault_store_syncs_total %llu\n"
        "# TYPE runvault_snapshots_total counter\n"
        "runvault_snapshots_total %llu\n"
        "# TYPE runvault_catch_ups_total counter\n"
        "runvault_catch_ups_total %llu\n",
        (unsigned long long)info.n_entries, (unsigned long long)info.n_commands,
        (unsigned long long)info.n_barriers, (unsigned long long)info.n_syncs,
        (unsigned long long)info.n_snapshots,
        (unsigned long long)info.n_catch_ups);
    gw__hist(b, "runvault_loop_lag_seconds",
             "How late the raft loop's 20 ms probe timer fired: the time "
             "the loop could not answer heartbeats or votes.",
             &info.loop_lag);
    gw__hist(b, "runvault_store_sync_seconds",
             "Duration of the store syncs for durability (periodic and "
             "strict).",
             &info.sync_time);
    rv_buf_printf(
        b,
        "# HELP runvault_replica_diverged 1 when this node's index hash "
        "differed from the leader's at a check point.\n"
        "# TYPE runvault_replica_diverged gauge\n"
        "runvault_replica_diverged %d\n"
        "# TYPE runvault_replica_diverged_index gauge\n"
        "runvault_replica_diverged_index %llu\n"
        "# HELP runvault_checks_hashed_total Check points this node hashed.\n"
        "# TYPE runvault_checks_hashed_total counter\n"
        "runvault_checks_hashed_total %llu\n"
        "# HELP runvault_checks_compared_total Check points compared with "
        "the leader's hash.\n"
        "# TYPE runvault_checks_compared_total counter\n"
        "runvault_checks_compared_total %llu\n"
        "# HELP runvault_disk_free_bytes Free space on the data disk.\n"
        "# TYPE runvault_disk_free_bytes gauge\n"
        "runvault_disk_free_bytes %llu\n"
        "# TYPE runvault_disk_min_free_bytes gauge\n"
        "runvault_disk_min_free_bytes %llu\n"
        "# HELP runvault_disk_low 1 while free space is under the threshold "
        "(writes refused with 507).\n"
        "# TYPE runvault_disk_low gauge\n"
        "runvault_disk_low %d\n",
        info.is_diverged, (unsigned long long)info.diverged_index,
        (unsigned long long)info.n_checks_hashed,
        (unsigned long long)info.n_checks_compared,
        (unsigned long long)info.disk_free_bytes,
        (unsigned long long)info.disk_min_free_bytes, info.is_disk_low);
    rv_buf_printf(b,
                  "# HELP runvault_disk_bytes Bytes on disk by part.\n"
                  "# TYPE runvault_disk_bytes gauge\n"
                  "runvault_disk_bytes{part=\"vlog\"} %llu\n"
                  "runvault_disk_bytes{part=\"index\"} %llu\n",
                  (unsigned long long)rpc_node_vlog_bytes(g->cfg.rpc),
                  (unsigned long long)gw__file_bytes(g->data_dir, "index.mdb"));
    struct store_compact_info ci;
    uint64_t reclaimable;
    rpc_node_compact_info(g->cfg.rpc, &ci, &reclaimable);
    rv_buf_printf(
        b,
        "# HELP runvault_reclaimable_bytes Bytes of purged runs the next "
        "compaction can reclaim (replicated).\n"
        "# TYPE runvault_reclaimable_bytes gauge\n"
        "runvault_reclaimable_bytes %llu\n"
        "# HELP runvault_compaction_checkpoint_index The vlog's compaction "
        "checkpoint (0: never compacted).\n"
        "# TYPE runvault_compaction_checkpoint_index gauge\n"
        "runvault_compaction_checkpoint_index %llu\n"
        "# HELP runvault_compaction_running 1 while this node compacts.\n"
        "# TYPE runvault_compaction_running gauge\n"
        "runvault_compaction_running %d\n"
        "# TYPE runvault_compactions_total counter\n"
        "runvault_compactions_total %llu\n"
        "# TYPE runvault_compaction_bytes_freed_total counter\n"
        "runvault_compaction_bytes_freed_total %llu\n"
        "# HELP runvault_compaction_failed 1 when this node's last "
        "compaction failed (its message is in the cluster status).\n"
        "# TYPE runvault_compaction_failed gauge\n"
        "runvault_compaction_failed %d\n",
        (unsigned long long)reclaimable,
        (unsigned long long)ci.checkpoint_index, ci.is_running,
        (unsigned long long)ci.n_done, (unsigned long long)ci.bytes_freed,
        ci.last_code != RV_OK);
}

void
gw_metrics_text(struct gateway *g, struct rv_buf *b)
{
    struct rpc_counters rc;
    rpc_server_counters(g->cfg.rpc, &rc);
    gw__metrics_requests(g, b);
    gw__metrics_latency(g, b);
    gw__metrics_http(g, &rc, b);
    gw__metrics_raft(g, b);
}
