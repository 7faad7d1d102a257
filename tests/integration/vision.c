/* vision.c — image_url parts through mtmd on the main daemon (tiny-vlm: mkmodel --mmproj, a
 * LLaVA-style 'mlp' projector that turns any image into exactly 16 tokens: 56x56 pixels, 14x14
 * patches): data: URLs, several images, prompt token counts, errors for bad images.
 * Must never happen: an image counted wrong, a bad image that crashes the worker.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

#define VLM_IMAGE_TOKENS 16

static void t_vision(void) {
  CHECK(it_have_vlm, "%s/tiny-vlm-mmproj.gguf is missing (tests/run.sh make_models writes it)",
        it_models_dir);
  char *a = it_data_url(it_png_5x4), *b = it_data_url(it_png_3x7);
  resp r;
  it_get("/v1/models/vlm", &r);
  CHECK(r.status == 200 && it_lists(json_object_get(r.json, "capabilities"), "vision"),
        "vlm lists the vision capability: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  it_post_json("/v1/chat/completions", it_vision_body("vlm", "What is in the picture?", NULL), &r);
  long long pt0 = it_jnum(r.json, "usage.prompt_tokens");
  CHECK(r.status == 200 && pt0 > 5, "text only: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  const char *one[] = {a, NULL};
  it_post_json("/v1/chat/completions", it_vision_body("vlm", "What is in the picture?", one), &r);
  CHECK(r.status == 200, "one image: %ld %s", r.status, r.body.data);
  long long pt1 = it_jnum(r.json, "usage.prompt_tokens"),
            ct1 = it_jnum(r.json, "usage.completion_tokens");
  CHECK(ct1 > 0 && it_jstr(r.json, "choices.0.message.content"),
        "one image: completion_tokens %lld", ct1);
  CHECK(pt1 == pt0 + VLM_IMAGE_TOKENS, "one image adds %d prompt tokens: %lld -> %lld",
        VLM_IMAGE_TOKENS, pt0, pt1);
  it_resp_clear(&r);

  /* another size, same count (the projector resizes to a fixed square); two images, twice */
  const char *other[] = {b, NULL}, *two[] = {a, b, NULL};
  it_post_json("/v1/chat/completions", it_vision_body("vlm", "What is in the picture?", other), &r);
  CHECK(r.status == 200 && it_jnum(r.json, "usage.prompt_tokens") == pt1, "3x7 image: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions", it_vision_body("vlm", "What is in the picture?", two), &r);
  CHECK(r.status == 200, "two images: %ld %s", r.status, r.body.data);
  CHECK(it_jnum(r.json, "usage.prompt_tokens") == pt0 + 2 * VLM_IMAGE_TOKENS &&
            it_jnum(r.json, "usage.completion_tokens") > 0,
        "two images: prompt_tokens %lld (text %lld)", it_jnum(r.json, "usage.prompt_tokens"), pt0);
  it_resp_clear(&r);

  /* the same request streamed */
  CHECK(it_chat_streams(it_vision_body("vlm", "What is in the picture?", one), &r),
        "streamed: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  /* refused: a corrupt image, a remote URL, a local path without limits.image_dir, a text-only
   * model, too many images */
  char *bad =
      it_data_url("iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAIAAADJUWIXAAAAQklEQVR42hXIMRHAMAwEwev");
  const char *corrupt[] = {bad, NULL}, *remote[] = {"https://example.com/cat.png", NULL},
             *local[] = {"/etc/hostname", NULL};
  it_post_json("/v1/chat/completions", it_vision_body("vlm", "x", corrupt), &r);
  CHECK(it_is_error(&r, 400, "invalid_image"), "corrupt image: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions", it_vision_body("vlm", "x", remote), &r);
  CHECK(it_is_error(&r, 400, "invalid_image"), "http URL: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions", it_vision_body("vlm", "x", local), &r);
  CHECK(it_is_error(&r, 400, "invalid_image"), "local file without image_dir: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  it_post_json("/v1/chat/completions", it_vision_body("chat", "x", one), &r);
  CHECK(it_is_error(&r, 400, "unsupported_content"), "text-only model: %ld %s", r.status,
        r.body.data);
  it_resp_clear(&r);
  const char *many[18];
  for (size_t i = 0; i < 17; i++) many[i] = a;
  many[17] = NULL;
  it_post_json("/v1/chat/completions", it_vision_body("vlm", "x", many), &r);
  CHECK(it_is_error(&r, 400, NULL), "17 images: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* a marker typed by the user does not match the images: refused by the worker, not crashed */
  it_post_json("/v1/chat/completions", it_vision_body("vlm", "two <__media__> here", one), &r);
  CHECK(it_is_error(&r, 400, NULL), "stray marker: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  /* and the model still serves */
  it_post_json("/v1/chat/completions", it_vision_body("vlm", "What is in the picture?", one), &r);
  CHECK(r.status == 200 && it_jnum(r.json, "usage.prompt_tokens") == pt1, "after errors: %ld %s",
        r.status, r.body.data);
  it_resp_clear(&r);
  free(a);
  free(b);
  free(bad);
}

static const it_test tests[] = {
    {"vision", t_vision, false},
};
const itest_table itest_vision = {"vision", tests, sizeof tests / sizeof *tests};
