/* Deterministic cluster simulation: raft_fixture with the real FSM
 * (raft/raftfsm) and the match-index guard (raft/raftguard) on real stores
 * in temporary directories. For each seed, random writes (one entry in
 * flight, as the node will do), isolation of a server and one-way cuts
 * (saturate), pauses of any server (kill/revive), snapshots, and retries of
 * writes with an unknown outcome; on even seeds membership changes (two
 * servers join, one voter leaves), on odd seeds a short trailing log and
 * so InstallSnapshot and catch-up; then heal, finish, and check that every
 * replica in the configuration has the same digest at the same applied
 * index and that every acknowledged write was applied exactly once. The
 * seed is printed on failure; RV_TEST_SEED picks the first one,
 * RV_SIM_DEBUG=1 prints the servers' raft state when a run does not settle
 * (LIBRAFT_TRACE=1 traces raft itself), RV_SIM_TIMEOUT_MS gives every
 * server that one election timeout. */
#include "base/clock.h"
#include "base/parse.h"
#include "proto/metrics_builder.h"
#include "proto/proto.h"
#include "raft/raftfsm.h"
#include "raft/raftguard.h"
#include "store/store.h"
#include "tests/lib/harness.h"

#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_INITIAL   3 /* Bootstrapped voters. */
#define MAX_SERVERS 5 /* Servers 3 and 4 join during the run. */
#define MAX_WRITES  400

/* What a run does. The seeded test runs SIM_MEMBERS on even seeds and
 * SIM_SHORT_LOG on odd ones, both with the guard: raft 0.15 crashes
 * rolling back an uncommitted configuration entry once the last committed
 * one left the log (membershipRollback reads it with logGet and no check;
 * fixed upstream in v0.17.1, baa8f52), which the two together make likely
 * without raftguard's work-around 4
 * (test_membership_rollback_after_a_snapshot). */
enum {
    SIM_GUARD = 1,           /* raftguard on every server. */
    SIM_MEMBERS = 2,         /* Two servers join, one voter leaves. */
    SIM_SHORT_LOG = 4,       /* 32 trailing entries: InstallSnapshot happens. */
    SIM_NO_ROLLBACK_FIX = 8, /* The guard leaves raft 0.15's rollback. */
};

enum wstate { W_NONE, W_PENDING, W_ACKED, W_UNKNOWN };

struct write {
    enum wstate state;
    uint64_t client_id, seq;
};

/* A wrapper around one fixture server's io truncate and snapshot_put (as
 * raftguard wraps raft_io). The 0.15 fixture stores a server's entries in
 * an array it takes for indexes 1..n: an InstallSnapshot empties it
 * (truncate(1) when the put completes) and later entries land at slot 0,
 * so raft's next truncate(index) would copy index - 1 slots out of a
 * shorter array. The wrapper remembers the installed snapshot's index as
 * the array's offset and translates raft's truncates by it. */
struct simio {
    struct raft_io *io;
    int (*truncate)(struct raft_io *io, raft_index index);
    int (*snapshot_put)(struct raft_io *io, unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);
    raft_index offset;     /* The fixture's slot 0 holds offset + 1. */
    raft_index installing; /* An install's put is queued (its index). */
    uint64_t n_installs, n_translated; /* Truncates moved by offset. */
};

struct sim {
    struct raft_fixture f;
    struct raftfsm fsms[MAX_SERVERS];
    struct raftguard guards[MAX_SERVERS];
    struct simio ios[MAX_SERVERS];
    struct store *stores[MAX_SERVERS];
    char *dirs[MAX_SERVERS];
    int removed[MAX_SERVERS]; /* Left the configuration, then stopped. */
    struct rv_rng rng;
    uint64_t seed;
    struct raft_apply req;
    int in_flight;
    uint64_t in_flight_id;
    struct write writes[MAX_WRITES + 1]; /* Write id i has step i. */
    uint64_t next_id;
    uint64_t next_seq[4];
    int is_broken; /* An invariant failed inside a callback. */
    char why[256];
    char addrs[MAX_SERVERS][16];
    uint64_t n_fetches;
    /* Membership: servers 3 and 4 join (spare, standby, voter), then one
     * voter other than the leader leaves; one change at a time. */
    struct raft_change change_req;
    int change_in_flight;
    unsigned n_joined;
    raft_id leaver;
    int with_members; /* SIM_MEMBERS: run the membership plan. */
    int long_log;     /* Not SIM_SHORT_LOG: keep the whole log. */
    int plan_done;
    unsigned n_steps, change_from; /* The plan starts at step change_from. */
    uint64_t n_changes;
};

/* ---- Entries ------------------------------------------------------------ */

/* Write 0 creates the run; write i > 0 logs one point at step i. */
static int
sim_entry(const struct sim *s, uint64_t id, struct raft_buffer *out)
{
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__CommandBatch b = RV__COMMAND_BATCH__INIT;
    Rv__RunCreate c = RV__RUN_CREATE__INIT;
    Rv__LogBatch lb = RV__LOG_BATCH__INIT;
    Rv__Metrics m = RV__METRICS__INIT;
    struct proto_metrics_builder mb;
    char errmsg[RV_ERRMSG_SIZE];
    struct rv_buf e;

    proto_metrics_init(&mb);
    cmd.has_client_id = cmd.has_seq = 1;
    cmd.client_id = s->writes[id].client_id;
    cmd.seq = s->writes[id].seq;
    if (id == 0) {
        c.run_id = "sim";
        c.project = "p";
        c.experiment = "e";
        c.created_at_ms = 1;
        cmd.body_case = RV__COMMAND__BODY_RUN_CREATE;
        cmd.run_create = &c;
    } else {
        if (proto_metrics_add(&mb, "w", NULL, (int64_t)id, (int64_t)id,
                              (double)id, NULL) != RV_OK)
            return -1;
        proto_metrics_view(&mb, &m);
        lb.run_id = "sim";
        lb.metrics = &m;
        cmd.body_case = RV__COMMAND__BODY_LOG_BATCH;
        cmd.log_batch = &lb;
    }
    b.n_commands = 1;
    b.commands = cmds;
    rv_buf_init(&e);
    int rc = proto_envelope_encode(&b, &e, errmsg);
    proto_metrics_free(&mb);
    if (rc != RV_OK)
        return -1;
    out->base = raft_malloc(e.len);
    out->len = e.len;
    if (out->base == NULL) {
        rv_buf_free(&e);
        return -1;
    }
    memcpy(out->base, e.data, e.len);
    rv_buf_free(&e);
    return 0;
}

