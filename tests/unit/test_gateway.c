/* The gateway's error table: every RV_* code maps to a status and an
 * error_code, and the ones clients act on map as docs/HTTP.md says. */
#include "gateway/gateway.h"
#include "tests/lib/harness.h"

#include <string.h>

static void
test_every_code_has_a_status(void)
{
    for (int code = RV_OK + 1; code < RV_ERR_COUNT; code++) {
        const char *ec = NULL;
        int status = gateway_status_of(code, &ec);
        CHECK(ec != NULL && ec[0] != '\0');
        CHECK(status == 400 || status == 404 || status == 409 ||
              status == 413 || status == 429 || status == 500 ||
              status == 503 || status == 507);
        /* Only local faults are 500: every other code has its own row. */
        if (status == 500)
            CHECK(code == RV_EIO || code == RV_ECORRUPT);
    }
}

static void
test_codes_clients_act_on(void)
{
    static const struct {
        int code, status;
        const char *ec;
    } want[] = {
        {RV_EINVAL, 400, "INVALID_PARAMETER_VALUE"},
        {RV_EPARSE, 400, "INVALID_PARAMETER_VALUE"},
        {RV_ECONFLICT, 400, "INVALID_PARAMETER_VALUE"},
        {RV_EMALFORMED, 400, "MALFORMED_REQUEST"},
        {RV_ENOTFOUND, 404, "RESOURCE_DOES_NOT_EXIST"},
        {RV_EEXIST, 409, "RESOURCE_ALREADY_EXISTS"},
        {RV_ESTATE, 409, "INVALID_STATE"},
        {RV_ETOOBIG, 413, "REQUEST_TOO_LARGE"},
        {RV_EQUOTA, 429, "RESOURCE_EXHAUSTED"},
        {RV_ENOTLEADER, 503, "TEMPORARILY_UNAVAILABLE"},
        {RV_EUNAVAILABLE, 503, "TEMPORARILY_UNAVAILABLE"},
        {RV_EUNKNOWN, 503, "TEMPORARILY_UNAVAILABLE"},
        {RV_ETIMEDOUT, 503, "TEMPORARILY_UNAVAILABLE"},
        {RV_ENOSPACE, 507, "INSUFFICIENT_STORAGE"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *ec = NULL;
        CHECK(gateway_status_of(want[i].code, &ec) == want[i].status);
        CHECK(ec != NULL && strcmp(ec, want[i].ec) == 0);
    }
}

static const struct rv_test tests[] = {
    {"every_code_has_a_status", test_every_code_has_a_status},
    {"codes_clients_act_on", test_codes_clients_act_on},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
