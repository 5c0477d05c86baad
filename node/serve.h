/* `runvault serve` and `runvault cluster ...` (see main.c for the usage).
 *
 * Settings come from, later ones winning: the embedded defaults (DESIGN
 * Appendix A), the config file (--config FILE or RUNVAULT_CONFIG: lines of
 * "key = value", '#' comments, keys as the flags without "--"), RUNVAULT_*
 * variables (RUNVAULT_DATA_DIR, RUNVAULT_RAFT_ADDR, ...), then flags. */
#ifndef RV_NODE_SERVE_H
#define RV_NODE_SERVE_H

/* Exit codes of the runvault binary. */
#define RV_EXIT_OK          0
#define RV_EXIT_USAGE       1 /* Bad flags, config file or values. */
#define RV_EXIT_CORRUPT     2 /* Stored data is corrupt. */
#define RV_EXIT_FAILURE     3 /* Another local failure. */
#define RV_EXIT_IO          4 /* Disk error: the node stopped (fail-stop). */
#define RV_EXIT_RAFT        5 /* raft would not start or shut itself down. */
#define RV_EXIT_REMOVED     6 /* The node was removed from the cluster. */
#define RV_EXIT_LOCKED      7 /* Another process holds the data dir. */
#define RV_EXIT_LISTEN      8 /* Cannot listen on an address. */
#define RV_EXIT_UNAVAILABLE 9 /* Client: no node answered. */

int rv_cmd_serve(int argc, char **argv);
int rv_cmd_cluster(int argc, char **argv);

#endif /* RV_NODE_SERVE_H */
