/* The runvault daemon: configuration, the data-dir lock, signals, the
 * replica and the RPC server, joining and announcing (serve.h). */
#define _DEFAULT_SOURCE /* flock */
#include "node/serve.h"

#include "base/clock.h"
#include "base/exit.h"
#include "base/fsdir.h"
#include "base/log.h"
#include "base/parse.h"
#include "gateway/gateway.h"
#include "node/cli/flags.h"
#include "node/defaults.h"
#include "node/serve_auth.h"
#include "raft/replica.h"
#include "rpc/client/client.h"
#include "rpc/client/tls.h"
#include "rpc/server.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef RV_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define NODE_MAX_VALUE     1024
#define NODE_STOP_GRACE_MS 10000 /* node__watchdog: after a clean stop */
#define NODE_FAIL_GRACE_MS 2000  /* and after a fail-stop */

/* Every setting, by its flag name. Values are text until checked. */
enum node_key {
    K_CONFIG,
    K_ID,
    K_DATA_DIR,
    K_HTTP_ADDR,
    K_RPC_ADDR,
    K_RAFT_ADDR,
    K_PEERS,
    K_JOIN,
    K_DURABILITY,
    K_ELECTION_MS,
    K_HEARTBEAT_MS,
    K_SYNC_MS,
    K_SNAPSHOT_BYTES,
    K_SEGMENT_BYTES,
    K_RPC_WORKERS,
    K_LOG_LEVEL,
    K_AUTH,
    K_INSECURE,
    K_NODE_TOKEN_FILE,
    K_TLS_CERT,
    K_TLS_KEY,
    K_TLS_CA,
    K_CHECK_INTERVAL_MS,
    K_CHECK_ENTRIES,
    K_RETENTION_INTERVAL_MS,
    K_MIN_FREE_BYTES,
    K_COMPACT_MIN_BYTES,
    K_COMPACT_RATE,
    K_COUNT
};

/* Every setting, as a flag of serve (flags.h); env and def give its
 * variable and default, the config file key is its name. */
static const struct cli_flag node_keys[K_COUNT] = {
    {"config", 1, 0, "RUNVAULT_CONFIG", "", "config file"},
    {"id", 1, 0, "RUNVAULT_ID", "1", "this node's raft id (> 0)"},
    {"data-dir", 1, 0, "RUNVAULT_DATA_DIR", NODE_DEFAULT_DATA_DIR,
     "data directory"},
    {"http-addr", 1, 0, "RUNVAULT_HTTP_ADDR", NODE_DEFAULT_HTTP_ADDR,
     "HTTP address (announced; served by the gateway)"},
    {"rpc-addr", 1, 0, "RUNVAULT_RPC_ADDR", NODE_DEFAULT_RPC_ADDR,
     "native RPC address"},
    {"raft-addr", 1, 0, "RUNVAULT_RAFT_ADDR", NODE_DEFAULT_RAFT_ADDR,
     "raft address, IPv4 a.b.c.d:port"},
    {"peers", 1, 0, "RUNVAULT_PEERS", "",
     "initial voters, 1=IP:PORT,2=IP:PORT,... (the same on each)"},
    {"join", 1, 0, "RUNVAULT_JOIN", "",
     "endpoint(s) of a cluster to join (http:// or tcp://)"},
    {"durability", 1, 0, "RUNVAULT_DURABILITY", "buffered",
     "memory | buffered | strict"},
    {"election-ms", 1, 0, "RUNVAULT_ELECTION_MS", "600",
     "raft election timeout"},
    {"heartbeat-ms", 1, 0, "RUNVAULT_HEARTBEAT_MS", "60", "raft heartbeat"},
    {"sync-ms", 1, 0, "RUNVAULT_SYNC_MS", "100",
     "background store sync period"},
    {"snapshot-bytes", 1, 0, "RUNVAULT_SNAPSHOT_BYTES", "67108864",
     "snapshot after this many bytes of log"},
    {"segment-bytes", 1, 0, "RUNVAULT_SEGMENT_BYTES", "67108864",
     "vlog segment size (4096 to 1073741824)"},
    {"rpc-workers", 1, 0, "RUNVAULT_RPC_WORKERS", "32", "RPC worker threads"},
    {"log-level", 1, 0, "RUNVAULT_LOG_LEVEL", "info",
     "debug | info | warn | error"},
    {"auth", 1, 0, "RUNVAULT_AUTH", "off",
     "on | off: tokens required (off only on loopback addresses)"},
    {"insecure", 0, 0, "RUNVAULT_INSECURE", "",
     "allow auth off on non-loopback addresses"},
    {"node-token-file", 1, 0, "RUNVAULT_NODE_TOKEN_FILE", "",
     "a cluster-admin token for node-to-node requests without TLS "
     "(default: DATA_DIR/admin.token when present)"},
    {"tls-cert", 1, 0, "RUNVAULT_TLS_CERT", "",
     "this node's certificate (PEM), signed by the cluster CA"},
    {"tls-key", 1, 0, "RUNVAULT_TLS_KEY", "", "its private key (PEM)"},
    {"tls-ca", 1, 0, "RUNVAULT_TLS_CA", "",
     "the cluster CA (PEM); all three: https, tls+tcp:// RPC, mutual-TLS "
     "raft"},
    {"check-interval-ms", 1, 0, "RUNVAULT_CHECK_INTERVAL_MS", "60000",
     "the leader proposes a divergence check at least this often while "
     "entries arrive (0: never)"},
    {"check-entries", 1, 0, "RUNVAULT_CHECK_ENTRIES", "10000",
     "... or after this many entries (0: by time only)"},
    {"retention-interval-ms", 1, 0, "RUNVAULT_RETENTION_INTERVAL_MS", "60000",
     "how often the leader looks for runs to trash or purge (0: never)"},
    {"min-free-bytes", 1, 0, "RUNVAULT_MIN_FREE_BYTES", "268435456",
     "refuse writes (507) below this much free space on the data disk "
     "(0: no threshold)"},
    {"compact-min-bytes", 1, 0, "RUNVAULT_COMPACT_MIN_BYTES", "67108864",
     "the leader proposes a compaction once purges freed this many bytes "
     "(looked at every retention interval; 0: only when asked)"},
    {"compact-rate", 1, 0, "RUNVAULT_COMPACT_RATE", "16777216",
     "bytes per second a compaction reads and writes at most (0: unpaced)"},
};

