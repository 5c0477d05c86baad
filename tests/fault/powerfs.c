/* powerfs: a pass-through FUSE filesystem that simulates power loss.
 *
 * Usage: powerfs [--max-undo-mb N] BACKING MOUNTPOINT [fuse options]
 *
 * BACKING/data is the tree shown at MOUNTPOINT; BACKING/grave holds
 * entries removed since their directory's last fsync. Every operation
 * goes through to BACKING/data at once (reads see the live state), and
 * powerfs records what a power cut would lose:
 *
 * - File data: before the first change since the file's last sync to a
 *   4 KiB page that lies below the synced size, the page's old contents
 *   are saved (an undo log). fsync and fdatasync of the file, and any
 *   write through a handle opened O_SYNC or O_DSYNC, make the file's
 *   current contents and size its synced state (the kernel forwards the
 *   latter as an fsync of the whole file, so the model cannot be finer).
 * - Directory entries: before the first change to a directory since its
 *   last fsync (create, mkdir, unlink, rmdir, rename in or out), its
 *   entry table (name -> inode) is saved. Removed or replaced entries
 *   move to BACKING/grave instead of being deleted, while a saved table
 *   still names them. fsync of the directory drops its saved table (and
 *   those of the directories a rename tied it to: a rename between two
 *   directories is made durable by the fsync of either, as a journalling
 *   filesystem commits it in one transaction).
 *
 * A power cut (write "cut" to MOUNTPOINT/.powerfs-ctl; the write returns
 * when it is done, and reading that file reports counters) reverts every
 * file to its synced contents and size and every changed directory to its
 * saved entry table, then empties the grave. It is meant to be done while
 * no process has a file open (kill the processes first). Metadata other
 * than size (mode, owner, times) is passed through and not modelled.
 * Links, symlinks and the fallocate modes that change contents are
 * refused. Runs single-threaded, so the cut is atomic with respect to
 * every other operation. */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#define PF_PAGE   4096u
#define PF_CTL    "/.powerfs-ctl"
#define PF_CTL_FH UINT64_MAX

struct pf_page {
    uint64_t idx; /* page number; UINT64_MAX when the slot is empty */
    uint32_t len; /* bytes that existed at save time (short at EOF) */
    unsigned char *data;
};

struct pf_file {
    ino_t ino;
    int fd;       /* O_RDWR on the backing inode; survives renames */
    int nopen;    /* handles open on it */
    int dirty;    /* changed since its last sync */
    off_t synced; /* size at the last sync (valid when dirty) */
    struct pf_page *pages;
    size_t n_pages, cap_pages; /* open addressing; cap a power of two */
    struct pf_file *next;
};

struct pf_entry {
    char *name;
    ino_t ino;
};

struct pf_dir {
    ino_t ino;
    int fd; /* the directory, O_RDONLY|O_DIRECTORY */
    struct pf_entry *saved;
    size_t n_saved;
    struct pf_dir *next;
};

/* A rename between two directories is one change of both: the fsync of
 * either makes both tables durable (as a journalling filesystem commits
 * the rename as one transaction). */
struct pf_pair {
    ino_t a, b;
    struct pf_pair *next;
};

struct pf_handle {
    int fd;
    int sync; /* opened O_SYNC/O_DSYNC */
    int append;
    struct pf_file *f;
};

struct pf_stats {
    uint64_t cuts, files_reverted, pages_restored, sizes_restored;
    uint64_t entries_removed, entries_restored, grave_deleted, errors;
};

static struct {
    int root;  /* BACKING/data */
    int grave; /* BACKING/grave */
    struct pf_file *files;
    struct pf_dir *dirs;
    struct pf_pair *pairs;
    uint64_t undo_bytes, max_undo_bytes;
    struct pf_stats st;
} G;

/* ---- helpers ---------------------------------------------------------- */

static const char *
pf_rel(const char *path)
{
    while (*path == '/')
        path++;
    return *path ? path : ".";
}

