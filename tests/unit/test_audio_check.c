/* test_audio_check.c — unit tests of src/workers/llama/audio_check.c: which whisper-encoder
 * projectors the pinned mtmd would abort on (its token count and its graph disagree), and that
 * the reason names the projector, the stack factor and both numbers. */
#include "../../src/workers/llama/audio_check.h" /* a worker module: no -I for it */

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static void test_cases(void **st) {
  (void)st;
  char why[400];
  /* Ultravox: 1500 frames stack evenly by 4 (375) but not by 8 (187 counted, 188 made) */
  assert_int_equal(audio_check_stack("ultravox", 4, why, sizeof why), 0);
  assert_string_equal(why, "");
  assert_int_equal(audio_check_stack("ultravox", 8, why, sizeof why), 1);
  assert_non_null(strstr(why, "ultravox, stack factor 8"));
  assert_non_null(strstr(why, "counts 187 tokens"));
  assert_non_null(strstr(why, "makes 188"));
  /* Voxtral pools 1500 to 750 first: 750 / 4 is not whole */
  assert_int_equal(audio_check_stack("voxtral", 4, why, sizeof why), 1);
  assert_non_null(strstr(why, "counts 187 tokens"));
  assert_int_equal(audio_check_stack("voxtral", 2, why, sizeof why), 0);
  /* every stack factor: refused exactly when the stacked window does not divide */
  for (long k = 1; k <= 64; k++) {
    int bad = k > 1 && (3000 + k - 1) / k / 2 != (1500 + k - 1) / k;
    assert_int_equal(audio_check_stack("ultravox", k, why, sizeof why), bad);
  }
  /* projectors without stacking, unknown types, no type */
  assert_int_equal(audio_check_stack("qwen2a", 8, why, sizeof why), 0);
  assert_int_equal(audio_check_stack("qwen3a", 0, why, sizeof why), 0);
  assert_int_equal(audio_check_stack("mlp", 0, why, sizeof why), 0);
  assert_int_equal(audio_check_stack(NULL, 8, why, sizeof why), 0);
  assert_int_equal(audio_check_stack("ultravox", 0, why, sizeof why), 0);
  /* a short buffer is cut, not overrun */
  char tiny[8];
  assert_int_equal(audio_check_stack("ultravox", 8, tiny, sizeof tiny), 1);
  assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_cases)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
