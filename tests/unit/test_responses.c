/* test_responses.c — unit tests of the OpenAI Responses API's pure parts:
 *  - the request translation (src/daemon/parse/responses_parse.h), table-driven: every input item
 *    type (easy message, message with input_text / input_image / output_text / refusal parts,
 *    function_call, function_call_output with a string and with parts, reasoning with content and
 *    with a summary) into chat messages, the folding of one assistant turn's items into one
 *    message, instructions, a previous response's history, tools, tool_choice, text.format,
 *    reasoning.effort, max_output_tokens, the chat extensions, what the response echoes; every
 *    error (400 naming the Responses field) and every refused feature; the translated bodies
 *    accepted by the chat checks (api_parse_generate), and the chat checks' errors renamed
 *    (rsp_parse_fix_error);
 *  - the answer translation (src/daemon/api/responses_out.h), table-driven over sequences of
 *    worker frames: the events' types in order, contiguous sequence numbers, deltas that add up to
 *    the done texts and to the final output, output_item.done equal to the final output's item,
 *    status, incomplete_details, usage, a failure; the whole answer equal to the streamed one;
 *    rsp_out_message (the answer as a chat message for the store);
 *  - the response store (src/daemon/api/responses_store.h): put/get/delete, replacing an id, LRU
 *    eviction by count and by bytes (a get counts as a use), an entry over the byte bound refused,
 *    and four threads at once. */
#include "api/responses_out.h"
#include "api/responses_store.h"
#include "buf.h"
#include "parse/api_parse.h"
#include "parse/responses_parse.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

/* ---- helpers ---- */

static matrix_model test_models[] = {
    {.name = "m", .caps = MATRIX_CAP_CHAT | MATRIX_CAP_COMPLETION, .context = 512, .parallel = 1},
    {.name = "vlm", .caps = MATRIX_CAP_CHAT | MATRIX_CAP_VISION, .context = 512, .parallel = 1},
};
static matrix test_mx = {.models = test_models, .n_models = 2, .max_body_bytes = 1 << 20};

/* A test body written with ' for " (readability). */
static json_t *J(const char *text) {
  char *s = strdup(text);
  for (char *p = s; *p; p++)
    if (*p == '\'') *p = '"';
  json_error_t je;
  json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
  if (!j) fail_msg("bad test JSON: %s: %s", s, je.text);
  free(s);
  return j;
}

static char *dump(const json_t *j) {
  return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : strdup("(null)");
}

/* Every key of want has an equal value in got. */
static void expect_subset_(const json_t *got, const json_t *want, const char *name) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)want, k, v) {
    json_t *g = json_object_get(got, k);
    if (json_is_null(v) && !g) continue; /* null: absent or null */
    if (!json_equal(g, v)) {
      char *a = dump(g), *b = dump(v);
      fail_msg("%s: '%s' is %s, want %s", name, k, a, b);
    }
  }
}

static void expect_err_(const api_error *e, int status, const char *code, const char *param,
                        const char *phrase, const char *name) {
  if (e->status != status || !e->code || strcmp(e->code, code) != 0 ||
      (param ? !e->param || strcmp(e->param, param) != 0 : e->param != NULL) ||
      (phrase && !strstr(e->message, phrase)))
    fail_msg("%s: got %d %s param %s \"%s\"; want %d %s %s containing \"%s\"", name, e->status,
             e->code ? e->code : "(null)", e->param ? e->param : "(null)", e->message, status, code,
             param ? param : "(null)", phrase ? phrase : "");
  json_t *j = api_error_json(e); /* printable as OpenAI's error body */
  assert_non_null(j);
  json_decref(j);
}

/* ---- the request translation: good requests ---- */

typedef struct good_case {
  const char *name;
  const char *body;
  const char *history; /* a previous response's conversation, or NULL */
  const char *want;    /* keys of the chat body that must equal these */
} good_case;