struct node_settings {
    char v[K_COUNT][NODE_MAX_VALUE];
};

static int
node__set(struct node_settings *st, int k, const char *value, const char *where)
{
    if (strlen(value) >= NODE_MAX_VALUE) {
        fprintf(stderr, "runvault: %s: the value of %s is too long\n", where,
                node_keys[k].name);
        return -1;
    }
    if (!node_keys[k].has_value) {
        /* A switch (insecure): on in the file or the environment only by
         * a yes-word, so "insecure = no" does not turn it on. */
        static const char *const yes[] = {"1", "yes", "true", "on"};
        static const char *const no[] = {"", "0", "no", "false", "off"};
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
            if (strcmp(value, yes[i]) == 0)
                value = "1";
        for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
            if (strcmp(value, no[i]) == 0)
                value = "";
        if (value[0] != '\0' && strcmp(value, "1") != 0) {
            fprintf(stderr,
                    "runvault: %s: %s takes yes or no (1/true/on, "
                    "0/false/off), not '%s'\n",
                    where, node_keys[k].name, value);
            return -1;
        }
    }
    snprintf(st->v[k], NODE_MAX_VALUE, "%s", value);
    return 0;
}

static int
node__load_file(struct node_settings *st, const char *path)
{
    char line[2 * NODE_MAX_VALUE];
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "runvault: config %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (unsigned no = 1; rc == 0 && fgets(line, sizeof line, f) != NULL;
         no++) {
        char *p = line, *end;
        line[strcspn(line, "#\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            continue;
        size_t kn = strcspn(p, " \t=");
        int k = cli_flags_find(node_keys, K_COUNT, p, kn);
        char *v = p + kn;
        while (*v == ' ' || *v == '\t' || *v == '=')
            v++;
        end = v + strlen(v);
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (k < 0 || k == K_CONFIG) {
            fprintf(stderr, "runvault: %s:%u: unknown key '%.*s'\n", path, no,
                    (int)kn, p);
            rc = -1;
        } else {
            char where[512];
            snprintf(where, sizeof where, "%s:%u", path, no);
            rc = node__set(st, k, v, where);
        }
    }
    fclose(f);
    return rc;
}

/* serve --help: every setting with its variable and default. */
static void
node__usage(FILE *f)
{
    fprintf(f, "usage: runvault serve [--FLAG VALUE | --FLAG=VALUE]...\n"
               "Settings, later ones winning: the defaults, the config file "
               "(lines of\n\"key = value\", keys as the flags), RUNVAULT_* "
               "variables, flags.\n");
    for (int k = 0; k < K_COUNT; k++)
        fprintf(f, "  --%-15s %s; $%s%s%s\n", node_keys[k].name,
                node_keys[k].help, node_keys[k].env,
                node_keys[k].def[0] ? ", default " : "", node_keys[k].def);
}

/* Defaults, then the file, then the environment, then the flags;
 * CLI_FLAGS_HELP for --help, -1 after a message. */
static int
node__settings(int argc, char **argv, struct node_settings *st)
{
    struct cli_spec spec = {"runvault serve", node_keys, K_COUNT,
                            CLI_FLAGS_ALL,    0,         0};
    struct cli_args f;
    int rc = cli_flags_parse(&spec, argc, argv, &f);
    if (rc != 0)
        return rc;
    for (int k = 0; k < K_COUNT; k++)
        snprintf(st->v[k], NODE_MAX_VALUE, "%s", node_keys[k].def);
    const char *config =
        f.v[K_CONFIG] != NULL ? f.v[K_CONFIG] : getenv(node_keys[K_CONFIG].env);
    if (config != NULL && config[0] != '\0' && node__load_file(st, config) != 0)
        return -1;
    for (int k = 0; k < K_COUNT; k++) {
        const char *e = getenv(node_keys[k].env);
        if (k != K_CONFIG && e != NULL && node__set(st, k, e, "environment"))
            return -1;
    }
    for (int k = 0; k < K_COUNT; k++)
        if (f.v[k] != NULL && node__set(st, k, f.v[k], "flags") != 0)
            return -1;
    return 0;
}

static int
node__u64(const struct node_settings *st, int k, uint64_t min, uint64_t max,
          uint64_t *out)
{
    uint64_t v;
    if (rv_parse_u64(st->v[k], &v) != 0 || v < min || v > max) {
        fprintf(stderr,
                "runvault: %s must be a number in [%llu, %llu], not "
                "'%s'\n",
                node_keys[k].name, (unsigned long long)min,
                (unsigned long long)max, st->v[k]);
        return -1;
    }
    *out = v;
    return 0;
}

/* "1=IP:PORT,2=IP:PORT" */
int
node_parse_peers(const char *s, struct replica_peer *peers, size_t *n)
{
    *n = 0;
    for (const char *p = s; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *end;
        uint64_t id;
        if (eq == NULL || *n == REPLICA_MAX_PEERS ||
            rv_parse_u64_prefix(p, &id, &end) != 0)
            return -1;
        size_t an = len - (size_t)(eq + 1 - p);
        if (end != eq || id == 0 || an == 0 || an > CONTRACT_MAX_ADDR_BYTES)
            return -1;
        for (size_t i = 0; i < *n; i++)
            if (peers[i].id == id)
                return -1;
        peers[*n].id = id;
        memcpy(peers[*n].raft_addr, eq + 1, an);
        peers[*n].raft_addr[an] = '\0';
        (*n)++;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* ---- The data-dir lock --------------------------------------------------- */

static int
node__lock(const char *dir, int *fd_out)
{
    char path[4096];
    int err = rv_mkdir_durable(dir);
    if (err != 0) {
        fprintf(stderr, "runvault: mkdir %s: %s\n", dir, strerror(err));
        return RV_EXIT_FAILURE;
    }
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "runvault: open %s: %s\n", path, strerror(errno));
        return RV_EXIT_FAILURE;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr,
                "runvault: %s is in use by another runvault process (%s)\n",
                dir, strerror(errno));
        close(fd);
        return RV_EXIT_LOCKED;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n) {
        /* The pid is informative only. */
    }
    *fd_out = fd;
    return RV_EXIT_OK;
}

