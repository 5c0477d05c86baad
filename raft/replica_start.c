/* Starting a replica and freeing it (contract in replica.h, state in
 * replica_int.h): the configuration checks, the store, raft_uv and its TCP
 * transport (or the TLS one of transport_tls.h), bootstrap, the loop's handles,
 * the hooks on raft_io that turn a failed disk write into a fail-stop, and the
 * final free. */
#include "base/clock.h"
#include "base/fsdir.h"
#include "raft/replica_int.h"
#include "store/scrub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- raft_io wrappers -----------------------------------------------------
 */

static struct replica *
replica__of_io(struct raft_io *io)
{
    return replica__of_raft(io->data);
}

/* raft_uv may call the close callback twice (raft-0.15.md §6 #8): only the
 * first call reaches raft. */
static void
replica__io_close_cb(struct raft_io *io)
{
    struct replica *r = replica__of_io(io);
    if (r->is_io_close_fired)
        return;
    r->is_io_close_fired = 1;
    r->io_close_cb(io);
}

static void
replica__io_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct replica *r = replica__of_io(io);
    r->io_close_cb = cb;
    r->io_close(io, replica__io_close_cb);
}

/* raft_uv stores term and vote synchronously on the loop thread (write,
 * fsync, directory fsync: raft-0.15.md §3); timed for the loop-lag probe. */
static int
replica__io_store_meta(struct raft_io *io, int is_vote, uint64_t value)
{
    struct replica *r = replica__of_io(io);
    uint64_t t0 = rv_clock_mono_ns();
    int rv = is_vote ? r->io_set_vote(io, value) : r->io_set_term(io, value);
    raftfsm_note_busy(&r->fsm, is_vote ? "raft vote fsync" : "raft term fsync",
                      t0);
    return rv;
}

static int
replica__io_set_term(struct raft_io *io, raft_term term)
{
    return replica__io_store_meta(io, 0, term);
}

static int
replica__io_set_vote(struct raft_io *io, raft_id id)
{
    return replica__io_store_meta(io, 1, id);
}

/* A disk write failed on this node (leader or follower): raft 0.15 would
 * carry on with a log it did not persist (§6 #5, #6), so stop. Called by
 * the guard (raftguard.h) before raft's callback. */
static void
replica__write_failed(struct raftguard *g, int status)
{
    struct replica *r = g->user_data;
    if (r->is_closing)
        return;
    char why[RV_ERRMSG_SIZE];
    snprintf(why, sizeof why, "raft log write failed: %s",
             raft_strerror(status));
    replica__fail(r, RV_EXIT_IO, why);
}

/* ---- Start ----------------------------------------------------------------
 */

static int
replica__mkdir(const char *path, char *errmsg)
{
    int err = rv_mkdir_durable(path);
    if (err != 0) {
        rv_errmsg_printf(errmsg, "mkdir %s: %s", path, strerror(err));
        return RV_EIO;
    }
    return RV_OK;
}

static int
replica__raft_err(struct replica *r, int rv, const char *what, char *errmsg)
{
    rv_errmsg_printf(errmsg, "%s: %s (%s)", what, raft_strerror(rv),
                     r->is_raft_init ? raft_errmsg(&r->raft) : "");
    return RV_EUNAVAILABLE;
}

static int
replica__bootstrap(struct replica *r, const struct replica_config *cfg,
                   char *errmsg)
{
    struct raft_configuration conf;
    int rv = 0;
    if (cfg->is_join)
        return RV_OK;
    raft_configuration_init(&conf);
    if (cfg->n_peers == 0) {
        rv = raft_configuration_add(&conf, r->id, r->raft_addr, RAFT_VOTER);
    } else {
        for (size_t i = 0; i < cfg->n_peers && rv == 0; i++)
            rv = raft_configuration_add(&conf, cfg->peers[i].id,
                                        cfg->peers[i].raft_addr, RAFT_VOTER);
    }
    if (rv == 0)
        rv = raft_bootstrap(&r->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP)
        return RV_OK; /* A restart: the log already holds a configuration. */
    if (rv != 0)
        return replica__raft_err(r, rv, "raft_bootstrap", errmsg);
    rv_logf(r->log, RV_LOG_INFO, "replica", "bootstrapped a cluster of %zu",
            cfg->n_peers ? cfg->n_peers : 1);
    return RV_OK;
}

