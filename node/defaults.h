/* The defaults every part of the runvault binary shares, in one place:
 * serve's settings (node/serve.c), the endpoint of `cluster` and of the
 * client commands, and the usage texts. A node listens by default on
 * 127.0.0.1: HTTP 7480, native RPC 7481, raft 7482. Constants only: no
 * functions, nothing to own. (The Python SDK, sdk/python/runvault/
 * _transport.py, and deploy/cluster.sh keep their own copies.) */
#ifndef RV_NODE_DEFAULTS_H
#define RV_NODE_DEFAULTS_H

#define NODE_DEFAULT_HTTP_PORT "7480"
#define NODE_DEFAULT_RPC_PORT  "7481"
#define NODE_DEFAULT_RAFT_PORT "7482"

#define NODE_DEFAULT_HTTP_ADDR "127.0.0.1:" NODE_DEFAULT_HTTP_PORT
#define NODE_DEFAULT_RPC_ADDR  "tcp://127.0.0.1:" NODE_DEFAULT_RPC_PORT
#define NODE_DEFAULT_RAFT_ADDR "127.0.0.1:" NODE_DEFAULT_RAFT_PORT
#define NODE_DEFAULT_DATA_DIR  "./runvault-data"

/* Where `cluster` and the client commands send requests when neither
 * --endpoint nor RUNVAULT_ENDPOINT says: the local node's RPC address. */
#define NODE_DEFAULT_ENDPOINT NODE_DEFAULT_RPC_ADDR

#endif /* RV_NODE_DEFAULTS_H */
