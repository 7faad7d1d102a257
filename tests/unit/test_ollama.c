/* test_ollama.c — unit tests for src/daemon/api/ollama_xlate.h, Ollama's API as pure
 * translations (docs/API.md, "Ollama's API"). Table-driven: each table row is one request or one
 * script of worker events with the exact result expected.
 *
 * Covers:
 *  - names (ollama_match): exact names, aliases, routers and pipelines; ":latest" dropped; ASCII
 *    case ignored (two entries that differ only in case match neither); "name:tag" as "name-tag";
 *    a matrix name with a ':' as it is; empty, unknown and over-long names;
 *  - keep_alive: numbers, Go durations (h, m, s, ms, us, µs, fractions, sums, signs), plain number
 *    strings, negative = forever, rounding up, and every malformed value;
 *  - /api/chat and /api/generate → the exact /v1 body: options under their OpenAI names (seed -1
 *    and num_predict -1/-2/0 left out), images as data: URLs before the text, thinking,
 *    tool_calls (arguments objects as JSON strings, ids made when missing), tool_name, format
 *    "json" / a schema, think true / false / a level, keep_alive in seconds, tools, tool_choice
 *    (ours), system, raw (a completion, no 16-token default), logprobs; load-only requests;
 *  - every refused request: its status and a message naming the Ollama field;
 *  - /api/embed and /api/embeddings → /v1/embeddings' body; load-only inputs; dimensions; errors;
 *  - api_embed_truncate (Ollama's and OpenAI's "dimensions"); ollama_time; ollama_path
 *    (whose errors are Ollama's shape); ollama_image_url's type sniffing;
 *  - the answer translator on scripts of worker events: streamed lines (text, thinking, tool
 *    calls flushed once complete, log-probabilities, the done line's nanosecond timings and
 *    prompt_cached_count, done_reason), a worker error mid-stream, a whole answer, a whole answer
 *    that failed; load/unload replies;
 *  - /api/tags, /api/show and /api/ps objects: quantisation names, parameter-size estimates,
 *    digests (64 hex digits, stable, changed by mtime), details, size_vram from the GPU pools,
 *    expires_at (forever ~292 years ahead), context_length; which models are listed;
 *  - a fuzz loop (fixed seed) of JSON-ish bodies through every parser: no crash, every outcome
 *    well-formed, no leak (ASan). */
#include "api/ollama_xlate.h"
#include "buf.h"
#include "parse/api_parse.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "unit.h"

/* ---- a hand-built matrix ------------------------------------------------------------------- */

static char *q_aliases[] = {"q8"};
static matrix_model models[] = {
    {.name = "qwen3-8b",
     .aliases = q_aliases,
     .n_aliases = 1,
     .caps = MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION,
     .context = 512,
     .arch = "qwen3",
     .file = "/m/Qwen3-8B-Q4_K_M.gguf",
     .file_bytes = 4900000000LL,
     .file_type = 15},
    {.name = "Llama-3.2-3B-Q4_K_M", .caps = MATRIX_CAP_CHAT, .context = 512},
    {.name = "mixed", .caps = MATRIX_CAP_CHAT, .context = 512},
    {.name = "MIXED", .caps = MATRIX_CAP_CHAT, .context = 512},
    {.name = "tag:1b", .caps = MATRIX_CAP_CHAT, .context = 512},
    {.name = "bge", .caps = MATRIX_CAP_EMBED, .context = 512, .file_type = -1},
    {.name = "whisper", .engine = MATRIX_ENGINE_WHISPER, .caps = MATRIX_CAP_TRANSCRIBE},
    {.name = "ext", .engine = MATRIX_ENGINE_EXTERNAL, .caps = MATRIX_CAP_CHAT},
    {.name = "speak", .engine = MATRIX_ENGINE_ESPEAK, .caps = MATRIX_CAP_SPEECH},
};
static matrix_router routers[] = {{.name = "auto"}};
static matrix_pipeline pipelines[] = {{.name = "talk"}};
static matrix mx = {.models = models,
                    .n_models = sizeof models / sizeof *models,
                    .routers = routers,
                    .n_routers = 1,
                    .pipelines = pipelines,
                    .n_pipelines = 1};

/* a 5x4 PNG, base64 */
static const char png_b64[] =
    "iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAIAAADJUWIXAAAAQklEQVR42hXIMRHAMAwEwevSuXNnABojSPEzoaAiYB6OQ"
    "Aigk3IXICDBUB8QoSs1rFla/4dHetm7fEMTPbO3+6l+D1cfDu22FFMAAAAAAElFTkSuQmCC";

/* got and want (ut_json text) are equal JSON; prints both when not. */
static void assert_json(const json_t *got, const char *want_text) {
  json_t *want = ut_json(want_text);
  if (!json_equal((json_t *)got, want)) {
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS),
         *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
    fail_msg("JSON differs:\n got  %s\n want %s", g ? g : "(null)", w);
  }
  json_decref(want);
}

/* ---- names --------------------------------------------------------------------------------- */

static void test_names(void **state) {
  (void)state;
  char longname[700];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  static const struct {
    const char *in, *want;
  } rows[] = {
      {"qwen3-8b", "qwen3-8b"},
      {"qwen3-8b:latest", "qwen3-8b"},
      {"q8", "qwen3-8b"},
      {"q8:latest", "qwen3-8b"},
      {"QWEN3-8B", "qwen3-8b"},
      {"Q8:LATEST", NULL}, /* ":latest" is dropped as written, lower case */
      {"qwen3:8b", "qwen3-8b"},
      {"Qwen3:8B", "qwen3-8b"},
      {"qwen3:8b:latest", "qwen3-8b"},
      {"llama-3.2-3b-q4_k_m", "Llama-3.2-3B-Q4_K_M"},
      {"llama-3.2-3b-q4_k_m:latest", "Llama-3.2-3B-Q4_K_M"},
      {"mixed", "mixed"}, /* exact wins */
      {"MIXED", "MIXED"},
      {"Mixed", NULL}, /* two entries differ only in case: neither */
      {"tag:1b", "tag:1b"},
      {"tag:1b:latest", "tag:1b"},
      {"TAG:1B", "tag:1b"},
      {"tag-1b", NULL},
      {"auto", "auto"},
      {"auto:latest", "auto"},
      {"AUTO", "auto"},
      {"talk", "talk"},
      {"bge:latest", "bge"},
      {"", NULL},
      {"nope", NULL},
      {"nope:latest", NULL},
      {":latest", NULL},
      {"qwen3", NULL},
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    const char *got = ollama_match(&mx, rows[i].in);
    if (rows[i].want == NULL ? got != NULL : !got || strcmp(got, rows[i].want) != 0)
      fail_msg("%s: got %s, want %s", rows[i].in, got ? got : "NULL",
               rows[i].want ? rows[i].want : "NULL");
  }
  assert_null(ollama_match(&mx, longname));
  assert_null(ollama_match(&mx, NULL));
  assert_null(ollama_match(NULL, "qwen3-8b"));
}