/* ---- Joining and announcing (a helper thread) --------------------------- */

struct node {
    struct replica *rep;
    struct rpc_server *rpc;
    struct gateway *gw;
    struct rv_log log;
    uint64_t id;
    char raft_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char rpc_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char http_addr[CONTRACT_MAX_ADDR_BYTES + 1];
    char join[NODE_MAX_VALUE];
    const char *data_dir;
    int is_auth;                              /* --auth on */
    char node_token[RV_TOKEN_TEXT_CHARS + 1]; /* "" if none; fixed at start */
    /* TLS (all NULL without): the files, read once; the raft port's
     * server configuration; the raft transport's settings. Owned. */
    struct rvc_tls *tls;
    struct transport_tls_config raft_tls;
    atomic_int is_stopping;
    pthread_t helper;
    /* The stop watchdog (node__watchdog). */
    pthread_t watchdog;
    pthread_mutex_t watchdog_lock;
    pthread_cond_t watchdog_cond;
    int is_stopped, exit_code;
};

/* Once the replica stopped, the rest of the stop (gateway, RPC server,
 * store close) gets NODE_STOP_GRACE_MS (NODE_FAIL_GRACE_MS after a
 * fail-stop, which a supervisor should see quickly); past that the process
 * exits with the replica's code without finishing it. Nothing acknowledged
 * is lost: raft's log is on disk and the store is crash-safe (replayed at
 * start). */