/* Write the parent of path (relative) into buf. */
static int
pf_parent(const char *path, char *buf, size_t size)
{
    const char *rel = pf_rel(path);
    const char *slash = strrchr(rel, '/');
    if (!slash) {
        snprintf(buf, size, ".");
        return 0;
    }
    size_t n = (size_t)(slash - rel);
    if (n + 1 > size)
        return -ENAMETOOLONG;
    memcpy(buf, rel, n);
    buf[n] = '\0';
    return 0;
}

static void
pf_grave_name(ino_t ino, char *buf, size_t size)
{
    snprintf(buf, size, "%" PRIu64, (uint64_t)ino);
}

static int
pf_rm_rf_at(int at, const char *name)
{
    if (unlinkat(at, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        int r = pf_rm_rf_at(dirfd(d), de->d_name);
        if (r != 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(at, name, AT_REMOVEDIR) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* ---- file undo logs ---------------------------------------------------- */

static struct pf_file *
pf_file_find(ino_t ino)
{
    for (struct pf_file *f = G.files; f; f = f->next)
        if (f->ino == ino)
            return f;
    return NULL;
}

/* The pf_file for the inode behind fd, created on first use. */
static struct pf_file *
pf_file_get(int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return NULL;
    struct pf_file *f = pf_file_find(sb.st_ino);
    if (f)
        return f;
    f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (f->fd < 0) {
        free(f);
        return NULL;
    }
    f->ino = sb.st_ino;
    f->next = G.files;
    G.files = f;
    return f;
}

static void
pf_file_clear(struct pf_file *f)
{
    for (size_t i = 0; i < f->cap_pages; i++)
        if (f->pages[i].idx != UINT64_MAX) {
            G.undo_bytes -= PF_PAGE;
            free(f->pages[i].data);
        }
    free(f->pages);
    f->pages = NULL;
    f->n_pages = f->cap_pages = 0;
    f->dirty = 0;
}

/* Drop f if nothing refers to it any more. */
static void
pf_file_maybe_free(struct pf_file *f)
{
    if (f->nopen > 0 || f->dirty)
        return;
    for (struct pf_file **p = &G.files; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    close(f->fd);
    free(f);
}

/* The file's current state becomes its synced state. */
static void
pf_file_sync(struct pf_file *f)
{
    pf_file_clear(f);
    pf_file_maybe_free(f);
}

static int
pf_file_mark(struct pf_file *f)
{
    if (f->dirty)
        return 0;
    struct stat sb;
    if (fstat(f->fd, &sb) != 0)
        return -errno;
    f->synced = sb.st_size;
    f->dirty = 1;
    return 0;
}

static struct pf_page *
pf_page_slot(struct pf_file *f, uint64_t idx)
{
    size_t mask = f->cap_pages - 1;
    size_t i = (size_t)(idx * 0x9E3779B97F4A7C15ull) & mask;
    while (f->pages[i].idx != UINT64_MAX && f->pages[i].idx != idx)
        i = (i + 1) & mask;
    return &f->pages[i];
}

static int
pf_page_grow(struct pf_file *f)
{
    size_t cap = f->cap_pages ? f->cap_pages * 2 : 64;
    struct pf_page *old = f->pages;
    size_t old_cap = f->cap_pages;
    f->pages = malloc(cap * sizeof *f->pages);
    if (!f->pages) {
        f->pages = old;
        return -ENOMEM;
    }
    for (size_t i = 0; i < cap; i++)
        f->pages[i].idx = UINT64_MAX;
    f->cap_pages = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].idx != UINT64_MAX)
            *pf_page_slot(f, old[i].idx) = old[i];
    free(old);
    return 0;
}

/* Save the synced contents of the pages covering [off, end) that lie
 * below the synced size and were not saved yet. */
static int
pf_save_range(struct pf_file *f, off_t off, off_t end)
{
    int rc = pf_file_mark(f);
    if (rc != 0)
        return rc;
    if (end > f->synced)
        end = f->synced;
    if (off >= end)
        return 0;
    for (uint64_t p = (uint64_t)off / PF_PAGE;
         p <= ((uint64_t)end - 1) / PF_PAGE; p++) {
        if ((f->n_pages + 1) * 2 > f->cap_pages && (rc = pf_page_grow(f)) != 0)
            return rc;
        struct pf_page *s = pf_page_slot(f, p);
        if (s->idx == p)
            continue;
        if (G.undo_bytes + PF_PAGE > G.max_undo_bytes) {
            fprintf(stderr, "powerfs: undo log over its limit\n");
            return -EIO;
        }
        unsigned char *buf = malloc(PF_PAGE);
        if (!buf)
            return -ENOMEM;
        ssize_t n = pread(f->fd, buf, PF_PAGE, (off_t)(p * PF_PAGE));
        if (n < 0) {
            free(buf);
            return -errno;
        }
        s->idx = p;
        s->len = (uint32_t)n;
        s->data = buf;
        f->n_pages++;
        G.undo_bytes += PF_PAGE;
    }
    return 0;
}

static int
pf_file_revert(struct pf_file *f)
{
    if (!f->dirty)
        return 0;
    int rc = 0;
    struct stat sb;
    if (fstat(f->fd, &sb) == 0 && sb.st_size != f->synced)
        G.st.sizes_restored++;
    if (ftruncate(f->fd, f->synced) != 0)
        rc = -errno;
    for (size_t i = 0; i < f->cap_pages; i++) {
        struct pf_page *s = &f->pages[i];
        if (s->idx == UINT64_MAX)
            continue;
        off_t at = (off_t)(s->idx * PF_PAGE);
        size_t len = s->len;
        if (at >= f->synced)
            continue;
        if ((off_t)len > f->synced - at)
            len = (size_t)(f->synced - at);
        if (pwrite(f->fd, s->data, len, at) != (ssize_t)len)
            rc = -EIO;
        G.st.pages_restored++;
    }
    G.st.files_reverted++;
    pf_file_clear(f);
    return rc;
}

/* ---- directory entry tables ---------------------------------------------- */

static struct pf_dir *
pf_dir_find(ino_t ino)
{
    for (struct pf_dir *d = G.dirs; d; d = d->next)
        if (d->ino == ino)
            return d;
    return NULL;
}

/* Read the entries (name -> inode) of the directory fd. */
static int
pf_dir_list(int fd, struct pf_entry **out, size_t *n_out)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    struct pf_entry *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct pf_entry *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[n].name = strdup(de->d_name);
        if (!v[n].name) {
            rc = -ENOMEM;
            break;
        }
        v[n++].ino = sb.st_ino;
    }
    closedir(d);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            free(v[i].name);
        free(v);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

static void
pf_entries_free(struct pf_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* Save the entry table of the directory at rel before its first change
 * since its last fsync. */
static int
pf_dir_touch(const char *rel)
{
    int fd = openat(G.root, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (pf_dir_find(sb.st_ino)) {
        close(fd);
        return 0;
    }
    struct pf_dir *d = calloc(1, sizeof *d);
    if (!d) {
        close(fd);
        return -ENOMEM;
    }
    int rc = pf_dir_list(fd, &d->saved, &d->n_saved);
    if (rc != 0) {
        close(fd);
        free(d);
        return rc;
    }
    d->ino = sb.st_ino;
    d->fd = fd;
    d->next = G.dirs;
    G.dirs = d;
    return 0;
}

static int
pf_touch_parent(const char *path)
{
    char parent[PATH_MAX];
    int rc = pf_parent(path, parent, sizeof parent);
    return rc != 0 ? rc : pf_dir_touch(parent);
}

static int
pf_referenced(ino_t ino)
{
    for (struct pf_dir *d = G.dirs; d; d = d->next)
        for (size_t i = 0; i < d->n_saved; i++)
            if (d->saved[i].ino == ino)
                return 1;
    return 0;
}

static void
pf_dir_free(struct pf_dir *d)
{
    close(d->fd);
    pf_entries_free(d->saved, d->n_saved);
    free(d);
}

/* Delete what the grave holds that no saved table names. */
static void
pf_grave_collect(int all)
{
    struct pf_entry *v;
    size_t n;
    if (pf_dir_list(G.grave, &v, &n) != 0) {
        G.st.errors++;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!all && pf_referenced(v[i].ino))
            continue;
        if (pf_rm_rf_at(G.grave, v[i].name) != 0)
            G.st.errors++;
        else
            G.st.grave_deleted++;
    }
    pf_entries_free(v, n);
}

/* Move the entry rel (inode ino) into the grave. */
static int
pf_bury(int dirfd, const char *name, ino_t ino)
{
    char g[32];
    pf_grave_name(ino, g, sizeof g);
    return renameat(dirfd, name, G.grave, g) == 0 ? 0 : -errno;
}

/* ---- the power cut ---------------------------------------------------------
 */

static int
pf_saved_has(const struct pf_dir *d, const char *name, ino_t ino)
{
    for (size_t i = 0; i < d->n_saved; i++)
        if (d->saved[i].ino == ino && !strcmp(d->saved[i].name, name))
            return 1;
    return 0;
}

static void
pf_cut(void)
{
    G.st.cuts++;
    for (struct pf_file *f = G.files; f; f = f->next)
        if (pf_file_revert(f) != 0)
            G.st.errors++;
    /* Entries that are not in their directory's saved table go to the
     * grave, then every saved entry missing from its place comes back
     * from it. An inode lives in one place (no hard links), so whatever
     * a saved table names is either in place or in the grave. */
    for (struct pf_dir *d = G.dirs; d; d = d->next) {
        struct pf_entry *cur;
        size_t n;
        if (pf_dir_list(d->fd, &cur, &n) != 0) {
            G.st.errors++;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (pf_saved_has(d, cur[i].name, cur[i].ino))
                continue;
            if (pf_bury(d->fd, cur[i].name, cur[i].ino) != 0)
                G.st.errors++;
            else
                G.st.entries_removed++;
        }
        pf_entries_free(cur, n);
    }
    for (struct pf_dir *d = G.dirs; d; d = d->next)
        for (size_t i = 0; i < d->n_saved; i++) {
            struct stat sb;
            if (fstatat(d->fd, d->saved[i].name, &sb, AT_SYMLINK_NOFOLLOW) ==
                    0 &&
                sb.st_ino == d->saved[i].ino)
                continue;
            char g[32];
            pf_grave_name(d->saved[i].ino, g, sizeof g);
            if (renameat(G.grave, g, d->fd, d->saved[i].name) != 0) {
                fprintf(stderr, "powerfs: cannot restore %s: %s\n",
                        d->saved[i].name, strerror(errno));
                G.st.errors++;
            } else {
                G.st.entries_restored++;
            }
        }
    while (G.dirs) {
        struct pf_dir *d = G.dirs;
        G.dirs = d->next;
        pf_dir_free(d);
    }
    while (G.pairs) {
        struct pf_pair *q = G.pairs;
        G.pairs = q->next;
        free(q);
    }
    pf_grave_collect(1);
    for (struct pf_file *f = G.files, *next; f; f = next) {
        next = f->next;
        pf_file_maybe_free(f);
    }
}

/* ---- FUSE operations
 * ---------------------------------------------------------- */

static void *
pf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 1;
    cfg->nullpath_ok = 1;
    cfg->hard_remove = 1;
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->kernel_cache = 0;
    cfg->direct_io = 0;
    return NULL;
}

static int
pf_is_ctl(const char *path)
{
    return path && !strcmp(path, PF_CTL);
}

static struct pf_handle *
pf_h(struct fuse_file_info *fi)
{
    return (struct pf_handle *)(uintptr_t)fi->fh;
}

static int
pf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (pf_is_ctl(path) || (fi && fi->fh == PF_CTL_FH)) {
        memset(st, 0, sizeof *st);
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        st->st_ino = 1;
        return 0;
    }
    int rc = fi && fi->fh
                 ? fstat(pf_h(fi)->fd, st)
                 : fstatat(G.root, pf_rel(path), st, AT_SYMLINK_NOFOLLOW);
    return rc == 0 ? 0 : -errno;
}

static int
pf_opendir(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(G.root, pf_rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct pf_handle *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        return -ENOMEM;
    }
    h->fd = fd; /* h->f stays NULL: a directory */
    fi->fh = (uint64_t)(uintptr_t)h;
    return 0;
}

static int
pf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
           struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path;
    (void)off;
    (void)flags;
    struct pf_entry *v;
    size_t n;
    int rc = pf_dir_list(pf_h(fi)->fd, &v, &n);
    if (rc != 0)
        return rc;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    for (size_t i = 0; i < n; i++)
        if (fill(buf, v[i].name, NULL, 0, 0))
            break;
    pf_entries_free(v, n);
    return 0;
}