/* ---- keep_alive ---------------------------------------------------------------------------- */

static void test_keep_alive(void **state) {
  (void)state;
  static const struct {
    const char *json;
    int rc, secs;
  } rows[] = {
      {"5", 1, 5},
      {"0", 1, 0},
      {"-1", 1, -1},
      {"-0.5", 1, -1},
      {"1.2", 1, 2},
      {"1e300", 1, INT_MAX},
      {"'5m'", 1, 300},
      {"'1h30m'", 1, 5400},
      {"'1.5h'", 1, 5400},
      {"'2h'", 1, 7200},
      {"'90s'", 1, 90},
      {"'300ms'", 1, 1},
      {"'10us'", 1, 1},
      {"'1\xc2\xb5s'", 1, 1},
      {"'1ns'", 1, 1},
      {"'.5s'", 1, 1},
      {"'0'", 1, 0},
      {"'0s'", 1, 0},
      {"'10'", 1, 10},
      {"'-1'", 1, -1},
      {"'-5m'", 1, -1},
      {"'+5m'", 1, 300},
      {"'1m30s500ms'", 1, 91},
      {"null", 0, 0},
      {"'forever'", -1, 0},
      {"'5 m'", -1, 0},
      {"''", -1, 0},
      {"'m'", -1, 0},
      {"'5x'", -1, 0},
      {"'5mm'", -1, 0},
      {"'.s'", -1, 0},
      {"'-'", -1, 0},
      {"'1e400'", -1, 0},
      {"'inf'", -1, 0},
      {"'nan'", -1, 0},
      {"true", -1, 0},
      {"[]", -1, 0},
      {"{}", -1, 0},
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    char text[64];
    snprintf(text, sizeof text, "[%s]", rows[i].json);
    json_t *arr = ut_json(text);
    int secs = 12345;
    api_error e = {0};
    int rc = ollama_keep_alive(json_array_get(arr, 0), &secs, &e);
    if (rc != rows[i].rc || (rc == 1 && secs != rows[i].secs))
      fail_msg("%s: rc %d secs %d, want rc %d secs %d", rows[i].json, rc, secs, rows[i].rc,
               rows[i].secs);
    if (rc < 0) {
      assert_int_equal(e.status, 400);
      assert_string_equal(e.param, "keep_alive");
    }
    json_decref(arr);
  }
  int secs;
  assert_int_equal(ollama_keep_alive(NULL, &secs, NULL), 0);
}

/* ---- /api/chat, /api/generate → /v1 bodies -------------------------------------------------- */

typedef struct gen_row {
  bool chat_api;
  const char *in, *want; /* want: the /v1 body; NULL for a load-only request */
} gen_row;

