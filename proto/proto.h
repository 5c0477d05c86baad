/* The entry envelope of the replicated manifest log, and bounded decoding
 * of the protobuf messages in proto/runvault.proto.
 *
 * Envelope layout (all integers big-endian):
 *
 *   OFFSET  SIZE  FIELD
 *        0     4  magic "RVE1" (0x52564531)
 *        4     2  format version (PROTO_FORMAT_VERSION)
 *        6     2  flags, 0
 *        8     4  payload length n (true length, before padding)
 *       12     4  CRC-32C of the n payload bytes
 *       16     n  payload: a packed rv.CommandBatch
 *     16+n     p  zero padding, 0 <= p < 8, so the total is a multiple of 8
 *
 * The padding exists because raft 0.15 corrupts its own log for entries
 * whose size is not a multiple of 8 (shared/research/raft-0.15.md §4.2). */
#ifndef RV_PROTO_PROTO_H
#define RV_PROTO_PROTO_H

#include "base/buf.h"
#include "proto/runvault.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC          0x52564531u
#define PROTO_FORMAT_VERSION 1
#define PROTO_HEADER_BYTES   16
/* Largest whole entry (header + payload + padding). */
#define PROTO_MAX_ENTRY_BYTES   (1u << 20)
#define PROTO_MAX_PAYLOAD_BYTES (PROTO_MAX_ENTRY_BYTES - PROTO_HEADER_BYTES)

/* Bytes an envelope around a payload of n bytes takes. */
static inline size_t
proto_envelope_size(size_t n)
{
    return PROTO_HEADER_BYTES + ((n + 7u) & ~(size_t)7u);
}

/* Append the envelope of batch to out. Returns RV_OK, RV_ETOOBIG if the
 * entry would exceed PROTO_MAX_ENTRY_BYTES, or RV_ENOMEM. On error out is
 * left with its previous length. */
int proto_envelope_encode(const Rv__CommandBatch *batch, struct rv_buf *out,
                          char *errmsg);

/* Make out[proto_envelope_size(n)] an envelope around the n bytes of
 * packed payload already at out + PROTO_HEADER_BYTES (the caller packs in
 * place, so the payload is never copied again): header, CRC, padding.
 * n must be <= PROTO_MAX_PAYLOAD_BYTES. */
void proto_envelope_seal(uint8_t *out, size_t n);
/* The same around a payload elsewhere (copied to out + PROTO_HEADER_BYTES;
 * payload and out must not overlap). */
void proto_envelope_wrap(const void *payload, size_t n, uint8_t *out);

/* Check an envelope and find its payload. *payload points into data
 * (borrowed, valid as long as data). Returns RV_OK; RV_EVERSION for a
 * format version greater than PROTO_FORMAT_VERSION (a newer runvault's
 * entry, which apply must refuse, not skip); or RV_EMALFORMED with the
 * reason in errmsg (short, bad magic, version 0, wrong length, bad CRC,
 * non-zero padding). Never reads outside data[0, len). */
int proto_envelope_open(const void *data, size_t len, const uint8_t **payload,
                        size_t *n, char *errmsg);

/* Unpack a CommandBatch payload of n bytes. The size is checked before
 * unpacking. On RV_OK the caller frees *out with proto_batch_free(). Returns
 * RV_ETOOBIG or RV_EMALFORMED (garbage, truncation) otherwise. */
int proto_batch_decode(const uint8_t *payload, size_t n, Rv__CommandBatch **out,
                       char *errmsg);
void proto_batch_free(Rv__CommandBatch *batch);

/* proto_envelope_open() then proto_batch_decode(). */
int proto_entry_decode(const void *data, size_t len, Rv__CommandBatch **out,
                       char *errmsg);

/* The run a command names (run_id of its body), or NULL for commands
 * without one (teams, tokens, nodes, ...). */
const char *proto_command_run_id(const Rv__Command *cmd);

/* Names of the command body cases, for logs and errors ("log_batch"). */
const char *proto_command_name(const Rv__Command *cmd);

/* Text of a role ("reader", "writer", "admin", "cluster-admin"; "unknown"
 * outside the enum) and back. Parse returns 0 or -1. */
const char *proto_role_name(int role);
int proto_role_parse(const char *s, Rv__Role *out);

/* Text of a run status ("FINISHED") and back. Parse returns 0 or -1. */
const char *proto_status_name(Rv__RunStatus status);
int proto_status_parse(const char *s, Rv__RunStatus *out);

#endif /* RV_PROTO_PROTO_H */