static int
pf_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close(pf_h(fi)->fd);
    free(pf_h(fi));
    return 0;
}

/* Drop the saved table of directory ino and of the directories a rename
 * tied it to. */
static void
pf_dir_sync(ino_t ino)
{
    for (struct pf_dir **p = &G.dirs; *p; p = &(*p)->next)
        if ((*p)->ino == ino) {
            struct pf_dir *d = *p;
            *p = d->next;
            pf_dir_free(d);
            break;
        }
    for (struct pf_pair **p = &G.pairs; *p;) {
        struct pf_pair *q = *p;
        if (q->a == ino || q->b == ino) {
            *p = q->next;
            ino_t other = q->a == ino ? q->b : q->a;
            free(q);
            pf_dir_sync(other);
            p = &G.pairs; /* the list changed under the recursion */
        } else {
            p = &q->next;
        }
    }
}

static int
pf_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    struct stat sb;
    if (fstat(pf_h(fi)->fd, &sb) != 0)
        return -errno;
    pf_dir_sync(sb.st_ino);
    pf_grave_collect(0);
    return 0;
}

static int
pf_mkdir(const char *path, mode_t mode)
{
    int rc = pf_touch_parent(path);
    if (rc != 0)
        return rc;
    return mkdirat(G.root, pf_rel(path), mode) == 0 ? 0 : -errno;
}