static void test_gen_translation(void **state) {
  (void)state;
  char img_in[512], img_want[768];
  snprintf(img_in, sizeof img_in,
           "{'model':'m','messages':[{'role':'user','content':'what','images':['%s']}]}", png_b64);
  snprintf(img_want, sizeof img_want,
           "{'model':'m','stream':true,'messages':[{'role':'user','content':[{'type':'image_url',"
           "'image_url':{'url':'data:image/png;base64,%s'}},{'type':'text','text':'what'}]}]}",
           png_b64);
  const gen_row rows[] = {
      {true, "{'model':'m','messages':[{'role':'user','content':'hi'}]}",
       "{'model':'m','messages':[{'role':'user','content':'hi'}],'stream':true}"},
      {true,
       "{'model':'m','stream':false,'messages':[{'role':'user','content':'hi'}],'options':{"
       "'temperature':0.5,'top_p':0.9,'top_k':40,'seed':7,'num_predict':10,'stop':['x'],"
       "'repeat_penalty':1.1,'min_p':0.1,'presence_penalty':0.5,'frequency_penalty':0.25,"
       "'num_ctx':8192,'num_gpu':99,'use_mmap':true,'mirostat':0,'typical_p':1,'repeat_last_n':64,"
       "'tfs_z':1.0,'unknown_option':'x'}}",
       "{'model':'m','stream':false,'messages':[{'role':'user','content':'hi'}],'temperature':0.5,"
       "'top_p':0.9,'top_k':40,'seed':7,'max_tokens':10,'stop':['x'],'repeat_penalty':1.1,"
       "'min_p':0.1,'presence_penalty':0.5,'frequency_penalty':0.25}"},
      {true,
       "{'model':'m','messages':[{'role':'user','content':'hi'}],'options':{'seed':-1,"
       "'num_predict':-1,'stop':'end','temperature':1}}",
       "{'model':'m','stream':true,'messages':[{'role':'user','content':'hi'}],'stop':'end',"
       "'temperature':1.0}"},
      {true,
       "{'model':'m','messages':[{'role':'user','content':'hi'}],'options':{'num_predict':0,"
       "'top_k':5.0,'stop':[]}}",
       "{'model':'m','stream':true,'messages':[{'role':'user','content':'hi'}],'top_k':5}"},
      {true, img_in, img_want},
      {true,
       "{'model':'m','messages':[{'role':'system','content':'s'},{'role':'user'},"
       "{'role':'assistant','content':'','thinking':'hmm','tool_calls':[{'function':{'name':'f',"
       "'arguments':{'a':1}}},{'id':'x9','function':{'name':'g','arguments':'{}'}},"
       "{'function':{'name':'h'}}]},{'role':'tool','content':'r','tool_name':'f',"
       "'tool_call_id':'x9'},{'role':'user','content':'u','thinking':'ignored'}]}",
       "{'model':'m','stream':true,'messages':[{'role':'system','content':'s'},{'role':'user',"
       "'content':''},{'role':'assistant','content':'','reasoning_content':'hmm','tool_calls':["
       "{'id':'call_2_0','type':'function','function':{'name':'f','arguments':'{\\'a\\':1}'}},"
       "{'id':'x9','type':'function','function':{'name':'g','arguments':'{}'}},{'id':'call_2_2',"
       "'type':'function','function':{'name':'h','arguments':'{}'}}]},{'role':'tool',"
       "'content':'r','name':'f','tool_call_id':'x9'},{'role':'user','content':'u'}]}"},
      {true,
       "{'model':'m','messages':[{'role':'user','content':'hi'}],'format':'json','think':false,"
       "'keep_alive':'5m','tools':[{'type':'function','function':{'name':'f'}}],"
       "'tool_choice':'required','parallel_tool_calls':false}",
       "{'model':'m','stream':true,'messages':[{'role':'user','content':'hi'}],'keep_alive':300,"
       "'response_format':{'type':'json_object'},'chat_template_kwargs':{'enable_thinking':false},"
       "'reasoning_effort':'none','tools':[{'type':'function','function':{'name':'f'}}],"
       "'tool_choice':'required','parallel_tool_calls':false}"},
      {true,
       "{'model':'m','messages':[{'role':'user','content':'hi'}],'format':{'type':'object'},"
       "'think':true,'format_extra':1}",
       "{'model':'m','stream':true,'messages':[{'role':'user','content':'hi'}],'response_format':{"
       "'type':'json_schema','json_schema':{'name':'format','schema':{'type':'object'}}},"
       "'chat_template_kwargs':{'enable_thinking':true}}"},
      {true,
       "{'model':'m','messages':[{'role':'user','content':'hi'}],'format':'','think':'high',"
       "'logprobs':true,'top_logprobs':3,'tools':[]}",
       "{'model':'m','stream':true,'messages':[{'role':'user','content':'hi'}],"
       "'chat_template_kwargs':{'enable_thinking':true},'reasoning_effort':'high','logprobs':true,"
       "'top_logprobs':3}"},
      {true, "{'model':'m'}", NULL},
      {true, "{'model':'m','messages':[],'keep_alive':0}", NULL},
      {true, "{'model':'m','messages':null}", NULL},
      {false, "{'model':'m','prompt':'hi'}",
       "{'model':'m','stream':true,'messages':[{'role':'user','content':'hi'}]}"},
      {false, "{'model':'m','prompt':'hi','system':'be brief','context':[],'template':''}",
       "{'model':'m','stream':true,'messages':[{'role':'system','content':'be brief'},"
       "{'role':'user','content':'hi'}]}"},
      {false, "{'model':'m','prompt':'hi','raw':true,'system':'ignored','think':true}",
       "{'model':'m','stream':true,'prompt':'hi','max_tokens':16777216}"},
      {false,
       "{'model':'m','prompt':'hi','raw':true,'stream':false,'options':{'num_predict':5},"
       "'logprobs':true,'top_logprobs':2,'format':'json'}",
       "{'model':'m','stream':false,'prompt':'hi','max_tokens':5,'logprobs':2,"
       "'response_format':{'type':'json_object'}}"},
      {false, "{'model':'m','prompt':''}", NULL},
      {false, "{'model':'m','images':['abc']}", NULL},
      {false, "{'model':'m','prompt':'','suffix':'x','keep_alive':'1h'}", NULL},
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    json_t *in = ut_json(rows[i].in);
    ollama_gen g;
    api_error e = {0};
    if (ollama_parse_gen(in, rows[i].chat_api, &g, &e) != 0)
      fail_msg("row %zu refused: %s", i, e.message);
    assert_string_equal(g.model, "m");
    if (!rows[i].want) {
      assert_true(g.load_only);
    } else {
      assert_false(g.load_only);
      assert_json(g.body, rows[i].want);
      assert_int_equal(g.chat, json_object_get(g.body, "messages") != NULL);
      assert_int_equal(g.stream, json_is_true(json_object_get(g.body, "stream")));
    }
    ollama_gen_clear(&g);
    json_decref(in);
  }
  /* images counted over the request */
  json_t *im = ut_json(img_in);
  ollama_gen gi;
  api_error ei = {0};
  assert_int_equal(ollama_parse_gen(im, true, &gi, &ei), 0);
  assert_int_equal(gi.n_images, 1);
  ollama_gen_clear(&gi);
  json_decref(im);
  /* the flags */
  json_t *in = ut_json(
      "{'model':'m','messages':[],'keep_alive':'-1m','options':{'num_ctx':4096},'stream':false}");
  ollama_gen g;
  api_error e = {0};
  assert_int_equal(ollama_parse_gen(in, true, &g, &e), 0);
  assert_true(g.load_only && g.has_keep_alive && !g.stream);
  assert_int_equal(g.keep_alive_s, -1);
  assert_int_equal(g.num_ctx, 4096);
  ollama_gen_clear(&g);
  json_decref(in);
}

