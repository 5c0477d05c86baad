/* libFuzzer target: arbitrary bytes as the payload of a valid entry
 * envelope, and as a whole entry, applied to a real store. Apply must treat
 * any input as data: business errors go into results, and store_apply
 * returning a local fault (which stops a node, on every replica, for good)
 * is a bug, reported by abort(); but RV_EVERSION for an envelope of a
 * newer format version, the designed refusal. The store lives in a temporary
 * directory for the whole run. */
#include "proto/proto.h"
#include "store/store.h"
#include "tests/fuzz/fuzz_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *fz_store;
static uint64_t fz_index;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_store = fuzz_store_open("fuzz_apply");
    return 0;
}

static void
fz_apply(const uint8_t *entry, size_t n)
{
    struct store_result *res = NULL;
    size_t n_res = 0;
    char errmsg[RV_ERRMSG_SIZE] = "";
    int rc = store_apply(fz_store, ++fz_index, entry, n, &res, &n_res, errmsg);
    if (rc == RV_EVERSION && n >= PROTO_HEADER_BYTES &&
        ((unsigned)entry[4] << 8 | entry[5]) > PROTO_FORMAT_VERSION) {
        /* A newer format's entry is refused on purpose, nothing applied
         * (the node stops until upgraded): not a bug. */
        fz_index--;
        return;
    }
    if (rc != RV_OK) {
        fprintf(stderr, "fuzz_apply: a local fault from input: %s: %s\n",
                rv_strerror(rc), errmsg);
        abort();
    }
    free(res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > PROTO_MAX_PAYLOAD_BYTES)
        return 0;
    uint8_t *e = malloc(proto_envelope_size(size));
    if (e == NULL)
        return 0;
    proto_envelope_wrap(data, size, e);
    fz_apply(e, proto_envelope_size(size));
    free(e);
    fz_apply(data, size);
    return 0;
}
