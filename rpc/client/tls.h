/* TLS settings shared by the client library, the CLI and the node: the
 * cluster CA and an optional certificate and key, read once from PEM files
 * and turned into nng_tls_config objects (nng 1.5.2 on mbedTLS 2.28) on
 * demand.
 *
 * Dialling (rvc_tls_dial_config) always verifies the server's certificate
 * against the CA (NNG_TLS_AUTH_MODE_REQUIRED) and, when a server name is
 * given, checks it against the certificate's names. mbedTLS 2.28 compares
 * the name as text with the DNS entries of subjectAltName (or the CN), and
 * never with IP entries: a certificate for a node reached at 10.0.0.5
 * carries DNS:10.0.0.5 as well as IP:10.0.0.5 (deploy/make-certs.sh makes
 * both). Listening (rvc_tls_listen_config) presents the certificate and
 * asks the peer for one with the auth mode chosen by the caller.
 *
 * An nng_tls_config becomes read-only once a dialler or listener used it,
 * so each call makes a fresh one; the PEM text is parsed again (a few
 * hundred microseconds for the EC keys of make-certs.sh).
 *
 * The key's text is held in memory for the life of the object and never
 * logged. Threads: after rvc_tls_open the object is read-only: any thread
 * may use it; rvc_tls_close when nobody does any more. */
#ifndef RV_RPC_CLIENT_TLS_H
#define RV_RPC_CLIENT_TLS_H

#include "base/err.h"

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#define RVC_TLS_MAX_PEM_BYTES (256u << 10) /* Per file. */

struct rvc_tls;

/* Read ca_file (required) and, if given, cert_file and key_file (both or
 * neither), and check that nng accepts them (a trial configuration is
 * built). Errors: RV_EINVAL (a missing or half-given argument, a file
 * that is not PEM or that mbedTLS rejects, a key that is not the
 * certificate's: the file is named in errmsg),
 * RV_EIO (unreadable file), RV_ENOMEM. The strings are borrowed. */
int rvc_tls_open(struct rvc_tls **out, const char *ca_file,
                 const char *cert_file, const char *key_file, char *errmsg);

/* NULL is allowed. */
void rvc_tls_close(struct rvc_tls *t);

/* Why the certificate will be refused by peers although it loaded (it
 * expired, or is not valid yet), for the caller to report; NULL if it is
 * fine or there is none. Static text owned by t. */
const char *rvc_tls_warning(const struct rvc_tls *t);

/* 1 if a certificate and key were given. */
int rvc_tls_has_cert(const struct rvc_tls *t);

/* A new client configuration: CA verification required, the own
 * certificate if any, server_name (borrowed; NULL or "" = not checked).
 * The caller frees it with nng_tls_config_free (nng keeps its own hold
 * while a dialler uses it). Errors: RV_ENOMEM, RV_EINVAL. */
int rvc_tls_dial_config(const struct rvc_tls *t, const char *server_name,
                        nng_tls_config **out, char *errmsg);

/* A new server configuration with auth_mode (an nng_tls_auth_mode) and the
 * CA; needs a certificate (RV_EINVAL otherwise). Freed as above. */
int rvc_tls_listen_config(const struct rvc_tls *t, int auth_mode,
                          nng_tls_config **out, char *errmsg);

/* The host of a "scheme://HOST:PORT[/...]" address into host (size
 * bytes), for rvc_tls_dial_config's server name; "" if there is none. */
void rvc_tls_host_of(const char *addr, char *host, size_t size);

#endif /* RV_RPC_CLIENT_TLS_H */