static void test_gen_errors(void **state) {
  (void)state;
  static const struct {
    bool chat_api;
    const char *in, *says;
  } rows[] = {
      {true, "[1]", "JSON object"},
      {true, "{'messages':[]}", "model is required"},
      {true, "{'model':'','messages':[]}", "model is required"},
      {true, "{'model':null}", "model is required"},
      {true, "{'model':5}", "model must be a string"},
      {true, "{'model':'m','stream':'yes'}", "stream"},
      {true, "{'model':'m','messages':{}}", "messages must be an array"},
      {true, "{'model':'m','messages':[1]}", "messages[0] must be an object"},
      {true, "{'model':'m','messages':[{'content':'x'}]}", "messages[0].role"},
      {true, "{'model':'m','messages':[{'role':5}]}", "messages[0].role"},
      {true, "{'model':'m','messages':[{'role':'user','content':5}]}", "messages[0].content"},
      {true, "{'model':'m','messages':[{'role':'user','content':['x']}]}", "messages[0].content"},
      {true, "{'model':'m','messages':[{'role':'user','thinking':1}]}", "messages[0].thinking"},
      {true, "{'model':'m','messages':[{'role':'tool','tool_name':[]}]}", "messages[0].tool_name"},
      {true, "{'model':'m','messages':[{'role':'user','images':'x'}]}", "messages[0].images"},
      {true, "{'model':'m','messages':[{'role':'user','images':[5]}]}", "messages[0].images[0]"},
      {true, "{'model':'m','messages':[{'role':'user','images':['']}]}", "messages[0].images[0]"},
      {true, "{'model':'m','messages':[{'role':'assistant','tool_calls':{}}]}", "tool_calls"},
      {true, "{'model':'m','messages':[{'role':'assistant','tool_calls':[{}]}]}", "tool_calls[0]"},
      {true,
       "{'model':'m','messages':[{'role':'assistant','tool_calls':[{'function':{'name':'f',"
       "'arguments':5}}]}]}",
       "tool_calls[0]"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':[]}", "options must be an object"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'temperature':'hot'}}",
       "options.temperature"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'temperature':3}}",
       "options.temperature must be a number between 0 and 2"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'top_k':1.5}}", "options.top_k"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'top_k':-1}}", "options.top_k"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'top_p':2}}", "options.top_p"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'num_predict':-3}}",
       "options.num_predict"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'seed':'x'}}", "options.seed"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'mirostat':2}}",
       "options.mirostat is not supported"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'typical_p':0.5}}",
       "options.typical_p is not supported"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'stop':5}}", "options.stop"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'stop':[1]}}", "options.stop"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'stop':['a','b','c','d','e']}}",
       "at most 4"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'num_ctx':'big'}}",
       "options.num_ctx"},
      {true, "{'model':'m','messages':[{'role':'u'}],'options':{'use_mmap':1}}",
       "options.use_mmap"},
      {true, "{'model':'m','messages':[],'options':{'num_gpu':-5}}", "options.num_gpu"},
      {true, "{'model':'m','messages':[],'keep_alive':'forever'}", "keep_alive"},
      {true, "{'model':'m','messages':[{'role':'u'}],'format':'xml'}", "format"},
      {true, "{'model':'m','messages':[{'role':'u'}],'format':5}", "format"},
      {true, "{'model':'m','messages':[{'role':'u'}],'think':'max'}", "think"},
      {true, "{'model':'m','messages':[{'role':'u'}],'think':1}", "think"},
      {true, "{'model':'m','messages':[{'role':'u'}],'tools':{}}", "tools must be an array"},
      {true, "{'model':'m','messages':[{'role':'u'}],'logprobs':'yes'}", "logprobs"},
      {false, "{'model':'m','prompt':5}", "prompt must be a string"},
      {false, "{'model':'m','prompt':'x','system':5}", "system must be a string"},
      {false, "{'model':'m','prompt':'x','suffix':'y'}", "suffix"},
      {false, "{'model':'m','prompt':'x','template':'{{ .Prompt }}'}", "template"},
      {false, "{'model':'m','prompt':'x','context':[1,2]}", "context"},
      {false, "{'model':'m','prompt':'x','context':'x'}", "context"},
      {false, "{'model':'m','prompt':'x','raw':'yes'}", "raw"},
      {false, "{'model':'m','prompt':'x','raw':true,'images':['abc']}", "images"},
      {false, "{'model':'m','prompt':'x','images':{}}", "images"},
      {false, "{'model':'m','prompt':'x','raw':true,'logprobs':true,'top_logprobs':9}",
       "top_logprobs"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    json_t *in = ut_json(rows[i].in);
    ollama_gen g;
    api_error e = {0};
    if (ollama_parse_gen(in, rows[i].chat_api, &g, &e) == 0) fail_msg("%s: accepted", rows[i].in);
    assert_null(g.body);
    assert_int_equal(e.status, 400);
    if (!strstr(e.message, rows[i].says))
      fail_msg("%s: message '%s' does not say '%s'", rows[i].in, e.message, rows[i].says);
    json_t *j = ollama_error_json(&e);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(j, "error")), e.message);
    json_decref(j);
    json_decref(in);
  }
  /* 17 images: at most 16 per request, over all messages */
  sy_buf b = {0};
  sy_buf_puts(&b, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"images\":[");
  for (int i = 0; i < 9; i++) sy_buf_printf(&b, "%s\"%s\"", i ? "," : "", png_b64);
  sy_buf_puts(&b, "]},{\"role\":\"user\",\"images\":[");
  for (int i = 0; i < 8; i++) sy_buf_printf(&b, "%s\"%s\"", i ? "," : "", png_b64);
  sy_buf_puts(&b, "]}]}");
  json_t *in = json_loadb(b.data, b.len, 0, NULL);
  ollama_gen g;
  api_error e = {0};
  assert_int_equal(ollama_parse_gen(in, true, &g, &e), -1);
  assert_non_null(strstr(e.message, "at most 16 images"));
  json_decref(in);
  sy_buf_free(&b);
}

/* ---- /api/embed, /api/embeddings ----------------------------------------------------------- */