static void *
node__watchdog(void *arg)
{
    struct node *n = arg;
    struct timespec until;
    int grace_ms =
        n->exit_code == RV_EXIT_OK ? NODE_STOP_GRACE_MS : NODE_FAIL_GRACE_MS;
    rv_deadline_mono(&until, (uint64_t)grace_ms);
    pthread_mutex_lock(&n->watchdog_lock);
    int rc = 0;
    while (!n->is_stopped && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&n->watchdog_cond, &n->watchdog_lock,
                                    &until);
    int is_stopped = n->is_stopped;
    pthread_mutex_unlock(&n->watchdog_lock);
    if (!is_stopped) {
        rv_logf(&n->log, RV_LOG_ERROR, "node",
                "the stop did not finish within %d ms: exiting now (code %d)",
                grace_ms, n->exit_code);
        _exit(n->exit_code);
    }
    return NULL;
}

static void
node__sleep(struct node *n, unsigned ms)
{
    for (unsigned t = 0; t < ms && !atomic_load(&n->is_stopping); t += 50)
        rv_clock_sleep_ms(50);
}

static int
node__join(struct node *n)
{
    Rv__Request req = RV__REQUEST__INIT;
    Rv__ClusterRequest cr = RV__CLUSTER_REQUEST__INIT;
    char errmsg[RV_ERRMSG_SIZE];
    struct rvc *c;
    cr.op = RV__CLUSTER_OP__CLUSTER_ADD;
    cr.has_id = 1;
    cr.id = n->id;
    cr.raft_addr = n->raft_addr;
    cr.rpc_addr = n->rpc_addr;
    cr.http_addr = n->http_addr;
    req.body_case = RV__REQUEST__BODY_CLUSTER;
    req.cluster = &cr;
    if (n->node_token[0] != '\0')
        req.token = n->node_token;
    if (rvc_open(&c, n->join, errmsg) != RV_OK) {
        rv_logf(&n->log, RV_LOG_ERROR, "node", "join: %s", errmsg);
        return -1;
    }
    rvc_set_timeouts(c, 2000, 2000);
    rvc_set_tls(c, n->tls);
    int is_joined = 0;
    for (unsigned attempt = 0; !is_joined && !atomic_load(&n->is_stopping);
         attempt++) {
        Rv__Response *resp = NULL;
        int rc = rvc_call(c, &req, &resp, errmsg);
        if (rc == RV_OK && resp->code == RV_OK) {
            is_joined = 1;
        } else if (attempt % 10 == 0) {
            rv_logf(&n->log, RV_LOG_INFO, "node",
                    "join via %s: not yet a voter (%s)", n->join,
                    rc == RV_OK ? (resp->message ? resp->message : "")
                                : errmsg);
        }
        rvc_response_free(resp);
        if (!is_joined)
            node__sleep(n, 1000);
    }
    rvc_close(c);
    if (is_joined)
        rv_logf(&n->log, RV_LOG_INFO, "node", "joined the cluster as a voter");
    return is_joined ? 0 : -1;
}

/* A follower whose addresses the store does not know (a static cluster
 * member) asks the leader to record them. */
static void
node__announce(struct node *n)
{
    struct replica_info info;
    struct store_read *rd;
    struct store_node *nodes = NULL;
    size_t n_nodes = 0;
    char errmsg[RV_ERRMSG_SIZE], leader_rpc[CONTRACT_MAX_ADDR_BYTES + 1] = "";
    int is_known = 0;
    replica_info(n->rep, &info);
    if (info.leader_id == 0 || info.leader_id == n->id ||
        info.state != RAFT_FOLLOWER)
        return;
    if (store_read_begin(replica_store(n->rep), STORE_EVERY_TEAM, &rd,
                         errmsg) != RV_OK)
        return;
    if (store_nodes_list(rd, &nodes, &n_nodes, errmsg) == RV_OK) {
        for (size_t i = 0; i < n_nodes; i++) {
            if (nodes[i].id == n->id &&
                strcmp(nodes[i].raft_addr, n->raft_addr) == 0 &&
                strcmp(nodes[i].rpc_addr, n->rpc_addr) == 0 &&
                strcmp(nodes[i].http_addr, n->http_addr) == 0)
                is_known = 1;
            if (nodes[i].id == info.leader_id)
                snprintf(leader_rpc, sizeof leader_rpc, "%s",
                         nodes[i].rpc_addr);
        }
    }
    free(nodes);
    store_read_end(rd);
    if (is_known || leader_rpc[0] == '\0')
        return;
    Rv__Request req = RV__REQUEST__INIT;
    Rv__WriteRequest wr = RV__WRITE_REQUEST__INIT;
    Rv__Command cmd = RV__COMMAND__INIT, *cmds[1] = {&cmd};
    Rv__NodePut np = RV__NODE_PUT__INIT;
    Rv__Response *resp = NULL;
    np.id = n->id;
    np.raft_addr = n->raft_addr;
    np.rpc_addr = n->rpc_addr;
    np.http_addr = n->http_addr;
    cmd.body_case = RV__COMMAND__BODY_NODE_PUT;
    cmd.node_put = &np;
    wr.n_commands = 1;
    wr.commands = cmds;
    req.body_case = RV__REQUEST__BODY_WRITE;
    req.write = &wr;
    if (n->node_token[0] != '\0')
        req.token = n->node_token;
    if (rvc_call_once_tls(leader_rpc, n->tls, &req, 2000, &resp, errmsg) ==
            RV_OK &&
        resp->code == RV_OK)
        rv_logf(&n->log, RV_LOG_INFO, "node",
                "recorded this node's addresses through the leader");
    rvc_response_free(resp);
}

