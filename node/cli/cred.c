/* The caller's token (cli_int.h): read from --token-file or RUNVAULT_TOKEN,
 * checked before anything is sent, never printed. */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include "base/err.h"
#include "node/cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes read from a token file: one token line and a little room, so that
 * a wrong file (a key, a log) is refused without reading it all. */
#define CLI_TOKEN_FILE_BYTES 1024

static const char cli_token_form[] = "rvt_<16 hex digits>_<64 hex digits>";

/* The first line of path into buf[size] (NUL-terminated, a trailing
 * "\n" or "\r\n" stripped); -1 after a message naming path. */
static int
cli__token_read(const char *prog, const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, "%s: --token-file %s: %s\n", prog, path,
                strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
        fprintf(stderr,
                "%s: warning: --token-file %s can be read by other users "
                "(chmod 600 it)\n",
                prog, path);
    size_t n = 0;
    int err = 0;
    while (n + 1 < size) {
        ssize_t k = read(fd, buf + n, size - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            err = errno;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    if (err != 0) {
        fprintf(stderr, "%s: --token-file %s: %s\n", prog, path, strerror(err));
        return -1;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return 0;
}

/* The form of text[0, n) from source (its name for messages); 0 or -1
 * after a message that names source and never shows text. */
static int
cli__token_check(const char *prog, const char *source, const char *text,
                 size_t n)
{
    char id[RV_TOKEN_ID_CHARS + 1];
    if (n == 0) {
        fprintf(stderr, "%s: %s is empty\n", prog, source);
        return -1;
    }
    if (rv_token_parse(text, n, id) != RV_OK) {
        fprintf(stderr, "%s: %s does not hold a runvault token (%s)\n", prog,
                source, cli_token_form);
        return -1;
    }
    return 0;
}

int
cli_token_read(const char *prog, const char *file,
               char out[RV_TOKEN_TEXT_CHARS + 1])
{
    char source[CLI_PATH_BYTES + 32];
    char buf[CLI_TOKEN_FILE_BYTES];
    const char *text;
    out[0] = '\0';
    if (file != NULL) {
        snprintf(source, sizeof source, "--token-file %s", file);
        if (cli__token_read(prog, file, buf, sizeof buf) != 0)
            return -1;
        text = buf;
    } else {
        text = getenv("RUNVAULT_TOKEN");
        if (text == NULL || text[0] == '\0')
            return 0;
        snprintf(source, sizeof source, "RUNVAULT_TOKEN");
    }
    size_t n = strlen(text);
    int rc = cli__token_check(prog, source, text, n);
    if (rc == 0)
        memcpy(out, text, n + 1); /* n == RV_TOKEN_TEXT_CHARS */
    cli__wipe(buf, sizeof buf);
    return rc;
}

int
cli__token_load(struct cli *cl, const struct cli_args *a)
{
    char prog[64];
    snprintf(prog, sizeof prog, "runvault %s", cl->name);
    return cli_token_read(prog, a->v[O_TOKEN_FILE], cl->token);
}

const char *
cli__refusal_hint(int code)
{
    switch (code) {
    case RV_EUNAUTHENTICATED:
        return "not authenticated (set RUNVAULT_TOKEN or --token-file): ";
    case RV_EPERM:
        return "permission denied: ";
    case RV_EQUOTA:
        return "quota exceeded: ";
    case RV_ERATE:
        return "rate limit exceeded: ";
    default:
        return "";
    }
}

void
cli__wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}
