/* The web UI's assets (ui/), served from the binary: the build turns each
 * file into a C array with a gzip copy and an ETag (gateway/embed_ui.cmake
 * writes ui_assets.c). The page gets a strict Content-Security-Policy:
 * scripts, styles and connections from this origin only, no inline
 * script, no framing. No CORS header is ever sent, so other origins
 * cannot read answers. */
#include "gateway/gateway_int.h"

#include <string.h>
#include <strings.h>

/* What the page may load: its own scripts, styles and API; images as
 * data: URLs (uPlot draws on canvas, the screenshots export). */
const char gw_ui_csp_header[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

/* 1 if the Accept-Encoding header v accepts gzip: a "gzip" (or "*")
 * coding whose q is not 0. */
static int
gw__accepts_gzip(const char *v)
{
    while (v != NULL && *v != '\0') {
        v += strspn(v, " \t,");
        size_t n = strcspn(v, ",;");
        size_t end = strcspn(v, ",");
        int is_gzip = (n == 4 && strncasecmp(v, "gzip", 4) == 0) ||
                      (n == 1 && v[0] == '*');
        if (is_gzip) {
            /* ";q=0", ";q=0.0", ";q=0.000" refuse it. */
            const char *q = v + n;
            int is_zero = 0;
            if (*q == ';') {
                q += 1 + strspn(q + 1, " \t");
                if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                    q += 2;
                    size_t qn = strcspn(q, ", \t;");
                    is_zero = qn > 0 && q[0] == '0' && strspn(q, "0.") >= qn;
                }
            }
            if (!is_zero)
                return 1;
        }
        v += end;
    }
    return 0;
}

/* 1 if the If-None-Match header v lists etag (or is "*"). */
static int
gw__etag_matches(const char *v, const char *etag)
{
    size_t en = strlen(etag);
    while (v != NULL && *v != '\0') {
        v += strspn(v, " \t,");
        size_t n = strcspn(v, ",");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        const char *t = v;
        size_t tn = n;
        if (tn >= 2 && t[0] == 'W' && t[1] == '/') { /* Weak compares too. */
            t += 2;
            tn -= 2;
        }
        if ((tn == 1 && t[0] == '*') || (tn == en && memcmp(t, etag, en) == 0))
            return 1;
        v += strcspn(v, ",");
    }
    return 0;
}

void
gw_ui_get(struct gw_ctx *c)
{
    struct gw_exchange *x = c->x;
    const char *path = x->path;
    const struct gw_ui_asset *a = NULL;
    for (size_t i = 0; i < gw_ui_n_assets && a == NULL; i++)
        if (strcmp(gw_ui_assets[i].url, path) == 0)
            a = &gw_ui_assets[i];
    if (a == NULL) {
        gw_reply_status(x, 404, "RESOURCE_DOES_NOT_EXIST",
                        "no such file of the web UI");
        return;
    }
    x->is_page = strcmp(a->url, "/") == 0;
    x->etag = a->etag;
    /* Revalidate every time: a new build changes the ETag, and a 304 on
     * loopback or a LAN costs less than a stale page after an upgrade. */
    x->cache_control = "no-cache";
    x->vary = "Accept-Encoding";
    if (gw__etag_matches(x->if_none_match, a->etag)) {
        x->status = 304;
        x->out_type = a->type;
        x->out_static = "";
        x->out_static_len = 0;
        return;
    }
    x->status = 200;
    x->out_type = a->type;
    if (gw__accepts_gzip(x->accept_encoding)) {
        x->content_encoding = "gzip";
        x->out_static = a->gz;
        x->out_static_len = a->gz_len;
    } else {
        x->out_static = a->data;
        x->out_static_len = a->len;
    }
}
