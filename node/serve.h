/* `runvault serve` (serve.c) and `runvault cluster ...` (cluster.c).
 *
 * Settings of serve come from, later ones winning: the embedded defaults
 * (node/defaults.h, DESIGN Appendix A), the config file (--config FILE or
 * RUNVAULT_CONFIG: lines of "key = value", '#' comments, keys as the flags
 * without "--"), RUNVAULT_* variables (RUNVAULT_DATA_DIR, ...), then
 * flags (parsed by node/cli/flags.h); `serve --help` lists them all.
 *
 * argv holds the arguments after the command's name. Both return the
 * process exit code (base/exit.h: RV_EXIT_*). Main thread only: serve
 * blocks SIGTERM, SIGINT and SIGHUP in it and takes them there until the
 * node stops; it starts the node's threads and returns once they ended. */
#ifndef RV_NODE_SERVE_H
#define RV_NODE_SERVE_H

#include "raft/replica.h"

#include <stddef.h>

int rv_cmd_serve(int argc, char **argv);
/* --peers "1=IP:PORT,2=IP:PORT" into peers (at most REPLICA_MAX_PEERS,
 * ids > 0 and distinct); 0, or -1 if it does not parse. */
int node_parse_peers(const char *s, struct replica_peer *peers, size_t *n);
int rv_cmd_cluster(int argc, char **argv);

#endif /* RV_NODE_SERVE_H */