static int
pf_unlink(const char *path)
{
    if (pf_is_ctl(path))
        return -EPERM;
    struct stat sb;
    if (fstatat(G.root, pf_rel(path), &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    if (S_ISDIR(sb.st_mode))
        return -EISDIR;
    int rc = pf_touch_parent(path);
    return rc != 0 ? rc : pf_bury(G.root, pf_rel(path), sb.st_ino);
}

static int
pf_dir_empty(const char *rel)
{
    int fd = openat(G.root, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct pf_entry *v;
    size_t n;
    int rc = pf_dir_list(fd, &v, &n);
    close(fd);
    if (rc != 0)
        return rc;
    pf_entries_free(v, n);
    return n == 0 ? 0 : -ENOTEMPTY;
}

static int
pf_rmdir(const char *path)
{
    const char *rel = pf_rel(path);
    struct stat sb;
    if (fstatat(G.root, rel, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    if (!S_ISDIR(sb.st_mode))
        return -ENOTDIR;
    int rc = pf_dir_empty(rel);
    if (rc == 0)
        rc = pf_touch_parent(path);
    return rc != 0 ? rc : pf_bury(G.root, rel, sb.st_ino);
}

static int
pf_parent_ino(const char *path, ino_t *ino)
{
    char parent[PATH_MAX];
    struct stat sb;
    int rc = pf_parent(path, parent, sizeof parent);
    if (rc != 0)
        return rc;
    if (fstatat(G.root, parent, &sb, 0) != 0)
        return -errno;
    *ino = sb.st_ino;
    return 0;
}

static int
pf_pair_parents(const char *from, const char *to)
{
    ino_t a, b;
    int rc = pf_parent_ino(from, &a);
    if (rc == 0)
        rc = pf_parent_ino(to, &b);
    if (rc != 0 || a == b)
        return rc;
    struct pf_pair *q = malloc(sizeof *q);
    if (!q)
        return -ENOMEM;
    q->a = a;
    q->b = b;
    q->next = G.pairs;
    G.pairs = q;
    return 0;
}

static int
pf_rename(const char *from, const char *to, unsigned int flags)
{
    if (pf_is_ctl(from) || pf_is_ctl(to))
        return -EPERM;
    if (flags & ~(unsigned int)RENAME_NOREPLACE)
        return -EINVAL;
    const char *rf = pf_rel(from), *rt = pf_rel(to);
    struct stat sf, stt;
    if (fstatat(G.root, rf, &sf, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    int exists = fstatat(G.root, rt, &stt, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && (flags & RENAME_NOREPLACE))
        return -EEXIST;
    if (exists && stt.st_ino == sf.st_ino)
        return 0;
    if (exists && S_ISDIR(sf.st_mode) != S_ISDIR(stt.st_mode))
        return S_ISDIR(stt.st_mode) ? -EISDIR : -ENOTDIR;
    int rc = 0;
    if (exists && S_ISDIR(stt.st_mode))
        rc = pf_dir_empty(rt);
    if (rc == 0)
        rc = pf_touch_parent(from);
    if (rc == 0)
        rc = pf_touch_parent(to);
    if (rc == 0)
        rc = pf_pair_parents(from, to);
    if (rc != 0)
        return rc;
    if (exists && (rc = pf_bury(G.root, rt, stt.st_ino)) != 0)
        return rc;
    if (renameat(G.root, rf, G.root, rt) != 0) {
        rc = -errno;
        if (exists) {
            char g[32];
            pf_grave_name(stt.st_ino, g, sizeof g);
            if (renameat(G.grave, g, G.root, rt) != 0)
                G.st.errors++;
        }
    }
    return rc;
}

static int
pf_refuse(void)
{
    return -EPERM;
}

static int
pf_link(const char *from, const char *to)
{
    (void)from;
    (void)to;
    return pf_refuse();
}

static int
pf_symlink(const char *from, const char *to)
{
    (void)from;
    (void)to;
    return pf_refuse();
}

static int
pf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    if (pf_is_ctl(path) || (fi && fi->fh == PF_CTL_FH))
        return 0;
    int rc = fi && fi->fh ? fchmod(pf_h(fi)->fd, mode)
                          : fchmodat(G.root, pf_rel(path), mode, 0);
    return rc == 0 ? 0 : -errno;
}

static int
pf_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    if (pf_is_ctl(path) || (fi && fi->fh == PF_CTL_FH))
        return 0;
    int rc = fi && fi->fh ? fchown(pf_h(fi)->fd, uid, gid)
                          : fchownat(G.root, pf_rel(path), uid, gid,
                                     AT_SYMLINK_NOFOLLOW);
    return rc == 0 ? 0 : -errno;
}

static int
pf_utimens(const char *path, const struct timespec tv[2],
           struct fuse_file_info *fi)
{
    if (pf_is_ctl(path) || (fi && fi->fh == PF_CTL_FH))
        return 0;
    int rc = fi && fi->fh
                 ? futimens(pf_h(fi)->fd, tv)
                 : utimensat(G.root, pf_rel(path), tv, AT_SYMLINK_NOFOLLOW);
    return rc == 0 ? 0 : -errno;
}

static int
pf_truncate_file(struct pf_file *f, off_t size)
{
    if (size < 0)
        return -EINVAL;
    struct stat sb;
    if (fstat(f->fd, &sb) != 0)
        return -errno;
    int rc = pf_save_range(f, size, sb.st_size);
    if (rc != 0)
        return rc;
    return ftruncate(f->fd, size) == 0 ? 0 : -errno;
}

static int
pf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (pf_is_ctl(path) || (fi && fi->fh == PF_CTL_FH))
        return 0;
    if (fi && fi->fh)
        return pf_truncate_file(pf_h(fi)->f, size);
    int fd = openat(G.root, pf_rel(path), O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct pf_file *f = pf_file_get(fd);
    close(fd);
    if (!f)
        return -ENOMEM;
    int rc = pf_truncate_file(f, size);
    pf_file_maybe_free(f);
    return rc;
}

/* Open path (creating it when create) and attach a handle. */
static int
pf_open_common(const char *path, struct fuse_file_info *fi, int create,
               mode_t mode)
{
    if (pf_is_ctl(path)) {
        fi->fh = PF_CTL_FH;
        fi->direct_io = 1;
        return 0;
    }
    const char *rel = pf_rel(path);
    int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
    int is_new = 0;
    if (create) {
        int rc = pf_touch_parent(path);
        if (rc != 0)
            return rc;
        int fd = openat(G.root, rel, flags | O_CREAT | O_EXCL, mode);
        if (fd >= 0) {
            is_new = 1;
            close(fd);
        } else if (errno != EEXIST || (fi->flags & O_EXCL)) {
            return -errno;
        }
    }
    int fd = openat(G.root, rel, flags);
    if (fd < 0)
        return -errno;
    struct pf_handle *h = calloc(1, sizeof *h);
    struct pf_file *f = h ? pf_file_get(fd) : NULL;
    if (!f) {
        free(h);
        close(fd);
        return -ENOMEM;
    }
    if (is_new && !f->dirty) {
        /* A new file's synced state is empty. */
        f->dirty = 1;
        f->synced = 0;
    }
    h->fd = fd;
    h->f = f;
    h->sync = (fi->flags & (O_SYNC | O_DSYNC)) != 0;
    h->append = (fi->flags & O_APPEND) != 0;
    f->nopen++;
    if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
        int rc = pf_truncate_file(f, 0);
        if (rc != 0) {
            f->nopen--;
            close(fd);
            free(h);
            pf_file_maybe_free(f);
            return rc;
        }
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    return 0;
}

static int
pf_open(const char *path, struct fuse_file_info *fi)
{
    return pf_open_common(path, fi, 0, 0);
}

static int
pf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    return pf_open_common(path, fi, 1, mode);
}

static int
pf_ctl_report(char *buf, size_t size, off_t off)
{
    char text[512];
    int n = snprintf(
        text, sizeof text,
        "cuts %" PRIu64 "\nfiles_reverted %" PRIu64 "\npages_restored %" PRIu64
        "\nsizes_restored %" PRIu64 "\nentries_removed %" PRIu64
        "\nentries_restored %" PRIu64 "\ngrave_deleted %" PRIu64
        "\nerrors %" PRIu64 "\nundo_bytes %" PRIu64 "\n",
        G.st.cuts, G.st.files_reverted, G.st.pages_restored,
        G.st.sizes_restored, G.st.entries_removed, G.st.entries_restored,
        G.st.grave_deleted, G.st.errors, G.undo_bytes);
    if (n < 0 || off >= n)
        return 0;
    size_t len = (size_t)(n - off);
    if (len > size)
        len = size;
    memcpy(buf, text + off, len);
    return (int)len;
}

static int
pf_read(const char *path, char *buf, size_t size, off_t off,
        struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == PF_CTL_FH)
        return pf_ctl_report(buf, size, off);
    ssize_t n = pread(pf_h(fi)->fd, buf, size, off);
    return n >= 0 ? (int)n : -errno;
}

static int
pf_write(const char *path, const char *buf, size_t size, off_t off,
         struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == PF_CTL_FH) {
        if (size >= 3 && !memcmp(buf, "cut", 3)) {
            pf_cut();
            return (int)size;
        }
        return -EINVAL;
    }
    struct pf_handle *h = pf_h(fi);
    if (h->append) {
        struct stat sb;
        if (fstat(h->fd, &sb) != 0)
            return -errno;
        off = sb.st_size;
    }
    if (size > INT_MAX || off < 0)
        return -EINVAL;
    int rc = pf_save_range(h->f, off, off + (off_t)size);
    if (rc != 0)
        return rc;
    ssize_t n = pwrite(h->fd, buf, size, off);
    if (n < 0)
        return -errno;
    if (h->sync)
        pf_file_sync(h->f);
    return (int)n;
}

static int
pf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    if (fi->fh != PF_CTL_FH)
        pf_file_sync(pf_h(fi)->f);
    return 0;
}

static int
pf_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    (void)fi;
    return 0;
}

