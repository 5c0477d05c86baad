/* Seeding a raft log for a store restored from a backup (runvault
 * restore): the store is at index N, so raft's log must start after N.
 *
 * raft_seed writes, with raft_uv's own io (load, set_term, snapshot_put in
 * its install mode, which sets the next append index to N + 1), a snapshot
 * at index N and term 1 holding the store's descriptor (raftfsm.h) and the
 * new cluster's configuration (every peer a voter, or this node alone).
 * On start raft loads it, restore keeps the store (it is at N already),
 * the configuration is the snapshot's, and the next entry is N + 1; serve's
 * bootstrap then answers RAFT_CANTBOOTSTRAP (term 1 is set), which is a
 * restart. No patched raft: only the io interface raft itself uses. */
#ifndef RV_RAFT_SEED_H
#define RV_RAFT_SEED_H

#include "base/log.h"
#include "raft/replica.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* Seed data_dir/raft (created; it must hold no raft files) for node id at
 * raft_addr, peers[0, n_peers) the voters of the new cluster (n_peers 0:
 * this node alone), the store at index with digest. RV_OK, RV_EEXIST (a
 * raft log is there), RV_EINVAL, RV_EIO (raft_uv failed; detail in
 * errmsg). */
int raft_seed(const char *data_dir, uint64_t id, const char *raft_addr,
              const struct replica_peer *peers, size_t n_peers, uint64_t index,
              const uint8_t digest[STORE_DIGEST_BYTES], char *errmsg);

#endif /* RV_RAFT_SEED_H */