static void *
node__helper(void *arg)
{
    struct node *n = arg;
    int is_auth_done = !n->is_auth;
    if (n->join[0] != '\0' && node__join(n) != 0)
        return NULL;
    while (!atomic_load(&n->is_stopping)) {
        if (!is_auth_done)
            is_auth_done =
                node_auth_bootstrap(n->rpc, n->rep, n->data_dir, &n->log);
        node__announce(n);
        node__sleep(n, is_auth_done ? 1000 : 200);
    }
    return NULL;
}

/* ---- serve ----------------------------------------------------------------
 */

static int
node__exit_of(int rc)
{
    switch (rc) {
    case RV_ECORRUPT:
        return RV_EXIT_CORRUPT;
    case RV_EINVAL:
        return RV_EXIT_USAGE;
    case RV_EIO:
    case RV_ENOSPACE:
        return RV_EXIT_IO;
    case RV_EUNAVAILABLE:
        return RV_EXIT_RAFT;
    case RV_EVERSION:
        return RV_EXIT_VERSION;
    default:
        return RV_EXIT_FAILURE;
    }
}

/* --auth, --insecure and the node's token. Auth off with a listen address
 * off loopback is refused unless --insecure says so. 0, or -1 after a
 * message. */
static int
node__auth_configure(const struct node_settings *st, struct node *n)
{
    char path[4096], errmsg[RV_ERRMSG_SIZE];
    if (strcmp(st->v[K_AUTH], "on") != 0 && strcmp(st->v[K_AUTH], "off") != 0) {
        fprintf(stderr, "runvault: --auth must be on or off, not '%s'\n",
                st->v[K_AUTH]);
        return -1;
    }
    n->is_auth = strcmp(st->v[K_AUTH], "on") == 0;
    n->data_dir = st->v[K_DATA_DIR];
    for (int k = K_HTTP_ADDR;
         !n->is_auth && st->v[K_INSECURE][0] == '\0' && k <= K_RAFT_ADDR; k++) {
        if (!node_addr_is_loopback(st->v[k])) {
            fprintf(stderr,
                    "runvault: --%s %s is not a loopback address and "
                    "authentication is off: anyone who can reach it could "
                    "read and delete every team's runs. Start with --auth on "
                    "(or --insecure on a trusted network)\n",
                    node_keys[k].name, st->v[k]);
            return -1;
        }
    }
    const char *file = st->v[K_NODE_TOKEN_FILE];
    snprintf(path, sizeof path, "%s/%s", st->v[K_DATA_DIR],
             NODE_ADMIN_TOKEN_FILE);
    int rc =
        node_token_read(file[0] != '\0' ? file : path, n->node_token, errmsg);
    if (rc != RV_OK && (file[0] != '\0' || rc != RV_ENOTFOUND)) {
        fprintf(stderr, "runvault: node token: %s\n", errmsg);
        return -1;
    }
    return 0;
}

/* The settings into rc and n (all but rc's fetcher); RV_EXIT_OK, or
 * RV_EXIT_USAGE after a message. */
