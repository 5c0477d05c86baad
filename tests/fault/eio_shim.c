/* An LD_PRELOAD shim for the fault suite: while the file named by
 * RV_EIO_ARM exists, fsync, fdatasync, msync and sync_file_range fail with
 * EIO (as a disk whose write-back failed would report). The harness arms
 * it by creating the file and disarms it by removing it. Without
 * RV_EIO_ARM every call goes straight to the C library. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static int
is_armed(void)
{
    const char *path = getenv("RV_EIO_ARM");
    return path != NULL && access(path, F_OK) == 0;
}

typedef int (*fd_fn)(int);
typedef int (*msync_fn)(void *, size_t, int);
typedef int (*range_fn)(int, off_t, off_t, unsigned int);

/* The C library's function behind name (looked up once). */
static void *
real(void **slot, const char *name)
{
    if (*slot == NULL)
        *slot = dlsym(RTLD_NEXT, name);
    return *slot;
}

static void *real_fsync, *real_fdatasync, *real_msync, *real_range;

int
fsync(int fd)
{
    if (is_armed()) {
        errno = EIO;
        return -1;
    }
    return ((fd_fn)real(&real_fsync, "fsync"))(fd);
}

int
fdatasync(int fd)
{
    if (is_armed()) {
        errno = EIO;
        return -1;
    }
    return ((fd_fn)real(&real_fdatasync, "fdatasync"))(fd);
}

int
msync(void *addr, size_t length, int flags)
{
    if (is_armed()) {
        errno = EIO;
        return -1;
    }
    return ((msync_fn)real(&real_msync, "msync"))(addr, length, flags);
}

int
sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags)
{
    if (is_armed()) {
        errno = EIO;
        return -1;
    }
    return ((range_fn)real(&real_range, "sync_file_range"))(fd, offset, nbytes,
                                                            flags);
}