static const good_case good[] = {
    {"string input", "{'model':'m','input':'Hi'}", NULL,
     "{'model':'m','messages':[{'role':'user','content':'Hi'}],'stream':false}"},
    {"instructions first", "{'model':'m','instructions':'Be brief','input':'Hi'}", NULL,
     "{'messages':[{'role':'system','content':'Be brief'},{'role':'user','content':'Hi'}]}"},
    {"easy message", "{'model':'m','input':[{'role':'user','content':'Hi'}]}", NULL,
     "{'messages':[{'role':'user','content':'Hi'}]}"},
    {"roles kept",
     "{'model':'m','input':[{'type':'message','role':'developer','content':'D'},"
     "{'type':'message','role':'system','content':'S'},"
     "{'type':'message','role':'user','content':'U'}]}",
     NULL,
     "{'messages':[{'role':'developer','content':'D'},{'role':'system','content':'S'},"
     "{'role':'user','content':'U'}]}"},
    {"input parts",
     "{'model':'vlm','input':[{'role':'user','content':[{'type':'input_text','text':"
     "'look'},{'type':'input_image','image_url':'data:image/png;base64,AA','detail':"
     "'auto'}]}]}",
     NULL,
     "{'messages':[{'role':'user','content':[{'type':'text','text':'look'},{'type':'image_url',"
     "'image_url':{'url':'data:image/png;base64,AA'}}]}]}"},
    {"assistant parts",
     "{'model':'m','input':[{'role':'user','content':'q'},{'type':'message',"
     "'role':'assistant','content':[{'type':'output_text','text':'a',"
     "'annotations':[]},{'type':'refusal','refusal':'no'}]}]}",
     NULL,
     "{'messages':[{'role':'user','content':'q'},{'role':'assistant','content':[{'type':'text',"
     "'text':'a'},{'type':'text','text':'no'}]}]}"},
    {"one turn folds",
     "{'model':'m','input':[{'role':'user','content':'q'},{'type':'reasoning',"
     "'id':'rs_1','summary':[],'content':[{'type':'reasoning_text','text':"
     "'think'}]},{'type':'message','role':'assistant','content':[{'type':"
     "'output_text','text':'ok'}]},{'type':'function_call','call_id':'c1',"
     "'name':'f','arguments':'{}'},{'type':'function_call_output','call_id':"
     "'c1','output':'res'}]}",
     NULL,
     "{'messages':[{'role':'user','content':'q'},{'role':'assistant','content':[{'type':'text',"
     "'text':'ok'}],'reasoning_content':'think','tool_calls':[{'id':'c1','type':'function',"
     "'function':{'name':'f','arguments':'{}'}}]},{'role':'tool','tool_call_id':'c1',"
     "'content':'res'}]}"},
    {"calls alone",
     "{'model':'m','input':[{'role':'user','content':'q'},{'type':'function_call',"
     "'call_id':'a','name':'f','arguments':'{}','id':'fc_1','status':'completed'},"
     "{'type':'function_call','call_id':'b','name':'g','arguments':'[1]'},"
     "{'type':'function_call_output','call_id':'b','output':'B'},"
     "{'type':'function_call_output','call_id':'a','output':'A'}]}",
     NULL,
     "{'messages':[{'role':'user','content':'q'},{'role':'assistant','content':null,'tool_calls':"
     "[{'id':'a','type':'function','function':{'name':'f','arguments':'{}'}},{'id':'b','type':"
     "'function','function':{'name':'g','arguments':'[1]'}}]},{'role':'tool','tool_call_id':'b',"
     "'content':'B'},{'role':'tool','tool_call_id':'a','content':'A'}]}"},
    {"reasoning summary",
     "{'model':'m','input':[{'role':'user','content':'q'},{'type':"
     "'reasoning','summary':[{'type':'summary_text','text':'s1'},{'type':"
     "'summary_text','text':'s2'}]},{'role':'assistant','content':'x'}]}",
     NULL,
     "{'messages':[{'role':'user','content':'q'},{'role':'assistant','content':'x',"
     "'reasoning_content':'s1\\ns2'}]}"},
    {"empty reasoning",
     "{'model':'m','input':[{'role':'user','content':'q'},{'type':'reasoning',"
     "'summary':[],'encrypted_content':'opaque'},{'role':'assistant','content':"
     "'x'}]}",
     NULL, "{'messages':[{'role':'user','content':'q'},{'role':'assistant','content':'x'}]}"},
    {"output parts",
     "{'model':'m','input':[{'type':'function_call','call_id':'a','name':'f',"
     "'arguments':'{}'},{'type':'function_call_output','call_id':'a','output':[{"
     "'type':'input_text','text':'r1'},{'type':'input_text','text':'r2'}]}]}",
     NULL,
     "{'messages':[{'role':'assistant','content':null,'tool_calls':[{'id':'a','type':'function',"
     "'function':{'name':'f','arguments':'{}'}}]},{'role':'tool','tool_call_id':'a',"
     "'content':[{'type':'text','text':'r1'},{'type':'text','text':'r2'}]}]}"},
    {"history continues", "{'model':'m','instructions':'I','input':'c','previous_response_id':'r'}",
     "[{'role':'user','content':'a'},{'role':'assistant','content':'b'}]",
     "{'messages':[{'role':'system','content':'I'},{'role':'user','content':'a'},{'role':"
     "'assistant','content':'b'},{'role':'user','content':'c'}]}"},
    {"output of a stored call",
     "{'model':'m','input':[{'type':'function_call_output','call_id':"
     "'c9','output':'ok'}]}",
     "[{'role':'user','content':'a'},{'role':'assistant','content':null,'tool_calls':[{'id':'c9',"
     "'type':'function','function':{'name':'h','arguments':'{}'}}]}]",
     "{'messages':[{'role':'user','content':'a'},{'role':'assistant','content':null,'tool_calls':"
     "[{'id':'c9','type':'function','function':{'name':'h','arguments':'{}'}}]},{'role':'tool',"
     "'tool_call_id':'c9','content':'ok'}]}"},
    {"tools",
     "{'model':'m','input':'q','tools':[{'type':'function','name':'f','description':'d',"
     "'parameters':{'type':'object'},'strict':true},{'type':'function','name':'g'}],"
     "'tool_choice':{'type':'function','name':'g'},'parallel_tool_calls':false}",
     NULL,
     "{'tools':[{'type':'function','function':{'name':'f','description':'d','parameters':{'type':"
     "'object'}}},{'type':'function','function':{'name':'g'}}],'tool_choice':{'type':'function',"
     "'function':{'name':'g'}},'parallel_tool_calls':false}"},
    {"tool_choice required",
     "{'model':'m','input':'q','tools':[{'type':'function','name':'f'}],"
     "'tool_choice':'required'}",
     NULL, "{'tool_choice':'required'}"},
    {"json_schema",
     "{'model':'m','input':'q','text':{'format':{'type':'json_schema','name':'a',"
     "'schema':{'type':'object'},'strict':true}}}",
     NULL,
     "{'response_format':{'type':'json_schema','json_schema':{'name':'a','schema':{'type':"
     "'object'}}}}"},
    {"json_object", "{'model':'m','input':'q','text':{'format':{'type':'json_object'}}}", NULL,
     "{'response_format':{'type':'json_object'}}"},
    {"text format", "{'model':'m','input':'q','text':{'format':{'type':'text'}}}", NULL,
     "{'response_format':null}"},
    {"effort none", "{'model':'m','input':'q','reasoning':{'effort':'none'}}", NULL,
     "{'reasoning_effort':'none'}"},
    {"effort xhigh", "{'model':'m','input':'q','reasoning':{'effort':'xhigh','summary':'auto'}}",
     NULL, "{'reasoning_effort':'high'}"},
    {"effort low", "{'model':'m','input':'q','reasoning':{'effort':'low'}}", NULL,
     "{'reasoning_effort':'low'}"},
    {"no effort", "{'model':'m','input':'q','reasoning':{'summary':'concise'}}", NULL,
     "{'reasoning_effort':null}"},
    {"max_output_tokens", "{'model':'m','input':'q','max_output_tokens':5}", NULL,
     "{'max_tokens':5}"},
    {"max_output_tokens real", "{'model':'m','input':'q','max_output_tokens':7.0}", NULL,
     "{'max_tokens':7}"},
    {"sampling", "{'model':'m','input':'q','temperature':0,'top_p':0.5}", NULL,
     "{'temperature':0,'top_p':0.5}"},
    {"extensions",
     "{'model':'m','input':'q','seed':3,'top_k':2,'stop':['x'],'keep_alive':'5m',"
     "'cache_prompt':false,'chat_template_kwargs':{'enable_thinking':false}}",
     NULL,
     "{'seed':3,'top_k':2,'stop':['x'],'keep_alive':'5m','cache_prompt':false,"
     "'chat_template_kwargs':{'enable_thinking':false}}"},
    {"stream", "{'model':'m','input':'q','stream':true}", NULL, "{'stream':true}"},
    {"accepted, no effect",
     "{'model':'m','input':'q','include':['reasoning.encrypted_content'],"
     "'service_tier':'auto','truncation':'disabled','background':false,"
     "'metadata':{'k':'v'},'user':'u','safety_identifier':'s',"
     "'prompt_cache_key':'p','stream_options':{'include_obfuscation':false},"
     "'top_logprobs':0,'conversation':null,'store':false}",
     NULL, "{'model':'m','messages':[{'role':'user','content':'q'}]}"},
};

static void test_translate_good(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    json_t *req = J(good[i].body), *hist = good[i].history ? J(good[i].history) : NULL,
           *want = J(good[i].want);
    rsp_request rq;
    api_error e = {0};
    if (rsp_parse_request(req, hist, &rq, &e) != 0)
      fail_msg("%s: refused: %d %s %s", good[i].name, e.status, e.code, e.message);
    expect_subset_(rq.chat, want, good[i].name);
    /* the history is the messages without the instructions */
    json_t *msgs = json_object_get(rq.chat, "messages");
    size_t skip = json_is_string(json_object_get(req, "instructions")) ? 1 : 0;
    assert_int_equal(json_array_size(rq.history) + skip, json_array_size(msgs));
    for (size_t k = 0; k < json_array_size(rq.history); k++)
      assert_true(json_equal(json_array_get(rq.history, k), json_array_get(msgs, k + skip)));
    /* the chat checks accept what came out */
    api_gen g;
    if (api_parse_generate(&test_mx, NULL, rq.chat, true, &g, &e) != 0)
      fail_msg("%s: the chat checks refuse the translation: %s", good[i].name, e.message);
    api_gen_clear(&g);
    rsp_request_clear(&rq);
    json_decref(req);
    json_decref(hist);
    json_decref(want);
  }
}

