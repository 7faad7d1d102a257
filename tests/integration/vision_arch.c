/* vision_arch.c — the Qwen vision-language families end to end through the daemon, each on its
 * tiny model (tests/models.sh: mkmodel's tiny-qwen25vl with a qwen2.5vl_merger projector,
 * tiny-qwen3vl with a qwen3vl_merger projector and deepstack): chat, a forced tool call through
 * the model's own template, images with the exact token count (mtmd's resize to whole 2x2 merged
 * patches, the count computed here from the image's size), several images in one message and an
 * image in an earlier turn, two requests in parallel, the next turn reusing the prefix with its
 * image (M-RoPE positions: an image takes max(grid width, height) positions, not a position a
 * token), batch-invariant mode (whole chunks kept, the same answer as without the cache), an
 * unload and a reload (the conversation back from the disk cache), and the memory
 * estimate against the measurement.
 * Must never happen: an image counted wrong, a next turn that recomputes a cached image (or keeps
 * a different image), a worker that dies on any of it.
 *
 * Asserts on structure, never on meaning; never sleeps to synchronise (every wait is on a
 * condition: a pipe, a response, a bounded poll of /api/ps). */
#include "harness.h"

#define VA_MERGE 2      /* mtmd merges 2x2 patches into one token (clip.vision.spatial_merge) */
#define VA_MIN_TOKENS 8 /* clip.cpp's set_limit_image_tokens(8, 4096) for Qwen-VL projectors */
#define VA_MAX_TOKENS 4096
#define VA_MARKERS 2 /* <|vision_start|> and <|vision_end|> around each image */

/* One family: its files and its projector's patch size. */
typedef struct va_family {
  const char *model, *mmproj;
  int patch;
} va_family;

static const va_family va_qwen25 = {"tiny-qwen25vl.gguf", "tiny-qwen25vl-mmproj.gguf", 14};
static const va_family va_qwen3 = {"tiny-qwen3vl.gguf", "tiny-qwen3vl-mmproj.gguf", 16};
/* Qwen3-VL-30B-A3B: the same projector on a MoE text model (qwen3vlmoe) */
static const va_family va_qwen3moe = {"tiny-qwen3vlmoe.gguf", "tiny-qwen3vlmoe-mmproj.gguf", 16};
static const va_family *va_cur;

/* The tokens mtmd makes of a w x h image for a Qwen-VL projector, as transformers' smart_resize
 * (mtmd-image.cpp's calc_size_preserved_ratio): each side rounded to whole merged patches (a =
 * patch x 2 pixels), then, outside 8..4096 tokens, both sides scaled to the bound (floor going
 * down, ceil going up). Its positions (M-RoPE: the longer side in merged patches) in *n_pos. */
static int va_image_tokens(int w, int h, int patch, int *n_pos) {
  const int a = patch * VA_MERGE;
  const float min_px = (float)VA_MIN_TOKENS * a * a, max_px = (float)VA_MAX_TOKENS * a * a;
  int wb = (int)roundf((float)w / (float)a) * a, hb = (int)roundf((float)h / (float)a) * a;
  wb = wb < a ? a : wb;
  hb = hb < a ? a : hb;
  if ((float)wb * (float)hb > max_px) {
    float beta = sqrtf((float)h * (float)w / max_px);
    hb = (int)floorf((float)h / beta / (float)a) * a;
    wb = (int)floorf((float)w / beta / (float)a) * a;
    hb = hb < a ? a : hb;
    wb = wb < a ? a : wb;
  } else if ((float)wb * (float)hb < min_px) {
    float beta = sqrtf(min_px / ((float)h * (float)w));
    hb = (int)ceilf((float)h * beta / (float)a) * a;
    wb = (int)ceilf((float)w * beta / (float)a) * a;
  }
  *n_pos = wb > hb ? wb / a : hb / a;
  return (wb / a) * (hb / a);
}

/* A chat on B (stolen body): its status, prompt and cached tokens, content (the first
 * VA_TEXT_MAX bytes). */
#define VA_TEXT_MAX 256
typedef struct va_out {
  long status;
  long long prompt, cached, completion;
  char text[VA_TEXT_MAX];
} va_out;

static va_out va_chat(json_t *q) {
  resp r;
  it_b_chat(q, &r);
  va_out o = {r.status, it_jnum(r.json, "usage.prompt_tokens"),
              it_jnum(r.json, "usage.prompt_tokens_details.cached_tokens"),
              it_jnum(r.json, "usage.completion_tokens"), ""};
  snprintf(o.text, sizeof o.text, "%s", it_jstr(r.json, "choices.0.message.content") ?: "");
  if (r.status != 200) fprintf(stderr, "vision_arch: %ld %s\n", r.status, r.body.data);
  it_resp_clear(&r);
  return o;
}

