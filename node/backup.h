/* runvault verify-backup and runvault restore (node/backup.c): the offline
 * side of a backup made by `runvault backup` (node/cli/backup.c, whose
 * header comment describes DIR's layout and manifest).
 *
 *   runvault verify-backup DIR [--scratch S]
 *       every file's size and SHA-256 against the manifest, then the vlog
 *       replayed into a scratch data dir (under S, else DIR's parent) and
 *       its applied index and digest compared with the manifest's. Exit 0
 *       when both hold, 2 when a file or the digest differs, 1 for bad
 *       arguments, 3 for a local failure.
 *   runvault restore DIR --data-dir D [--id N] [--raft-addr A]
 *                       [--peers 1=A,2=B,...]   (or --from DIR)
 *       the same checks (refuses a backup that does not verify), then D
 *       built from it: the vlog, the index replayed from it, and a raft
 *       log seeded at the backup's index (raft/seed.h) whose configuration
 *       is this node alone or the --peers voters. `runvault serve` on D
 *       (with the same --id and --peers) serves the backup's runs.
 *
 * Both return the process exit code (base/exit.h). Main thread. */
#ifndef RV_NODE_BACKUP_H
#define RV_NODE_BACKUP_H

int rv_cmd_verify_backup(int argc, char **argv);
int rv_cmd_restore(int argc, char **argv);

#endif /* RV_NODE_BACKUP_H */