static void
sim_apply_cb(struct raft_apply *req, int status, void *result)
{
    struct sim *s = req->data;
    struct write *w = &s->writes[s->in_flight_id];
    s->in_flight = 0;
    if (status != 0) {
        /* Leadership lost or a dropped request: the outcome is unknown and
         * the same (client_id, seq) will be proposed again. */
        w->state = W_UNKNOWN;
        return;
    }
    const struct raftfsm_result *r = result;
    if (r->n_results != 1 || r->results[0].code != RV_OK) {
        s->is_broken = 1;
        snprintf(s->why, sizeof s->why, "write %llu: result %s: %.160s",
                 (unsigned long long)s->in_flight_id,
                 r->n_results ? rv_errname(r->results[0].code) : "none",
                 r->n_results ? r->results[0].message : "");
        return;
    }
    w->state = W_ACKED;
}

/* The running leader of the highest term. Not the fixture's leader: it
 * wants every connected server that believes itself a member to follow
 * that leader, which a removed server that never learnt of its removal
 * does not (it stays a candidate). */
static unsigned
sim_leader(struct sim *s)
{
    unsigned l = MAX_SERVERS;
    for (unsigned i = 0; i < MAX_SERVERS; i++) {
        struct raft *r = raft_fixture_get(&s->f, i);
        if (raft_fixture_alive(&s->f, i) && !s->removed[i] &&
            raft_state(r) == RAFT_LEADER &&
            (l == MAX_SERVERS ||
             r->current_term > raft_fixture_get(&s->f, l)->current_term))
            l = i;
    }
    return l;
}

/* Propose the oldest write with an unknown outcome, else a new one. */
static void
sim_propose(struct sim *s)
{
    unsigned l = sim_leader(s);
    if (s->in_flight || l == MAX_SERVERS)
        return;
    uint64_t id = UINT64_MAX;
    for (uint64_t i = 0; i < s->next_id && id == UINT64_MAX; i++)
        if (s->writes[i].state == W_UNKNOWN)
            id = i;
    if (id == UINT64_MAX) {
        if (s->next_id > MAX_WRITES)
            return;
        id = s->next_id++;
        uint64_t client = 1 + rv_rng_below(&s->rng, 3);
        s->writes[id].client_id = client;
        s->writes[id].seq = ++s->next_seq[client];
    }
    struct raft_buffer buf;
    if (sim_entry(s, id, &buf) != 0)
        abort();
    s->req.data = s;
    int rc =
        raft_apply(raft_fixture_get(&s->f, l), &s->req, &buf, 1, sim_apply_cb);
    if (rc != 0) {
        raft_free(buf.base);
        if (s->writes[id].state == W_NONE)
            s->writes[id].state = W_UNKNOWN;
        return;
    }
    s->writes[id].state =
        s->writes[id].state == W_UNKNOWN ? W_UNKNOWN : W_PENDING;
    s->in_flight = 1;
    s->in_flight_id = id;
}

/* ---- Catch-up ----------------------------------------------------------- */

/* The in-process stand-in for the RPC fetch: "sim:<i>" is server i's
 * store; a paused or isolated-from-everyone server does not answer. */
static int
sim_fetch(void *data, const char *addr, uint64_t from, uint64_t to,
          struct rv_buf *out, char *errmsg)
{
    struct sim *s = data;
    unsigned i;
    uint64_t last;
    if (sscanf(addr, "sim:%u", &i) != 1 || i >= MAX_SERVERS ||
        !raft_fixture_alive(&s->f, i) || s->removed[i]) {
        rv_errmsg_printf(errmsg, "%s does not answer", addr);
        return RV_EUNAVAILABLE;
    }
    s->n_fetches++;
    return store_fetch_records(s->stores[i], from, to, RAFTFSM_FETCH_BYTES, out,
                               &last, errmsg);
}

/* Entry 2 on every server: the members' fetch addresses (node_put), as a
 * real cluster records them, so descriptors name every source. */
static int
sim_node_entry(struct raft_entry *e)
{
    Rv__NodePut np[N_INITIAL];
    Rv__Command cmd[N_INITIAL], *cmds[N_INITIAL];
    Rv__CommandBatch b = RV__COMMAND_BATCH__INIT;
    char raft[N_INITIAL][16], rpc[N_INITIAL][16], errmsg[RV_ERRMSG_SIZE];
    struct rv_buf buf;
    for (unsigned i = 0; i < N_INITIAL; i++) {
        rv__node_put__init(&np[i]);
        rv__command__init(&cmd[i]);
        snprintf(raft[i], sizeof raft[i], "%u", i + 1);
        snprintf(rpc[i], sizeof rpc[i], "sim:%u", i);
        np[i].id = i + 1;
        np[i].raft_addr = raft[i];
        np[i].rpc_addr = rpc[i];
        cmd[i].body_case = RV__COMMAND__BODY_NODE_PUT;
        cmd[i].node_put = &np[i];
        cmds[i] = &cmd[i];
    }
    b.n_commands = N_INITIAL;
    b.commands = cmds;
    rv_buf_init(&buf);
    if (proto_envelope_encode(&b, &buf, errmsg) != RV_OK)
        return -1;
    memset(e, 0, sizeof *e);
    e->term = 1;
    e->type = RAFT_COMMAND;
    e->buf.base = raft_malloc(buf.len);
    e->buf.len = buf.len;
    if (e->buf.base != NULL)
        memcpy(e->buf.base, buf.data, buf.len);
    rv_buf_free(&buf);
    return e->buf.base != NULL ? 0 : -1;
}

/* ---- Fixture ------------------------------------------------------------ */

static struct sim *sim_now; /* The run whose ios are wrapped. */

static struct simio *
simio_of(struct raft_io *io)
{
    for (unsigned i = 0; i < MAX_SERVERS; i++)
        if (sim_now->ios[i].io == io)
            return &sim_now->ios[i];
    abort(); /* Every fixture io is wrapped at open. */
}