static int
pf_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == PF_CTL_FH)
        return 0;
    struct pf_handle *h = pf_h(fi);
    close(h->fd);
    h->f->nopen--;
    pf_file_maybe_free(h->f);
    free(h);
    return 0;
}

static int
pf_fallocate(const char *path, int mode, off_t off, off_t len,
             struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == PF_CTL_FH || (mode & ~FALLOC_FL_KEEP_SIZE))
        return -EOPNOTSUPP;
    struct pf_handle *h = pf_h(fi);
    /* Allocation changes no contents; growth needs nothing saved. */
    int rc = pf_file_mark(h->f);
    if (rc != 0)
        return rc;
    return fallocate(h->fd, mode, off, len) == 0 ? 0 : -errno;
}

static int
pf_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return fstatvfs(G.root, st) == 0 ? 0 : -errno;
}

static const struct fuse_operations pf_ops = {
    .init = pf_init,
    .getattr = pf_getattr,
    .opendir = pf_opendir,
    .readdir = pf_readdir,
    .releasedir = pf_releasedir,
    .fsyncdir = pf_fsyncdir,
    .mkdir = pf_mkdir,
    .unlink = pf_unlink,
    .rmdir = pf_rmdir,
    .rename = pf_rename,
    .link = pf_link,
    .symlink = pf_symlink,
    .chmod = pf_chmod,
    .chown = pf_chown,
    .utimens = pf_utimens,
    .truncate = pf_truncate,
    .open = pf_open,
    .create = pf_create,
    .read = pf_read,
    .write = pf_write,
    .fsync = pf_fsync,
    .flush = pf_flush,
    .release = pf_release,
    .fallocate = pf_fallocate,
    .statfs = pf_statfs,
};