static void test_translate_flags_and_echo(void **state) {
  (void)state;
  json_t *req =
      J("{'model':'m','input':'q','store':false,'stream':true,'instructions':'I','metadata':{'a':"
        "'b'},'user':'u','temperature':0.5,'max_output_tokens':9,'tools':[{'type':'function',"
        "'name':'f'}],'tool_choice':'none','text':{'format':{'type':'json_object'}},'reasoning':"
        "{'effort':'low','summary':'auto'},'previous_response_id':'resp_x'}");
  json_t *hist = J("[]");
  rsp_request rq;
  api_error e = {0};
  assert_int_equal(rsp_parse_request(req, hist, &rq, &e), 0);
  assert_false(rq.store);
  assert_true(rq.stream);
  json_t *want =
      J("{'instructions':'I','metadata':{'a':'b'},'user':'u','temperature':0.5,"
        "'max_output_tokens':9,'tools':[{'type':'function','name':'f'}],'tool_choice':'none',"
        "'text':{'format':{'type':'json_object'}},'reasoning':{'effort':'low','summary':'auto'},"
        "'previous_response_id':'resp_x','store':false,'parallel_tool_calls':true,'truncation':"
        "'disabled','top_p':null}");
  expect_subset_(rq.echo, want, "echo");
  rsp_request_clear(&rq);
  json_decref(want);
  json_decref(req);
  /* the defaults */
  req = J("{'model':'m','input':'q'}");
  assert_int_equal(rsp_parse_request(req, NULL, &rq, &e), 0);
  assert_true(rq.store);
  assert_false(rq.stream);
  want =
      J("{'instructions':null,'metadata':{},'user':null,'temperature':null,"
        "'max_output_tokens':null,'tools':[],'tool_choice':'auto','text':{'format':{'type':"
        "'text'}},'reasoning':{'effort':null,'summary':null},'previous_response_id':null,"
        "'store':true}");
  expect_subset_(rq.echo, want, "echo defaults");
  rsp_request_clear(&rq);
  json_decref(want);
  json_decref(req);
  json_decref(hist);
  /* the history handed in is copied, never changed */
  hist = J("[{'role':'assistant','content':null}]");
  req =
      J("{'model':'m','input':[{'type':'reasoning','content':[{'type':'reasoning_text','text':"
        "'r'}]}]}");
  assert_int_equal(rsp_parse_request(req, hist, &rq, &e), 0);
  assert_null(json_object_get(json_array_get(hist, 0), "reasoning_content"));
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(rq.history, 0), "reasoning_content")), "r");
  rsp_request_clear(&rq);
  json_decref(req);
  json_decref(hist);
  /* previous_response_id on its own */
  const char *id;
  req = J("{'previous_response_id':'resp_1'}");
  assert_int_equal(rsp_parse_previous_id(req, &id, &e), 0);
  assert_string_equal(id, "resp_1");
  json_decref(req);
  req = J("{'previous_response_id':null}");
  assert_int_equal(rsp_parse_previous_id(req, &id, &e), 0);
  assert_null(id);
  json_decref(req);
}

/* ---- the request translation: errors ---- */

typedef struct bad_case {
  const char *body;
  int status;
  const char *code, *param, *phrase;
} bad_case;