static void test_embed_translation(void **state) {
  (void)state;
  static const struct {
    bool legacy;
    const char *in, *want; /* NULL: load only */
    long long dims;
  } rows[] = {
      {false, "{'model':'m','input':'a'}", "{'model':'m','input':['a']}", 0},
      {false, "{'model':'m','input':['a','b'],'truncate':false,'dimensions':8}",
       "{'model':'m','input':['a','b']}", 8},
      {false, "{'model':'m','input':['a',''],'keep_alive':'1m','options':{'num_ctx':2}}",
       "{'model':'m','input':['a',''],'keep_alive':60}", 0},
      {false, "{'model':'m','input':''}", NULL, 0},
      {false, "{'model':'m','input':[]}", NULL, 0},
      {false, "{'model':'m'}", NULL, 0},
      {true, "{'model':'m','prompt':'p'}", "{'model':'m','input':['p']}", 0},
      {true, "{'model':'m','prompt':''}", NULL, 0},
      {true, "{'model':'m'}", NULL, 0},
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    json_t *in = ut_json(rows[i].in);
    ollama_embed oe;
    api_error e = {0};
    if (ollama_parse_embed(in, rows[i].legacy, &oe, &e) != 0)
      fail_msg("%s refused: %s", rows[i].in, e.message);
    assert_string_equal(oe.model, "m");
    assert_int_equal(oe.legacy, rows[i].legacy);
    assert_int_equal(oe.load_only, rows[i].want == NULL);
    if (rows[i].want) assert_json(oe.body, rows[i].want);
    assert_int_equal(oe.dimensions, rows[i].dims);
    ollama_embed_clear(&oe);
    json_decref(in);
  }
  static const struct {
    bool legacy;
    const char *in, *says;
  } bad[] = {
      {false, "{'input':'a'}", "model is required"},
      {false, "{'model':'m','input':5}", "input must be a string or an array"},
      {false, "{'model':'m','input':'a','truncate':'no'}", "truncate"},
      {false, "{'model':'m','input':'a','dimensions':0}", "dimensions"},
      {false, "{'model':'m','input':'a','dimensions':1.5}", "dimensions"},
      {false, "{'model':'m','input':'a','dimensions':'8'}", "dimensions"},
      {false, "{'model':'m','input':'a','options':{'num_thread':'x'}}", "options.num_thread"},
      {false, "{'model':'m','input':'a','keep_alive':[]}", "keep_alive"},
      {true, "{'model':'m','prompt':5}", "prompt must be a string"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *in = ut_json(bad[i].in);
    ollama_embed oe;
    api_error e = {0};
    if (ollama_parse_embed(in, bad[i].legacy, &oe, &e) == 0) fail_msg("%s: accepted", bad[i].in);
    assert_null(oe.body);
    assert_int_equal(e.status, 400);
    if (!strstr(e.message, bad[i].says))
      fail_msg("%s: message '%s' does not say '%s'", bad[i].in, e.message, bad[i].says);
    json_decref(in);
  }
}

static void test_small_helpers(void **state) {
  (void)state;
  float v[3] = {3, 4, 12};
  api_embed_truncate(v, 2);
  assert_true(fabsf(v[0] - 0.6f) < 1e-6f && fabsf(v[1] - 0.8f) < 1e-6f && v[2] == 12);
  float z[2] = {0, 0};
  api_embed_truncate(z, 2); /* no division by zero */
  assert_true(z[0] == 0 && z[1] == 0);

  char t[48];
  struct timespec ts = {.tv_sec = 0, .tv_nsec = 6};
  ollama_time(&ts, t, sizeof t);
  assert_string_equal(t, "1970-01-01T00:00:00.000000006Z");
  ts = (struct timespec){.tv_sec = 1700000000, .tv_nsec = 123456789};
  ollama_time(&ts, t, sizeof t);
  assert_string_equal(t, "2023-11-14T22:13:20.123456789Z");

  static const struct {
    const char *path;
    bool ollama;
  } paths[] = {{"/api/chat", true},
               {"/api/generate", true},
               {"/api/pull", true},
               {"/api/tags?x=1", true},
               {"/api/", true},
               {"/api/psx", true},
               {"/api/ps", false},
               {"/api/ps?verbose", false},
               {"/api/load", false},
               {"/api/unload", false},
               {"/api/events", false},
               {"/api", false},
               {"/v1/chat/completions", false},
               {"/health", false},
               {NULL, false}};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
    if (ollama_path(paths[i].path) != paths[i].ollama)
      fail_msg("ollama_path(%s) != %d", paths[i].path ? paths[i].path : "NULL", paths[i].ollama);

  static const struct {
    const char *in, *prefix;
  } imgs[] = {
      {"iVBORw0KGgoAAAANSUhEUg", "data:image/png;base64,iVBOR"},
      {"/9j/4AAQSkZJRgABAQAAAQ", "data:image/jpeg;base64,/9j/"},
      {"UklGRiQAAABXRUJQVlA4IBgA", "data:image/webp;base64,UklGR"},
      {"R0lGODlhAQABAIAAAAAAAP", "data:image/gif;base64,R0lG"},
      {"abc", "data:image/png;base64,abc"},
      {"****************", "data:image/png;base64,****"},
      {"data:image/jpeg;base64,xyz", "data:image/jpeg;base64,xyz"},
  };
  for (size_t i = 0; i < sizeof imgs / sizeof *imgs; i++) {
    json_t *u = ollama_image_url(imgs[i].in, strlen(imgs[i].in));
    assert_non_null(u);
    if (strncmp(json_string_value(u), imgs[i].prefix, strlen(imgs[i].prefix)) != 0)
      fail_msg("%s → %s", imgs[i].in, json_string_value(u));
    json_decref(u);
  }
}

/* ---- the answer translator ----------------------------------------------------------------- */

typedef struct ev {
  const char *op, *hdr; /* hdr: ut_json text */
} ev;

static const struct timespec fixed = {.tv_sec = 1700000000, .tv_nsec = 5};
#define AT "'created_at':'2023-11-14T22:13:20.000000005Z'"
#define DONE_HDR                                                                         \
  "{'finish_reason':'length','prompt_tokens':9,'cached_tokens':3,'completion_tokens':2," \
  "'prompt_ms':5.5,'gen_ms':20}"
#define STATS                                                                                     \
  "'done_reason':'length','total_duration':2000000000,'load_duration':500000000,"                 \
  "'prompt_eval_count':9,'prompt_eval_duration':5500000,'eval_count':2,'eval_duration':20000000," \
  "'prompt_cached_count':3"

/* Run the events through a translator (t0 10 s, 0.5 s loading, the last event at 12 s); the
 * streamed lines, one JSON value each, into an array (new reference); *ended: whether the last
 * event ended it; *tr (when not NULL) keeps the translator. */
static json_t *run_events(bool chat, bool stream, const ev *evs, size_t n, bool *ended,
                          ollama_tr **keep) {
  ollama_tr_params p = {
      .model = "m", .chat = chat, .stream = stream, .t0 = 10, .load_s = 0.5, .fixed_time = &fixed};
  ollama_tr *t = ollama_tr_new(&p);
  assert_non_null(t);
  sy_buf out = {0};
  for (size_t i = 0; i < n; i++) {
    json_t *h = ut_json(evs[i].hdr);
    *ended = ollama_tr_event(t, evs[i].op, h, i + 1 == n ? 12 : 11, &out);
    if (*ended) assert_int_equal(i + 1, n);
    json_decref(h);
  }
  json_t *lines = json_array();
  size_t start = 0;
  for (size_t i = 0; i < out.len; i++) {
    if (out.data[i] != '\n') continue;
    json_error_t je;
    json_t *l = json_loadb(out.data + start, i - start, 0, &je);
    if (!l) fail_msg("not a JSON line: %.*s", (int)(i - start), out.data + start);
    json_array_append_new(lines, l);
    start = i + 1;
  }
  assert_int_equal(start, out.len); /* every line ends in a newline */
  sy_buf_free(&out);
  if (keep)
    *keep = t;
  else
    ollama_tr_free(t);
  return lines;
}

static void test_tr_stream(void **state) {
  (void)state;
  static const ev text[] = {{"delta", "{'text':'Hel'}"},
                            {"delta", "{'delta':{'reasoning_content':'think'}}"},
                            {"progress", "{}"},
                            {"delta", "{'text':'lo','logprobs':[{'token':'lo','logprob':-0.5}]}"},
                            {"done", DONE_HDR}};
  bool ended;
  json_t *l = run_events(true, true, text, 5, &ended, NULL);
  assert_true(ended);
  assert_json(l, "[{'model':'m'," AT
                 ",'message':{'role':'assistant','content':'Hel'},'done':false},"
                 "{'model':'m'," AT
                 ",'message':{'role':'assistant','content':'','thinking':'think'},"
                 "'done':false},"
                 "{'model':'m'," AT
                 ",'message':{'role':'assistant','content':'lo'},'done':false,"
                 "'logprobs':[{'token':'lo','logprob':-0.5}]},"
                 "{'model':'m'," AT
                 ",'message':{'role':'assistant','content':''},'done':true," STATS "}]");
  json_decref(l);
  /* generate: "response" */
  l = run_events(false, true, text, 5, &ended, NULL);
  assert_json(l, "[{'model':'m'," AT
                 ",'response':'Hel','done':false},"
                 "{'model':'m'," AT
                 ",'response':'','thinking':'think','done':false},"
                 "{'model':'m'," AT
                 ",'response':'lo','done':false,"
                 "'logprobs':[{'token':'lo','logprob':-0.5}]},"
                 "{'model':'m'," AT ",'response':'','done':true," STATS "}]");
  json_decref(l);

  /* tool calls: each streamed once complete (the next call, or text, or the end follows it) */
  static const ev calls[] = {
      {"delta",
       "{'delta':{'tool_calls':[{'index':0,'id':'call_a','type':'function','function':{"
       "'name':'f','arguments':''}}]}}"},
      {"delta", "{'delta':{'tool_calls':[{'index':0,'function':{'arguments':'{\\'x\\':'}}]}}"},
      {"delta", "{'delta':{'tool_calls':[{'index':0,'function':{'arguments':'1}'}}]}}"},
      {"delta",
       "{'delta':{'tool_calls':[{'index':1,'id':'call_b','type':'function','function':{"
       "'name':'g','arguments':''}}]}}"},
      {"delta", "{'delta':{'tool_calls':[{'index':1,'function':{'arguments':'[1]'}}]}}"},
      {"delta", "{'text':'after'}"},
      {"delta",
       "{'delta':{'tool_calls':[{'index':2,'id':'call_c','type':'function','function':{"
       "'name':'h','arguments':''}}]}}"},
      {"done", "{'finish_reason':'tool_calls','prompt_tokens':1,'completion_tokens':1}"},
  };
  l = run_events(true, true, calls, 8, &ended, NULL);
  assert_int_equal(json_array_size(l), 5);
  assert_json(json_array_get(l, 0),
              "{'model':'m'," AT
              ",'message':{'role':'assistant','content':'','tool_calls':[{'id':"
              "'call_a','function':{'index':0,'name':'f','arguments':{'x':1}}}]},'done':false}");
  assert_json(json_object_get(json_object_get(json_array_get(l, 1), "message"), "tool_calls"),
              "[{'id':'call_b','function':{'index':1,'name':'g','arguments':[1]}}]");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(json_array_get(l, 2), "message"), "content")),
                      "after");
  assert_json(json_object_get(json_object_get(json_array_get(l, 3), "message"), "tool_calls"),
              "[{'id':'call_c','function':{'index':2,'name':'h','arguments':{}}}]");
  assert_string_equal(json_string_value(json_object_get(json_array_get(l, 4), "done_reason")),
                      "stop");
  json_decref(l);

  /* a worker error mid-stream: an {"error"} line ends it */
  static const ev broken[] = {
      {"delta", "{'text':'a'}"},
      {"error", "{'status':500,'code':'worker_crashed','message':'the worker died'}"}};
  l = run_events(true, true, broken, 2, &ended, NULL);
  assert_true(ended);
  assert_json(json_array_get(l, 1), "{'error':'the worker died'}");
  json_decref(l);
}

