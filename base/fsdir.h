/* Durable directory entries: a file or directory created (or renamed, or
 * removed) survives a power loss only once its parent directory has been
 * fsynced (POSIX; tests/fault/powerfs.c models exactly that). */
#ifndef RV_BASE_FSDIR_H
#define RV_BASE_FSDIR_H

/* fsync the directory dir: 0, or an errno value. */
int rv_fsync_dir(const char *dir);

/* Create the directory path (mode 0755) unless it exists, then fsync its
 * parent, always: a directory made by an earlier run that crashed before
 * the parent's fsync is made durable too. 0, or an errno value. */
int rv_mkdir_durable(const char *path);

/* 1 if the directory path holds any entry but "." and "..", 0 if it is
 * empty or absent, -1 if it cannot be read (errno set). */
int rv_dir_used(const char *path);

#endif
