/* TLS settings from PEM files (contract in tls.h). */
#include "rpc/client/tls.h"

#include "rpc/client/nng_err.h"

#include <errno.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rvc_tls {
    char *ca;                     /* PEM text, NUL-terminated. Owned. */
    char *cert;                   /* NULL without a certificate. Owned. */
    char *key;                    /* Secret: never logged. Owned. */
    char warning[RV_ERRMSG_SIZE]; /* "" or why the certificate is unusable
                                     now (expired, not yet valid). */
};

/* The whole of path, NUL-terminated, into *out (caller frees). */
static int
rvc__tls_read(const char *what, const char *path, char **out, char *errmsg)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        rv_errmsg_printf(errmsg, "%s %s: %s", what, path, strerror(errno));
        return RV_EIO;
    }
    char *buf = malloc(RVC_TLS_MAX_PEM_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return RV_ENOMEM;
    }
    size_t n = fread(buf, 1, RVC_TLS_MAX_PEM_BYTES + 1, f);
    int is_err = ferror(f);
    fclose(f);
    int rc = RV_OK;
    if (is_err) {
        rv_errmsg_printf(errmsg, "%s %s: read error", what, path);
        rc = RV_EIO;
    } else if (n > RVC_TLS_MAX_PEM_BYTES) {
        rv_errmsg_printf(errmsg, "%s %s: larger than %u bytes", what, path,
                         RVC_TLS_MAX_PEM_BYTES);
        rc = RV_EINVAL;
    } else {
        buf[n] = '\0';
        if (strlen(buf) != n || strstr(buf, "-----BEGIN ") == NULL) {
            rv_errmsg_printf(errmsg, "%s %s: not a PEM file", what, path);
            rc = RV_EINVAL;
        }
    }
    if (rc != RV_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    return RV_OK;
}

void
rvc_tls_close(struct rvc_tls *t)
{
    if (t == NULL)
        return;
    free(t->ca);
    free(t->cert);
    if (t->key != NULL) {
        memset(t->key, 0, strlen(t->key));
        free(t->key);
    }
    free(t);
}

int
rvc_tls_has_cert(const struct rvc_tls *t)
{
    return t->cert != NULL;
}

/* The CA and, if any, our certificate into cfg; the files' names for the
 * error text come from the caller. */
static int
rvc__tls_fill(const struct rvc_tls *t, nng_tls_config *cfg, char *errmsg)
{
    int rv = nng_tls_config_ca_chain(cfg, t->ca, NULL);
    if (rv != 0)
        return rvc_err_from_nng(rv, "the CA certificate", errmsg);
    if (t->cert != NULL) {
        rv = nng_tls_config_own_cert(cfg, t->cert, t->key, NULL);
        if (rv != 0)
            return rvc_err_from_nng(
                rv, "the certificate and key (do they match?)", errmsg);
    }
    return RV_OK;
}

/* A new configuration of mode with auth_mode, server_name (if any), the
 * CA and our certificate (if any). */
static int
rvc__tls_config(const struct rvc_tls *t, nng_tls_mode mode, int auth_mode,
                const char *server_name, nng_tls_config **out, char *errmsg)
{
    nng_tls_config *cfg;
    int rv = nng_tls_config_alloc(&cfg, mode);
    if (rv != 0)
        return rvc_err_from_nng(rv, "nng_tls_config_alloc", errmsg);
    rv = nng_tls_config_auth_mode(cfg, (nng_tls_auth_mode)auth_mode);
    if (rv == 0 && server_name != NULL && server_name[0] != '\0')
        rv = nng_tls_config_server_name(cfg, server_name);
    int rc = rvc_err_from_nng(rv, "TLS settings", errmsg);
    if (rc == RV_OK)
        rc = rvc__tls_fill(t, cfg, errmsg);
    if (rc != RV_OK) {
        nng_tls_config_free(cfg);
        return rc == RV_EUNAVAILABLE ? RV_EINVAL : rc;
    }
    *out = cfg;
    return RV_OK;
}

int
rvc_tls_dial_config(const struct rvc_tls *t, const char *server_name,
                    nng_tls_config **out, char *errmsg)
{
    return rvc__tls_config(t, NNG_TLS_MODE_CLIENT, NNG_TLS_AUTH_MODE_REQUIRED,
                           server_name, out, errmsg);
}

int
rvc_tls_listen_config(const struct rvc_tls *t, int auth_mode,
                      nng_tls_config **out, char *errmsg)
{
    if (t->cert == NULL) {
        rv_errmsg_printf(errmsg, "listening with TLS needs a certificate");
        return RV_EINVAL;
    }
    return rvc__tls_config(t, NNG_TLS_MODE_SERVER, auth_mode, NULL, out,
                           errmsg);
}