static int
pf_mkdir_open(int at, const char *name)
{
    if (mkdirat(at, name, 0755) != 0 && errno != EEXIST)
        return -1;
    return openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int
main(int argc, char **argv)
{
    G.max_undo_bytes = 1024ull << 20;
    int a = 1;
    if (argc > 2 && !strcmp(argv[1], "--max-undo-mb")) {
        char *end;
        unsigned long long mb = strtoull(argv[2], &end, 10);
        if (*end || mb == 0 || mb > (1ull << 20)) {
            fprintf(stderr, "powerfs: bad --max-undo-mb\n");
            return 2;
        }
        G.max_undo_bytes = mb << 20;
        a = 3;
    }
    if (argc - a < 2) {
        fprintf(stderr, "usage: powerfs [--max-undo-mb N] BACKING MOUNTPOINT "
                        "[fuse options]\n");
        return 2;
    }
    int base = open(argv[a], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (base < 0) {
        fprintf(stderr, "powerfs: %s: %s\n", argv[a], strerror(errno));
        return 2;
    }
    G.root = pf_mkdir_open(base, "data");
    G.grave = pf_mkdir_open(base, "grave");
    close(base);
    if (G.root < 0 || G.grave < 0) {
        fprintf(stderr, "powerfs: cannot open %s/data and %s/grave\n", argv[a],
                argv[a]);
        return 2;
    }
    pf_grave_collect(1);
    /* fuse_main(argv0, mountpoint, -s (one thread), the rest). */
    char **fargv = calloc((size_t)(argc - a) + 3, sizeof *fargv);
    if (!fargv)
        return 2;
    int n = 0;
    fargv[n++] = argv[0];
    fargv[n++] = argv[a + 1];
    fargv[n++] = "-s";
    for (int i = a + 2; i < argc; i++)
        fargv[n++] = argv[i];
    int rc = fuse_main(n, fargv, &pf_ops, NULL);
    free(fargv);
    return rc;
}
