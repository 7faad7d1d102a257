/* test_pull_ref.c — unit tests of pull_ref.c, table-driven: references (good and hostile),
 * digests, file names (traversal, control bytes, odd characters), split parts, a hub's file list
 * (bad entries skipped, huge sizes refused), picking a quant's files (split groups, mmproj,
 * ambiguity), registry manifests (malformed digests are refused, not repaired). */
#include "pull/pull_ref.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

static void test_refs(void **st) {
  (void)st;
  static const struct {
    const char *in;
    int ok;
    pull_kind kind;
    const char *org, *repo, *tag, *file;
  } cases[] = {
      {"hf.co/Qwen/Qwen3-8B-GGUF:Q8_0", 1, PULL_HF_QUANT, "Qwen", "Qwen3-8B-GGUF", "Q8_0", ""},
      {"hf.co/org/repo", 1, PULL_HF_QUANT, "org", "repo", "Q4_K_M", ""},
      {"hf.co/org/repo:latest", 1, PULL_HF_QUANT, "org", "repo", "Q4_K_M", ""},
      {"huggingface.co/org/repo:iq2_xs", 1, PULL_HF_QUANT, "org", "repo", "iq2_xs", ""},
      {"https://huggingface.co/org/repo:Q4_0", 1, PULL_HF_QUANT, "org", "repo", "Q4_0", ""},
      {"hf.co/org/repo/model-Q4_0.gguf", 1, PULL_HF_FILE, "org", "repo", "", "model-Q4_0.gguf"},
      {"hf.co/org/repo/Q4/m-00001-of-00002.gguf", 1, PULL_HF_FILE, "org", "repo", "",
       "Q4/m-00001-of-00002.gguf"},
      {"qwen3:8b", 1, PULL_REGISTRY, "library", "qwen3", "8b", ""},
      {"llama3.2", 1, PULL_REGISTRY, "library", "llama3.2", "latest", ""},
      {"someone/model:q4", 1, PULL_REGISTRY, "someone", "model", "q4", ""},
      /* hostile or malformed */
      {"", 0, 0, 0, 0, 0, 0},
      {"hf.co/", 0, 0, 0, 0, 0, 0},
      {"hf.co/org", 0, 0, 0, 0, 0, 0},
      {"hf.co/../etc:Q4", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/..:Q4", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/repo/../../etc/passwd.gguf", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/repo/a/./b.gguf", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/repo/.hidden.gguf", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/repo/model.bin", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/repo/a//b.gguf", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/repo:Q4/../x", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/repo:", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/re po:Q4", 0, 0, 0, 0, 0, 0},
      {"../x:latest", 0, 0, 0, 0, 0, 0},
      {"a/b/c", 0, 0, 0, 0, 0, 0},
      {"name:", 0, 0, 0, 0, 0, 0},
      {"name:a/b", 0, 0, 0, 0, 0, 0},
      {"-rf", 0, 0, 0, 0, 0, 0},
      {"na\nme", 0, 0, 0, 0, 0, 0},
      {"hf.co/org/repo:Q4_K_M\r\nX: y", 0, 0, 0, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    pull_ref r;
    char err[256] = "";
    int rc = pull_ref_parse(cases[i].in, &r, err, sizeof err);
    if (!cases[i].ok) {
      if (rc != -1) fail_msg("'%s' should be refused", cases[i].in);
      assert_true(err[0] != '\0');
      continue;
    }
    if (rc != 0) fail_msg("'%s': %s", cases[i].in, err);
    assert_int_equal(r.kind, cases[i].kind);
    assert_string_equal(r.org, cases[i].org);
    assert_string_equal(r.repo, cases[i].repo);
    assert_string_equal(r.tag, cases[i].tag);
    assert_string_equal(r.file, cases[i].file);
  }
  /* too long */
  char big[2048];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  pull_ref r;
  assert_int_equal(pull_ref_parse(big, &r, NULL, 0), -1);
  memcpy(big, "hf.co/", 6);
  big[200] = '/';
  assert_int_equal(pull_ref_parse(big, &r, NULL, 0), -1);
}

static void test_digests(void **st) {
  (void)st;
  const char *h = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  char good[80];
  snprintf(good, sizeof good, "sha256:%s", h);
  assert_true(pull_digest_ok(good));
  static const char *bad[] = {
      NULL,
      "",
      "sha256:",
      "sha256:0123",
      "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
      "sha256:../../../../etc/passwd00000000000000000000000000000000000000000000",
      "sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      "SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_false(pull_digest_ok(bad[i]));
  assert_true(pull_hex64_ok(h, 64));
  assert_false(pull_hex64_ok(h, 63));
  assert_false(
      pull_hex64_ok("\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\"", 64));
}

static void test_names(void **st) {
  (void)st;
  static const struct {
    const char *in, *out; /* out NULL: refused */
  } cases[] = {
      {"model-Q4_K_M.gguf", "model-Q4_K_M.gguf"},
      {"Q4_K_M/model-00001-of-00002.gguf", "model-00001-of-00002.gguf"},
      {"a b$c.gguf", "a_b_c.gguf"},
      {"x+y.GGUF", "x+y.GGUF"},
      {"../model.gguf", NULL},
      {"a/../model.gguf", NULL},
      {"/etc/model.gguf", NULL},
      {"a//model.gguf", NULL},
      {"./model.gguf", NULL},
      {"..", NULL},
      {".gguf", NULL},
      {".hidden.gguf", NULL},
      {"model.bin", NULL},
      {"model.gguf/", NULL},
      {"dir\\..\\model.gguf", NULL},
      {"mo\ndel.gguf", NULL},
      {"mo\x7f"
       "del.gguf",
       NULL},
      {"", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[PULL_MAX_NAME + 1];
    int rc = pull_safe_name(cases[i].in, out, sizeof out);
    if (!cases[i].out) {
      if (rc != -1) fail_msg("'%s' should be refused, got '%s'", cases[i].in, out);
      continue;
    }
    if (rc != 0) fail_msg("'%s' refused", cases[i].in);
    assert_string_equal(out, cases[i].out);
  }
  char longname[400];
  memset(longname, 'a', sizeof longname);
  strcpy(longname + 300, ".gguf");
  char out[PULL_MAX_NAME + 1];
  assert_int_equal(pull_safe_name(longname, out, sizeof out), -1);
  assert_int_equal(pull_safe_name("ok.gguf", out, 4), -1); /* too small a buffer */
}

static void test_split_mmproj(void **st) {
  (void)st;
  int idx, cnt;
  size_t sl;
  assert_true(pull_split_of("m-00002-of-00005.gguf", &idx, &cnt, &sl));
  assert_int_equal(idx, 2);
  assert_int_equal(cnt, 5);
  assert_int_equal(sl, 1);
  assert_true(pull_split_of("d/m-00001-of-00001.gguf", &idx, &cnt, &sl));
  assert_false(pull_split_of("m-00000-of-00005.gguf", &idx, &cnt, &sl));
  assert_false(pull_split_of("m-00006-of-00005.gguf", &idx, &cnt, &sl));
  assert_false(pull_split_of("m-0001-of-00005.gguf", &idx, &cnt, &sl));
  assert_false(pull_split_of("-00001-of-00002.gguf", &idx, &cnt, &sl));
  assert_false(pull_split_of("m.gguf", &idx, &cnt, &sl));
  assert_true(pull_is_mmproj("mmproj-F16.gguf"));
  assert_true(pull_is_mmproj("dir/Model-MMPROJ-f16.gguf"));
  assert_false(pull_is_mmproj("mmproj/model.gguf"));
  assert_false(pull_is_mmproj("model.gguf"));
}

#define OID "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ENTRY(p, s)                                                                            \
  "{\"type\":\"file\",\"path\":\"" p "\",\"size\":1,\"lfs\":{\"oid\":\"" OID "\",\"size\":" #s \
  "}"                                                                                          \
  "}"

static void test_list(void **st) {
  (void)st;
  const char *body = "[" ENTRY("README.md", 10) ",{\"type\":\"directory\",\"path\":\"Q8\"},"
      ENTRY("m-Q4_K_M.gguf", 100) "," ENTRY("m-Q4_K.gguf", 90) "," ENTRY("../evil.gguf", 5) ","
      ENTRY("m-Q5_0.gguf", 99999999999999999) "," ENTRY("Q8_0/m-Q8_0-00001-of-00002.gguf", 50) ","
      ENTRY("Q8_0/m-Q8_0-00002-of-00002.gguf", 40) "," ENTRY("mmproj-m-bf16.gguf", 7) ","
      ENTRY("mmproj-m-f16.gguf", 8) ","
      "{\"type\":\"file\",\"path\":\"m-Q2_K.gguf\",\"size\":3,\"lfs\":{\"oid\":\"zz\",\"size\":3}},"
      "{\"type\":\"file\",\"path\":\"m-Q3_K.gguf\",\"size\":-3},"
      "{\"type\":\"file\",\"path\":\"m-IQ1.gguf\",\"size\":3}]";
  pull_file files[16];
  size_t n = 0, pick[PULL_MAX_PICK];
  char err[256];
  assert_int_equal(pull_hf_list_parse(body, strlen(body), files, 16, &n, err, sizeof err), 0);
  /* README, the directory, ../evil, the huge size, the bad oid and the negative size skipped */
  assert_int_equal(n, 7);
  assert_string_equal(files[0].path, "m-Q4_K_M.gguf");
  assert_int_equal(files[0].size, 100);
  assert_string_equal(files[0].sha256, OID);
  assert_string_equal(files[6].path, "m-IQ1.gguf");
  assert_string_equal(files[6].sha256, "");

  int k = pull_hf_pick(files, n, "q4_k_m", pick, err, sizeof err);
  assert_int_equal(k, 2);
  assert_string_equal(files[pick[0]].path, "m-Q4_K_M.gguf");
  assert_string_equal(files[pick[1]].path, "mmproj-m-f16.gguf");
  k = pull_hf_pick(files, n, "Q4_K", pick, err, sizeof err); /* a whole token: not Q4_K_M */
  assert_int_equal(k, 2);
  assert_string_equal(files[pick[0]].path, "m-Q4_K.gguf");
  k = pull_hf_pick(files, n, "Q8_0", pick, err, sizeof err);
  assert_int_equal(k, 3);
  assert_string_equal(files[pick[0]].path, "Q8_0/m-Q8_0-00001-of-00002.gguf");
  assert_string_equal(files[pick[1]].path, "Q8_0/m-Q8_0-00002-of-00002.gguf");
  assert_int_equal(pull_hf_pick(files, n, "Q6_K", pick, err, sizeof err), -1);
  assert_non_null(strstr(err, "Q6_K"));
  /* a split group with a part missing */
  assert_int_equal(pull_hf_pick(files, 3, "Q8_0", pick, err, sizeof err), -1);
  assert_non_null(strstr(err, "missing"));

  static const char *bad[] = {"", "{}", "[", "null", "\"x\"", "[1,2,3]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = pull_hf_list_parse(bad[i], strlen(bad[i]), files, 16, &n, err, sizeof err);
    assert_true(rc == -1 || n == 0);
  }
}

static void test_manifest(void **st) {
  (void)st;
  char err[256];
  pull_file f[2];
  size_t n;
  const char *m =
      "{\"schemaVersion\":2,\"layers\":["
      "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:" OID
      "\",\"size\":1234},"
      "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"x\","
      "\"size\":1},"
      "{\"mediaType\":\"application/vnd.ollama.image.projector\",\"digest\":\"sha256:"
      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"size\":5}]}";
  assert_int_equal(pull_manifest_parse(m, strlen(m), f, &n, err, sizeof err), 0);
  assert_int_equal(n, 2);
  assert_string_equal(f[0].sha256, OID);
  assert_int_equal(f[0].size, 1234);
  assert_false(f[0].mmproj);
  assert_true(f[1].mmproj);
  static const char *bad[] = {
      "{}",
      "{\"layers\":[]}",
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":"
      "\"sha256:../../../../../../etc/passwd\",\"size\":1}]}",
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":"
      "\"sha256:" OID "\",\"size\":-1}]}",
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":"
      "\"sha256:" OID "\",\"size\":9999999999999999}]}",
      "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":"
      "\"sha256:" OID
      "\",\"size\":1},{\"mediaType\":\"application/vnd.ollama.image.model\","
      "\"digest\":\"sha256:" OID "\",\"size\":1}]}",
      "not json",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (pull_manifest_parse(bad[i], strlen(bad[i]), f, &n, err, sizeof err) != -1)
      fail_msg("manifest %zu accepted", i);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refs),  cmocka_unit_test(test_digests),
      cmocka_unit_test(test_names), cmocka_unit_test(test_split_mmproj),
      cmocka_unit_test(test_list),  cmocka_unit_test(test_manifest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