static void test_tr_whole(void **state) {
  (void)state;
  static const ev evs[] = {
      {"delta", "{'text':'Hel'}"},
      {"delta", "{'delta':{'reasoning_content':'th'}}"},
      {"delta", "{'delta':{'reasoning_content':'ink'}}"},
      {"delta",
       "{'delta':{'tool_calls':[{'index':0,'id':'call_a','type':'function','function':{"
       "'name':'f','arguments':'{}'}}]}}"},
      {"delta", "{'text':'lo','logprobs':[{'token':'lo','logprob':-0.5}]}"},
      {"done", DONE_HDR}};
  bool ended;
  ollama_tr *t;
  json_t *l = run_events(true, false, evs, 6, &ended, &t);
  assert_int_equal(json_array_size(l), 0); /* nothing streamed */
  api_error e = {0};
  json_t *r = ollama_tr_reply(t, &e);
  assert_json(r, "{'model':'m'," AT
                 ",'message':{'role':'assistant','content':'Hello','thinking':"
                 "'think','tool_calls':[{'id':'call_a','function':{'index':0,'name':'f',"
                 "'arguments':{}}}]},'done':true," STATS
                 ",'logprobs':[{'token':'lo','logprob':-0.5}]}");
  json_decref(r);
  json_decref(l);
  ollama_tr_free(t);

  l = run_events(false, false, evs, 6, &ended, &t);
  r = ollama_tr_reply(t, &e);
  assert_json(r, "{'model':'m'," AT ",'response':'Hello','thinking':'think','done':true," STATS
                 ",'logprobs':[{'token':'lo','logprob':-0.5}]}");
  json_decref(r);
  json_decref(l);
  ollama_tr_free(t);

  /* the worker refused: no answer, its error as /v1 maps it */
  static const ev refused[] = {{"error",
                                "{'status':400,'code':'context_length_exceeded',"
                                "'message':'the prompt is 900 tokens; 512 fit'}"}};
  l = run_events(true, false, refused, 1, &ended, &t);
  assert_null(ollama_tr_reply(t, &e));
  assert_int_equal(e.status, 400);
  assert_string_equal(e.message, "the prompt is 900 tokens; 512 fit");
  json_decref(l);
  ollama_tr_free(t);
  /* an answer that never ended */
  l = run_events(true, false, evs, 1, &ended, &t);
  assert_null(ollama_tr_reply(t, &e));
  assert_int_equal(e.status, 500);
  json_decref(l);
  ollama_tr_free(t);

  json_t *lr = ollama_load_reply("m:latest", true, false, &fixed);
  assert_json(lr, "{'model':'m:latest'," AT
                  ",'message':{'role':'assistant','content':''},"
                  "'done':true,'done_reason':'load'}");
  json_decref(lr);
  lr = ollama_load_reply("m", false, true, &fixed);
  assert_json(lr, "{'model':'m'," AT ",'response':'','done':true,'done_reason':'unload'}");
  json_decref(lr);
}