static int
node__configure(const struct node_settings *st, struct replica_config *rc,
                struct replica_peer *peers, struct node *n, uint64_t *workers)
{
    uint64_t id, election, heartbeat, sync_ms, snap, segment;
    uint64_t check_ms, check_entries, retention_ms, min_free;
    uint64_t compact_min, compact_rate;
    enum rv_log_level level;
    memset(rc, 0, sizeof *rc);
    if (node__u64(st, K_ID, 1, UINT32_MAX, &id) != 0 ||
        node__u64(st, K_ELECTION_MS, 50, 60000, &election) != 0 ||
        node__u64(st, K_HEARTBEAT_MS, 10, 10000, &heartbeat) != 0 ||
        node__u64(st, K_SYNC_MS, 1, 10000, &sync_ms) != 0 ||
        node__u64(st, K_SNAPSHOT_BYTES, 1 << 20, (uint64_t)1 << 40, &snap) ||
        node__u64(st, K_SEGMENT_BYTES, 4096, 1u << 30, &segment) != 0 ||
        node__u64(st, K_RPC_WORKERS, 1, 1024, workers) != 0 ||
        node__u64(st, K_CHECK_INTERVAL_MS, 0, 86400000, &check_ms) != 0 ||
        node__u64(st, K_CHECK_ENTRIES, 0, UINT32_MAX, &check_entries) != 0 ||
        node__u64(st, K_RETENTION_INTERVAL_MS, 0, 86400000, &retention_ms) !=
            0 ||
        node__u64(st, K_MIN_FREE_BYTES, 0, (uint64_t)1 << 50, &min_free) != 0 ||
        node__u64(st, K_COMPACT_MIN_BYTES, 0, (uint64_t)1 << 50,
                  &compact_min) != 0 ||
        node__u64(st, K_COMPACT_RATE, 0, (uint64_t)1 << 40, &compact_rate) != 0)
        return RV_EXIT_USAGE;
    if (rv_log_level_parse(st->v[K_LOG_LEVEL], &level) != 0 ||
        replica_durability_parse(st->v[K_DURABILITY], &rc->durability) != 0) {
        fprintf(stderr, "runvault: bad log-level '%s' or durability '%s'\n",
                st->v[K_LOG_LEVEL], st->v[K_DURABILITY]);
        return RV_EXIT_USAGE;
    }
    if (node_parse_peers(st->v[K_PEERS], peers, &rc->n_peers) != 0) {
        fprintf(stderr,
                "runvault: --peers must look like "
                "1=IP:PORT,2=IP:PORT,3=IP:PORT, not '%s'\n",
                st->v[K_PEERS]);
        return RV_EXIT_USAGE;
    }
    if (rc->n_peers > 0 && st->v[K_JOIN][0] != '\0') {
        fprintf(stderr, "runvault: --peers and --join exclude each other\n");
        return RV_EXIT_USAGE;
    }
    for (int k = K_HTTP_ADDR; k <= K_RAFT_ADDR; k++) {
        if (strlen(st->v[k]) > CONTRACT_MAX_ADDR_BYTES || st->v[k][0] == '\0') {
            fprintf(stderr, "runvault: %s must be 1 to %d bytes\n",
                    node_keys[k].name, CONTRACT_MAX_ADDR_BYTES);
            return RV_EXIT_USAGE;
        }
    }
    n->log = (struct rv_log){rv_log_stderr, NULL, (int)level};
    n->id = id;
    memcpy(n->raft_addr, st->v[K_RAFT_ADDR], strlen(st->v[K_RAFT_ADDR]) + 1);
    memcpy(n->rpc_addr, st->v[K_RPC_ADDR], strlen(st->v[K_RPC_ADDR]) + 1);
    memcpy(n->http_addr, st->v[K_HTTP_ADDR], strlen(st->v[K_HTTP_ADDR]) + 1);
    snprintf(n->join, sizeof n->join, "%s", st->v[K_JOIN]);
    if (node__auth_configure(st, n) != 0)
        return RV_EXIT_USAGE;
    /* With --peers and no --raft-addr, this node's address is its entry. */
    const char *raft_flag = getenv("RUNVAULT_RAFT_ADDR");
    for (size_t i = 0; i < rc->n_peers; i++)
        if (peers[i].id == id && (raft_flag == NULL || raft_flag[0] == '\0') &&
            strcmp(st->v[K_RAFT_ADDR], node_keys[K_RAFT_ADDR].def) == 0)
            snprintf(n->raft_addr, sizeof n->raft_addr, "%s",
                     peers[i].raft_addr);
    rc->id = id;
    rc->data_dir = st->v[K_DATA_DIR];
    rc->raft_addr = n->raft_addr;
    rc->rpc_addr = n->rpc_addr;
    rc->http_addr = n->http_addr;
    rc->peers = peers;
    rc->is_join = n->join[0] != '\0';
    rc->election_ms = (unsigned)election;
    rc->heartbeat_ms = (unsigned)heartbeat;
    rc->sync_ms = (unsigned)sync_ms;
    rc->snapshot_bytes = snap;
    rc->segment_bytes = segment;
    rc->check_interval_ms = check_ms;
    rc->check_entries = check_entries;
    rc->retention_interval_ms = retention_ms;
    rc->min_free_bytes = min_free;
    rc->compact_min_bytes = compact_min;
    rc->compact_rate = compact_rate;
    rc->log = &n->log;
    return RV_EXIT_OK;
}

/* TLS from --tls-cert/--tls-key/--tls-ca: none (plain), or all three, read
 * and checked now; the RPC address becomes tls+tcp:// (a tcp:// one is
 * converted). RV_EXIT_OK, or RV_EXIT_USAGE after a message. */
