/* A raft_uv_transport (raft 0.15, <raft/uv.h>) whose peers talk over
 * mutually authenticated TLS: nng's stream API (tls+tcp, mbedTLS) carries
 * the bytes, and raft sees each connection as a uv_pipe_t on one end of a
 * socketpair whose other end two relay threads copy to and from the TLS
 * stream.
 *
 * Authentication. The listener demands a client certificate signed by the
 * cluster CA (NNG_TLS_AUTH_MODE_REQUIRED): a peer without one fails the
 * TLS handshake and raft never sees a byte. The dialler verifies the
 * listener's certificate against the same CA and the host it dialled
 * (dial_config below). After the handshake the dialler sends a hello and
 * the listener answers one byte before raft gets the stream:
 *
 *   OFFSET  SIZE  FIELD (dialler -> listener)
 *        0     8  magic "RVRAFT01"
 *        8     8  the dialler's raft id, big-endian, > 0
 *       16     2  n, the length of its raft address, big-endian, 1..64
 *       18     n  its raft address, printable ASCII
 *   (listener -> dialler) 1 byte TRANSPORT_TLS_ACK
 *
 * A hello that is late (TRANSPORT_TLS_HELLO_MS), short or malformed closes
 * the connection. At most TRANSPORT_TLS_MAX_CONNS connections (accepted,
 * dialled, in their hello or relaying) exist at once; more are closed at
 * once.
 *
 * Threads. init/listen/connect/close run on raft's loop thread (as raft
 * calls them); set-up and relaying run on two threads per connection;
 * results reach the loop through a uv_async_t. The transport's close
 * completes (its callback runs) once every connection is closed and every
 * thread joined. */
#ifndef RV_RAFT_TRANSPORT_TLS_H
#define RV_RAFT_TRANSPORT_TLS_H

#include "base/log.h"

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <raft.h>
#include <raft/uv.h>

#define TRANSPORT_TLS_MAX_ADDR  64
#define TRANSPORT_TLS_HELLO_MS  3000 /* TLS handshake and hello, each way. */
#define TRANSPORT_TLS_DIAL_MS   3000
#define TRANSPORT_TLS_MAX_CONNS 64
#define TRANSPORT_TLS_ACK       0x01

/* A new client configuration for dialling the peer at host (its raft
 * address without the port): CA verification required, this node's
 * certificate presented. Called on the transport's threads. Returns 0 or
 * an RV_* code with the reason in errmsg. */
typedef int (*transport_tls_dial_fn)(void *data, const char *host,
                                     nng_tls_config **out, char *errmsg);

struct transport_tls_config {
    /* Server configuration of the raft port: this node's certificate, the
     * cluster CA, NNG_TLS_AUTH_MODE_REQUIRED. Borrowed: the transport takes
     * its own hold (nng_tls_config_hold). */
    nng_tls_config *listen;
    transport_tls_dial_fn dial;
    void *dial_data;
    const struct rv_log *log; /* Borrowed; outlives the transport. */
};

/* Fill t (a raft_uv_transport to give raft_uv_init) with this transport;
 * cfg is copied. Errors: RV_ENOMEM. Loop thread (before raft_uv_init). */
int transport_tls_init(struct raft_uv_transport *t, uv_loop_t *loop,
                       const struct transport_tls_config *cfg);

/* Free what transport_tls_init allocated, after raft closed the transport
 * (its close callback ran) and the loop has stopped, as raft_uv_tcp_close
 * is used. */
void transport_tls_close(struct raft_uv_transport *t);

#endif /* RV_RAFT_TRANSPORT_TLS_H */
