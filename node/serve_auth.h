/* The node's side of authentication (DESIGN §11, Appendix B.1): which
 * listen addresses count as loopback (auth off is allowed only there), the
 * node's own token for node-to-node requests, and turning auth on when a
 * cluster is bootstrapped with it: the cluster-admin token is written to
 * DATA_DIR/admin.token (mode 0600, one line) before its hash is proposed,
 * so a crash between the two leaves a file whose token is proposed again,
 * never a token nobody holds. Main thread or the node's helper thread. */
#ifndef RV_NODE_SERVE_AUTH_H
#define RV_NODE_SERVE_AUTH_H

#include "base/log.h"
#include "base/token.h"

struct replica;
struct rpc_server;

#define NODE_ADMIN_TOKEN_FILE "admin.token"

/* 1 if addr ("IP:PORT", "tcp://IP:PORT", "tls+tcp://IP:PORT",
 * "https://IP:PORT" or "http://IP:PORT") names a loopback host (127.0.0.0/8,
 * localhost, [::1]), else 0. */
int node_addr_is_loopback(const char *addr);

/* Read a token from path (one line; a trailing newline is ignored) into
 * out. Errors: RV_ENOTFOUND (no such file), RV_EIO, RV_EUNAUTHENTICATED
 * (not a token). The token is never logged. */
int node_token_read(const char *path, char out[RV_TOKEN_TEXT_CHARS + 1],
                    char *errmsg);

/* If this node leads and the cluster's auth is not yet on, turn it on with
 * the token of DATA_DIR/admin.token (made first if missing). Returns 1
 * once auth is on in the store, 0 when there is nothing to do yet (not
 * the leader) or the attempt failed (logged; try again later). */
int node_auth_bootstrap(struct rpc_server *rpc, struct replica *rep,
                        const char *data_dir, const struct rv_log *log);

#endif /* RV_NODE_SERVE_AUTH_H */