static int
node__tls(const struct node_settings *st, struct node *n,
          struct replica_config *rc)
{
    const char *cert = st->v[K_TLS_CERT], *key = st->v[K_TLS_KEY],
               *ca = st->v[K_TLS_CA];
    int n_given = (cert[0] != '\0') + (key[0] != '\0') + (ca[0] != '\0');
    int is_tls_rpc = strncmp(n->rpc_addr, "tls+", 4) == 0;
    if (n_given == 0 && !is_tls_rpc)
        return RV_EXIT_OK;
    if (n_given != 3) {
        fprintf(stderr, "runvault: TLS needs --tls-cert, --tls-key and "
                        "--tls-ca together (a tls+tcp:// --rpc-addr too)\n");
        return RV_EXIT_USAGE;
    }
    char errmsg[RV_ERRMSG_SIZE];
    int err = rvc_tls_open(&n->tls, ca, cert, key, errmsg);
    if (err != RV_OK) {
        fprintf(stderr, "runvault: TLS: %s\n", errmsg);
        return RV_EXIT_USAGE;
    }
    if (rvc_tls_warning(n->tls) != NULL)
        rv_logf(&n->log, RV_LOG_WARN, "node", "TLS: %s",
                rvc_tls_warning(n->tls));
    if (strncmp(n->rpc_addr, "tcp://", 6) == 0) {
        char a[CONTRACT_MAX_ADDR_BYTES + 1];
        if ((size_t)snprintf(a, sizeof a, "tls+%s", n->rpc_addr) >= sizeof a) {
            fprintf(stderr, "runvault: rpc-addr too long for tls+\n");
            return RV_EXIT_USAGE;
        }
        memcpy(n->rpc_addr, a, sizeof a);
    } else if (strncmp(n->rpc_addr, "tls+tcp://", 10) != 0) {
        fprintf(stderr,
                "runvault: with TLS the rpc-addr must be tcp:// or "
                "tls+tcp://, not '%s'\n",
                n->rpc_addr);
        return RV_EXIT_USAGE;
    }
    n->raft_tls = (struct transport_tls_config){ca, cert, key, &n->log};
    rc->tls = &n->raft_tls;
    return RV_EXIT_OK;
}

static void
node__tls_free(struct node *n)
{
    rvc_tls_close(n->tls);
    n->tls = NULL;
}

/* Start the replica, the RPC server and the gateway (what started is
 * stopped again on a failure); RV_EXIT_OK or the exit code. */
static int
node__start(struct node *n, const struct replica_config *rc, unsigned workers)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    uint64_t t0 = rv_clock_mono_ms();
    int err = replica_start(&n->rep, rc, errmsg);
    if (err != RV_OK) {
        rv_logf(&n->log, RV_LOG_ERROR, "node", "cannot start: %s: %s",
                rv_strerror(err), errmsg);
        return node__exit_of(err);
    }
    err = rpc_server_start(&n->rpc, n->rpc_addr, n->tls, n->rep, workers,
                           &n->log, errmsg);
    if (err == RV_OK)
        rpc_server_set_auth(n->rpc, n->is_auth, n->node_token);
    if (err == RV_OK && n->is_auth && n->node_token[0] == '\0' &&
        n->tls == NULL)
        rv_logf(&n->log, RV_LOG_WARN, "auth",
                "no node token: without TLS this node cannot catch up from "
                "a peer's snapshot or be told of its removal (give it a "
                "cluster-admin token with --node-token-file, or serve with "
                "TLS)");
    if (err == RV_OK) {
        struct gateway_config gc = {
            .http_addr = n->http_addr,
            .tls = n->tls,
            .rpc = n->rpc,
            .rpc_addr = n->rpc_addr,
            .raft_addr = n->raft_addr,
            .data_dir = rc->data_dir,
            .n_workers = workers,
            .log = &n->log,
        };
        err = gateway_start(&n->gw, &gc, errmsg);
        if (err != RV_OK)
            rpc_server_stop(n->rpc);
    }
    if (err != RV_OK) {
        rv_logf(&n->log, RV_LOG_ERROR, "node", "%s", errmsg);
        replica_stop(n->rep);
        replica_wait(n->rep);
        return err == RV_EINVAL ? RV_EXIT_USAGE : RV_EXIT_LISTEN;
    }
    rv_logf(&n->log, RV_LOG_INFO, "node",
            "serving: node %llu, http %s, rpc %s, raft %s, data %s (%llu ms "
            "to start)",
            (unsigned long long)n->id, n->http_addr, n->rpc_addr, n->raft_addr,
            rc->data_dir, (unsigned long long)(rv_clock_mono_ms() - t0));
    return RV_EXIT_OK;
}

