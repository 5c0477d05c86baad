#include "base/fsdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
rv_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return err;
}

int
rv_mkdir_durable(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return errno;
    char parent[PATH_MAX];
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n == 0) {
        parent[0] = '.';
        n = 1;
    } else if (n >= sizeof parent) {
        return ENAMETOOLONG;
    } else {
        memcpy(parent, path, n);
    }
    parent[n] = '\0';
    return rv_fsync_dir(parent);
}

int
rv_dir_used(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int used = 0;
    while (!used && (e = readdir(d)) != NULL)
        used = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return used;
}
