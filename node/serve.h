/* `runvault serve` and `runvault cluster ...` (see main.c for the usage).
 *
 * Settings come from, later ones winning: the embedded defaults (DESIGN
 * Appendix A), the config file (--config FILE or RUNVAULT_CONFIG: lines of
 * "key = value", '#' comments, keys as the flags without "--"), RUNVAULT_*
 * variables (RUNVAULT_DATA_DIR, RUNVAULT_RAFT_ADDR, ...), then flags.
 * Both return the process exit code (base/exit.h: RV_EXIT_*). */
#ifndef RV_NODE_SERVE_H
#define RV_NODE_SERVE_H

int rv_cmd_serve(int argc, char **argv);
int rv_cmd_cluster(int argc, char **argv);

#endif /* RV_NODE_SERVE_H */
