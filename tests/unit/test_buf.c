/* test_buf.c — unit tests for src/common/buf.h, the capped growable byte buffer.
 *
 * Covers: append (including zero bytes and binary data with NULs), puts, printf (short, long
 * enough to force several regrowths, formatting), consume (part, all, more than all, on an empty
 * buffer), the hard limit (exact fit accepted, one byte over refused and the buffer left intact,
 * printf over the limit refused), the NUL terminator invariant, and free/reuse.
 */
#include "buf.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static void test_append_and_nul(void **state) {
  (void)state;
  sy_buf b = {0};
  assert_int_equal(sy_buf_append(&b, "abc", 3), 0);
  assert_int_equal(b.len, 3);
  assert_string_equal(b.data, "abc");
  assert_true(b.cap > b.len);
  /* zero bytes: fine, still NUL-terminated */
  assert_int_equal(sy_buf_append(&b, "", 0), 0);
  assert_int_equal(b.len, 3);
  assert_int_equal(b.data[3], '\0');
  /* binary data with embedded NULs */
  const char bin[4] = {'x', '\0', 'y', '\0'};
  assert_int_equal(sy_buf_append(&b, bin, sizeof bin), 0);
  assert_int_equal(b.len, 7);
  assert_memory_equal(b.data, "abcx\0y\0", 7);
  assert_int_equal(b.data[7], '\0');
  sy_buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
}

static void test_append_zero_on_empty(void **state) {
  (void)state;
  sy_buf b = {0};
  assert_int_equal(sy_buf_append(&b, NULL, 0), 0);
  assert_non_null(b.data);
  assert_int_equal(b.len, 0);
  assert_string_equal(b.data, "");
  sy_buf_free(&b);
}

static void test_grow_many(void **state) {
  (void)state;
  sy_buf b = {0};
  /* 100k single-byte appends: many regrowths, contents must survive each */
  for (int i = 0; i < 100000; i++) {
    char c = (char)('a' + i % 26);
    assert_int_equal(sy_buf_append(&b, &c, 1), 0);
  }
  assert_int_equal(b.len, 100000);
  for (int i = 0; i < 100000; i++) assert_int_equal(b.data[i], 'a' + i % 26);
  assert_int_equal(b.data[b.len], '\0');
  sy_buf_free(&b);
}

static void test_puts(void **state) {
  (void)state;
  sy_buf b = {0};
  assert_int_equal(sy_buf_puts(&b, "hello"), 0);
  assert_int_equal(sy_buf_puts(&b, ""), 0);
  assert_int_equal(sy_buf_puts(&b, ", world"), 0);
  assert_string_equal(b.data, "hello, world");
  assert_int_equal(b.len, 12);
  sy_buf_free(&b);
}

static void test_printf(void **state) {
  (void)state;
  sy_buf b = {0};
  assert_int_equal(sy_buf_printf(&b, "%d-%s-%zu", 42, "x", (size_t)7), 0);
  assert_string_equal(b.data, "42-x-7");
  assert_int_equal(b.len, 6);
  assert_int_equal(sy_buf_printf(&b, "%s", ""), 0);
  assert_int_equal(b.len, 6);
  /* longer than the initial capacity in one go: must grow and format in full */
  char big[5000];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(sy_buf_printf(&b, "[%s]", big), 0);
  assert_int_equal(b.len, 6 + 2 + 4999);
  assert_int_equal(b.data[6], '[');
  assert_int_equal(b.data[7], 'q');
  assert_int_equal(b.data[6 + 1 + 4999], ']');
  assert_int_equal(b.data[b.len], '\0');
  assert_int_equal(strlen(b.data), b.len);
  sy_buf_free(&b);
}

