/* ui.h — the status page (docs/API.md "The status page"): the files of web/ui/, compiled into the
 * daemon by tools/ui-embed, served at "/" and under "/ui/". A wing of its own above http/ only: it
 * knows no model, no scheduler; the page reads the box's state through the public API (/api/ps,
 * /v1/models, /api/events, /metrics) like any other client.
 * Thread safety: the assets are read-only; ui_serve may run on any HTTP thread. */
#ifndef SY_UI_H
#define SY_UI_H

#include "http/http.h"

/* The Content-Security-Policy every page file is served with: scripts, styles and fetches from
 * this origin only, no inline script or style, media only from blob: (recorded or synthesised
 * audio, image previews), never framed. */
#define UI_CSP                                                                        \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "   \
  "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; " \
  "frame-ancestors 'none'"

/* Answer a GET/HEAD of path: "/", "/ui" and "/ui/" are index.html, "/ui/NAME" that file; 304 when
 * If-None-Match names its ETag; anything else 404 (OpenAI's error shape, as every unknown path).
 * Every answer carries UI_CSP, X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and
 * Cache-Control: no-cache (revalidate: the ETag makes that a 304). */
void ui_serve(http_req *r, const char *path);

/* The asset served at path (the rules above), or NULL. Pure. */
const struct ui_asset *ui_find(const char *path);

#endif
