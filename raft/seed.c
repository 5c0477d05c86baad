/* raft_seed (seed.h). */
#include "raft/seed.h"

#include "base/fsdir.h"
#include "raft/raftfsm.h"

#include <dirent.h>
#include <errno.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

struct raft__seed {
    int is_done;
    int status;
};

static void
raft__seed_put_cb(struct raft_io_snapshot_put *req, int status)
{
    struct raft__seed *sd = req->data;
    sd->status = status;
    sd->is_done = 1;
}

static void
raft__seed_close_cb(struct raft_io *io)
{
    struct raft__seed *sd = io->data;
    sd->is_done = 1;
}

static int
raft__seed_io(struct raft_io *io, uv_loop_t *loop, uint64_t id,
              const char *raft_addr, const struct raft_configuration *conf,
              uint64_t index, struct rv_buf *desc, char *errmsg)
{
    struct raft__seed sd = {0, 0};
    io->data = &sd;
    int rv = io->init(io, id, raft_addr);
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "raft io init: %s (%s)", raft_strerror(rv),
                         io->errmsg);
        return RV_EIO;
    }
    raft_term term = 0;
    raft_id vote = 0;
    struct raft_snapshot *snap = NULL;
    raft_index start = 0;
    struct raft_entry *entries = NULL;
    size_t n_entries = 0;
    rv = io->load(io, &term, &vote, &snap, &start, &entries, &n_entries);
    int rc = RV_OK;
    if (rv != 0) {
        rv_errmsg_printf(errmsg, "raft io load: %s (%s)", raft_strerror(rv),
                         io->errmsg);
        rc = RV_EIO;
    } else if (term != 0 || snap != NULL || n_entries != 0) {
        rv_errmsg_printf(errmsg, "a raft log is already there (term %llu)",
                         (unsigned long long)term);
        rc = RV_EEXIST;
    }
    /* An empty load returns nothing to free. */
    if (rc == RV_OK && (rv = io->set_term(io, 1)) != 0) {
        rv_errmsg_printf(errmsg, "raft io set_term: %s (%s)", raft_strerror(rv),
                         io->errmsg);
        rc = RV_EIO;
    }
    if (rc == RV_OK) {
        struct raft_buffer buf = {desc->data, desc->len};
        struct raft_snapshot s = {0};
        s.index = index;
        s.term = 1;
        s.configuration = *conf;
        s.configuration_index = index;
        s.bufs = &buf;
        s.n_bufs = 1;
        struct raft_io_snapshot_put req;
        req.data = &sd;
        rv = io->snapshot_put(io, 0, &req, &s, raft__seed_put_cb);
        if (rv != 0) {
            rv_errmsg_printf(errmsg, "raft io snapshot_put: %s (%s)",
                             raft_strerror(rv), io->errmsg);
            rc = RV_EIO;
        } else {
            while (!sd.is_done && uv_run(loop, UV_RUN_ONCE) >= 0)
                ;
            if (sd.status != 0) {
                rv_errmsg_printf(errmsg, "raft snapshot write: %s (%s)",
                                 raft_strerror(sd.status), io->errmsg);
                rc = RV_EIO;
            }
        }
    }
    sd.is_done = 0;
    io->close(io, raft__seed_close_cb);
    while (!sd.is_done && uv_run(loop, UV_RUN_ONCE) >= 0)
        ;
    return rc;
}

int
raft_seed(const char *data_dir, uint64_t id, const char *raft_addr,
          const struct replica_peer *peers, size_t n_peers, uint64_t index,
          const uint8_t digest[STORE_DIGEST_BYTES], char *errmsg)
{
    char dir[4096];
    if (id == 0 || index == 0 ||
        (size_t)snprintf(dir, sizeof dir, "%s/raft", data_dir) >= sizeof dir) {
        rv_errmsg_printf(errmsg, "raft_seed: bad id, index or data dir");
        return RV_EINVAL;
    }
    int err = rv_mkdir_durable(dir);
    if (err != 0) {
        rv_errmsg_printf(errmsg, "mkdir %s: %s", dir, strerror(err));
        return RV_EIO;
    }
    if (rv_dir_used(dir) != 0) {
        rv_errmsg_printf(errmsg, "%s is not empty: it holds a raft log", dir);
        return RV_EEXIST;
    }
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    if (n_peers == 0)
        rv = raft_configuration_add(&conf, id, raft_addr, RAFT_VOTER);
    for (size_t i = 0; i < n_peers && rv == 0; i++)
        rv = raft_configuration_add(&conf, peers[i].id, peers[i].raft_addr,
                                    RAFT_VOTER);
    if (rv != 0) {
        raft_configuration_close(&conf);
        rv_errmsg_printf(errmsg, "raft configuration: %s", raft_strerror(rv));
        return RV_EINVAL;
    }
    struct raftfsm_descriptor d;
    memset(&d, 0, sizeof d);
    d.index = index;
    memcpy(d.digest, digest, STORE_DIGEST_BYTES);
    struct rv_buf desc;
    rv_buf_init(&desc);
    raftfsm_descriptor_encode(&d, &desc);

    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    int rc = RV_OK;
    if ((rv = uv_loop_init(&loop)) != 0) {
        rv_errmsg_printf(errmsg, "uv_loop_init: %s", uv_strerror(rv));
        rc = RV_EIO;
    } else {
        if ((rv = raft_uv_tcp_init(&transport, &loop)) != 0) {
            rv_errmsg_printf(errmsg, "raft_uv_tcp_init: %s", raft_strerror(rv));
            rc = RV_EIO;
        } else {
            if ((rv = raft_uv_init(&io, &loop, dir, &transport)) != 0) {
                rv_errmsg_printf(errmsg, "raft_uv_init: %s", raft_strerror(rv));
                rc = RV_EIO;
            } else {
                raft_uv_set_auto_recovery(&io, false);
                raft_uv_set_snapshot_compression(&io, false);
                rc = raft__seed_io(&io, &loop, id, raft_addr, &conf, index,
                                   &desc, errmsg);
                raft_uv_close(&io);
            }
            raft_uv_tcp_close(&transport);
        }
        for (int i = 0; i < 100 && uv_loop_close(&loop) == UV_EBUSY; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
    }
    rv_buf_free(&desc);
    raft_configuration_close(&conf);
    return rc;
}