/* The certificate's validity dates against now, into t->warning. */
static void
rvc__tls_dates(struct rvc_tls *t, const mbedtls_x509_crt *crt,
               const char *cert_file)
{
    const mbedtls_x509_time *to = &crt->valid_to, *from = &crt->valid_from;
    if (mbedtls_x509_time_is_past(to))
        snprintf(t->warning, sizeof t->warning,
                 "%s expired on %04d-%02d-%02d: peers will refuse it",
                 cert_file, to->year, to->mon, to->day);
    else if (mbedtls_x509_time_is_future(from))
        snprintf(t->warning, sizeof t->warning,
                 "%s is valid only from %04d-%02d-%02d: peers will refuse it",
                 cert_file, from->year, from->mon, from->day);
}

/* The certificate and key parse and belong together (nng's own_cert does
 * not check that); their dates go into t->warning. mbedTLS directly:
 * libnng-dev depends on libmbedtls-dev. */
static int
rvc__tls_check_pair(struct rvc_tls *t, const char *cert_file,
                    const char *key_file, char *errmsg)
{
    mbedtls_x509_crt crt;
    mbedtls_pk_context pk;
    int rc = RV_OK;
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&pk);
    if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)t->cert,
                               strlen(t->cert) + 1) != 0) {
        rv_errmsg_printf(errmsg, "%s: not a certificate", cert_file);
        rc = RV_EINVAL;
    } else if (mbedtls_pk_parse_key(&pk, (const unsigned char *)t->key,
                                    strlen(t->key) + 1, NULL, 0) != 0) {
        rv_errmsg_printf(errmsg, "%s: not a private key (or encrypted)",
                         key_file);
        rc = RV_EINVAL;
    } else if (mbedtls_pk_check_pair(&crt.pk, &pk) != 0) {
        rv_errmsg_printf(errmsg, "%s is not the key of %s", key_file,
                         cert_file);
        rc = RV_EINVAL;
    } else {
        rvc__tls_dates(t, &crt, cert_file);
    }
    mbedtls_pk_free(&pk);
    mbedtls_x509_crt_free(&crt);
    return rc;
}

const char *
rvc_tls_warning(const struct rvc_tls *t)
{
    return t->warning[0] != '\0' ? t->warning : NULL;
}

/* Build one configuration of each kind to find a bad file at start. */
static int
rvc__tls_try(const struct rvc_tls *t, const char *ca_file,
             const char *cert_file, char *errmsg)
{
    nng_tls_config *cfg = NULL;
    int rc = rvc_tls_dial_config(t, NULL, &cfg, errmsg);
    if (rc == RV_OK && t->cert != NULL) {
        nng_tls_config_free(cfg);
        cfg = NULL;
        rc = rvc_tls_listen_config(t, NNG_TLS_AUTH_MODE_OPTIONAL, &cfg, errmsg);
    }
    if (cfg != NULL)
        nng_tls_config_free(cfg);
    if (rc != RV_OK)
        rv_errmsg_wrap(errmsg, t->cert != NULL && strstr(errmsg, "key")
                                   ? cert_file
                                   : ca_file);
    return rc;
}

int
rvc_tls_open(struct rvc_tls **out, const char *ca_file, const char *cert_file,
             const char *key_file, char *errmsg)
{
    int has_cert = cert_file != NULL && cert_file[0] != '\0';
    int has_key = key_file != NULL && key_file[0] != '\0';
    if (ca_file == NULL || ca_file[0] == '\0' || has_cert != has_key) {
        rv_errmsg_printf(errmsg, "TLS needs a CA file, and a certificate "
                                 "and its key together or neither");
        return RV_EINVAL;
    }
    struct rvc_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return RV_ENOMEM;
    int rc = rvc__tls_read("CA file", ca_file, &t->ca, errmsg);
    if (rc == RV_OK && has_cert)
        rc = rvc__tls_read("certificate", cert_file, &t->cert, errmsg);
    if (rc == RV_OK && has_cert)
        rc = rvc__tls_read("key", key_file, &t->key, errmsg);
    if (rc == RV_OK && has_cert)
        rc = rvc__tls_check_pair(t, cert_file, key_file, errmsg);
    if (rc == RV_OK)
        rc = rvc__tls_try(t, ca_file, cert_file, errmsg);
    if (rc != RV_OK) {
        rvc_tls_close(t);
        return rc;
    }
    *out = t;
    return RV_OK;
}

void
rvc_tls_host_of(const char *addr, char *host, size_t size)
{
    const char *p = strstr(addr, "://");
    host[0] = '\0';
    if (p == NULL || size == 0)
        return;
    p += 3;
    size_t n = strcspn(p, ":/");
    if (n >= size)
        return;
    memcpy(host, p, n);
    host[n] = '\0';
}
