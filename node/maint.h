/* The maintenance commands of the runvault binary, on a data directory no
 * node is serving: verify (every vlog CRC and the digest), rebuild-index
 * (LMDB regenerated from the vlog) and demo (sample runs ingested into the
 * store, queried, then verified; node/demo.c). Each prints its report on
 * stdout, its failure on stderr, and returns the process exit code
 * (base/exit.h): RV_EXIT_OK, RV_EXIT_CORRUPT (stored data is corrupt, or
 * a rebuilt index's digest differs) or RV_EXIT_FAILURE. Main thread. */
#ifndef RV_NODE_MAINT_H
#define RV_NODE_MAINT_H

#include "base/log.h"

/* What every maintenance command takes (--data-dir, --log-level). */
struct maint {
    const char *data_dir;
    struct rv_log log;
};

int maint_verify(struct maint *m);
int maint_rebuild_index(struct maint *m);
int maint_demo(struct maint *m);

/* The exit code of an RV_* outcome of the store: RV_EXIT_OK,
 * RV_EXIT_CORRUPT for RV_ECORRUPT, else RV_EXIT_FAILURE. */
int maint_exit_code(int rc);

#endif /* RV_NODE_MAINT_H */