static const bad_case bad[] = {
    {"[]", 400, "invalid_json", NULL, "JSON object"},
    {"{'model':'m'}", 400, "missing_required_parameter", "input", "'input'"},
    {"{'model':'m','input':null}", 400, "missing_required_parameter", "input", NULL},
    {"{'model':'m','input':5}", 400, "invalid_type", "input", "string or an array"},
    {"{'model':'m','input':{}}", 400, "invalid_type", "input", NULL},
    {"{'model':'m','input':[]}", 400, "invalid_value", "input", "no message"},
    {"{'model':'m','input':[5]}", 400, "invalid_type", "input", "input[0] must be an object"},
    {"{'model':'m','input':[{}]}", 400, "invalid_type", "input", "'type'"},
    {"{'model':'m','input':[{'type':5,'role':'user','content':'x'}]}", 400, "invalid_type", "input",
     "'type'"},
    {"{'model':'m','input':[{'role':'tool','content':'x'}]}", 400, "invalid_value", "input",
     "input[0].role"},
    {"{'model':'m','input':[{'role':5,'content':'x'}]}", 400, "invalid_value", "input", "role"},
    {"{'model':'m','input':[{'type':'message','role':'user'}]}", 400, "missing_required_parameter",
     "input", "no 'content'"},
    {"{'model':'m','input':[{'role':'user','content':5}]}", 400, "invalid_type", "input",
     "input[0].content"},
    {"{'model':'m','input':[{'role':'user','content':[5]}]}", 400, "invalid_type", "input",
     "input[0].content[0]"},
    {"{'model':'m','input':[{'role':'user','content':[{'type':'input_text'}]}]}", 400,
     "invalid_type", "input", "text must be a string"},
    {"{'model':'m','input':[{'role':'user','content':[{'type':'input_text','text':5}]}]}", 400,
     "invalid_type", "input", NULL},
    {"{'model':'m','input':[{'role':'user','content':[{'type':'input_file','file_id':'f'}]}]}", 400,
     "unsupported_content", "input", "input_file"},
    {"{'model':'m','input':[{'role':'user','content':[{'type':'input_image','file_id':'f'}]}]}",
     400, "unsupported_content", "input", "file_id"},
    {"{'model':'m','input':[{'role':'user','content':[{'type':'input_image'}]}]}", 400,
     "invalid_value", "input", "image_url"},
    {"{'model':'m','input':[{'role':'user','content':[{'type':'input_image','image_url':''}]}]}",
     400, "invalid_value", "input", NULL},
    {"{'model':'m','input':[{'role':'user','content':[{'type':'input_image','image_url':'x',"
     "'detail':5}]}]}",
     400, "invalid_value", "input", NULL},
    {"{'model':'m','input':[{'role':'user','content':[{'type':'input_audio','input_audio':{}}]}]}",
     400, "unsupported_content", "input", "input_audio"},
    {"{'model':'m','input':[{'role':'user','content':[{'type':'output_text','text':'x'}]}]}", 400,
     "unsupported_content", "input", "input_text and input_image"},
    {"{'model':'m','input':[{'role':'assistant','content':[{'type':'input_image','image_url':'x'}]"
     "}]}",
     400, "unsupported_content", "input", "output_text and refusal"},
    {"{'model':'m','input':[{'role':'assistant','content':[{'type':'refusal'}]}]}", 400,
     "invalid_type", "input", "refusal must be a string"},
    {"{'model':'m','input':[{'type':'function_call','name':'f','arguments':'{}'}]}", 400,
     "missing_required_parameter", "input", "'call_id'"},
    {"{'model':'m','input':[{'type':'function_call','call_id':'','name':'f','arguments':'{}'}]}",
     400, "invalid_type", "input", "'call_id'"},
    {"{'model':'m','input':[{'type':'function_call','call_id':'c','name':5,'arguments':'{}'}]}",
     400, "invalid_type", "input", "'name'"},
    {"{'model':'m','input':[{'type':'function_call','call_id':'c','name':'f','arguments':{}}]}",
     400, "invalid_type", "input", "'arguments'"},
    {"{'model':'m','input':[{'type':'function_call_output','output':'x'}]}", 400,
     "missing_required_parameter", "input", "'call_id'"},
    {"{'model':'m','input':[{'type':'function_call_output','call_id':'c','output':'x'}]}", 400,
     "invalid_value", "input", "no function_call with call_id 'c'"},
    {"{'model':'m','input':[{'type':'function_call','call_id':'c','name':'f','arguments':'{}'},"
     "{'type':'function_call_output','call_id':'c'}]}",
     400, "missing_required_parameter", "input", "'output'"},
    {"{'model':'m','input':[{'type':'function_call','call_id':'c','name':'f','arguments':'{}'},"
     "{'type':'function_call_output','call_id':'c','output':5}]}",
     400, "invalid_type", "input", "input[1].output"},
    {"{'model':'m','input':[{'type':'function_call','call_id':'c','name':'f','arguments':'{}'},"
     "{'type':'function_call_output','call_id':'c','output':[{'type':'refusal','refusal':'x'}]}]}",
     400, "unsupported_content", "input", NULL},
    {"{'model':'m','input':[{'type':'reasoning','content':[{'type':'x','text':'y'}]}]}", 400,
     "invalid_value", "input", "reasoning_text"},
    {"{'model':'m','input':[{'type':'reasoning','summary':5}]}", 400, "invalid_value", "input",
     NULL},
    {"{'model':'m','input':[{'type':'reasoning','summary':[{'type':'summary_text','text':5}]}]}",
     400, "invalid_value", "input", NULL},
    {"{'model':'m','input':[{'type':'item_reference','id':'msg_1'}]}", 400, "unsupported_content",
     "input", "item_reference"},
    {"{'model':'m','input':[{'type':'web_search_call','id':'ws_1'}]}", 400, "unsupported_content",
     "input", "'web_search_call'"},
    {"{'model':'m','input':[{'type':'computer_call_output'}]}", 400, "unsupported_content", "input",
     NULL},
    {"{'model':'m','input':'q','instructions':5}", 400, "invalid_type", "instructions", NULL},
    {"{'model':'m','input':'q','tools':5}", 400, "invalid_type", "tools", NULL},
    {"{'model':'m','input':'q','tools':[5]}", 400, "invalid_type", "tools", "tools[0]"},
    {"{'model':'m','input':'q','tools':[{'type':'web_search'}]}", 400, "unsupported_parameter",
     "tools", "'web_search'"},
    {"{'model':'m','input':'q','tools':[{'type':'file_search','vector_store_ids':[]}]}", 400,
     "unsupported_parameter", "tools", NULL},
    {"{'model':'m','input':'q','tools':[{'type':'function'}]}", 400, "invalid_value", "tools",
     "name"},
    {"{'model':'m','input':'q','tools':[{'type':'function','name':'f','parameters':5}]}", 400,
     "invalid_value", "tools", NULL},
    {"{'model':'m','input':'q','tools':[{'type':'function','name':'f','strict':'yes'}]}", 400,
     "invalid_value", "tools", NULL},
    {"{'model':'m','input':'q','tool_choice':'any'}", 400, "invalid_value", "tool_choice", NULL},
    {"{'model':'m','input':'q','tool_choice':5}", 400, "invalid_value", "tool_choice", NULL},
    {"{'model':'m','input':'q','tool_choice':{'type':'web_search_preview'}}", 400,
     "unsupported_parameter", "tool_choice", NULL},
    {"{'model':'m','input':'q','tool_choice':{'type':'function'}}", 400, "invalid_value",
     "tool_choice", NULL},
    {"{'model':'m','input':'q','text':5}", 400, "invalid_type", "text", NULL},
    {"{'model':'m','input':'q','text':{'format':{'type':'xml'}}}", 400, "invalid_value",
     "text.format", NULL},
    {"{'model':'m','input':'q','text':{'format':'json'}}", 400, "invalid_value", "text.format",
     NULL},
    {"{'model':'m','input':'q','text':{'format':{'type':'json_schema','name':'a'}}}", 400,
     "invalid_value", "text.format", "schema"},
    {"{'model':'m','input':'q','text':{'format':{'type':'json_schema','name':5,'schema':{}}}}", 400,
     "invalid_value", "text.format", NULL},
    {"{'model':'m','input':'q','text':{'verbosity':'low'}}", 400, "unsupported_parameter",
     "text.verbosity", NULL},
    {"{'model':'m','input':'q','reasoning':5}", 400, "invalid_type", "reasoning", NULL},
    {"{'model':'m','input':'q','reasoning':{'effort':'extreme'}}", 400, "invalid_value",
     "reasoning.effort", NULL},
    {"{'model':'m','input':'q','reasoning':{'effort':3}}", 400, "invalid_value", "reasoning.effort",
     NULL},
    {"{'model':'m','input':'q','reasoning':{'summary':'long'}}", 400, "invalid_value",
     "reasoning.summary", NULL},
    {"{'model':'m','input':'q','max_output_tokens':0}", 400, "invalid_value", "max_output_tokens",
     NULL},
    {"{'model':'m','input':'q','max_output_tokens':1.5}", 400, "invalid_value", "max_output_tokens",
     NULL},
    {"{'model':'m','input':'q','max_output_tokens':'5'}", 400, "invalid_value", "max_output_tokens",
     NULL},
    {"{'model':'m','input':'q','max_output_tokens':16777217}", 400, "invalid_value",
     "max_output_tokens", NULL},
    {"{'model':'m','input':'q','max_output_tokens':1e300}", 400, "invalid_value",
     "max_output_tokens", NULL},
    {"{'model':'m','input':'q','store':'yes'}", 400, "invalid_type", "store", NULL},
    {"{'model':'m','input':'q','stream':1}", 400, "invalid_type", "stream", NULL},
    {"{'model':'m','input':'q','metadata':5}", 400, "invalid_value", "metadata", NULL},
    {"{'model':'m','input':'q','metadata':{'a':5}}", 400, "invalid_value", "metadata", NULL},
    {"{'model':'m','input':'q','user':5}", 400, "invalid_type", "user", NULL},
    {"{'model':'m','input':'q','prompt_cache_key':[]}", 400, "invalid_type", "prompt_cache_key",
     NULL},
    {"{'model':'m','input':'q','previous_response_id':5}", 400, "invalid_type",
     "previous_response_id", NULL},
    {"{'model':'m','input':'q','previous_response_id':''}", 400, "invalid_value",
     "previous_response_id", NULL},
    {"{'model':'m','input':'q','background':true}", 400, "unsupported_parameter", "background",
     NULL},
    {"{'model':'m','input':'q','background':'x'}", 400, "invalid_type", "background", NULL},
    {"{'model':'m','input':'q','conversation':'conv_1'}", 400, "unsupported_parameter",
     "conversation", NULL},
    {"{'model':'m','input':'q','prompt':{'id':'p'}}", 400, "unsupported_parameter", "prompt", NULL},
    {"{'model':'m','input':'q','context_management':[{}]}", 400, "unsupported_parameter",
     "context_management", NULL},
    {"{'model':'m','input':'q','moderation':{}}", 400, "unsupported_parameter", "moderation", NULL},
    {"{'model':'m','input':'q','prompt_cache_options':{}}", 400, "unsupported_parameter",
     "prompt_cache_options", NULL},
    {"{'model':'m','input':'q','prompt_cache_retention':'24h'}", 400, "unsupported_parameter",
     "prompt_cache_retention", NULL},
    {"{'model':'m','input':'q','max_tool_calls':3}", 400, "unsupported_parameter", "max_tool_calls",
     NULL},
    {"{'model':'m','input':'q','service_tier':'flex'}", 400, "unsupported_parameter",
     "service_tier", NULL},
    {"{'model':'m','input':'q','service_tier':5}", 400, "invalid_type", "service_tier", NULL},
    {"{'model':'m','input':'q','truncation':'auto'}", 400, "unsupported_parameter", "truncation",
     "context"},
    {"{'model':'m','input':'q','truncation':'x'}", 400, "invalid_value", "truncation", NULL},
    {"{'model':'m','input':'q','top_logprobs':3}", 400, "unsupported_parameter", "top_logprobs",
     NULL},
    {"{'model':'m','input':'q','include':'x'}", 400, "invalid_type", "include", NULL},
    {"{'model':'m','input':'q','include':[5]}", 400, "invalid_type", "include", NULL},
    {"{'model':'m','input':'q','include':['message.output_text.logprobs']}", 400,
     "unsupported_parameter", "include", NULL},
    {"{'model':'m','input':'q','stream_options':5}", 400, "invalid_type", "stream_options", NULL},
    {"{'model':'m','input':'q','stream_options':{'include_obfuscation':'x'}}", 400, "invalid_type",
     "stream_options.include_obfuscation", NULL},
};