/* A vision chat on model: the text, then the images; max_tokens 6, greedy. With turn2, an
 * assistant answer and a second user message follow (the image is in the earlier turn). */
static json_t *va_body_on(const char *model, const char *const *urls, bool turn2) {
  json_t *q = it_vision_body(model, "What is in the picture?", urls);
  json_object_set_new(q, "max_tokens", json_integer(6));
  json_object_set_new(q, "seed", json_integer(7));
  if (turn2) {
    json_t *m = json_object_get(q, "messages");
    json_array_append_new(m, json_pack("{s:s, s:s}", "role", "assistant", "content", "Sure."));
    json_array_append_new(m, json_pack("{s:s, s:s}", "role", "user", "content", "Tell me more."));
  }
  return q;
}

static json_t *va_body(const char *const *urls, bool turn2) {
  return va_body_on("vl", urls, turn2);
}

static const char *va_tools =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a "
    "city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"unit\":{\"enum\":[\"c\",\"f\"]}},"
    "\"required\":[\"unit\"],\"additionalProperties\":false}}}]";

static void va_body_fn(void) {
  const va_family *f = va_cur;
  char *a = it_data_url(it_png_5x4), *b = it_data_url(it_png_3x7);
  int pos_a, pos_b;
  const int tok_a = va_image_tokens(5, 4, f->patch, &pos_a),
            tok_b = va_image_tokens(3, 7, f->patch, &pos_b);
  /* by hand: 5x4 -> 1x1 merged patch, under 8 tokens: scaled up to 4x3 (12); 3x7 -> 2x5 (10) */
  CHECK(tok_a == 12 && pos_a == 4 && tok_b == 10 && pos_b == 5, "smart resize: %d/%d, %d/%d", tok_a,
        pos_a, tok_b, pos_b);
  resp r;
  it_http_do(&B, "GET", "/v1/models/vl", NULL, &r, NULL);
  CHECK(r.status == 200 && it_lists(json_object_get(r.json, "capabilities"), "vision"),
        "vl lists the vision capability: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  /* chat, text only */
  va_out t0 = va_chat(va_body(NULL, false));
  CHECK(t0.status == 200 && t0.prompt > 5 && t0.completion > 0, "text only: %ld, %lld + %lld",
        t0.status, t0.prompt, t0.completion);

  /* a forced tool call through the model's own template (Hermes <tool_call>, real tokens) */
  json_t *q = it_chat_body("vl", "What is the weather in Oslo?", 60, false);
  json_object_set_new(q, "tools", json_loads(va_tools, 0, NULL));
  json_object_set_new(
      q, "tool_choice",
      json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", "get_weather"));
  it_b_chat(q, &r);
  CHECK(r.status == 200 &&
            it_str_is(it_jstr(r.json, "choices.0.message.tool_calls.0.function.name"),
                      "get_weather") &&
            it_str_is(it_jstr(r.json, "choices.0.finish_reason"), "tool_calls"),
        "forced tool call: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);

  /* one image, two images in one message: exact counts */
  const char *one[] = {a, NULL}, *other[] = {b, NULL}, *two[] = {a, b, NULL};
  va_out i1 = va_chat(va_body(one, false));
  CHECK(i1.status == 200 && i1.completion > 0, "one image: %ld", i1.status);
  CHECK(i1.prompt == t0.prompt + tok_a + VA_MARKERS, "one image adds %d + %d tokens: %lld -> %lld",
        tok_a, VA_MARKERS, t0.prompt, i1.prompt);
  va_out i2 = va_chat(va_body(two, false));
  CHECK(i2.status == 200 && i2.prompt == t0.prompt + tok_a + tok_b + 2 * VA_MARKERS,
        "two images: %ld, %lld tokens (text %lld, images %d + %d)", i2.status, i2.prompt, t0.prompt,
        tok_a, tok_b);

  /* the next turn, its image in the earlier turn, keeps the whole first prompt (image included);
   * another image at the same place keeps only the text before it */
  va_out c1 = va_chat(va_body(one, false));
  va_out c2 = va_chat(va_body(one, true));
  CHECK(c1.status == 200 && c2.status == 200 && c2.prompt > c1.prompt,
        "turns: %ld %ld, %lld -> %lld tokens", c1.status, c2.status, c1.prompt, c2.prompt);
  CHECK(c2.cached == c1.prompt,
        "the next turn keeps the whole first prompt, its image included: cached %lld (want %lld)",
        c2.cached, c1.prompt);
  va_out o2 = va_chat(va_body(other, true));
  CHECK(o2.status == 200 && o2.cached > 0 && o2.cached < c1.prompt - tok_a,
        "another image at the same place: only the text before it (cached %lld of %lld)", o2.cached,
        o2.prompt);

  /* two requests in parallel (two slots), each with its image */
  it_bg_req p1, p2;
  it_bg_chat(&p1, &B, va_body(one, false));
  it_bg_chat(&p2, &B, va_body(other, true));
  it_bg_join(&p1);
  it_bg_join(&p2);
  long long pp1 = it_jnum(p1.r.json, "usage.prompt_tokens"),
            pp2 = it_jnum(p2.r.json, "usage.prompt_tokens");
  bool par_ok = p1.r.status == 200 && p2.r.status == 200 && pp1 == i1.prompt && pp2 == o2.prompt;
  it_resp_clear(&p1.r);
  it_resp_clear(&p2.r);
  CHECK(par_ok, "parallel: %lld and %lld prompt tokens (want %lld, %lld)", pp1, pp2, i1.prompt,
        o2.prompt);

  /* the memory estimate against what the worker holds after image requests: on the safe side */
  it_http_do(&B, "GET", "/v1/models/vl", NULL, &r, NULL);
  long long est = it_jnum(r.json, "memory.estimated"), meas = it_jnum(r.json, "memory.measured");
  it_resp_clear(&r);
  CHECK(meas > 0 && est >= meas, "memory: estimated %lld, measured %lld bytes", est, meas);

  /* batch-invariant (a small batch, so prompts are cut in chunks): the next turn keeps whole
   * chunks only, image included, and answers exactly as without the cache */
  va_out d1 = va_chat(va_body_on("vl-det", one, false)),
         d2 = va_chat(va_body_on("vl-det", one, true));
  json_t *nq = va_body_on("vl-det", one, true);
  json_object_set_new(nq, "cache_prompt", json_false());
  va_out dref = va_chat(nq);
  CHECK(d1.status == 200 && d2.status == 200 && dref.status == 200, "det: %ld %ld %ld", d1.status,
        d2.status, dref.status);
  CHECK(d2.cached > tok_a && d2.cached <= d1.prompt && dref.cached == 0,
        "batch-invariant: cached %lld of the first prompt's %lld", d2.cached, d1.prompt);
  CHECK(!strcmp(d2.text, dref.text), "with and without the cache: \"%s\" vs \"%s\"", d2.text,
        dref.text);

  /* unload (the slots' states go to the disk cache), and the next request loads it again: the
   * last conversation comes back from disk, image and positions included (all but the prompt's
   * last token, decoded again for its logits), and counts stay the same */
  it_http_do(&B, "POST", "/api/unload", "{\"model\":\"vl\"}", &r, NULL);
  CHECK(r.status == 200, "unload: %ld %s", r.status, r.body.data);
  it_resp_clear(&r);
  va_out back = va_chat(va_body(other, true));
  CHECK(back.status == 200 && back.prompt == o2.prompt && back.cached == o2.prompt - 1,
        "after a reload, from the disk cache: %ld, cached %lld of %lld", back.status, back.cached,
        back.prompt);
  va_out again = va_chat(va_body(two, false));
  CHECK(again.status == 200 && again.prompt == i2.prompt, "after a reload: %ld, %lld tokens",
        again.status, again.prompt);
  free(a);
  free(b);
}

static void va_run(const va_family *f, const char *name) {
  char probe[600];
  snprintf(probe, sizeof probe, "%s/%s", it_models_dir, f->mmproj);
  if (access(probe, R_OK) != 0) {
    snprintf(it_cur_skip, sizeof it_cur_skip, "%.200s is missing (tests/models.sh)", f->mmproj);
    return;
  }
  char y[2400];
  snprintf(y, sizeof y,
           "log_level: warn\nmodels:\n"
           "  - {name: vl, file: %s/%s, mmproj: %s/%s, context: 2048, parallel: 2, "
           "gpu_layers: 0}\n"
           "  - {name: vl-det, file: %s/%s, mmproj: %s/%s, context: 2048, parallel: 1, batch: 8, "
           "deterministic: true, gpu_layers: 0}\n",
           it_models_dir, f->model, it_models_dir, f->mmproj, it_models_dir, f->model,
           it_models_dir, f->mmproj);
  va_cur = f;
  it_with_own_daemon(name, y, va_body_fn);
}

static void t_vision_qwen25vl(void) { va_run(&va_qwen25, "vision_qwen25vl"); }
static void t_vision_qwen3vl(void) { va_run(&va_qwen3, "vision_qwen3vl"); }
static void t_vision_qwen3vlmoe(void) { va_run(&va_qwen3moe, "vision_qwen3vlmoe"); }

static const it_test tests[] = {
    {"vision_qwen25vl", t_vision_qwen25vl, false},
    {"vision_qwen3vl", t_vision_qwen3vl, false},
    {"vision_qwen3vlmoe", t_vision_qwen3vlmoe, false},
};
const itest_table itest_vision_arch = {"vision_arch", tests, sizeof tests / sizeof *tests};