static int
simio_truncate(struct raft_io *io, raft_index index)
{
    struct simio *w = simio_of(io);
    if (w->installing != 0 && index == 1) {
        /* The fixture's own truncate, as an install's put completes: its
         * array restarts after the snapshot. raft itself never truncates
         * at 1 (entry 1 is the bootstrap configuration on every server). */
        int rc = w->truncate(io, 1);
        if (rc == 0)
            w->offset = w->installing;
        w->installing = 0;
        return rc;
    }
    w->n_translated += w->offset > 0;
    return w->truncate(io, index > w->offset ? index - w->offset : 1);
}

static int
simio_snapshot_put(struct raft_io *io, unsigned trailing,
                   struct raft_io_snapshot_put *req,
                   const struct raft_snapshot *snapshot,
                   raft_io_snapshot_put_cb cb)
{
    struct simio *w = simio_of(io);
    int rc = w->snapshot_put(io, trailing, req, snapshot, cb);
    if (rc == 0 && trailing == 0) { /* An InstallSnapshot being stored. */
        w->installing = snapshot->index;
        w->n_installs++;
    }
    return rc;
}

static void
simio_wrap(struct simio *w, struct raft_io *io)
{
    memset(w, 0, sizeof *w);
    w->io = io;
    w->truncate = io->truncate;
    w->snapshot_put = io->snapshot_put;
    io->truncate = simio_truncate;
    io->snapshot_put = simio_snapshot_put;
}

static int
sim_open(struct sim *s, uint64_t seed, int mode)
{
    char errmsg[RV_ERRMSG_SIZE];
    uint64_t same_timeout = 0; /* RV_SIM_TIMEOUT_MS: one for every server. */
    if (rv_parse_u64(getenv("RV_SIM_TIMEOUT_MS"), &same_timeout) != 0 ||
        same_timeout > 60000)
        same_timeout = 0;
    memset(s, 0, sizeof *s);
    sim_now = s;
    s->seed = seed;
    s->with_members = (mode & SIM_MEMBERS) != 0;
    s->long_log = (mode & SIM_SHORT_LOG) == 0;
    s->plan_done = !s->with_members;
    rv_rng_seed(&s->rng, seed);
    if (raft_fixture_initialize(&s->f) != 0)
        return -1;
    /* Every server is created up front; servers N_INITIAL.. start with an
     * empty log and no configuration, as a joining node does, and stay
     * idle until the leader adds them. */
    for (unsigned i = 0; i < MAX_SERVERS; i++) {
        s->dirs[i] = rv_test_tmpdir("sim");
        struct store_config cfg = {s->dirs[i], (size_t)256 << 20, 1 << 20, NULL,
                                   NULL};
        if (store_open(&s->stores[i], &cfg, errmsg) != RV_OK)
            return -1;
        raftfsm_init(&s->fsms[i], s->stores[i], NULL);
        snprintf(s->addrs[i], sizeof s->addrs[i], "sim:%u", i);
        s->fsms[i].self_addr = s->addrs[i];
        s->fsms[i].fetch = sim_fetch;
        s->fsms[i].fetch_data = s;
        s->fsms[i].catch_up_secs = 1;
        if (raft_fixture_grow(&s->f, &s->fsms[i].fsm) != 0)
            return -1;
        struct raft *r = raft_fixture_get(&s->f, i);
        raftfsm_attach(&s->fsms[i], r);
        if ((mode & SIM_GUARD) && raftguard_install(&s->guards[i], r) != 0)
            return -1;
        s->guards[i].no_rollback_fix = (mode & SIM_NO_ROLLBACK_FIX) != 0;
        simio_wrap(&s->ios[i], r->io);
        /* A short trailing log: a follower paused or cut off for a few
         * dozen entries is sent an InstallSnapshot (the descriptor) and
         * its FSM catches up through sim_fetch. */
        raft_set_snapshot_threshold(r, 64);
        raft_set_snapshot_trailing(r, s->long_log ? 100000 : 32);
        raft_set_pre_vote(r, true);
        /* The fixture keeps each server's "randomized" timeout fixed, so
         * close values can split votes forever: space them out. */
        unsigned timeout =
            1000 + 400 * i + (unsigned)rv_rng_below(&s->rng, 100);
        if (same_timeout > 0) /* Split votes forever (RELIABILITY.md). */
            timeout = (unsigned)same_timeout;
        raft_fixture_set_randomized_election_timeout(&s->f, i, timeout);
        raft_fixture_set_network_latency(
            &s->f, i, 5 + (unsigned)rv_rng_below(&s->rng, 20));
        raft_fixture_set_disk_latency(&s->f, i,
                                      1 + (unsigned)rv_rng_below(&s->rng, 10));
    }
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < N_INITIAL; i++)
        rc = raft_configuration_add(&conf, i + 1, s->f.servers[i].address,
                                    RAFT_VOTER);
    for (unsigned i = 0; rc == 0 && i < N_INITIAL; i++)
        rc = raft_bootstrap(raft_fixture_get(&s->f, i), &conf);
    raft_configuration_close(&conf);
    for (unsigned i = 0; rc == 0 && i < N_INITIAL; i++) {
        struct raft_entry e;
        rc = sim_node_entry(&e);
        if (rc == 0)
            raft_fixture_add_entry(&s->f, i, &e);
    }
    if (rc != 0 || raft_fixture_start(&s->f) != 0)
        return -1;
    for (unsigned i = N_INITIAL; i < MAX_SERVERS && !s->with_members; i++) {
        raft_fixture_kill(&s->f, i); /* Never joins: out of every check. */
        s->removed[i] = 1;
    }
    /* The plan starts once the leader's log was snapshotted and trimmed,
     * so each joiner is sent an InstallSnapshot first. */
    s->change_from = 800 + (unsigned)rv_rng_below(&s->rng, 2000);
    return 0;
}

static void
sim_close(struct sim *s)
{
    raft_fixture_close(&s->f);
    for (unsigned i = 0; i < MAX_SERVERS; i++)
        raftguard_close(&s->guards[i]);
    for (unsigned i = 0; i < MAX_SERVERS; i++) {
        raftfsm_close(&s->fsms[i]);
        store_close(s->stores[i]);
        rv_test_rmdir(s->dirs[i]);
    }
    sim_now = NULL;
}

