/* The vlog scrub: a background thread that re-reads every record of every
 * sealed vlog segment, one segment at a time, round and round, paced to
 * STORE_SCRUB_BYTES_PER_S, and reports the first damaged record.
 *
 * Bit rot in a sealed segment is found by the CRC of a read that touches
 * it, but a record nobody reads could rot unseen and be served to a
 * catching-up peer or by a later read. The newest segment is not scrubbed
 * (recovery checks it at open). The scrub only reads files (vlog_scrub):
 * it never touches LMDB, so it runs beside the store's writer.
 *
 * What to do about damage is the caller's decision (the replica stops the
 * node with RV_EXIT_CORRUPT: the operator wipes it and it rejoins). */
#ifndef RV_STORE_SCRUB_H
#define RV_STORE_SCRUB_H

#include "base/log.h"

#include <stdint.h>

/* First pass this long after the start, then a pause after each segment
 * that keeps the scrub at this rate (a 64 MiB segment: 2 s of reading
 * spread over 2 s). */
#define STORE_SCRUB_FIRST_MS    1000
#define STORE_SCRUB_PAUSE_MS    100
#define STORE_SCRUB_BYTES_PER_S ((uint64_t)32 << 20)

/* Called once, on the scrub's thread, with the damaged record's
 * description (borrowed: copy it), when a sealed segment fails its check;
 * the scrub then ends. Never called after store_scrub_stop() returned. */
typedef void (*store_scrub_corrupt_fn)(void *data, const char *why);

struct store_scrub;

/* Start scrubbing data_dir/vlog on a thread of its own. data_dir is
 * copied; log and data are borrowed until store_scrub_wait(). Returns
 * RV_OK, or RV_ENOMEM (no memory or no thread: the node may serve without
 * its scrub, reads still check CRCs). Any thread. */
int store_scrub_start(struct store_scrub **out, const char *data_dir,
                      const struct rv_log *log,
                      store_scrub_corrupt_fn on_corrupt, void *data);

/* Ask the scrub to stop and never to call on_corrupt again; returns at
 * once (a segment being read is finished first, off the caller's
 * thread). Any thread, any number of times; NULL is allowed. */
void store_scrub_stop(struct store_scrub *s);

/* Stop, join the thread and free s. NULL is allowed. Not from on_corrupt. */
void store_scrub_wait(struct store_scrub *s);

#endif /* RV_STORE_SCRUB_H */