/* Tell systemd (Type=notify, $NOTIFY_SOCKET) how the node is doing: READY=1
 * once every listener is up, STOPPING=1 when a stop begins. Built without
 * libsystemd (RV_HAVE_SYSTEMD unset) this does nothing, and the unit must
 * be Type=simple (deploy/pkg/README.md). Without $NOTIFY_SOCKET it does
 * nothing either. */
static void
node__notify(struct node *n, const char *state)
{
#ifdef RV_HAVE_SYSTEMD
    int rc = sd_notify(0, state);
    if (rc < 0)
        rv_logf(&n->log, RV_LOG_WARN, "node", "sd_notify %s: %s", state,
                strerror(-rc));
#else
    (void)n;
    (void)state;
#endif
}

/* Take sigs until the replica stops, then stop the rest and release the
 * data dir (lock_fd); the process exit code. */
static int
node__run(struct node *n, const sigset_t *sigs, int lock_fd)
{
    atomic_store(&n->is_stopping, 0);
    int has_helper = pthread_create(&n->helper, NULL, node__helper, n) == 0;
    struct timespec tick = {0, 100 * 1000000L};
    node__notify(n, "READY=1");
    while (replica_is_running(n->rep)) {
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig > 0) {
            rv_logf(&n->log, RV_LOG_INFO, "node", "signal %d: stopping", sig);
            node__notify(n, "STOPPING=1");
            replica_stop(n->rep);
        }
    }
    atomic_store(&n->is_stopping, 1);
    /* raft is closed and every entry it acknowledged is on disk; what is
     * left must not hang the exit (nng 1.5.2's nng_close can deadlock,
     * nanomsg/nng#1543: seen after a leader's fsync failed). */
    n->exit_code = replica_exit_code(n->rep);
    if (n->exit_code == RV_EXIT_RAFT) {
        /* raft stopped itself and cannot be closed (raft/replica.h): exit
         * at once, as a crash would. */
        rv_logf(&n->log, RV_LOG_ERROR, "node",
                "raft stopped itself: exiting now (code %d)", RV_EXIT_RAFT);
        fflush(stderr);
        _exit(RV_EXIT_RAFT);
    }
    int has_watchdog =
        pthread_create(&n->watchdog, NULL, node__watchdog, n) == 0;
    if (has_helper)
        pthread_join(n->helper, NULL);
    gateway_stop(n->gw);     /* Queued requests are answered 503. */
    rpc_server_stop(n->rpc); /* Workers finish: the replica answered all. */
    int code = replica_wait(n->rep);
    close(lock_fd);
    if (has_watchdog) {
        pthread_mutex_lock(&n->watchdog_lock);
        n->is_stopped = 1;
        pthread_cond_signal(&n->watchdog_cond);
        pthread_mutex_unlock(&n->watchdog_lock);
        pthread_join(n->watchdog, NULL);
    }
    if (code == RV_EXIT_OK)
        rv_logf(&n->log, RV_LOG_INFO, "node", "stopped cleanly");
    return code;
}

int
rv_cmd_serve(int argc, char **argv)
{
    struct node_settings st;
    struct replica_config rc;
    struct replica_peer peers[REPLICA_MAX_PEERS];
    uint64_t workers;
    static struct node n; /* Lives for the process. */
    static struct rvc_fetcher fetcher = {10000, NULL, NULL};

    int is_help = node__settings(argc, argv, &st);
    if (is_help == CLI_FLAGS_HELP)
        node__usage(stdout);
    if (is_help != 0)
        return is_help == CLI_FLAGS_HELP ? RV_EXIT_OK : RV_EXIT_USAGE;
    memset(&n, 0, sizeof n);
    pthread_mutex_init(&n.watchdog_lock, NULL);
    rv_cond_init_mono(&n.watchdog_cond);
    int code = node__configure(&st, &rc, peers, &n, &workers);
    if (code == RV_EXIT_OK)
        code = node__tls(&st, &n, &rc);
    if (code != RV_EXIT_OK) {
        node__tls_free(&n);
        return code;
    }
    fetcher.tls = n.tls;
    fetcher.token = n.node_token[0] != '\0' ? n.node_token : NULL;
    rc.fetch = rvc_fetch;
    rc.fetch_image = rvc_fetch_image;
    rc.fetch_data = &fetcher;

    int lock_fd = -1;
    code = node__lock(st.v[K_DATA_DIR], &lock_fd);
    if (code != RV_EXIT_OK) {
        node__tls_free(&n);
        return code;
    }

    /* Signals are taken by sigtimedwait on this thread only. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    code = node__start(&n, &rc, (unsigned)workers);
    if (code != RV_EXIT_OK) {
        close(lock_fd);
        node__tls_free(&n);
        return code;
    }
    code = node__run(&n, &sigs, lock_fd);
    node__tls_free(&n);
    return code;
}