static void
sim_heal(struct sim *s)
{
    for (unsigned i = 0; i < MAX_SERVERS; i++) {
        if (s->removed[i])
            continue;
        if (!raft_fixture_alive(&s->f, i))
            raft_fixture_revive(&s->f, i);
        for (unsigned j = 0; j < MAX_SERVERS; j++)
            if (i != j && !s->removed[j])
                raft_fixture_desaturate(&s->f, i, j);
    }
}

/* ---- Membership --------------------------------------------------------- */

static const struct raft_server *
sim_member(const struct raft *r, raft_id id)
{
    for (unsigned k = 0; k < r->configuration.n; k++)
        if (r->configuration.servers[k].id == id)
            return &r->configuration.servers[k];
    return NULL;
}

static void
sim_change_cb(struct raft_change *req, int status)
{
    struct sim *s = req->data;
    s->change_in_flight = 0;
    if (status == 0)
        s->n_changes++;
}

/* One step of the plan, through the leader as raft/membership.c does: the
 * next step is read from the leader's configuration, so a change whose
 * callback was lost with a leader is neither repeated nor skipped. A step
 * counts as done only once its configuration entry is committed. */
static void
sim_change(struct sim *s)
{
    unsigned l = sim_leader(s);
    if (s->change_in_flight || l == MAX_SERVERS || s->plan_done)
        return;
    struct raft *r = raft_fixture_get(&s->f, l);
    int committed = r->configuration_uncommitted_index == 0;
    const struct raft_server *m;
    int rc;
    s->change_req.data = s;
    if (s->n_joined < MAX_SERVERS - N_INITIAL) {
        unsigned j = N_INITIAL + s->n_joined;
        raft_id id = j + 1;
        m = sim_member(r, id);
        if (m == NULL)
            rc = raft_add(r, &s->change_req, id, s->f.servers[j].address,
                          sim_change_cb);
        else if (m->role == RAFT_SPARE)
            rc =
                raft_assign(r, &s->change_req, id, RAFT_STANDBY, sim_change_cb);
        else if (m->role == RAFT_STANDBY)
            rc = raft_assign(r, &s->change_req, id, RAFT_VOTER, sim_change_cb);
        else {
            if (committed)
                s->n_joined++;
            return;
        }
    } else {
        if (s->leaver == 0 ||
            (s->leaver == r->id && sim_member(r, s->leaver) != NULL)) {
            /* A voter other than the leader: any of the five. */
            unsigned k = (unsigned)rv_rng_below(&s->rng, MAX_SERVERS - 1);
            s->leaver = (k >= l ? k + 1 : k) + 1;
        }
        if (sim_member(r, s->leaver) == NULL) {
            if (committed) { /* Gone for good: stop it, never revive it. */
                unsigned k = (unsigned)s->leaver - 1;
                raft_fixture_kill(&s->f, k);
                s->removed[k] = 1;
                s->plan_done = 1;
            }
            return;
        }
        rc = raft_remove(r, &s->change_req, s->leaver, sim_change_cb);
    }
    if (rc == 0)
        s->change_in_flight = 1;
}

/* One random fault, write or membership step, then one step of the
 * cluster. */
static void
sim_step(struct sim *s)
{
    uint64_t r = rv_rng_below(&s->rng, 1000);
    unsigned i = (unsigned)rv_rng_below(&s->rng, MAX_SERVERS);
    if (s->removed[i] && r >= 300 && r < 317)
        r = 1000; /* No fault on a stopped, removed server. */
    if (r < 300) {
        sim_propose(s);
    } else if (r < 304) {
        for (unsigned j = 0; j < MAX_SERVERS; j++) /* Isolate server i. */
            if (j != i && !s->removed[j]) {
                raft_fixture_saturate(&s->f, i, j);
                raft_fixture_saturate(&s->f, j, i);
            }
    } else if (r < 306) {
        unsigned j = (i + 1) % MAX_SERVERS; /* A one-way cut. */
        if (!s->removed[j])
            raft_fixture_saturate(&s->f, i, j);
    } else if (r < 314) {
        sim_heal(s);
    } else if (r < 317) {
        unsigned n_alive = 0, n_present = 0;
        for (unsigned k = 0; k < MAX_SERVERS; k++) {
            n_present += !s->removed[k];
            n_alive += !s->removed[k] && raft_fixture_alive(&s->f, k);
        }
        if (n_alive == n_present && !s->in_flight)
            raft_fixture_kill(&s->f, i); /* A pause: memory is kept. */
    } else if (r < 327 && s->n_steps >= s->change_from) {
        sim_change(s);
    }
    s->n_steps++;
    raft_fixture_step(&s->f);
}

static bool
sim_has_leader(struct raft_fixture *f, void *arg)
{
    (void)f;
    return sim_leader(arg) != MAX_SERVERS;
}

static bool
sim_all_applied(struct raft_fixture *f, void *arg)
{
    struct sim *s = arg;
    unsigned l = sim_leader(s);
    if (l == MAX_SERVERS)
        return false;
    raft_index last = raft_last_index(raft_fixture_get(f, l));
    for (unsigned i = 0; i < MAX_SERVERS; i++)
        if (!s->removed[i] && raft_last_applied(raft_fixture_get(f, i)) < last)
            return false;
    return true;
}

/* Heal, then propose until every write is acknowledged and the membership
 * plan is done, then wait until every present server applied the leader's
 * last index. */