/* ---- tags, show, ps ------------------------------------------------------------------------ */

static void test_catalog(void **state) {
  (void)state;
  static const struct {
    int ft;
    long long bytes;
    const char *quant, *size;
  } q[] = {{15, 4900000000LL, "Q4_K_M", "8.0B"},
           {1, 26000000, "F16", "13M"},
           {7, 850000, "Q8_0", "800K"},
           {-1, 1000, "", ""},
           {99, 1000, "", ""},
           {2, 0, "Q4_0", ""}};
  for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
    char ps[32];
    assert_string_equal(ollama_quant_name(q[i].ft), q[i].quant);
    ollama_param_size(q[i].bytes, q[i].ft, ps, sizeof ps);
    assert_string_equal(ps, q[i].size);
  }

  assert_true(ollama_lists(&models[0]));
  assert_true(ollama_lists(&models[5]));  /* embeddings */
  assert_false(ollama_lists(&models[6])); /* whisper */
  assert_false(ollama_lists(&models[7])); /* an external engine */
  assert_false(ollama_lists(&models[8])); /* speech */

  char d1[65], d2[65], d3[65];
  ollama_digest(&models[0], 100, d1);
  ollama_digest(&models[0], 100, d2);
  ollama_digest(&models[0], 101, d3);
  assert_int_equal(strlen(d1), 64);
  assert_int_equal(strspn(d1, "0123456789abcdef"), 64);
  assert_string_equal(d1, d2);
  assert_string_not_equal(d1, d3);

  json_t *tag = ollama_tags_entry(&models[0], 1700000000);
  json_object_del(tag, "digest");
  assert_json(tag,
              "{'name':'qwen3-8b','model':'qwen3-8b','modified_at':"
              "'2023-11-14T22:13:20.000000000Z','size':4900000000,'details':{'parent_model':'',"
              "'format':'gguf','family':'qwen3','families':['qwen3'],'parameter_size':'8.0B',"
              "'quantization_level':'Q4_K_M'}}");
  json_decref(tag);

  json_t *show = ollama_show(&models[0], 0, NULL);
  assert_json(json_object_get(show, "capabilities"), "['completion','tools']");
  assert_json(json_object_get(show, "model_info"),
              "{'general.architecture':'qwen3','general.file_type':15}");
  assert_int_equal(
      json_integer_value(json_object_get(json_object_get(show, "switchyard"), "context")), 512);
  assert_non_null(
      strstr(json_string_value(json_object_get(show, "modelfile")), "FROM Qwen3-8B-Q4_K_M.gguf\n"));
  assert_null(strstr(json_string_value(json_object_get(show, "modelfile")), "/m/"));
  json_decref(show);
  show = ollama_show(&models[5], 0, "{{ messages }}");
  assert_json(json_object_get(show, "capabilities"), "['embedding']");
  assert_string_equal(json_string_value(json_object_get(show, "template")),
                      models[5].chat_template ? models[5].chat_template : "{{ messages }}");
  json_decref(show);

  json_t *rt = ollama_router_entry(&routers[0], 0);
  assert_string_equal(json_string_value(json_object_get(rt, "name")), "auto");
  assert_string_equal(json_string_value(json_object_get(json_object_get(rt, "details"), "family")),
                      "router");
  json_decref(rt);

  /* /api/ps: Ollama's fields added, ours kept */
  json_t *ps = ut_json(
      "{'name':'qwen3-8b','state':'loaded','size':100,'devices':[{'device':'Host',"
      "'estimated':50,'measured':60},{'device':'CUDA0','estimated':40,'measured':30},"
      "{'device':'CUDA1','estimated':5,'measured':7}],'expires_in_s':60,"
      "'context':256}");
  ollama_ps_fields(ps, &models[0], 100, 1700000000);
  assert_string_equal(json_string_value(json_object_get(ps, "model")), "qwen3-8b");
  assert_string_equal(json_string_value(json_object_get(ps, "state")), "loaded");
  assert_int_equal(json_integer_value(json_object_get(ps, "size")), 100);
  assert_int_equal(json_integer_value(json_object_get(ps, "size_vram")), 47);
  assert_int_equal(json_integer_value(json_object_get(ps, "context_length")), 256);
  assert_string_equal(json_string_value(json_object_get(ps, "expires_at")),
                      "2023-11-14T22:14:20.000000000Z");
  assert_string_equal(json_string_value(json_object_get(ps, "digest")), d1);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(ps, "details"), "quantization_level")),
      "Q4_K_M");
  json_decref(ps);
  ps = ut_json("{'name':'gone','expires_in_s':-1}"); /* forever; not in the matrix */
  ollama_ps_fields(ps, NULL, 0, 1700000000);
  assert_true(strncmp(json_string_value(json_object_get(ps, "expires_at")), "2315-", 5) == 0);
  assert_int_equal(json_integer_value(json_object_get(ps, "size_vram")), 0);
  assert_int_equal(json_integer_value(json_object_get(ps, "context_length")), 0);
  assert_string_equal(json_string_value(json_object_get(ps, "digest")), "");
  json_decref(ps);
  ps = ut_json("{'state':'loading'}"); /* no name: left alone */
  ollama_ps_fields(ps, NULL, 0, 0);
  assert_int_equal(json_object_size(ps), 1);
  json_decref(ps);
}

