/* raft/peersock: the socket options on a loopback TCP socket, and the
 * connect deadline on a fake transport whose connects answer only when
 * told to (a connect into a network cut). */
#include "raft/peersock.h"
#include "tests/lib/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* A connected loopback pair: fds[0] the client, fds[1] the accepted end.
 * 0 or -1. */
static int
loopback_pair(int fds[2])
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&a, &len) != 0)
        return -1;
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    fds[1] = accept(l, NULL, NULL);
    close(l);
    return fds[1] >= 0 ? 0 : -1;
}

static unsigned
user_timeout_of(int fd)
{
    unsigned v = 0;
    socklen_t len = sizeof v;
    if (getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, &len) != 0)
        return 0;
    return v;
}

static void
test_options_are_set(void)
{
    int fds[2];
    CHECK(loopback_pair(fds) == 0);
    CHECK(user_timeout_of(fds[0]) == 0); /* Linux's default: off. */
    CHECK(peersock_set_opts(fds[0], 1200) == 0);
    CHECK(user_timeout_of(fds[0]) == 1200);
    int v = 0;
    socklen_t len = sizeof v;
    CHECK(getsockopt(fds[0], SOL_SOCKET, SO_KEEPALIVE, &v, &len) == 0 &&
          v == 1);
    CHECK(getsockopt(fds[0], IPPROTO_TCP, TCP_KEEPCNT, &v, &len) == 0 &&
          v == 3);
    /* Not a TCP socket: an error, not a crash. */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(peersock_set_opts(p[0], 1200) == -1);
    close(p[0]), close(p[1]), close(fds[0]), close(fds[1]);
}

/* ---- A fake transport -------------------------------------------------- */

static struct raft_uv_connect *fake_req;
static raft_uv_connect_cb fake_cb;
static int fake_n_connects;

static int
fake_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
             raft_id id, const char *address, raft_uv_connect_cb cb)
{
    (void)t, (void)id, (void)address;
    fake_req = req;
    fake_cb = cb;
    fake_n_connects++;
    return 0;
}

/* The fake transport answers now, with a stream on a loopback socket
 * (allocated from raft's heap, as raft_uv_tcp does) or with an error. */
static void
fake_answer(uv_loop_t *loop, int status, int *peer_fd)
{
    struct uv_stream_s *stream = NULL;
    if (status == 0) {
        int fds[2];
        CHECK(loopback_pair(fds) == 0);
        uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
        CHECK(tcp != NULL && uv_tcp_init(loop, tcp) == 0 &&
              uv_tcp_open(tcp, fds[0]) == 0);
        stream = (struct uv_stream_s *)tcp;
        *peer_fd = fds[1];
    }
    struct raft_uv_connect *req = fake_req;
    fake_req = NULL;
    fake_cb(req, stream, status);
}

static int raft_n_answers, raft_status;
static struct uv_stream_s *raft_stream;

static void
raft_connected(struct raft_uv_connect *req, struct uv_stream_s *stream,
               int status)
{
    (void)req;
    raft_n_answers++;
    raft_status = status;
    raft_stream = stream;
}

static void
stream_closed(uv_handle_t *h)
{
    raft_free(h);
}

static void
run_for(uv_loop_t *loop, unsigned ms)
{
    uint64_t end = uv_now(loop) + ms;
    while (uv_now(loop) < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(5);
        uv_update_time(loop);
    }
}

static void
test_connect_deadline(void)
{
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    struct raft_uv_transport t;
    memset(&t, 0, sizeof t);
    t.connect = fake_connect;
    struct peersock p;
    CHECK(peersock_install(&p, &t, &loop, 0, 100) == RAFT_INVALID);
    CHECK(t.connect == fake_connect);
    CHECK(peersock_install(&p, &t, &loop, 1200, 100) == 0);
    struct raft_uv_connect req;
    int peer = -1;

    /* Answered in time: raft gets the stream, with the options set. */
    raft_n_answers = 0;
    CHECK(t.connect(&t, &req, 2, "127.0.0.1:1", raft_connected) == 0);
    fake_answer(&loop, 0, &peer);
    CHECK(raft_n_answers == 1 && raft_status == 0 && raft_stream != NULL);
    uv_os_fd_t fd = -1;
    CHECK(uv_fileno((uv_handle_t *)raft_stream, &fd) == 0);
    CHECK(user_timeout_of(fd) == 1200);
    uv_close((uv_handle_t *)raft_stream, stream_closed);
    close(peer);
    run_for(&loop, 150); /* The deadline must not fire a second answer. */
    CHECK(raft_n_answers == 1);

    /* No answer: raft hears RAFT_NOCONNECTION at the deadline; the
     * attempt completing later is closed here, raft hears nothing more. */
    raft_n_answers = 0;
    CHECK(t.connect(&t, &req, 2, "127.0.0.1:1", raft_connected) == 0);
    run_for(&loop, 40);
    CHECK(raft_n_answers == 0);
    run_for(&loop, 150);
    CHECK(raft_n_answers == 1 && raft_status == RAFT_NOCONNECTION &&
          raft_stream == NULL);
    CHECK(p.n_connect_late == 1);
    fake_answer(&loop, 0, &peer);
    CHECK(raft_n_answers == 1);
    close(peer);

    /* A late failure (the transport cancelled at close) is absorbed too. */
    CHECK(t.connect(&t, &req, 2, "127.0.0.1:1", raft_connected) == 0);
    run_for(&loop, 150);
    CHECK(raft_n_answers == 2 && p.n_connect_late == 2);
    fake_answer(&loop, RAFT_CANCELED, &peer);
    CHECK(raft_n_answers == 2);

    /* Every handle closed and freed: the loop closes. */
    run_for(&loop, 20);
    CHECK(uv_loop_close(&loop) == 0);
    peersock_close(&p);
    CHECK(fake_n_connects == 3);
}

static const struct rv_test tests[] = {
    {"options_are_set", test_options_are_set},
    {"connect_deadline", test_connect_deadline},
    {NULL, NULL}};

int
main(int argc, char **argv)
{
    return rv_test_main(argc, argv, tests);
}
