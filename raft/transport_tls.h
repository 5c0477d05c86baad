/* A raft_uv_transport (raft 0.15, <raft/uv.h>) whose peers talk over
 * mutually authenticated TLS 1.3: OpenSSL runs directly on the TCP socket, and
 * raft sees each connection as a uv_pipe_t on one end of a socketpair whose
 * other end one relay thread per connection copies to and from the TLS session
 * (poll on both, non-blocking, whole records).
 *
 * Authentication. The listener demands a client certificate signed by the
 * cluster CA (the only trust anchor): a peer without one fails the TLS
 * handshake and raft never sees a byte. The dialler verifies the
 * listener's certificate against the same CA and the host it dialled (an
 * IP address as an IP subjectAltName, a name as a DNS one). After the handshake
 * the dialler sends a hello and the listener answers one byte before raft gets
 * the stream:
 *
 *   OFFSET  SIZE  FIELD (dialler -> listener)
 *        0     8  magic "RVRAFT01"
 *        8     8  the dialler's raft id, big-endian, > 0
 *       16     2  n, the length of its raft address, big-endian, 1..64
 *       18     n  its raft address, printable ASCII
 *   (listener -> dialler) 1 byte TRANSPORT_TLS_ACK
 *
 * A handshake plus hello that is late (TRANSPORT_TLS_HELLO_MS), short or
 * malformed closes the connection. At most TRANSPORT_TLS_MAX_CONNS
 * connections (accepted, dialled, in their hello or relaying) exist at
 * once; more are closed at once.
 *
 * The CA, certificate and key are read once, by transport_tls_init, into
 * one OpenSSL context that the connections' threads share.
 *
 * The process must ignore SIGPIPE (runvault serve does): OpenSSL writes to
 * the socket with write(2).
 *
 * Threads. init/listen/connect/close run on raft's loop thread (as raft
 * calls them; accepting too, from a uv_poll_t); set-up and relaying run
 * on one thread per connection; results reach the loop through a
 * uv_async_t. The transport's close completes (its callback runs) once
 * every connection is closed and its thread joined. */
#ifndef RV_RAFT_TRANSPORT_TLS_H
#define RV_RAFT_TRANSPORT_TLS_H

#include "base/log.h"

#include <raft.h>
#include <raft/uv.h>

#define TRANSPORT_TLS_MAX_ADDR  64
#define TRANSPORT_TLS_HELLO_MS  3000 /* TLS handshake and hello, each way. */
#define TRANSPORT_TLS_DIAL_MS   3000
#define TRANSPORT_TLS_MAX_CONNS 64
#define TRANSPORT_TLS_ACK       0x01

struct transport_tls_config {
    /* PEM files: the cluster CA, this node's certificate (a server and a
     * client one) and its key. Borrowed; read by transport_tls_init. */
    const char *ca_file, *cert_file, *key_file;
    const struct rv_log *log; /* Borrowed; outlives the transport. */
};

/* Fill t (a raft_uv_transport to give raft_uv_init) with this transport;
 * cfg is copied and its files read and checked (OpenSSL parses them; why
 * one is refused goes to cfg->log). Errors: RV_ENOMEM, RV_EINVAL (a file
 * unreadable or refused, or a key that does not match the certificate). Loop
 * thread (before raft_uv_init). */
int transport_tls_init(struct raft_uv_transport *t, uv_loop_t *loop,
                       const struct transport_tls_config *cfg);

/* Free what transport_tls_init allocated, after raft closed the transport
 * (its close callback ran) and the loop has stopped, as raft_uv_tcp_close
 * is used. */
void transport_tls_close(struct raft_uv_transport *t);

#endif /* RV_RAFT_TRANSPORT_TLS_H */