static int
sim_finish(struct sim *s, char *why, size_t size)
{
    sim_heal(s);
    for (int round = 0; round < 20000; round++) {
        int done = !s->in_flight && s->plan_done && !s->change_in_flight;
        for (uint64_t i = 0; i < s->next_id && done; i++)
            done = s->writes[i].state == W_ACKED;
        if (done)
            break;
        sim_propose(s);
        sim_change(s);
        raft_fixture_step(&s->f);
    }
    unsigned l = sim_leader(s);
    if (getenv("RV_SIM_DEBUG") != NULL) {
        fprintf(stderr, "seed %llu ", (unsigned long long)s->seed);
        fprintf(stderr,
                "finish: leader %u in_flight %d id %llu joined %u leaver "
                "%llu plan_done %d\n",
                l, s->in_flight, (unsigned long long)s->in_flight_id,
                s->n_joined, (unsigned long long)s->leaver, s->plan_done);
        for (unsigned i = 0; i < MAX_SERVERS; i++) {
            struct raft *r = raft_fixture_get(&s->f, i);
            fprintf(stderr,
                    "  server %u alive %d removed %d state %d term %llu last "
                    "%llu applied %llu commit %llu store %llu failed %d %s\n",
                    i, raft_fixture_alive(&s->f, i), s->removed[i],
                    raft_state(r), (unsigned long long)r->current_term,
                    (unsigned long long)raft_last_index(r),
                    (unsigned long long)raft_last_applied(r),
                    (unsigned long long)r->commit_index,
                    (unsigned long long)store_applied_index(s->stores[i]),
                    s->fsms[i].is_failed, s->fsms[i].errmsg);
        }
    }
    if (!s->plan_done) {
        snprintf(why, size,
                 "the membership plan did not finish (joined %u, leaver "
                 "%llu)",
                 s->n_joined, (unsigned long long)s->leaver);
        return -1;
    }
    if (l == MAX_SERVERS &&
        !raft_fixture_step_until(&s->f, sim_has_leader, s, 10000)) {
        snprintf(why, size, "no leader after the heal");
        return -1;
    }
    /* Every server left is a voter of the leader's configuration. */
    struct raft *lr = raft_fixture_get(&s->f, sim_leader(s));
    for (unsigned i = 0; i < MAX_SERVERS; i++) {
        const struct raft_server *m = sim_member(lr, i + 1);
        if (s->removed[i] != (m == NULL) ||
            (m != NULL && m->role != RAFT_VOTER)) {
            snprintf(why, size, "server %u: membership differs from the plan",
                     i);
            return -1;
        }
    }
    if (!raft_fixture_step_until(&s->f, sim_all_applied, s, 120000)) {
        snprintf(why, size, "the cluster did not settle");
        return -1;
    }
    return 0;
}

/* Every acknowledged write present exactly once on every replica still
 * in the configuration (the removed server stopped wherever it was). */