static void test_translate_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *req = J(bad[i].body);
    rsp_request rq = {.chat = (json_t *)1};
    api_error e = {0};
    if (rsp_parse_request(req, NULL, &rq, &e) == 0) fail_msg("accepted: %s", bad[i].body);
    assert_null(rq.chat); /* nothing left behind */
    assert_null(rq.history);
    assert_null(rq.echo);
    expect_err_(&e, bad[i].status, bad[i].code, bad[i].param, bad[i].phrase, bad[i].body);
    json_decref(req);
  }
}

/* Bounds: huge arrays are refused before they are walked. */
static void test_translate_bounds(void **state) {
  (void)state;
  json_t *req = J("{'model':'m'}"), *items = json_array();
  for (int i = 0; i <= RSP_MAX_INPUT_ITEMS; i++)
    json_array_append_new(items, json_pack("{s:s, s:s}", "role", "user", "content", "x"));
  json_object_set_new(req, "input", items);
  rsp_request rq;
  api_error e = {0};
  assert_int_equal(rsp_parse_request(req, NULL, &rq, &e), -1);
  expect_err_(&e, 400, "invalid_value", "input", "at most 4096", "items");
  json_array_remove(items, 0); /* exactly the bound: accepted */
  assert_int_equal(rsp_parse_request(req, NULL, &rq, &e), 0);
  assert_int_equal(json_array_size(json_object_get(rq.chat, "messages")), RSP_MAX_INPUT_ITEMS);
  rsp_request_clear(&rq);
  json_t *parts = json_array();
  for (int i = 0; i <= RSP_MAX_PARTS; i++)
    json_array_append_new(parts, json_pack("{s:s, s:s}", "type", "input_text", "text", "x"));
  json_object_set_new(req, "input", json_pack("[{s:s, s:o}]", "role", "user", "content", parts));
  assert_int_equal(rsp_parse_request(req, NULL, &rq, &e), -1);
  expect_err_(&e, 400, "invalid_type", "input", "at most 1024", "parts");
  json_t *tools = json_array();
  for (int i = 0; i <= API_MAX_TOOLS; i++)
    json_array_append_new(tools, json_pack("{s:s, s:s}", "type", "function", "name", "f"));
  json_object_set_new(req, "input", json_string("q"));
  json_object_set_new(req, "tools", tools);
  assert_int_equal(rsp_parse_request(req, NULL, &rq, &e), -1);
  expect_err_(&e, 400, "invalid_type", "tools", "at most 128", "tools");
  json_object_del(req, "tools");
  json_t *md = json_object();
  for (int i = 0; i <= RSP_MAX_METADATA; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    json_object_set_new(md, k, json_string("v"));
  }
  json_object_set_new(req, "metadata", md);
  assert_int_equal(rsp_parse_request(req, NULL, &rq, &e), -1);
  expect_err_(&e, 400, "invalid_value", "metadata", NULL, "metadata");
  json_decref(req);
}

