/* Stalled raft peer connections on the plain TCP transport (raft_uv_tcp).
 *
 * raft 0.15's transport sets no socket options and its connect has no
 * deadline: a connection whose peer vanished (a network cut) keeps its
 * unsent data on TCP's retransmission backoff, and a connect attempt made
 * during the cut sits in SYN-SENT on the SYN backoff, so after the heal
 * raft waits seconds for TCP rather than for itself. The wrapper:
 * - sets TCP_USER_TIMEOUT (and keepalive) on every connected and accepted
 *   stream raft gets, so data unacknowledged for user_timeout_ms closes
 *   the connection and raft dials again;
 * - gives every connect attempt a deadline (connect_ms): raft hears
 *   RAFT_NOCONNECTION then and retries with a fresh SYN after its retry
 *   delay; the late attempt, if it completes, is closed here.
 *
 * Loop thread only. */
#ifndef RV_RAFT_PEERSOCK_H
#define RV_RAFT_PEERSOCK_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>

struct peersock {
    struct raft_uv_transport *t; /* Borrowed. */
    int (*listen)(struct raft_uv_transport *t, raft_uv_accept_cb cb);
    int (*connect)(struct raft_uv_transport *t, struct raft_uv_connect *req,
                   raft_id id, const char *address, raft_uv_connect_cb cb);
    raft_uv_accept_cb accept_cb;
    struct uv_loop_s *loop;
    unsigned user_timeout_ms, connect_ms;
    uint64_t n_opts_failed;  /* Streams whose options could not be set. */
    uint64_t n_connect_late; /* Attempts given up at the deadline. */
};

/* At most this many wrappers at once in a process. */
#define PEERSOCK_MAX 16

/* Wrap t (raft_uv_tcp, after raft_uv_tcp_init, before raft_uv_init).
 * 0, RAFT_TOOMANY (nothing changed) or RAFT_INVALID (a zero timeout). */
int peersock_install(struct peersock *p, struct raft_uv_transport *t,
                     struct uv_loop_s *loop, unsigned user_timeout_ms,
                     unsigned connect_ms);

/* After the transport closed. A zeroed or failed wrapper is allowed. */
void peersock_close(struct peersock *p);

/* Set TCP_NODELAY, keepalive (probes after 1 s idle, every 1 s, 3 of them)
 * and TCP_USER_TIMEOUT on a connected TCP socket. 0 or -1 (errno). */
int peersock_set_opts(int fd, unsigned user_timeout_ms);

#endif /* RV_RAFT_PEERSOCK_H */