static int
sim_check(struct sim *s, char *why, size_t size)
{
    uint8_t d0[STORE_DIGEST_BYTES], d[STORE_DIGEST_BYTES];
    unsigned ref = s->removed[0] ? 1 : 0;
    store_digest(s->stores[ref], d0);
    for (unsigned i = ref + 1; i < MAX_SERVERS; i++) {
        if (s->removed[i])
            continue;
        store_digest(s->stores[i], d);
        if (store_applied_index(s->stores[i]) !=
                store_applied_index(s->stores[ref]) ||
            memcmp(d, d0, sizeof d) != 0) {
            snprintf(why, size, "server %u: index %llu vs %llu or digest", i,
                     (unsigned long long)store_applied_index(s->stores[i]),
                     (unsigned long long)store_applied_index(s->stores[ref]));
            return -1;
        }
    }
    for (unsigned i = 0; i < MAX_SERVERS; i++) {
        if (s->removed[i])
            continue;
        char errmsg[RV_ERRMSG_SIZE];
        struct store_read *r;
        struct store_point *pts = NULL;
        size_t n = 0;
        struct store_history_query q = {"sim",     "w",       NULL,
                                        INT64_MIN, INT64_MAX, 0};
        if (store_read_begin(s->stores[i], STORE_EVERY_TEAM, &r, errmsg) !=
            RV_OK)
            return -1;
        int rc = store_metric_history(r, &q, &pts, &n, errmsg);
        store_read_end(r);
        if (rc != RV_OK && !(rc == RV_ENOTFOUND && s->next_id <= 1)) {
            snprintf(why, size, "server %u: history: %.160s", i, errmsg);
            return -1;
        }
        static unsigned char seen[MAX_WRITES + 1];
        memset(seen, 0, sizeof seen);
        for (size_t k = 0; k < n; k++) {
            int64_t step = pts[k].step;
            if (step < 1 || step >= (int64_t)s->next_id || seen[step]++) {
                snprintf(why, size, "server %u: step %lld twice or unknown", i,
                         (long long)step);
                free(pts);
                return -1;
            }
        }
        free(pts);
        for (uint64_t id = 1; id < s->next_id; id++) {
            if (s->writes[id].state == W_ACKED && !seen[id]) {
                snprintf(why, size, "server %u: acknowledged write %llu lost",
                         i, (unsigned long long)id);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- Tests -------------------------------------------------------------- */

struct sim_totals {
    uint64_t n_acked, n_unknown, n_snapshots, n_clamped;
    uint64_t n_catch_ups, n_fetched;
    uint64_t n_commit_clamped;
    uint64_t n_changes, n_installs, n_translated;
    uint64_t n_rollbacks; /* Configuration rollbacks made by the guard. */
};

/* Run one seed; 0 if every check holds, else -1 with the reason in why. */
static int
sim_run(struct sim *s, uint64_t seed, int mode, struct sim_totals *tot,
        char *why, size_t size)
{
    int rc = sim_open(s, seed, mode);
    if (rc != 0) {
        snprintf(why, size, "fixture setup failed");
        return -1;
    }
    raft_fixture_step_until(&s->f, sim_has_leader, s, 10000);
    for (int step = 0; step < 4000 && !s->is_broken; step++)
        sim_step(s);
    for (uint64_t i = 0; i < s->next_id; i++)
        tot->n_unknown += s->writes[i].state == W_UNKNOWN;
    rc = s->is_broken ? -1 : sim_finish(s, why, size);
    if (s->is_broken)
        snprintf(why, size, "%s", s->why);
    if (rc == 0)
        rc = sim_check(s, why, size);
    tot->n_changes += s->n_changes;
    for (unsigned i = 0; i < MAX_SERVERS; i++) {
        tot->n_installs += s->ios[i].n_installs;
        tot->n_translated += s->ios[i].n_translated;
        tot->n_snapshots += s->fsms[i].n_snapshots;
        tot->n_catch_ups += s->fsms[i].n_catch_ups;
        tot->n_fetched += s->fsms[i].n_fetched_records;
        tot->n_clamped += s->guards[i].n_clamped;
        tot->n_commit_clamped += s->guards[i].n_commit_clamped;
        tot->n_rollbacks += s->guards[i].n_rollbacks;
        if (s->fsms[i].is_failed) {
            rc = -1;
            snprintf(why, size, "server %u failed: %.160s", i,
                     s->fsms[i].errmsg);
        }
    }
    for (uint64_t i = 0; i < s->next_id; i++)
        tot->n_acked += s->writes[i].state == W_ACKED;
    sim_close(s);
    return rc;
}

static void
test_replicas_converge_and_acked_writes_apply_once(void)
{
    const char *scale = getenv("RV_TEST_SCALE");
    int n_seeds = scale && strcmp(scale, "small") == 0 ? 40 : 200;
    uint64_t base = rv_test_seed(1);
    struct sim_totals tot = {0};
    static struct sim s;
    for (int k = 0; k < n_seeds; k++) {
        uint64_t seed = base + (uint64_t)k;
        char why[256] = "";
        int mode = SIM_GUARD | (seed % 2 == 0 ? SIM_MEMBERS : SIM_SHORT_LOG);
        if (sim_run(&s, seed, mode, &tot, why, sizeof why) != 0) {
            RV_CHECK_FAIL("seed %llu: %s", (unsigned long long)seed, why);
            return;
        }
    }
    printf(
        "sim: %d seeds, %llu writes acknowledged (%llu retried after an "
        "unknown outcome), %llu snapshots, %llu catch-ups through a "
        "descriptor fetching %llu records, %llu results and %llu leader "
        "commits clamped by the guard; %llu membership changes, %llu "
        "snapshots installed, %llu truncates after one\n",
        n_seeds, (unsigned long long)tot.n_acked,
        (unsigned long long)tot.n_unknown, (unsigned long long)tot.n_snapshots,
        (unsigned long long)tot.n_catch_ups, (unsigned long long)tot.n_fetched,
        (unsigned long long)tot.n_clamped,
        (unsigned long long)tot.n_commit_clamped,
        (unsigned long long)tot.n_changes, (unsigned long long)tot.n_installs,
        (unsigned long long)tot.n_translated);
    CHECK(tot.n_acked > (uint64_t)n_seeds * 20);
    CHECK(tot.n_snapshots > 0);
    CHECK(tot.n_unknown > 0); /* Leaders were lost with writes in flight. */
    /* Every even seed finished its plan (sim_finish); odd seeds installed
     * snapshots on followers left behind, which then fetched records. */
    CHECK(tot.n_changes >= (uint64_t)n_seeds / 2 * 5);
    CHECK(tot.n_installs > 0 && tot.n_catch_ups > 0 && tot.n_fetched > 0);
}

/* Without the guard, raft 0.15 commits an entry a majority does not hold
 * (ARCHITECTURE.md): among the first 40 seeds some end with a server shut down
 * by raft's own conflict check or a lost write. If Debian's raft is fixed,
 * this test fails and the guard can go. */
static void
test_without_the_guard_raft_015_breaks(void)
{
    static struct sim s;
    struct sim_totals tot = {0};
    int n_broken = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        char why[256] = "";
        n_broken += sim_run(&s, seed, 0, &tot, why, sizeof why) != 0;
    }
    printf("sim without the guard: %d of 40 seeds broken\n", n_broken);
    CHECK(n_broken > 0);
}

/* raft 0.15's membershipRollback (a follower truncating an uncommitted
 * configuration entry) decodes the last committed configuration entry
 * from the log without checking that the log still holds it: once a
 * snapshot trimmed it, the follower dereferences NULL. Membership changes
 * with a short trailing log reach it within a few dozen seeds. Without the
 * guard's rollback (work-around 4 in raftguard.h) the runs, in a child
 * process, must die (SIGSEGV; ASan reports it and exits 1) within
 * N_ROLLBACK_SEEDS; with it the same seeds must all pass every check, the
 * guard having rolled back at least once. If Debian's raft is fixed, the
 * first half fails and the work-around can go. */
#define N_ROLLBACK_SEEDS 50
static void
test_membership_rollback_after_a_snapshot(void)
{
    const int mode = SIM_GUARD | SIM_MEMBERS | SIM_SHORT_LOG;
    char *root = rv_test_tmpdir("simrollback");
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        static struct sim s;
        struct sim_totals tot = {0};
        close(fds[0]);
        setenv("TMPDIR", root, 1); /* The parent removes what is left. */
        for (uint64_t seed = 1; seed <= N_ROLLBACK_SEEDS; seed++) {
            char why[256] = "";
            if (write(fds[1], &seed, sizeof seed) != (ssize_t)sizeof seed)
                _exit(3);
            sim_run(&s, seed, mode | SIM_NO_ROLLBACK_FIX, &tot, why,
                    sizeof why);
        }
        _exit(0);
    }
    close(fds[1]);
    uint64_t seed, last = 0;
    while (read(fds[0], &seed, sizeof seed) == (ssize_t)sizeof seed)
        last = seed;
    close(fds[0]);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    printf("sim membership with a short log, raft's own rollback: the run "
           "of seed %llu %s %d\n",
           (unsigned long long)last,
           WIFSIGNALED(st) ? "died of signal" : "exited with",
           WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    CHECK(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 1));
    CHECK(last < N_ROLLBACK_SEEDS || WIFSIGNALED(st));
    rv_test_rmdir(root);

    static struct sim s;
    struct sim_totals tot = {0};
    for (seed = 1; seed <= N_ROLLBACK_SEEDS; seed++) {
        char why[256] = "";
        if (sim_run(&s, seed, mode, &tot, why, sizeof why) != 0) {
            RV_CHECK_FAIL("seed %llu: %s", (unsigned long long)seed, why);
            return;
        }
    }
    printf("sim membership with a short log, the guard's rollback: %d "
           "seeds pass, %llu membership changes, %llu snapshots installed, "
           "%llu rollbacks by the guard\n",
           N_ROLLBACK_SEEDS, (unsigned long long)tot.n_changes,
           (unsigned long long)tot.n_installs,
           (unsigned long long)tot.n_rollbacks);
    CHECK(tot.n_rollbacks > 0);
    CHECK(tot.n_installs > 0);
}

/* A guard that cannot be registered is refused, and the raft it was for is
 * left unwrapped (not silently half-guarded): its caller must not start it.
 * Zeroed rafts and ios do: installing a guard only swaps the io's function
 * pointers, and none is called here. */
static void
test_guard_past_the_limit_is_refused(void)
{
    static struct raft rafts[RAFTGUARD_MAX_GUARDS + 1];
    static struct raft_io ios[RAFTGUARD_MAX_GUARDS + 1];
    static struct raftguard guards[RAFTGUARD_MAX_GUARDS + 1];
    int marker = 0;
    for (size_t i = 0; i <= RAFTGUARD_MAX_GUARDS; i++) {
        rafts[i].io = &ios[i];
        rafts[i].data = &marker;
    }
    for (size_t i = 0; i < RAFTGUARD_MAX_GUARDS; i++) {
        CHECK(raftguard_install(&guards[i], &rafts[i]) == 0);
        CHECK(rafts[i].data == &guards[i] && guards[i].user_data == &marker);
    }
    struct raft *last = &rafts[RAFTGUARD_MAX_GUARDS];
    CHECK(raftguard_install(&guards[RAFTGUARD_MAX_GUARDS], last) ==
          RAFT_TOOMANY);
    CHECK(last->data == &marker && last->io->send == NULL &&
          last->io->append == NULL);
    /* A slot freed by a close is taken again. */
    raftguard_close(&guards[0]);
    CHECK(raftguard_install(&guards[RAFTGUARD_MAX_GUARDS], last) == 0);
    for (size_t i = 1; i <= RAFTGUARD_MAX_GUARDS; i++)
        raftguard_close(&guards[i]);
}

/* The commit clamp on a fake io: the guard's start hands the io its own
 * receive function, which is called with AppendEntries as a transport
 * would; raft's receive function (here a recorder) must see leader_commit
 * at most prev_log_index + n_entries. */
static raft_io_recv_cb clamp_guard_recv;
static struct raft_message clamp_seen;
static int clamp_n_seen;

static int
clamp_io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
               raft_io_recv_cb recv)
{
    (void)io, (void)msecs, (void)tick;
    clamp_guard_recv = recv;
    return 0;
}

static void
clamp_raft_recv(struct raft_io *io, struct raft_message *m)
{
    (void)io;
    clamp_seen = *m;
    clamp_n_seen++;
}

static raft_index
clamp_deliver(struct raft_io *io, raft_index prev, unsigned n,
              raft_index commit)
{
    struct raft_entry entries[4];
    struct raft_message m;
    memset(&m, 0, sizeof m);
    memset(entries, 0, sizeof entries);
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.append_entries.term = 3;
    m.append_entries.prev_log_index = prev;
    m.append_entries.prev_log_term = 2;
    m.append_entries.leader_commit = commit;
    m.append_entries.entries = n ? entries : NULL;
    m.append_entries.n_entries = n;
    int before = clamp_n_seen;
    clamp_guard_recv(io, &m);
    /* Anything else than one AppendEntries delivered as it was, bar its
     * leader_commit, fails the caller's comparison. */
    if (clamp_n_seen != before + 1 ||
        clamp_seen.type != RAFT_IO_APPEND_ENTRIES ||
        clamp_seen.append_entries.prev_log_index != prev ||
        clamp_seen.append_entries.n_entries != n)
        return (raft_index)-1;
    return clamp_seen.append_entries.leader_commit;
}

static void
test_guard_clamps_leader_commit(void)
{
    static struct raft r;
    static struct raft_io io;
    static struct raftguard g;
    memset(&r, 0, sizeof r);
    memset(&io, 0, sizeof io);
    r.io = &io;
    io.data = &r;
    io.start = clamp_io_start;
    CHECK(raftguard_install(&g, &r) == 0);
    CHECK(r.io->start(r.io, 100, NULL, clamp_raft_recv) == 0);
    CHECK(clamp_guard_recv != NULL && clamp_guard_recv != clamp_raft_recv);
    /* An empty AppendEntries at prev 9 proves entries 1..9 only: a leader
     * commit of 11 must not reach a stale entry 10 of the follower. */
    CHECK(clamp_deliver(&io, 9, 0, 11) == 9);
    CHECK(clamp_deliver(&io, 10, 2, 50) == 12);
    /* What the request covers passes unchanged. */
    CHECK(clamp_deliver(&io, 10, 2, 12) == 12);
    CHECK(clamp_deliver(&io, 10, 2, 7) == 7);
    CHECK(clamp_deliver(&io, 0, 0, 0) == 0);
    CHECK(g.n_commit_clamped == 2);
    /* Other messages pass untouched. */
    struct raft_message v;
    memset(&v, 0, sizeof v);
    v.type = RAFT_IO_REQUEST_VOTE;
    v.request_vote.last_log_index = 40;
    clamp_guard_recv(&io, &v);
    CHECK(clamp_seen.type == RAFT_IO_REQUEST_VOTE &&
          clamp_seen.request_vote.last_log_index == 40);
    /* Switched off, raft 0.15 gets leader_commit as sent. */
    g.no_commit_clamp = 1;
    CHECK(clamp_deliver(&io, 9, 0, 11) == 11);
    CHECK(g.n_commit_clamped == 2);
    raftguard_close(&g);
}

/* An AppendEntries of n entries after prev, each entry's buf.len its
 * index (to check which ones raft is handed), in one raft_malloc'd batch
 * as raft_uv decodes them. */
static void
trim_request(struct raft_message *m, raft_index prev, unsigned n)
{
    memset(m, 0, sizeof *m);
    m->type = RAFT_IO_APPEND_ENTRIES;
    m->append_entries.term = 7;
    m->append_entries.prev_log_index = prev;
    m->append_entries.prev_log_term = prev == 0 ? 0 : 3;
    m->append_entries.leader_commit = prev + n;
    m->append_entries.n_entries = n;
    m->append_entries.entries = raft_malloc(n * sizeof(struct raft_entry));
    void *batch = raft_malloc(64);
    CHECK(m->append_entries.entries != NULL && batch != NULL);
    for (unsigned i = 0; i < n; i++) {
        struct raft_entry *e = &m->append_entries.entries[i];
        memset(e, 0, sizeof *e);
        e->term = prev + 1 + i <= 110 ? 3 : 5; /* term 5 from 111 on */
        e->type = RAFT_COMMAND;
        e->buf.len = prev + 1 + i;
        e->batch = batch;
    }
}

/* What raft does with a request it received: frees its batch and array. */
static void
trim_release(struct raft_message *m)
{
    struct raft_append_entries *a = &m->append_entries;
    if (a->n_entries > 0 && a->entries[0].batch != NULL)
        raft_free(a->entries[0].batch);
    raft_free(a->entries);
}

static void
test_guard_trims_entries_under_the_snapshot(void)
{
    static struct raft r;
    static struct raft_io io;
    static struct raftguard g;
    struct raft_message m;
    memset(&r, 0, sizeof r);
    memset(&io, 0, sizeof io);
    r.io = &io;
    io.data = &r;
    io.start = clamp_io_start;
    /* A follower restarted from a snapshot at 120 (term 5) keeping 20
     * trailing entries: its log holds 101..130. */
    r.log.offset = 100;
    r.log.snapshot.last_index = 120;
    r.log.snapshot.last_term = 5;
    CHECK(raftguard_install(&g, &r) == 0);
    CHECK(r.io->start(r.io, 100, NULL, clamp_raft_recv) == 0);
    /* Entries 1..125 after prev 0: 1..120 are the snapshot's; raft gets
     * 121..125 after 120, with the term the leader sent for 120. */
    trim_request(&m, 0, 125);
    clamp_guard_recv(&io, &m);
    const struct raft_append_entries *a = &clamp_seen.append_entries;
    CHECK(a->prev_log_index == 120 && a->prev_log_term == 5);
    CHECK(a->n_entries == 5 && a->entries[0].buf.len == 121 &&
          a->entries[4].buf.len == 125);
    CHECK(a->leader_commit == 125);
    trim_release(&clamp_seen);
    /* Entries 1..3, all in the snapshot: a heartbeat at 120, nothing left
     * to free (ASan finds a leak or a double free). */
    trim_request(&m, 0, 3);
    clamp_guard_recv(&io, &m);
    CHECK(a->prev_log_index == 120 && a->prev_log_term == 5);
    CHECK(a->n_entries == 0 && a->entries == NULL);
    CHECK(a->leader_commit <= 120);
    trim_release(&clamp_seen);
    CHECK(g.n_trimmed == 2);
    /* Entries after an index the log still holds pass unchanged. */
    trim_request(&m, 105, 10);
    clamp_guard_recv(&io, &m);
    CHECK(a->prev_log_index == 105 && a->n_entries == 10 &&
          a->entries[0].buf.len == 106);
    trim_release(&clamp_seen);
    /* Switched off: raft 0.15 gets the request as sent. */
    g.no_snapshot_trim = 1;
    trim_request(&m, 0, 125);
    clamp_guard_recv(&io, &m);
    CHECK(a->prev_log_index == 0 && a->n_entries == 125);
    trim_release(&clamp_seen);
    CHECK(g.n_trimmed == 2);
    raftguard_close(&g);
}

static void
test_snapshot_descriptor_round_trip(void)
{
    struct raftfsm_descriptor d, d2;
    struct vlog_segment_info segs[3] = {
        {1, 1, 100, 4096}, {2, 101, 250, 8000}, {3, 251, 251, 64}};
    struct rv_buf b;
    memset(&d, 0, sizeof d);
    d.index = 12345;
    for (int i = 0; i < STORE_DIGEST_BYTES; i++)
        d.digest[i] = (uint8_t)(i * 13);
    d.n_sources = 2;
    snprintf(d.sources[0], sizeof d.sources[0], "tcp://127.0.0.1:7481");
    snprintf(d.sources[1], sizeof d.sources[1], "tcp://127.0.0.2:7481");
    d.segments = segs;
    d.n_segments = 3;
    rv_buf_init(&b);
    raftfsm_descriptor_encode(&d, &b);
    CHECK(raftfsm_descriptor_decode(b.data, b.len, &d2) == RV_OK);
    CHECK(d2.index == 12345 && memcmp(d.digest, d2.digest, 16) == 0);
    CHECK(d2.n_sources == 2 && strcmp(d2.sources[1], d.sources[1]) == 0);
    CHECK(d2.n_segments == 3 && d2.segments[1].first_index == 101 &&
          d2.segments[2].bytes == 64);
    raftfsm_descriptor_free(&d2);
    /* A newer descriptor version (a newer runvault's snapshot) is refused
     * as such; an older one is malformed. */
    b.data[7] = RAFTFSM_SNAPSHOT_VERSION + 1;
    CHECK(raftfsm_descriptor_decode(b.data, b.len, &d2) == RV_EVERSION);
    raftfsm_descriptor_free(&d2);
    b.data[7] = RAFTFSM_SNAPSHOT_VERSION - 1;
    CHECK(raftfsm_descriptor_decode(b.data, b.len, &d2) == RV_EMALFORMED);
    raftfsm_descriptor_free(&d2);
    b.data[7] = RAFTFSM_SNAPSHOT_VERSION;
    /* Every truncation and every single-byte change of the header fails or
     * decodes within bounds; none reads outside the buffer. */
    for (size_t n = 0; n < b.len; n++) {
        CHECK(raftfsm_descriptor_decode(b.data, n, &d2) != RV_OK);
        raftfsm_descriptor_free(&d2);
    }
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x5a;
        if (raftfsm_descriptor_decode(b.data, b.len, &d2) == RV_OK)
            CHECK(d2.n_sources <= RAFTFSM_MAX_SOURCES);
        raftfsm_descriptor_free(&d2);
        b.data[i] ^= 0x5a;
    }
    rv_buf_free(&b);
}

static const struct rv_test tests[] = {
    {"replicas_converge_and_acked_writes_apply_once",
     test_replicas_converge_and_acked_writes_apply_once},
    {"without_the_guard_raft_015_breaks",
     test_without_the_guard_raft_015_breaks},
    {"membership_rollback_after_a_snapshot",
     test_membership_rollback_after_a_snapshot},
    {"guard_past_the_limit_is_refused", test_guard_past_the_limit_is_refused},
    {"guard_clamps_leader_commit", test_guard_clamps_leader_commit},
    {"guard_trims_entries_under_the_snapshot",
     test_guard_trims_entries_under_the_snapshot},
    {"snapshot_descriptor_round_trip", test_snapshot_descriptor_round_trip},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