static int
replica__check_config(const struct replica_config *cfg, char *errmsg)
{
    unsigned e = cfg->election_ms ? cfg->election_ms : REPLICA_DEFAULT_ELECTION;
    unsigned h =
        cfg->heartbeat_ms ? cfg->heartbeat_ms : REPLICA_DEFAULT_HEARTBEAT;
    if (cfg->id == 0 || cfg->raft_addr == NULL || cfg->data_dir == NULL) {
        rv_errmsg_printf(errmsg, "id, raft address and data dir are needed");
        return RV_EINVAL;
    }
    if (h * 5 > e || h < 10) {
        rv_errmsg_printf(errmsg,
                         "heartbeat %u ms must be >= 10 and at most a fifth "
                         "of the election timeout %u ms",
                         h, e);
        return RV_EINVAL;
    }
    if (cfg->n_peers > REPLICA_MAX_PEERS) {
        rv_errmsg_printf(errmsg, "at most %d peers", REPLICA_MAX_PEERS);
        return RV_EINVAL;
    }
    int is_self_in_peers = cfg->n_peers == 0;
    for (size_t i = 0; i < cfg->n_peers; i++)
        if (cfg->peers[i].id == cfg->id) {
            is_self_in_peers = 1;
            if (strcmp(cfg->peers[i].raft_addr, cfg->raft_addr) != 0) {
                rv_errmsg_printf(errmsg,
                                 "--peers gives node %llu the raft address "
                                 "%s, not %s",
                                 (unsigned long long)cfg->id,
                                 cfg->peers[i].raft_addr, cfg->raft_addr);
                return RV_EINVAL;
            }
        }
    if (!is_self_in_peers) {
        rv_errmsg_printf(errmsg, "--peers does not list this node's id %llu",
                         (unsigned long long)cfg->id);
        return RV_EINVAL;
    }
    return RV_OK;
}

/* After the loop has ended (or never ran): release raft_uv, the
 * transport and the loop, then everything else. */
static void
replica__free(struct replica *r)
{
    if (r->is_io_init)
        raft_uv_close(&r->io);
    if (r->is_transport_init && r->is_transport_tls)
        transport_tls_close(&r->transport);
    else if (r->is_transport_init)
        raft_uv_tcp_close(&r->transport);
    if (r->is_peersock)
        peersock_close(&r->peersock);
    if (r->is_loop_init) {
        for (int i = 0; i < 100 && uv_loop_close(&r->loop) == UV_EBUSY; i++)
            uv_run(&r->loop, UV_RUN_NOWAIT);
    }
    if (r->is_raft_init)
        raftguard_close(&r->guard);
    rv_buf_free(&r->step_packed);
    rv_buf_free(&r->maint_packed);
    raftfsm_close(&r->fsm);
    store_close(r->store);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->applied_cond);
    pthread_cond_destroy(&r->sync_cond);
    free(r->data_dir);
    free(r);
}

/* raft started badly or never started: close it on this thread. */
static void
replica__abort(struct replica *r)
{
    if (r->is_raft_init) {
        raft_close(&r->raft, replica__raft_closed);
        uv_run(&r->loop, UV_RUN_DEFAULT);
    }
    replica__free(r);
}

