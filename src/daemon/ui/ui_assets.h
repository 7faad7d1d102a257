/* ui_assets.h — the status page's files as the build compiled them into the daemon: the table
 * tools/ui-embed generates from web/ui/ ($(BUILD)/gen/ui_assets.c). Read-only data, never
 * modified, so any thread may read it. */
#ifndef SY_UI_ASSETS_H
#define SY_UI_ASSETS_H

#include <stddef.h>

typedef struct ui_asset {
  const char *path;          /* "/ui/app.js": the URL it is served at */
  const char *type;          /* its Content-Type */
  const unsigned char *data; /* its bytes (static storage) */
  size_t len;
  const char *etag; /* a strong ETag of the bytes, quoted: "\"0123456789abcdef\"" */
} ui_asset;

extern const ui_asset ui_assets[];
extern const size_t ui_n_assets;

#endif
