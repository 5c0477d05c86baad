/* The sync marker DIR/synced (layout in store_int.h): says whether the
 * LMDB index can be trusted at open, or must be rebuilt from the vlog
 * because an OS crash may have lost pages written since the last sync.
 * Writer thread only (store_open, store_sync, the first apply after a
 * sync). */
#include "base/crc32c.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
store__boot_id(const struct store_config *cfg, char *out)
{
    memset(out, 0, STORE_BOOT_ID_BYTES);
    if (cfg->boot_id != NULL) {
        snprintf(out, STORE_BOOT_ID_BYTES, "%s", cfg->boot_id);
        return;
    }
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f == NULL)
        return;
    if (fgets(out, STORE_BOOT_ID_BYTES, f) == NULL)
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

/* Whether the index must be rebuilt. The marker says "clean at index N"
 * (written by store_sync) or "dirty" (written, and fdatasynced, before the
 * first index write after a sync). A dirty marker from another boot means
 * LMDB pages written since the last sync may have been half lost by an OS
 * crash; so does a damaged marker, or a clean one at another index than
 * LMDB's. No marker at all (a store from before markers): trust. */
int
store__marker_says_rebuild(const struct store *s, char *why, size_t why_n)
{
    uint8_t m[STORE_MARKER_BYTES];
    char boot[STORE_BOOT_ID_BYTES + 1];
    if (s->marker_fd < 0 || s->boot_id[0] == '\0')
        return 0;
    ssize_t n = pread(s->marker_fd, m, sizeof m, 0);
    if (n == 0)
        return 0;
    if (n != (ssize_t)sizeof m || memcmp(m, "RVSYNC02", 8) != 0 ||
        rv_crc32c(0, m, sizeof m - 4) != rv_get_be32(m + sizeof m - 4)) {
        snprintf(why, why_n,
                 "the sync marker %s/synced is damaged (%zd bytes, bad "
                 "magic or CRC), so the index cannot be trusted",
                 s->dir, n);
        return s->applied_index > 0;
    }
    uint64_t synced = rv_get_be64(m + 9 + STORE_BOOT_ID_BYTES);
    memcpy(boot, m + 9, STORE_BOOT_ID_BYTES);
    boot[STORE_BOOT_ID_BYTES] = '\0';
    if (m[8] != 0) {
        snprintf(why, why_n,
                 "was written after its last sync (at %llu) by boot %.36s, "
                 "and this is boot %.36s: an OS crash may have lost some of "
                 "its pages",
                 (unsigned long long)synced, boot, s->boot_id);
        return memcmp(m + 9, s->boot_id, STORE_BOOT_ID_BYTES) != 0;
    }
    if (synced == s->applied_index)
        return 0;
    if (s->applied_index == 0)
        snprintf(why, why_n,
                 "is empty, but the last sync recorded index %llu (the index "
                 "file was removed or replaced)",
                 (unsigned long long)synced);
    else
        snprintf(why, why_n,
                 "does not match the last sync, which recorded index %llu "
                 "(the index file was replaced, or written without a sync "
                 "after it)",
                 (unsigned long long)synced);
    return 1;
}

int
store__marker_remove(const char *dir, char *errmsg)
{
    char path[4096];
    if (store__index_path(dir, path, sizeof path, "synced") != RV_OK)
        return RV_EINVAL;
    if (unlink(path) != 0 && errno != ENOENT) {
        rv_errmsg_printf(errmsg, "unlink %s: %s", path, strerror(errno));
        return RV_EIO;
    }
    return RV_OK;
}

int
store__marker_put(struct store *s, int is_dirty, char *errmsg)
{
    uint8_t m[STORE_MARKER_BYTES];
    if (s->marker_fd < 0)
        return RV_OK;
    memcpy(m, "RVSYNC02", 8);
    m[8] = (uint8_t)is_dirty;
    memcpy(m + 9, s->boot_id, STORE_BOOT_ID_BYTES);
    rv_put_be64(m + 9 + STORE_BOOT_ID_BYTES, s->applied_index);
    rv_put_be32(m + sizeof m - 4, rv_crc32c(0, m, sizeof m - 4));
    if (pwrite(s->marker_fd, m, sizeof m, 0) != (ssize_t)sizeof m ||
        fdatasync(s->marker_fd) != 0) {
        rv_errmsg_printf(errmsg, "write %s/synced: %s", s->dir,
                         strerror(errno));
        return RV_EIO;
    }
    s->is_dirty = is_dirty;
    return RV_OK;
}

int
store__marker_dirty(struct store *s, char *errmsg)
{
    return s->is_dirty ? RV_OK : store__marker_put(s, 1, errmsg);
}

int
store__marker_open(struct store *s, char *errmsg)
{
    char path[4096];
    if (store__index_path(s->dir, path, sizeof path, "synced") != RV_OK)
        return RV_EINVAL;
    s->marker_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->marker_fd < 0) {
        rv_errmsg_printf(errmsg, "open %s: %s", path, strerror(errno));
        return RV_EIO;
    }
    return RV_OK;
}