static int
replica__init_raft(struct replica *r, const struct replica_config *cfg,
                   char *errmsg)
{
    int rv = uv_loop_init(&r->loop);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "uv_loop_init: %s", uv_strerror(rv));
        return RV_EIO;
    }
    r->is_loop_init = 1;
    if (cfg->tls != NULL) {
        int err = transport_tls_init(&r->transport, &r->loop, cfg->tls);
        if (err != RV_OK) {
            rv_errmsg_printf(errmsg, "transport_tls_init: %s",
                             rv_strerror(err));
            return err;
        }
        r->is_transport_tls = 1;
    } else {
        rv = raft_uv_tcp_init(&r->transport, &r->loop);
        if (rv != 0)
            return replica__raft_err(r, rv, "raft_uv_tcp_init", errmsg);
    }
    r->is_transport_init = 1;
    if (!r->is_transport_tls) {
        /* A stalled peer connection is closed after twice the election
         * timeout without an acknowledgement, a connect attempt is given
         * up after REPLICA_PEER_CONNECT_MS (ARCHITECTURE.md). */
        rv = peersock_install(&r->peersock, &r->transport, &r->loop,
                              2 * r->election_ms, REPLICA_PEER_CONNECT_MS);
        if (rv != 0)
            return replica__raft_err(r, rv, "peersock_install", errmsg);
        r->is_peersock = 1;
    }
    rv = raft_uv_init(&r->io, &r->loop, r->raft_dir, &r->transport);
    if (rv != 0)
        return replica__raft_err(r, rv, "raft_uv_init", errmsg);
    r->is_io_init = 1;
    raft_uv_set_connect_retry_delay(&r->io, REPLICA_PEER_RETRY_MS);
    raft_uv_set_auto_recovery(&r->io, false); /* §3: never drop entries. */
    raft_uv_set_snapshot_compression(&r->io, false);
    rv = raft_init(&r->raft, &r->io, &r->fsm.fsm, r->id, r->raft_addr);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "raft_init: %s (%s)", raft_strerror(rv),
                         raft_errmsg(&r->raft));
        return RV_EUNAVAILABLE;
    }
    r->is_raft_init = 1;
    raftfsm_attach(&r->fsm, &r->raft);
    raft_set_election_timeout(&r->raft, r->election_ms);
    raft_set_heartbeat_timeout(&r->raft, r->heartbeat_ms);
    raft_set_pre_vote(&r->raft, true);
    raft_set_snapshot_threshold(&r->raft, 128); /* Asks; bytes decide. */
    raft_set_snapshot_trailing(&r->raft, cfg->snapshot_trailing
                                             ? cfg->snapshot_trailing
                                             : REPLICA_SNAPSHOT_TRAILING);
    raft_set_install_snapshot_timeout(&r->raft, 120000);
    r->raft.data = r;
    rv = raftguard_install(&r->guard, &r->raft); /* raft.data: the guard. */
    if (rv != 0) {
        r->guard.user_data = r; /* For replica__of_raft() while closing. */
        r->raft.data = &r->guard;
        rv_errmsg_printf(errmsg, "raftguard_install: %s", raft_strerror(rv));
        return RV_ESTATE;
    }
    r->guard.on_write_failed = replica__write_failed;
    r->io_close = r->io.close;
    r->io.close = replica__io_close;
    r->io_set_term = r->io.set_term;
    r->io.set_term = replica__io_set_term;
    r->io_set_vote = r->io.set_vote;
    r->io.set_vote = replica__io_set_vote;
    return RV_OK;
}

static int
replica__init_handles(struct replica *r)
{
    uv_handle_t *hs[] = {
        (uv_handle_t *)&r->async,       (uv_handle_t *)&r->check,
        (uv_handle_t *)&r->sync_timer,  (uv_handle_t *)&r->tick_timer,
        (uv_handle_t *)&r->close_timer, (uv_handle_t *)&r->lag_timer};
    int rv = uv_async_init(&r->loop, &r->async, replica__async_cb);
    if (rv == 0)
        rv = uv_check_init(&r->loop, &r->check);
    if (rv == 0)
        rv = uv_timer_init(&r->loop, &r->sync_timer);
    if (rv == 0)
        rv = uv_timer_init(&r->loop, &r->tick_timer);
    if (rv == 0)
        rv = uv_timer_init(&r->loop, &r->close_timer);
    if (rv == 0)
        rv = uv_timer_init(&r->loop, &r->lag_timer);
    if (rv != 0)
        return RV_EIO;
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        hs[i]->data = r;
    uv_check_start(&r->check, replica__check_cb);
    uv_timer_start(&r->sync_timer, replica__sync_cb, r->sync_ms, r->sync_ms);
    uv_timer_start(&r->tick_timer, replica__tick_cb, r->heartbeat_ms,
                   r->heartbeat_ms);
    r->lag_last_ns = 0; /* The first probe only starts the count. */
    uv_timer_start(&r->lag_timer, replica__lag_cb, REPLICA_LAG_PROBE_MS,
                   REPLICA_LAG_PROBE_MS);
    return RV_OK;
}

