/* test_pipeline.c — the voice turn's sentence cutter (pipeline.c): where the llm's text is cut
 * for the tts step. */
/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "virtual/pipeline.h"

static size_t cut(const char *s, size_t max, bool final) {
  return pipe_sentence_cut(s, strlen(s), max, final);
}

static void test_sentence_ends(void **state) {
  (void)state;
  assert_int_equal(cut("Hello there. How", 200, false), 12); /* the end, not the space after it */
  assert_int_equal(cut("Really? Yes", 200, false), 7);
  assert_int_equal(cut("Stop! now", 200, false), 5);
  assert_int_equal(cut("one; two", 200, false), 4);
  assert_int_equal(cut("a line\nnext", 200, false), 7); /* a newline ends a piece */
  assert_int_equal(cut("Hello there.", 200, false),
                   0); /* a dot at the very end may be 3.14: wait */
  assert_int_equal(cut("Hello there.", 200, true), 12);     /* ... unless the text is complete */
  assert_int_equal(cut("pi is 3.14 or so", 200, false), 0); /* a dot inside a number is no end */
  assert_int_equal(cut("", 200, true), 0);
  assert_int_equal(cut("no end yet", 200, false), 0);
  assert_int_equal(cut("好的。然后", 200, false), 9); /* 。 ends a CJK sentence, no space needed */
  assert_int_equal(cut("是吗？对", 200, false), 9);
}

static void test_length_bound(void **state) {
  (void)state;
  /* no sentence end within max: cut at the last space before it */
  assert_int_equal(cut("one two three four five", 12, false), 8); /* "one two " */
  assert_int_equal(cut("one two", 12, false), 0);                 /* shorter than max: wait */
  /* no space at all: at max, backed off to a UTF-8 boundary */
  assert_int_equal(cut("abcdefghijklmnop", 8, false), 8);
  assert_int_equal(cut("好好好好好好", 8, false), 6); /* 3-byte characters: 6, not 8 */
  /* a sentence end beyond max does not hold the cut back */
  assert_int_equal(cut("aaaa bbbb cccc. dd", 8, false), 5);
  /* an end inside max wins over the bound */
  assert_int_equal(cut("ab. cdefghijklmnop", 8, false), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sentence_ends),
      cmocka_unit_test(test_length_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
