/* The one translation of nng 1.5 error numbers into project codes, for
 * every module that calls nng (the client, the RPC server, the gateway).
 *
 *   nng                                      becomes
 *   0                                        RV_OK
 *   NNG_ENOMEM                               RV_ENOMEM
 *   NNG_ETIMEDOUT                            RV_ETIMEDOUT
 *   NNG_EINVAL, NNG_EADDRINVAL, NNG_ENOTSUP  RV_EINVAL (a bad address)
 *   NNG_EADDRINUSE, NNG_EPERM                RV_EIO (listening or binding
 *                                            here failed: a local fault)
 *   anything else (refused, closed, reset,   RV_EUNAVAILABLE (the peer
 *   unreachable, canceled, system errors)    cannot be reached now)
 *
 * A call site whose contract folds several outcomes into one (a node that
 * does not answer counts as down, whatever nng says) keeps the text and
 * overrides the code, with a comment.
 *
 * Threads: any thread; no state. */
#ifndef RV_RPC_CLIENT_NNG_ERR_H
#define RV_RPC_CLIENT_NNG_ERR_H

/* The RV_* code of nng_rv (table above). When nng_rv is not 0 and errmsg
 * is not NULL, errmsg (RV_ERRMSG_SIZE bytes) receives "what: <text of
 * nng_strerror>"; what is borrowed and may be NULL (then just the text). */
int rvc_err_from_nng(int nng_rv, const char *what, char *errmsg);

#endif /* RV_RPC_CLIENT_NNG_ERR_H */
