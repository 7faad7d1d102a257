/* ui.c — see ui.h. Serves only the files compiled in (ui_assets.h): never a file from disk, never
 * a path it did not list (no traversal can name anything else), never an inline script (the CSP
 * forbids it, the page has none). */
#include "ui/ui.h"

#include <string.h>

#include "ui/ui_assets.h"

#define UI_INDEX "/ui/index.html"

const ui_asset *ui_find(const char *path) {
  if (strcmp(path, "/") == 0 || strcmp(path, "/ui") == 0 || strcmp(path, "/ui/") == 0)
    path = UI_INDEX;
  for (size_t i = 0; i < ui_n_assets; i++)
    if (strcmp(ui_assets[i].path, path) == 0) return &ui_assets[i];
  return NULL;
}

/* If-None-Match (a list of ETags, or *) names etag. */
static bool etag_matches(const char *inm, const char *etag) {
  return inm && (strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL);
}

void ui_serve(http_req *r, const char *path) {
  http_add_header(r, "Content-Security-Policy", UI_CSP);
  http_add_header(r, "X-Content-Type-Options", "nosniff");
  http_add_header(r, "Referrer-Policy", "no-referrer");
  http_add_header(r, "Cache-Control", "no-cache");
  const ui_asset *a = ui_find(path);
  if (!a) {
    api_error err;
    api_error_set(&err, 404, "invalid_request_error", "not_found", NULL,
                  "Unknown endpoint: %.16s %.200s", http_method(r), path);
    http_reply_error(r, &err);
    return;
  }
  http_add_header(r, "ETag", a->etag);
  if (etag_matches(http_header(r, "If-None-Match"), a->etag))
    http_reply_static(r, 304, NULL, "", 0);
  else
    http_reply_static(r, 200, a->type, a->data, a->len);
}