/* What the chat checks say about a translated body names the Responses field. */
static void test_chat_errors_renamed(void **state) {
  (void)state;
  static const struct {
    const char *body, *code, *param;
  } cases[] = {
      {"{'model':'m','input':'q','temperature':3}", "invalid_value", "temperature"},
      {"{'model':'m','input':'q','top_p':2}", "invalid_value", "top_p"},
      {"{'model':'m','input':'q','tools':[{'type':'function','name':'a b'}]}", "invalid_value",
       "tools"},
      {"{'model':'m','input':'q','tool_choice':'required'}", "invalid_value", "tool_choice"},
      {"{'model':'m','input':'q','tools':[{'type':'function','name':'f'}],'tool_choice':{'type':"
       "'function','name':'g'}}",
       "invalid_value", "tool_choice"},
      {"{'model':'m','input':[{'role':'user','content':[{'type':'input_image','image_url':'x'}]}]}",
       "unsupported_content", "input"},
      {"{'model':'m','input':'q','parallel_tool_calls':'x'}", "invalid_type",
       "parallel_tool_calls"},
      {"{'model':'m','input':'q','seed':'x'}", "invalid_value", "seed"},
      {"{'model':'embed','input':'q'}", "model_not_found", "model"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_t *req = J(cases[i].body);
    rsp_request rq;
    api_error e = {0};
    assert_int_equal(rsp_parse_request(req, NULL, &rq, &e), 0);
    api_gen g;
    if (api_parse_generate(&test_mx, NULL, rq.chat, true, &g, &e) == 0)
      fail_msg("the chat checks accept %s", cases[i].body);
    rsp_parse_fix_error(&e);
    expect_err_(&e, strcmp(cases[i].code, "model_not_found") ? 400 : 404, cases[i].code,
                cases[i].param, NULL, cases[i].body);
    rsp_request_clear(&rq);
    json_decref(req);
  }
  static const char *const map[][2] = {{"messages", "input"},
                                       {"max_tokens", "max_output_tokens"},
                                       {"max_completion_tokens", "max_output_tokens"},
                                       {"response_format", "text.format"},
                                       {"reasoning_effort", "reasoning.effort"},
                                       {"temperature", "temperature"}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
    api_error e = {.status = 400, .param = map[i][0]};
    rsp_parse_fix_error(&e);
    assert_string_equal(e.param, map[i][1]);
  }
  api_error e = {.status = 400, .param = NULL};
  rsp_parse_fix_error(&e);
  assert_null(e.param);
}

/* ---- the answer translation ---- */

typedef struct out_case {
  const char *name;
  const char *frames; /* worker frame headers; {'op':'fail'} stands for rsp_out_fail */
  const char *types;  /* the events' types, without "response.", space-separated */
  const char *status;
  const char *outputs; /* the output items' types, space-separated */
  const char *want;    /* keys of the final response that must equal these, or NULL */
} out_case;

static const out_case outs[] = {
    {"text",
     "[{'op':'delta','text':'Hel'},{'op':'delta','text':'lo'},{'op':'delta','text':''},{'op':'done'"
     ","
     "'finish_reason':'stop','prompt_tokens':5,'cached_tokens':3,'completion_tokens':2}]",
     "created in_progress output_item.added content_part.added output_text.delta "
     "output_text.delta output_text.done content_part.done output_item.done completed",
     "completed", "message",
     "{'usage':{'input_tokens':5,'input_tokens_details':{'cached_tokens':3},'output_tokens':2,"
     "'total_tokens':7},'incomplete_details':null,'error':null}"},
    {"reasoning then text",
     "[{'op':'delta','delta':{'reasoning_content':'th'}},{'op':'delta','delta':"
     "{'reasoning_content':'ink'}},{'op':'delta','text':'ok'},{'op':'done','finish_reason':"
     "'stop'}]",
     "created in_progress output_item.added content_part.added reasoning_text.delta "
     "reasoning_text.delta reasoning_text.done content_part.done output_item.done "
     "output_item.added content_part.added output_text.delta output_text.done content_part.done "
     "output_item.done completed",
     "completed", "reasoning message", NULL},
    {"a call in pieces",
     "[{'op':'delta','delta':{'tool_calls':[{'index':0,'id':'call_1','type':'function','function':"
     "{'name':'f','arguments':'{\\'a\\':'}}]}},{'op':'delta','delta':{'tool_calls':[{'index':0,"
     "'function':{'arguments':'1}'}}]}},{'op':'done','finish_reason':'tool_calls'}]",
     "created in_progress output_item.added function_call_arguments.delta "
     "function_call_arguments.delta function_call_arguments.done output_item.done completed",
     "completed", "function_call", NULL},
    {"text then two calls",
     "[{'op':'delta','text':'x'},{'op':'delta','delta':{'tool_calls':[{'index':0,'id':'call_a',"
     "'type':'function','function':{'name':'f','arguments':'{}'}},{'index':1,'id':'call_b',"
     "'type':'function','function':{'name':'g','arguments':''}}]}},{'op':'done','finish_reason':"
     "'tool_calls'}]",
     "created in_progress output_item.added content_part.added output_text.delta "
     "output_text.done content_part.done output_item.done output_item.added "
     "function_call_arguments.delta function_call_arguments.done output_item.done "
     "output_item.added function_call_arguments.done output_item.done completed",
     "completed", "message function_call function_call", NULL},
    {"cut by max_output_tokens",
     "[{'op':'delta','text':'abc'},{'op':'done','finish_reason':'length','prompt_tokens':1,"
     "'completion_tokens':4}]",
     "created in_progress output_item.added content_part.added output_text.delta "
     "output_text.done content_part.done output_item.done incomplete",
     "incomplete", "message",
     "{'incomplete_details':{'reason':'max_output_tokens'},'usage':{'input_tokens':1,"
     "'input_tokens_details':{'cached_tokens':0},'output_tokens':4,'total_tokens':5}}"},
    {"nothing said", "[{'op':'done','finish_reason':'stop'}]", "created in_progress completed",
     "completed", "", "{'output':[]}"},
    {"failed midway", "[{'op':'delta','text':'a'},{'op':'fail'},{'op':'delta','text':'b'}]",
     "created in_progress output_item.added content_part.added output_text.delta "
     "output_text.done content_part.done output_item.done failed",
     "failed", "message",
     "{'error':{'code':'worker_crashed','message':'the worker died'},'usage':null}"},
    {"frames after done",
     "[{'op':'delta','text':'a'},{'op':'done','finish_reason':'stop'},{'op':'delta','text':'b'},"
     "{'op':'done','finish_reason':'stop'}]",
     "created in_progress output_item.added content_part.added output_text.delta "
     "output_text.done content_part.done output_item.done completed",
     "completed", "message", NULL},
    {"orphan arguments",
     "[{'op':'delta','delta':{'tool_calls':[{'index':3,'function':{'arguments':'x'}}]}},"
     "{'op':'delta','delta':{'tool_calls':5}},{'op':'delta','delta':5},{'op':'delta','text':5},"
     "{'op':'done','finish_reason':'stop'}]",
     "created in_progress completed", "completed", "", NULL},
    {"reasoning, text, reasoning",
     "[{'op':'delta','delta':{'reasoning_content':'a'}},{'op':'delta','text':'b'},{'op':'delta',"
     "'delta':{'reasoning_content':'c'}},{'op':'done','finish_reason':'stop'}]",
     "created in_progress output_item.added content_part.added reasoning_text.delta "
     "reasoning_text.done content_part.done output_item.done output_item.added "
     "content_part.added output_text.delta output_text.done content_part.done output_item.done "
     "output_item.added content_part.added reasoning_text.delta reasoning_text.done "
     "content_part.done output_item.done completed",
     "completed", "reasoning message reasoning", NULL},
};

/* Run frames through an rsp_out; its events (stream) into *events. */
static void run_frames(const json_t *frames, bool stream, rsp_out *o, json_t **events) {
  assert_int_equal(rsp_out_init(o, "resp_test", "m", 1700000000, NULL, stream), 0);
  rsp_out_start(o);
  size_t i;
  json_t *f;
  json_array_foreach(frames, i, f) {
    const char *op = json_string_value(json_object_get(f, "op"));
    if (strcmp(op, "delta") == 0) rsp_out_delta(o, f);
    if (strcmp(op, "done") == 0) rsp_out_done(o, f);
    if (strcmp(op, "fail") == 0) {
      api_error e;
      api_error_set(&e, 500, "server_error", "worker_crashed", NULL, "the worker died");
      rsp_out_fail(o, &e);
    }
  }
  *events = rsp_out_take_events(o);
}

/* The streamed events agree with themselves and with the final response, as the SDK's
 * accumulator needs: sequence numbers 0..n-1, an item added before its deltas, deltas that add up
 * to the done text, output_item.done equal to the final output's item. */
static void check_stream(const char *name, const json_t *events, const json_t *resp) {
  sy_buf acc = {0};
  json_t *open = NULL;
  size_t i;
  json_t *e;
  json_array_foreach(events, i, e) {
    const char *type = json_string_value(json_object_get(e, "type"));
    if (json_integer_value(json_object_get(e, "sequence_number")) != (json_int_t)i)
      fail_msg("%s: event %zu has sequence_number %lld", name, i,
               (long long)json_integer_value(json_object_get(e, "sequence_number")));
    json_int_t idx = json_integer_value(json_object_get(e, "output_index"));
    if (strcmp(type, "response.output_item.added") == 0) {
      assert_null(open);
      open = json_object_get(e, "item");
      assert_true(idx >= 0 && (size_t)idx < json_array_size(json_object_get(resp, "output")));
      acc.len = 0;
    } else if (strstr(type, ".delta")) {
      assert_non_null(open);
      assert_string_equal(json_string_value(json_object_get(e, "item_id")),
                          json_string_value(json_object_get(open, "id")));
      json_t *d = json_object_get(e, "delta");
      sy_buf_append(&acc, json_string_value(d), json_string_length(d));
    } else if (strstr(type, "text.done") || strstr(type, "arguments.done")) {
      json_t *t = json_object_get(e, strstr(type, "arguments") ? "arguments" : "text");
      if (json_string_length(t) != acc.len ||
          (acc.len && memcmp(json_string_value(t), acc.data, acc.len)))
        fail_msg("%s: %s says '%s', the deltas '%.*s'", name, type, json_string_value(t),
                 (int)acc.len, acc.data ? acc.data : "");
    } else if (strcmp(type, "response.output_item.done") == 0) {
      assert_non_null(open);
      json_t *final = json_array_get(json_object_get(resp, "output"), (size_t)idx);
      if (!json_equal(final, json_object_get(e, "item")))
        fail_msg("%s: output_item.done %lld differs from the final output", name, (long long)idx);
      open = NULL;
    } else if (strcmp(type, "response.created") == 0 || strcmp(type, "response.in_progress") == 0) {
      json_t *r = json_object_get(e, "response");
      assert_string_equal(json_string_value(json_object_get(r, "status")), "in_progress");
      assert_int_equal(json_array_size(json_object_get(r, "output")), 0);
    }
  }
  json_t *last = json_array_get(events, json_array_size(events) - 1);
  assert_true(json_equal(json_object_get(last, "response"), resp));
  sy_buf_free(&acc);
}

static void test_out_table(void **state) {
  (void)state;
  for (size_t c = 0; c < sizeof outs / sizeof *outs; c++) {
    json_t *frames = J(outs[c].frames), *events, *wevents;
    rsp_out s, w;
    run_frames(frames, true, &s, &events);
    run_frames(frames, false, &w, &wevents);
    /* the event types, in order */
    sy_buf types = {0};
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) sy_buf_printf(
        &types, "%s%s", i ? " " : "", json_string_value(json_object_get(e, "type")) + 9);
    if (strcmp(types.data ? types.data : "", outs[c].types) != 0)
      fail_msg("%s: events\n  %s\nwant\n  %s", outs[c].name, types.data, outs[c].types);
    sy_buf_free(&types);
    assert_int_equal(json_array_size(wevents), 0); /* whole: no events */
    /* status, output types */
    assert_string_equal(json_string_value(json_object_get(s.resp, "status")), outs[c].status);
    sy_buf ot = {0};
    json_array_foreach(json_object_get(s.resp, "output"), i, e)
        sy_buf_printf(&ot, "%s%s", i ? " " : "", json_string_value(json_object_get(e, "type")));
    assert_string_equal(ot.data ? ot.data : "", outs[c].outputs);
    sy_buf_free(&ot);
    if (outs[c].want) {
      json_t *want = J(outs[c].want);
      expect_subset_(s.resp, want, outs[c].name);
      json_decref(want);
    }
    check_stream(outs[c].name, events, s.resp);
    /* streamed and whole make the same response, ids aside */
    json_t *a = json_deep_copy(s.resp), *b = json_deep_copy(w.resp);
    json_array_foreach(json_object_get(a, "output"), i, e) json_object_del(e, "id");
    json_array_foreach(json_object_get(b, "output"), i, e) json_object_del(e, "id");
    if (!json_equal(a, b)) fail_msg("%s: streamed and whole responses differ", outs[c].name);
    json_decref(a);
    json_decref(b);
    json_decref(events);
    json_decref(wevents);
    rsp_out_free(&s);
    rsp_out_free(&w);
    json_decref(frames);
  }
}