/* A replica holding a copy of cfg, or NULL (out of memory, nothing left
 * allocated). */
static struct replica *
replica__new(const struct replica_config *cfg)
{
    struct replica *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    rv_cond_init_mono(&r->applied_cond);
    pthread_cond_init(&r->sync_cond, NULL);
    r->id = cfg->id;
    r->data_dir = strdup(cfg->data_dir);
    snprintf(r->raft_addr, sizeof r->raft_addr, "%s", cfg->raft_addr);
    snprintf(r->rpc_addr, sizeof r->rpc_addr, "%s",
             cfg->rpc_addr ? cfg->rpc_addr : "");
    snprintf(r->http_addr, sizeof r->http_addr, "%s",
             cfg->http_addr ? cfg->http_addr : "");
    r->durability = cfg->durability ? cfg->durability : REPLICA_BUFFERED;
    r->election_ms =
        cfg->election_ms ? cfg->election_ms : REPLICA_DEFAULT_ELECTION;
    r->heartbeat_ms =
        cfg->heartbeat_ms ? cfg->heartbeat_ms : REPLICA_DEFAULT_HEARTBEAT;
    r->sync_ms = cfg->sync_ms ? cfg->sync_ms : REPLICA_DEFAULT_SYNC_MS;
    r->log = cfg->log;
    rv_buf_init(&r->step_packed);
    rv_buf_init(&r->maint_packed);
    r->check_interval_ms = cfg->check_interval_ms;
    r->check_entries = cfg->check_entries ? cfg->check_entries : UINT64_MAX;
    r->retention_interval_ms = cfg->retention_interval_ms;
    r->compact_min_bytes = cfg->compact_min_bytes;
    r->min_free_bytes = cfg->min_free_bytes;
    if (r->data_dir == NULL) {
        replica__free(r);
        return NULL;
    }
    snprintf(r->raft_dir, sizeof r->raft_dir, "%s/raft", cfg->data_dir);
    return r;
}

/* The data and raft directories, the store, and the FSM on it. */
static int
replica__open_store(struct replica *r, const struct replica_config *cfg,
                    char *errmsg)
{
    int rc = replica__mkdir(cfg->data_dir, errmsg);
    if (rc == RV_OK)
        rc = replica__mkdir(r->raft_dir, errmsg);
    struct store_config scfg = {cfg->data_dir, 0, cfg->segment_bytes, cfg->log,
                                NULL};
    if (rc == RV_OK)
        rc = store_open(&r->store, &scfg, errmsg);
    if (rc != RV_OK)
        return rc;
    raftfsm_init(&r->fsm, r->store, cfg->log);
    r->fsm.self_addr = r->rpc_addr;
    r->fsm.fetch = cfg->fetch;
    r->fsm.fetch_image = cfg->fetch_image;
    r->fsm.fetch_data = cfg->fetch_data;
    r->fsm.snapshot_bytes =
        cfg->snapshot_bytes ? cfg->snapshot_bytes : REPLICA_DEFAULT_SNAPSHOT;
    r->last_synced = store_applied_index(r->store);
    return RV_OK;
}