/* ---- fuzz ---------------------------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static const char *const keys[] = {
    "model",       "messages", "prompt",    "options",      "format",    "think",
    "images",      "tools",    "stream",    "keep_alive",   "raw",       "system",
    "suffix",      "template", "context",   "role",         "content",   "thinking",
    "tool_calls",  "function", "arguments", "name",         "tool_name", "temperature",
    "num_predict", "stop",     "seed",      "top_k",        "num_ctx",   "input",
    "dimensions",  "truncate", "logprobs",  "top_logprobs", "mirostat",  "id"};
static const char *const strs[] = {"m",       "",          "json", "5m",   "-1",
                                   "user",    "assistant", "tool", "high", "iVBORw0KGgoAAAANSUhEUg",
                                   "\\u00e9", "1h30m",     "x"};
static const char *const nums[] = {
    "0", "1", "-1", "-3", "2.5", "1e300", "-0", "9007199254740993", "16777217", "0.5"};

static void gen_value(sy_buf *b, int depth);
static void gen_object(sy_buf *b, int depth) {
  int n = (int)(rnd() % 6);
  sy_buf_puts(b, "{");
  for (int i = 0; i < n; i++)
    sy_buf_printf(b, "%s\"%s\":", i ? "," : "", keys[rnd() % (sizeof keys / sizeof *keys)]),
        gen_value(b, depth + 1);
  sy_buf_puts(b, "}");
}
static void gen_value(sy_buf *b, int depth) {
  switch (depth > 4 ? rnd() % 4 : rnd() % 7) {
    case 0:
      sy_buf_printf(b, "\"%s\"", strs[rnd() % (sizeof strs / sizeof *strs)]);
      break;
    case 1:
      sy_buf_puts(b, nums[rnd() % (sizeof nums / sizeof *nums)]);
      break;
    case 2:
      sy_buf_puts(b, rnd() % 2 ? "true" : "false");
      break;
    case 3:
      sy_buf_puts(b, "null");
      break;
    case 4:
    case 5:
      gen_object(b, depth);
      break;
    default: {
      int n = (int)(rnd() % 5);
      sy_buf_puts(b, "[");
      for (int i = 0; i < n; i++) {
        if (i) sy_buf_puts(b, ",");
        gen_value(b, depth + 1);
      }
      sy_buf_puts(b, "]");
    }
  }
}

static void test_fuzz(void **state) {
  (void)state;
  rng_state = 0x4f4c4c414d41ull;
  int accepted = 0;
  for (int it = 0; it < 20000; it++) {
    sy_buf b = {0};
    sy_buf_puts(&b, "{\"model\":\"m\"");
    int extra = (int)(rnd() % 6);
    for (int i = 0; i < extra; i++) {
      sy_buf_printf(&b, ",\"%s\":", keys[rnd() % (sizeof keys / sizeof *keys)]);
      gen_value(&b, 1);
    }
    sy_buf_puts(&b, "}");
    json_t *req = json_loadb(b.data, b.len, 0, NULL); /* duplicate keys: the last wins */
    sy_buf_free(&b);
    if (!req) continue;
    for (int k = 0; k < 4; k++) {
      api_error e = {0};
      int rc;
      json_t *body;
      if (k < 2) {
        ollama_gen g;
        rc = ollama_parse_gen(req, k == 0, &g, &e);
        body = g.body ? json_incref(g.body) : NULL;
        assert_true(rc != 0 || g.load_only || json_is_object(body));
        ollama_gen_clear(&g);
      } else {
        ollama_embed oe;
        rc = ollama_parse_embed(req, k == 3, &oe, &e);
        body = oe.body ? json_incref(oe.body) : NULL;
        ollama_embed_clear(&oe);
      }
      if (rc == 0) {
        assert_true(json_is_object(body));
        accepted++;
      } else {
        assert_int_equal(rc, -1);
        assert_null(body);
        assert_true(e.status == 400 || e.status == 500);
        assert_true(e.message[0] != '\0');
      }
      json_decref(body);
    }
    json_decref(req);
  }
  assert_true(accepted > 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_gen_translation),
      cmocka_unit_test(test_gen_errors),
      cmocka_unit_test(test_embed_translation),
      cmocka_unit_test(test_small_helpers),
      cmocka_unit_test(test_tr_stream),
      cmocka_unit_test(test_tr_whole),
      cmocka_unit_test(test_catalog),
      cmocka_unit_test(test_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
