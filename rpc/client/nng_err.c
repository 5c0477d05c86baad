/* nng error numbers to project codes (contract in nng_err.h). */
#include "rpc/client/nng_err.h"

#include "base/err.h"

#include <nng/nng.h>

int
rvc_err_from_nng(int nng_rv, const char *what, char *errmsg)
{
    if (nng_rv == 0)
        return RV_OK;
    if (errmsg != NULL) {
        if (what != NULL)
            rv_errmsg_printf(errmsg, "%s: %s", what, nng_strerror(nng_rv));
        else
            rv_errmsg_printf(errmsg, "%s", nng_strerror(nng_rv));
    }
    switch (nng_rv) {
    case NNG_ENOMEM:
        return RV_ENOMEM;
    case NNG_ETIMEDOUT:
        return RV_ETIMEDOUT;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
        return RV_EINVAL;
    case NNG_EADDRINUSE:
    case NNG_EPERM:
        return RV_EIO;
    default:
        return RV_EUNAVAILABLE;
    }
}