/* raft_start, then the checks of what it loaded. */
static int
replica__start_raft(struct replica *r, const struct replica_config *cfg,
                    char *errmsg)
{
    int rv = raft_start(&r->raft);
    if (rv != 0) {
        int rc = replica__raft_err(r, rv, "raft_start", errmsg);
        if (rv == RAFT_IOERR)
            rv_errmsg_printf(errmsg,
                             "raft_start: I/O error (%s) - is the raft "
                             "address %s in use, or the raft log "
                             "damaged?",
                             raft_errmsg(&r->raft), r->raft_addr);
        return rc;
    }
    r->is_raft_started = 1;
    /* Every applied entry came from this raft log, which is fsynced before
     * anything is applied: a store ahead of it was made elsewhere (runvault
     * demo, another cluster), and raft's next entries would be skipped as
     * already applied. */
    if (store_applied_index(r->store) > raft_last_index(&r->raft)) {
        rv_errmsg_printf(errmsg,
                         "the store in %s is at index %llu, ahead of its raft "
                         "log (last index %llu): it was not made by this "
                         "node; use an empty data dir",
                         cfg->data_dir,
                         (unsigned long long)store_applied_index(r->store),
                         (unsigned long long)raft_last_index(&r->raft));
        return RV_ECORRUPT;
    }
    if (r->fsm.is_failed) {
        rv_errmsg_printf(errmsg, "%s", r->fsm.errmsg);
        return RV_EIO;
    }
    return RV_OK;
}

int
replica_start(struct replica **out, const struct replica_config *cfg,
              char *errmsg)
{
    int rc = replica__check_config(cfg, errmsg);
    if (rc != RV_OK)
        return rc;
    struct replica *r = replica__new(cfg);
    if (r == NULL)
        return RV_ENOMEM;
    rc = replica__open_store(r, cfg, errmsg);
    if (rc != RV_OK) {
        replica__free(r);
        return rc;
    }
    rc = replica__init_raft(r, cfg, errmsg);
    if (rc == RV_OK)
        rc = replica__bootstrap(r, cfg, errmsg);
    if (rc == RV_OK)
        rc = replica__init_handles(r);
    if (rc == RV_OK)
        rc = replica__start_raft(r, cfg, errmsg);
    if (rc == RV_OK) {
        replica__publish(r);
        if (pthread_create(&r->thread, NULL, replica__thread, r) != 0) {
            rv_errmsg_printf(errmsg, "pthread_create failed");
            rc = RV_ENOMEM;
        }
    }
    if (rc != RV_OK) {
        replica__abort(r);
        return rc;
    }
    /* Without its compaction thread the node still serves and applies
     * compact entries; it only keeps the bytes. */
    if (store_compact_start(r->store, cfg->compact_rate, errmsg) != RV_OK)
        rv_logf(r->log, RV_LOG_WARN, "replica",
                "no compaction on this node: %s", errmsg);
    /* Without its check thread the node still serves, unchecked. */
    if (store_check_start(r->store, errmsg) != RV_OK)
        rv_logf(r->log, RV_LOG_WARN, "replica",
                "no divergence check on this node: %s", errmsg);
    /* Without its scrub the node still serves (reads check CRCs). */
    if (store_scrub_start(&r->scrub, r->data_dir, r->log, replica__on_corrupt,
                          r) != RV_OK)
        r->scrub = NULL;
    rv_logf(r->log, RV_LOG_INFO, "replica",
            "node %llu started: raft %s, applied index %llu, durability %s",
            (unsigned long long)r->id, r->raft_addr,
            (unsigned long long)store_applied_index(r->store),
            replica_durability_name(r->durability));
    *out = r;
    return RV_OK;
}

int
replica_wait(struct replica *r)
{
    pthread_join(r->thread, NULL);
    store_scrub_wait(r->scrub);
    r->scrub = NULL;
    if (r->is_abandoned)
        return RV_EXIT_RAFT; /* Nothing may be closed: see replica.h. */
    int code = r->exit_code;
    replica__free(r);
    return code;
}
