/* test_ui.c — unit tests for src/daemon/ui/ (the status page's files compiled into the daemon).
 *
 * Covers: ui_find's names ("/", "/ui", "/ui/" are the page; "/ui/NAME" a file) and what it never
 * finds (traversal, other folders, a trailing slash, a prefix of a name, case, ""); the generated
 * table itself (tools/ui-embed): every asset under /ui/, a known Content-Type, a non-empty body
 * with a NUL after it, a quoted 16-hex-digit ETag unique per asset; the page holds no inline
 * script or style attribute (the CSP would block them), and loads only scripts under /ui/.
 */
#include "ui/ui.h"
#include "ui/ui_assets.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static void test_find(void **state) {
  (void)state;
  const ui_asset *index = ui_find("/ui/index.html");
  assert_non_null(index);
  assert_ptr_equal(ui_find("/"), index);
  assert_ptr_equal(ui_find("/ui"), index);
  assert_ptr_equal(ui_find("/ui/"), index);
  assert_non_null(ui_find("/ui/app.js"));
  const char *no[] = {"",           "/ui/../ui/app.js", "/ui//app.js", "/ui/app.js/", "/ui/app",
                      "/ui/APP.JS", "/app.js",          "/index.html", "//",          "/ui/.",
                      "/uiapp.js",  "/ui/app.js\n"};
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    if (ui_find(no[i])) fail_msg("ui_find(\"%s\") found something", no[i]);
}

static void test_table(void **state) {
  (void)state;
  assert_true(ui_n_assets >= 5);
  const char *types[] = {"text/html; charset=utf-8", "text/javascript; charset=utf-8",
                         "text/css; charset=utf-8", "image/svg+xml", "image/png"};
  for (size_t i = 0; i < ui_n_assets; i++) {
    const ui_asset *a = &ui_assets[i];
    assert_int_equal(strncmp(a->path, "/ui/", 4), 0);
    assert_null(strchr(a->path + 4, '/'));
    bool known = false;
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) known |= !strcmp(a->type, types[t]);
    if (!known) fail_msg("%s: type %s", a->path, a->type);
    assert_true(a->len > 0);
    assert_int_equal(a->data[a->len], 0);
    assert_int_equal(strlen(a->etag), 18);
    assert_true(a->etag[0] == '"' && a->etag[17] == '"');
    for (size_t j = 0; j < i; j++)
      if (!strcmp(ui_assets[j].etag, a->etag))
        fail_msg("%s: same ETag as %s", a->path, ui_assets[j].path);
    assert_ptr_equal(ui_find(a->path), a);
  }
}

static void test_page_has_no_inline_code(void **state) {
  (void)state;
  const ui_asset *index = ui_find("/");
  const char *html = (const char *)index->data;
  assert_null(strstr(html, "<script>"));
  assert_null(strstr(html, " style="));
  for (const char *p = html; (p = strstr(p, " on")); p++) { /* no onclick= and the like */
    size_t n = 3;
    while (p[n] >= 'a' && p[n] <= 'z') n++;
    if (p[n] == '=') fail_msg("an inline handler: %.40s", p);
  }
  assert_null(strstr(html, "http://"));
  assert_null(strstr(html, "https://"));
  for (const char *p = html; (p = strstr(p, "<script")); p++)
    if (!strstr(p, "src=\"/ui/") || strstr(p, "src=\"/ui/") > strchr(p, '>'))
      fail_msg("a script not from /ui/: %.60s", p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_find),
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_page_has_no_inline_code),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
