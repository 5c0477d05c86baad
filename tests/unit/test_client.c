/* rpc/client/: the nng error translator (the client's exchanges run
 * against real nodes in cluster.test_cluster and cli.test_client_cli). */
#include "base/err.h"
#include "rpc/client/nng_err.h"
#include "tests/lib/harness.h"

#include <nng/nng.h>
#include <string.h>

/* ---- Tests ------------------------------------------------------------- */

static void
test_nng_errors_map_to_one_table(void)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    CHECK(rvc_err_from_nng(0, "x", errmsg) == RV_OK && errmsg[0] == '\0');
    CHECK(rvc_err_from_nng(NNG_ENOMEM, NULL, NULL) == RV_ENOMEM);
    CHECK(rvc_err_from_nng(NNG_ETIMEDOUT, NULL, NULL) == RV_ETIMEDOUT);
    CHECK(rvc_err_from_nng(NNG_EADDRINVAL, NULL, NULL) == RV_EINVAL);
    CHECK(rvc_err_from_nng(NNG_ENOTSUP, NULL, NULL) == RV_EINVAL);
    CHECK(rvc_err_from_nng(NNG_EADDRINUSE, NULL, NULL) == RV_EIO);
    CHECK(rvc_err_from_nng(NNG_ECONNREFUSED, NULL, NULL) == RV_EUNAVAILABLE);
    CHECK(rvc_err_from_nng(NNG_ECLOSED, NULL, NULL) == RV_EUNAVAILABLE);
    CHECK(rvc_err_from_nng(NNG_ESYSERR | 113, NULL, NULL) == RV_EUNAVAILABLE);
}

static void
test_nng_error_text_names_what_failed(void)
{
    char errmsg[RV_ERRMSG_SIZE] = "";
    rvc_err_from_nng(NNG_ECONNREFUSED, "tcp://127.0.0.1:1", errmsg);
    CHECK(strncmp(errmsg, "tcp://127.0.0.1:1: ", 19) == 0);
    CHECK(strstr(errmsg, nng_strerror(NNG_ECONNREFUSED)) != NULL);
    rvc_err_from_nng(NNG_ETIMEDOUT, NULL, errmsg);
    CHECK(strcmp(errmsg, nng_strerror(NNG_ETIMEDOUT)) == 0);
}

static const struct rv_test tests[] = {
    {"nng_errors_map_to_one_table", test_nng_errors_map_to_one_table},
    {"nng_error_text_names_what_failed", test_nng_error_text_names_what_failed},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