static void test_out_items(void **state) {
  (void)state;
  json_t *frames =
      J("[{'op':'delta','delta':{'reasoning_content':'hmm'}},{'op':'delta','text':'ok'},"
        "{'op':'delta','delta':{'tool_calls':[{'index':0,'id':'call_x','type':'function',"
        "'function':{'name':'get','arguments':'{\\'u\\':1}'}}]}},{'op':'done','finish_reason':"
        "'tool_calls','prompt_tokens':3,'completion_tokens':9}]");
  json_t *echo = J("{'instructions':'I','store':true,'tools':[]}");
  rsp_out o;
  assert_int_equal(rsp_out_init(&o, "resp_1", "tools", 1700000001, echo, true), 0);
  rsp_out_start(&o);
  size_t i;
  json_t *f;
  json_array_foreach(frames, i, f) {
    if (strcmp(json_string_value(json_object_get(f, "op")), "done") == 0)
      rsp_out_done(&o, f);
    else
      rsp_out_delta(&o, f);
  }
  json_t *want =
      J("{'id':'resp_1','object':'response','created_at':1700000001,'model':'tools','status':"
        "'completed','instructions':'I','store':true,'tools':[],'background':false}");
  expect_subset_(o.resp, want, "response");
  json_decref(want);
  json_t *out = json_object_get(o.resp, "output");
  json_t *rs = json_array_get(out, 0), *msg = json_array_get(out, 1), *fc = json_array_get(out, 2);
  want =
      J("{'type':'reasoning','summary':[],'content':[{'type':'reasoning_text','text':'hmm'}],"
        "'status':'completed'}");
  expect_subset_(rs, want, "reasoning item");
  json_decref(want);
  assert_true(strncmp(json_string_value(json_object_get(rs, "id")), "rs_", 3) == 0);
  want =
      J("{'type':'message','role':'assistant','status':'completed','content':[{'type':"
        "'output_text','text':'ok','annotations':[],'logprobs':[]}]}");
  expect_subset_(msg, want, "message item");
  json_decref(want);
  assert_true(strncmp(json_string_value(json_object_get(msg, "id")), "msg_", 4) == 0);
  want =
      J("{'type':'function_call','status':'completed','call_id':'call_x','name':'get',"
        "'arguments':'{\\'u\\':1}'}");
  expect_subset_(fc, want, "function_call item");
  json_decref(want);
  assert_true(strncmp(json_string_value(json_object_get(fc, "id")), "fc_", 3) == 0);
  /* the answer as the chat message the store keeps */
  json_t *m = rsp_out_message(o.resp);
  want =
      J("{'role':'assistant','content':'ok','reasoning_content':'hmm','tool_calls':[{'id':"
        "'call_x','type':'function','function':{'name':'get','arguments':'{\\'u\\':1}'}}]}");
  assert_true(json_equal(m, want));
  json_decref(m);
  json_decref(want);
  json_t *events = rsp_out_take_events(&o);
  json_t *again = rsp_out_take_events(&o);
  assert_true(json_array_size(events) > 0);
  assert_int_equal(json_array_size(again), 0);
  json_t *added = json_array_get(events, 2);
  assert_string_equal(json_string_value(json_object_get(added, "type")),
                      "response.output_item.added");
  assert_string_equal(json_string_value(json_object_get(json_object_get(added, "item"), "status")),
                      "in_progress");
  json_decref(events);
  json_decref(again);
  rsp_out_free(&o);
  json_decref(frames);
  json_decref(echo);
  /* only calls: content null; nothing: "" */
  json_t *r = J("{'output':[{'type':'function_call','call_id':'c','name':'f','arguments':'{}'}]}");
  m = rsp_out_message(r);
  assert_true(json_is_null(json_object_get(m, "content")));
  json_decref(m);
  json_decref(r);
  r = J("{'output':[]}");
  m = rsp_out_message(r);
  assert_string_equal(json_string_value(json_object_get(m, "content")), "");
  assert_null(json_object_get(m, "tool_calls"));
  json_decref(m);
  json_decref(r);
}