static void test_consume(void **state) {
  (void)state;
  sy_buf b = {0};
  sy_buf_consume(&b, 5); /* empty, never allocated: no crash */
  assert_null(b.data);
  assert_int_equal(b.len, 0);

  assert_int_equal(sy_buf_puts(&b, "0123456789"), 0);
  sy_buf_consume(&b, 0);
  assert_string_equal(b.data, "0123456789");
  sy_buf_consume(&b, 3);
  assert_string_equal(b.data, "3456789");
  assert_int_equal(b.len, 7);
  /* appending after a consume continues from the new end */
  assert_int_equal(sy_buf_puts(&b, "ab"), 0);
  assert_string_equal(b.data, "3456789ab");
  sy_buf_consume(&b, b.len); /* exactly all */
  assert_int_equal(b.len, 0);
  assert_string_equal(b.data, "");
  assert_int_equal(sy_buf_puts(&b, "xyz"), 0);
  sy_buf_consume(&b, 1000); /* more than all */
  assert_int_equal(b.len, 0);
  assert_string_equal(b.data, "");
  sy_buf_free(&b);
}

static void test_limit(void **state) {
  (void)state;
  sy_buf b = {.limit = 10};
  assert_int_equal(sy_buf_append(&b, "0123456789", 10), 0); /* exactly the limit: accepted */
  assert_int_equal(b.len, 10);
  assert_int_equal(sy_buf_append(&b, "x", 1), -1); /* one over: refused */
  assert_int_equal(b.len, 10);                     /* and the buffer is unchanged */
  assert_string_equal(b.data, "0123456789");
  assert_int_equal(sy_buf_append(&b, "", 0), 0); /* nothing more: still fine */
  assert_int_equal(sy_buf_puts(&b, "y"), -1);
  assert_int_equal(sy_buf_printf(&b, "%d", 1), -1);
  assert_string_equal(b.data, "0123456789");
  /* consuming frees room under the limit */
  sy_buf_consume(&b, 4);
  assert_int_equal(sy_buf_puts(&b, "abcd"), 0);
  assert_string_equal(b.data, "456789abcd");
  assert_int_equal(sy_buf_puts(&b, "e"), -1);
  sy_buf_free(&b);
}

static void test_limit_single_big_append(void **state) {
  (void)state;
  sy_buf b = {.limit = 100};
  char big[101];
  memset(big, 'z', sizeof big);
  assert_int_equal(sy_buf_append(&b, big, sizeof big), -1);
  assert_int_equal(b.len, 0);
  assert_int_equal(sy_buf_append(&b, big, 100), 0);
  assert_int_equal(b.len, 100);
  sy_buf_free(&b);
  /* printf whose output alone is over the limit */
  sy_buf p = {.limit = 8};
  assert_int_equal(sy_buf_printf(&p, "%s", "123456789"), -1);
  assert_int_equal(p.len, 0);
  assert_int_equal(sy_buf_printf(&p, "%s", "12345678"), 0);
  assert_string_equal(p.data, "12345678");
  sy_buf_free(&p);
}

static void test_huge_length_refused(void **state) {
  (void)state;
  sy_buf b = {0};
  assert_int_equal(sy_buf_puts(&b, "ab"), 0);
  /* a length that would overflow size_t arithmetic is refused before anything is read */
  assert_int_equal(sy_buf_append(&b, "x", SIZE_MAX - 1), -1);
  assert_int_equal(sy_buf_append(&b, "x", SIZE_MAX / 2), -1);
  assert_int_equal(b.len, 2);
  assert_string_equal(b.data, "ab");
  sy_buf_free(&b);
}

static void test_free_and_reuse(void **state) {
  (void)state;
  sy_buf b = {.limit = 50};
  assert_int_equal(sy_buf_puts(&b, "first"), 0);
  sy_buf_free(&b);
  sy_buf_free(&b);               /* twice is harmless */
  assert_int_equal(b.limit, 50); /* the limit survives a free */
  assert_int_equal(sy_buf_puts(&b, "second"), 0);
  assert_string_equal(b.data, "second");
  sy_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_and_nul),
      cmocka_unit_test(test_append_zero_on_empty),
      cmocka_unit_test(test_grow_many),
      cmocka_unit_test(test_puts),
      cmocka_unit_test(test_printf),
      cmocka_unit_test(test_consume),
      cmocka_unit_test(test_limit),
      cmocka_unit_test(test_limit_single_big_append),
      cmocka_unit_test(test_huge_length_refused),
      cmocka_unit_test(test_free_and_reuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
