/* The node's side of authentication (serve_auth.h). */
#define _DEFAULT_SOURCE
#include "node/serve_auth.h"

#include "raft/replica.h"
#include "rpc/server.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
node_addr_is_loopback(const char *addr)
{
    static const char *const schemes[] = {"tls+tcp://", "tcp://", "https://",
                                          "http://"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(addr, schemes[i], n) == 0) {
            addr += n;
            break;
        }
    }
    if (strncmp(addr, "127.", 4) == 0 || strncmp(addr, "[::1]", 5) == 0)
        return 1;
    return strncmp(addr, "localhost:", 10) == 0 ||
           strcmp(addr, "localhost") == 0;
}

int
node_token_read(const char *path, char out[RV_TOKEN_TEXT_CHARS + 1],
                char *errmsg)
{
    char buf[RV_TOKEN_TEXT_CHARS + 3], id[RV_TOKEN_ID_CHARS + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rv_errmsg_printf(errmsg, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? RV_ENOTFOUND : RV_EIO;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        rv_errmsg_printf(errmsg, "%s: %s", path, strerror(errno));
        return RV_EIO;
    }
    size_t len = (size_t)n;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (rv_token_parse(buf, len, id) != RV_OK) {
        memset(buf, 0, sizeof buf);
        rv_errmsg_printf(errmsg, "%s does not hold a runvault token", path);
        return RV_EUNAUTHENTICATED;
    }
    memcpy(out, buf, len);
    out[len] = '\0';
    memset(buf, 0, sizeof buf);
    return RV_OK;
}

/* Write a new token to path (0600, created exclusively, synced with its
 * directory). */
static int
node__token_write(const char *path, const char *dir,
                  const char text[RV_TOKEN_TEXT_CHARS + 1], char *errmsg)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rv_errmsg_printf(errmsg, "create %s: %s", path, strerror(errno));
        return RV_EIO;
    }
    char line[RV_TOKEN_TEXT_CHARS + 2];
    memcpy(line, text, RV_TOKEN_TEXT_CHARS);
    line[RV_TOKEN_TEXT_CHARS] = '\n';
    int ok = write(fd, line, sizeof line - 1) == (ssize_t)(sizeof line - 1) &&
             fsync(fd) == 0;
    memset(line, 0, sizeof line);
    close(fd);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            ok = 0;
        close(dfd);
    }
    if (!ok) {
        unlink(path);
        rv_errmsg_printf(errmsg, "write %s failed", path);
        return RV_EIO;
    }
    return RV_OK;
}

/* 1 if the store says auth is on. */
static int
node__store_auth_on(struct replica *rep)
{
    struct store_read *rd;
    if (store_read_begin(replica_store(rep), STORE_EVERY_TEAM, &rd, NULL) !=
        RV_OK)
        return 0;
    int on = store_auth_is_on(rd);
    store_read_end(rd);
    return on;
}

int
node_auth_bootstrap(struct rpc_server *rpc, struct replica *rep,
                    const char *data_dir, const struct rv_log *log)
{
    struct replica_info info;
    char path[4096], text[RV_TOKEN_TEXT_CHARS + 1], id[RV_TOKEN_ID_CHARS + 1];
    char errmsg[RV_ERRMSG_SIZE] = "";
    uint8_t sha[RV_TOKEN_SHA256];
    if (node__store_auth_on(rep))
        return 1;
    replica_info(rep, &info);
    if (info.state != RAFT_LEADER || !info.is_serving)
        return 0;
    snprintf(path, sizeof path, "%s/%s", data_dir, NODE_ADMIN_TOKEN_FILE);
    int rc = node_token_read(path, text, errmsg);
    if (rc == RV_ENOTFOUND) {
        rc = rv_token_make(text, id, sha);
        if (rc == RV_OK)
            rc = node__token_write(path, data_dir, text, errmsg);
    }
    if (rc == RV_OK && rv_token_parse(text, strlen(text), id) == RV_OK) {
        rv_token_hash(text, strlen(text), sha);
        rc = rpc_server_auth_bootstrap(rpc, id, sha, errmsg);
    }
    memset(text, 0, sizeof text);
    if (rc == RV_OK || rc == RV_EEXIST) {
        rv_logf(log, RV_LOG_INFO, "auth",
                "authentication is on; the cluster-admin token (id %s) is in "
                "%s",
                id, path);
        return 1;
    }
    rv_logf(log, RV_LOG_WARN, "auth", "turning authentication on: %s: %s",
            rv_strerror(rc), errmsg);
    return 0;
}