/* ---- the store ---- */

static json_t *resp_named(const char *id, size_t pad) {
  char *text = malloc(pad + 1);
  memset(text, 'x', pad);
  text[pad] = '\0';
  json_t *r = json_pack("{s:s, s:s}", "id", id, "pad", text);
  free(text);
  return r;
}

static void test_store_basics(void **state) {
  (void)state;
  rsp_store *s = rsp_store_new(0, 0);
  json_t *r = resp_named("resp_a", 1), *h = J("[{'role':'user','content':'hi'}]");
  assert_int_equal(rsp_store_put(s, r, h), 0);
  json_t *gr = NULL, *gh = NULL;
  assert_true(rsp_store_get(s, "resp_a", &gr, &gh));
  assert_true(json_equal(gr, r));
  assert_true(json_equal(gh, h));
  assert_true(gr != r); /* the caller's own copies */
  json_decref(gr);
  json_decref(gh);
  assert_true(rsp_store_get(s, "resp_a", NULL, NULL));
  assert_false(rsp_store_get(s, "resp_b", &gr, NULL));
  assert_false(rsp_store_get(s, NULL, &gr, NULL));
  /* the same id again replaces it */
  json_t *h2 = J("[]");
  assert_int_equal(rsp_store_put(s, r, h2), 0);
  size_t n, bytes;
  rsp_store_usage(s, &n, &bytes);
  assert_int_equal(n, 1);
  assert_true(rsp_store_get(s, "resp_a", NULL, &gh));
  assert_int_equal(json_array_size(gh), 0);
  json_decref(gh);
  /* no id, no history: not kept */
  json_t *noid = J("{'object':'response'}");
  assert_int_equal(rsp_store_put(s, noid, h), -1);
  assert_int_equal(rsp_store_put(s, r, NULL), -1);
  json_decref(noid);
  assert_true(rsp_store_delete(s, "resp_a"));
  assert_false(rsp_store_delete(s, "resp_a"));
  assert_false(rsp_store_get(s, "resp_a", NULL, NULL));
  rsp_store_usage(s, &n, &bytes);
  assert_int_equal(n, 0);
  assert_int_equal(bytes, 0);
  json_decref(r);
  json_decref(h);
  json_decref(h2);
  rsp_store_free(s);
  rsp_store_free(NULL);
}

static void test_store_eviction(void **state) {
  (void)state;
  /* by count: 3 entries; a get makes an entry the most recently used */
  rsp_store *s = rsp_store_new(3, 1 << 20);
  json_t *h = J("[]");
  const char *ids[] = {"r1", "r2", "r3", "r4", "r5"};
  for (int i = 0; i < 3; i++) {
    json_t *r = resp_named(ids[i], 10);
    assert_int_equal(rsp_store_put(s, r, h), 0);
    json_decref(r);
  }
  assert_true(rsp_store_get(s, "r1", NULL, NULL)); /* r2 is now the least recently used */
  json_t *r = resp_named("r4", 10);
  assert_int_equal(rsp_store_put(s, r, h), 0);
  json_decref(r);
  assert_false(rsp_store_get(s, "r2", NULL, NULL));
  assert_true(rsp_store_get(s, "r1", NULL, NULL));
  assert_true(rsp_store_get(s, "r3", NULL, NULL));
  assert_true(rsp_store_get(s, "r4", NULL, NULL));
  size_t n, bytes;
  rsp_store_usage(s, &n, &bytes);
  assert_int_equal(n, 3);
  rsp_store_free(s);
  /* by bytes: entries of ~40 KiB in a 100 KiB store; one over the bound is refused */
  s = rsp_store_new(100, 100 << 10);
  for (int i = 0; i < 5; i++) {
    r = resp_named(ids[i], 40 << 10);
    assert_int_equal(rsp_store_put(s, r, h), 0);
    json_decref(r);
    rsp_store_usage(s, &n, &bytes);
    assert_true(bytes <= 100 << 10);
  }
  assert_int_equal(n, 2);
  assert_true(rsp_store_get(s, "r4", NULL, NULL));
  assert_true(rsp_store_get(s, "r5", NULL, NULL));
  assert_false(rsp_store_get(s, "r3", NULL, NULL));
  r = resp_named("big", 100 << 10);
  assert_int_equal(rsp_store_put(s, r, h), -1);
  json_decref(r);
  assert_false(rsp_store_get(s, "big", NULL, NULL));
  rsp_store_usage(s, &n, &bytes);
  assert_int_equal(n, 2); /* what was there stays */
  rsp_store_free(s);
  json_decref(h);
}

typedef struct store_thread {
  rsp_store *s;
  int k;
} store_thread;

static void *store_worker(void *arg) {
  store_thread *t = arg;
  json_t *h = json_pack("[{s:s, s:i}]", "role", "user", "k", t->k);
  for (int i = 0; i < 400; i++) {
    char id[32];
    snprintf(id, sizeof id, "r%d-%d", t->k, i % 50);
    json_t *r = json_pack("{s:s, s:i}", "id", id, "i", i);
    if (rsp_store_put(t->s, r, h) != 0) abort();
    json_decref(r);
    json_t *got = NULL;
    if (rsp_store_get(t->s, id, &got, NULL) && !json_is_object(got)) abort();
    json_decref(got);
    if (i % 7 == 0) rsp_store_delete(t->s, id);
  }
  json_decref(h);
  return NULL;
}

static void test_store_threads(void **state) {
  (void)state;
  rsp_store *s = rsp_store_new(64, 0);
  pthread_t th[4];
  store_thread t[4];
  for (int i = 0; i < 4; i++) {
    t[i] = (store_thread){s, i};
    pthread_create(&th[i], NULL, store_worker, &t[i]);
  }
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  size_t n, bytes;
  rsp_store_usage(s, &n, &bytes);
  assert_true(n <= 64);
  rsp_store_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_translate_good),      cmocka_unit_test(test_translate_flags_and_echo),
      cmocka_unit_test(test_translate_errors),    cmocka_unit_test(test_translate_bounds),
      cmocka_unit_test(test_chat_errors_renamed), cmocka_unit_test(test_out_table),
      cmocka_unit_test(test_out_items),           cmocka_unit_test(test_store_basics),
      cmocka_unit_test(test_store_eviction),      cmocka_unit_test(test_store_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
