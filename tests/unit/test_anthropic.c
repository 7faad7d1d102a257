/* test_anthropic.c — unit tests for src/daemon/api/anthropic.h, Anthropic's Messages API as a
 * translation onto the chat path.
 *
 * Covers, table-driven:
 *  - anth_to_chat, accepted requests: the exact chat body of each (compared as JSON): a string
 *    message and the defaults (temperature 1, thinking off), system as a string and as text
 *    blocks, text blocks, an image block (a data: URL), an assistant turn with thinking, text and
 *    tool_use blocks (reasoning_content, content parts, tool_calls with the input object), a user
 *    turn with tool_result blocks (string, text+image and missing content, is_error) before its
 *    text, the tool's name found from its tool_use, tools and every tool_choice (auto, any, tool,
 *    none, disable_parallel_tool_use), thinking enabled / adaptive / disabled, stop_sequences,
 *    sampling, stream, metadata, service_tier, speed, cache_control on every block, output_config
 *    (effort, format), count_tokens' shape;
 *  - anth_to_chat, refused requests: every rule, each a 400 whose message names the field;
 *  - anth_out: worker event scripts → the exact event names in order and the key fields of each
 *    (message_start + ping first, blocks started, delta'd and stopped in order, signature_delta
 *    before a thinking block stops, tool_use ids toolu_…, input_json_delta, message_delta with
 *    stop reason and usage, message_stop; an error event mid-stream), and the same scripts
 *    collected into the whole message (blocks, parsed tool input, stop_reason, stop_sequence,
 *    usage with cached tokens); events after the end are ignored;
 *  - anth_stop_reason, anth_tool_id, anth_usage;
 *  - a fuzz loop (fixed seed) of mutated requests through anth_to_chat and of random event
 *    scripts through anth_out: no crash, every outcome well-formed (ASan in `make test`). */
#include "api/anthropic.h"
#include "buf.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

/* JSON written with single quotes (no apostrophes inside strings), parsed; fails the test when it
 * does not parse. */
static json_t *J(const char *sq) {
  char *s = strdup(sq);
  for (char *p = s; *p; p++)
    if (*p == '\'') *p = '"';
  json_error_t e;
  json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &e);
  if (!j) fail_msg("bad test JSON (%s): %s", e.text, s);
  free(s);
  return j;
}

static char *dump(const json_t *j) {
  return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : strdup("(null)");
}

/* ---- requests accepted ---- */

#define M "'model':'m','max_tokens':5,"
#define DEF "'model':'m','max_tokens':5,'temperature':1.0,"
#define OFF "'chat_template_kwargs':{'enable_thinking':false}"
#define UHI "{'role':'user','content':'hi'}"
#define TOOL "{'name':'get','description':'d','input_schema':{'type':'object'}}"
#define FTOOL \
  "{'type':'function','function':{'name':'get','parameters':{'type':'object'},'description':'d'}}"

static const struct {
  const char *name;
  anth_kind kind;
  const char *in, *want;
} accepted[] = {
    {"string message, defaults", ANTH_MESSAGES, "{" M "'messages':[" UHI "]}",
     "{" DEF "'messages':[" UHI "]," OFF "}"},
    {"system string", ANTH_MESSAGES, "{" M "'system':'be brief','messages':[" UHI "]}",
     "{" DEF "'messages':[{'role':'system','content':'be brief'}," UHI "]," OFF "}"},
    {"system blocks", ANTH_MESSAGES,
     "{" M "'system':[{'type':'text','text':'a'},{'type':'text','text':'b','cache_control':{'type':"
     "'ephemeral'}}],'messages':[" UHI "]}",
     "{" DEF "'messages':[{'role':'system','content':[{'type':'text','text':'a'},{'type':'text','"
     "text':'b'}]}," UHI "]," OFF "}"},
    {"empty system blocks", ANTH_MESSAGES, "{" M "'system':[],'messages':[" UHI "]}",
     "{" DEF "'messages':[" UHI "]," OFF "}"},
    {"text blocks", ANTH_MESSAGES,
     "{" M "'messages':[{'role':'user','content':[{'type':'text','text':'a','citations':null},{'"
     "type':'text','text':'b','citations':[]}]}]}",
     "{" DEF "'messages':[{'role':'user','content':[{'type':'text','text':'a'},{'type':'text','"
     "text':'b'}]}]," OFF "}"},
    {"image block", ANTH_MESSAGES,
     "{" M "'messages':[{'role':'user','content':[{'type':'text','text':'see'},{'type':'image','"
     "source':{'type':'base64','media_type':'image/"
     "png','data':'QUJD'},'cache_control':{'type':'ephemeral','ttl':'1h'}}]}]}",
     "{" DEF "'messages':[{'role':'user','content':[{'type':'text','text':'see'},{'type':'image_"
     "url','image_url':{'url':'data:image/png;base64,QUJD'}}]}]," OFF "}"},
    {"assistant thinking, text, tool_use; tool_result before text", ANTH_MESSAGES,
     "{" M "'tools':[" TOOL "],'messages':[" UHI ","
     "{'role':'assistant','content':[{'type':'thinking','thinking':'hmm','signature':'sig'},{'type'"
     ":'text','text':'ok'},{'type':'tool_use','id':'toolu_1','name':'get','input':{'a':1}}]},"
     "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_1','content':'42'},{'"
     "type':'text','text':'and?'}]}]}",
     "{" DEF "'tools':[" FTOOL "],'messages':[" UHI ","
     "{'role':'assistant','content':[{'type':'text','text':'ok'}],'reasoning_content':'hmm','tool_"
     "calls':[{'id':'toolu_1','type':'function','function':{'name':'get','arguments':{'a':1}}}]},"
     "{'role':'tool','tool_call_id':'toolu_1','name':'get','content':'42'},{'role':'user','content'"
     ":[{'type':'text','text':'and?'}]}]," OFF "}"},
    {"assistant only tool_use: content null", ANTH_MESSAGES,
     "{" M "'messages':[" UHI
     ",{'role':'assistant','content':[{'type':'tool_use','id':'t2','name':'x','input':{}}]},"
     "{'role':'user','content':[{'type':'tool_result','tool_use_id':'t2'},{'type':'tool_result','"
     "tool_use_id':'zz','is_error':true,'content':'boom'}]}]}",
     "{" DEF "'messages':[" UHI ",{'role':'assistant','content':null,'tool_calls':[{'id':'t2','"
     "type':'function','function':{'name':'x','arguments':{}}}]},"
     "{'role':'tool','tool_call_id':'t2','name':'x','content':''},{'role':'tool','tool_call_id':'"
     "zz','content':'Error: boom'}]," OFF "}"},
    {"tool_result blocks: text and image, is_error", ANTH_MESSAGES,
     "{" M "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'a','is_"
     "error':true,'content':[{'type':'text','text':'t'},{'type':'image','source':{'type':'"
     "base64','media_type':'image/jpeg','data':'QQ=='}}]}]}]}",
     "{" DEF "'messages':[{'role':'tool','tool_call_id':'a','content':[{'type':'text','text':'"
     "Error:'},{'type':'text','text':'t'},{'type':'image_url','image_url':{'url':'data:"
     "image/jpeg;base64,QQ=='}}]}]," OFF "}"},
    {"is_error without content", ANTH_MESSAGES,
     "{" M "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'a','is_"
     "error':true}]}]}",
     "{" DEF "'messages':[{'role':'tool','tool_call_id':'a','content':'Error'}]," OFF "}"},
    {"assistant string, thinking only", ANTH_MESSAGES,
     "{" M "'messages':[" UHI ",{'role':'assistant','content':'yo'},{'role':'assistant','content':["
     "{'type':'thinking','thinking':'t','signature':''}]}," UHI "]}",
     "{" DEF "'messages':[" UHI ",{'role':'assistant','content':'yo'},{'role':'assistant','content'"
     ":null,'reasoning_content':'t'}," UHI "]," OFF "}"},
    {"tool_choice auto", ANTH_MESSAGES,
     "{" M "'tools':[" TOOL "],'tool_choice':{'type':'auto'},'messages':[" UHI "]}",
     "{" DEF "'tools':[" FTOOL "],'tool_choice':'auto','messages':[" UHI "]," OFF "}"},
    {"tool_choice any, one at a time", ANTH_MESSAGES,
     "{" M "'tools':[" TOOL
     "],'tool_choice':{'type':'any','disable_parallel_tool_use':true},'messages':[" UHI "]}",
     "{" DEF "'tools':[" FTOOL
     "],'tool_choice':'required','parallel_tool_calls':false,'messages':[" UHI "]," OFF "}"},
    {"tool_choice tool", ANTH_MESSAGES,
     "{" M "'tools':[" TOOL
     ",{'name':'b','input_schema':{'type':'object','properties':{}},'type':'custom','cache_control'"
     ":{'type':'ephemeral'},'strict':false,'eager_input_streaming':true,'defer_loading':false}],'"
     "tool_choice':{'type':'tool','name':'b','disable_parallel_tool_use':false},'messages':[" UHI
     "]}",
     "{" DEF "'tools':[" FTOOL
     ",{'type':'function','function':{'name':'b','parameters':{'type':'object','properties':{}}}}],"
     "'tool_choice':{'type':'function','function':{'name':'b'}},'messages':[" UHI "]," OFF "}"},
    {"tool_choice none", ANTH_MESSAGES,
     "{" M "'tools':[" TOOL "],'tool_choice':{'type':'none'},'messages':[" UHI "]}",
     "{" DEF "'tools':[" FTOOL "],'tool_choice':'none','messages':[" UHI "]," OFF "}"},
    {"empty tools", ANTH_MESSAGES,
     "{" M "'tools':[],'tool_choice':{'type':'auto'},'messages':[" UHI "]}",
     "{" DEF "'tool_choice':'auto','messages':[" UHI "]," OFF "}"},
    {"thinking enabled", ANTH_MESSAGES,
     "{'model':'m','max_tokens':2000,'thinking':{'type':'enabled','budget_tokens':1024,'display':'"
     "summarized'},'messages':[" UHI "]}",
     "{'model':'m','max_tokens':2000,'temperature':1.0,'messages':[" UHI
     "],'chat_template_kwargs':{'enable_thinking':true}}"},
    {"thinking adaptive", ANTH_MESSAGES,
     "{" M "'thinking':{'type':'adaptive'},'messages':[" UHI "]}",
     "{" DEF "'messages':[" UHI "],'chat_template_kwargs':{'enable_thinking':true}}"},
    {"thinking disabled", ANTH_MESSAGES,
     "{" M "'thinking':{'type':'disabled'},'messages':[" UHI "]}",
     "{" DEF "'messages':[" UHI "]," OFF "}"},
    {"sampling, stop, stream", ANTH_MESSAGES,
     "{" M "'temperature':0,'top_p':0.5,'top_k':3,'stop_sequences':['END','\\n\\n'],'stream':true,'"
     "messages':[" UHI "]}",
     "{'model':'m','max_tokens':5,'temperature':0.0,'top_p':0.5,'top_k':3,'stop':['END','\\n\\n'],'"
     "stream':true,'messages':[" UHI "]," OFF "}"},
    {"max_tokens 5.0, nulls as absent", ANTH_MESSAGES,
     "{'model':'m','max_tokens':5.0,'system':null,'tools':null,'temperature':null,'stop_sequences':"
     "[],'metadata':null,'messages':[" UHI "]}",
     "{" DEF "'messages':[" UHI "]," OFF "}"},
    {"accepted as documented", ANTH_MESSAGES,
     "{" M "'metadata':{'user_id':'u1'},'service_tier':'standard_only','speed':'standard','cache_"
     "control':{'type':'ephemeral'},'messages':[" UHI "]}",
     "{" DEF "'messages':[" UHI "]," OFF "}"},
    {"output_config", ANTH_MESSAGES,
     "{" M "'output_config':{'effort':'max','format':{'type':'json_schema','schema':{'type':'"
     "object'}}},'messages':[" UHI "]}",
     "{" DEF "'reasoning_effort':'high','response_format':{'type':'json_schema','json_schema':{'"
     "name':'output','schema':{'type':'object'}}},'messages':[" UHI "]," OFF "}"},
    {"output_config effort low", ANTH_MESSAGES,
     "{" M "'output_config':{'effort':'low'},'messages':[" UHI "]}",
     "{" DEF "'reasoning_effort':'low','messages':[" UHI "]," OFF "}"},
    {"count_tokens", ANTH_COUNT_TOKENS,
     "{'model':'m','system':'s','tools':[" TOOL "],'tool_choice':{'type':'any'},'thinking':{'type':"
     "'enabled','budget_tokens':4096},'messages':[" UHI "]}",
     "{'model':'m','tools':[" FTOOL
     "],'tool_choice':'required','messages':[{'role':'system','content':'s'}," UHI
     "],'chat_template_kwargs':{'enable_thinking':true}}"},
};

static void test_accepted(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++) {
    json_t *in = J(accepted[i].in), *want = J(accepted[i].want);
    api_error err = {0};
    json_t *got = anth_to_chat(in, accepted[i].kind, &err);
    if (!got) fail_msg("%s: refused: %s", accepted[i].name, err.message);
    if (!json_equal(got, want)) {
      char *g = dump(got), *w = dump(want);
      fail_msg("%s:\n got  %s\n want %s", accepted[i].name, g, w);
    }
    json_decref(in);
    json_decref(want);
    json_decref(got);
  }
}

/* ---- requests refused ---- */

typedef struct refusal {
  const char *in;
  const char *says; /* a substring of the message */
} refusal;

static const refusal refused[] = {
    {"[]", "JSON object"},
    {"{'model':'m','messages':[" UHI "]}", "max_tokens: Field required"},
    {"{'model':'m','max_tokens':null,'messages':[" UHI "]}", "max_tokens: Field required"},
    {"{'model':'m','max_tokens':0,'messages':[" UHI "]}",
     "max_tokens: must be an integer between 1"},
    {"{'model':'m','max_tokens':'5','messages':[" UHI "]}", "max_tokens: must be an integer"},
    {"{'model':'m','max_tokens':5.5,'messages':[" UHI "]}", "max_tokens: must be an integer"},
    {"{'model':'m','max_tokens':99999999,'messages':[" UHI "]}", "max_tokens: must be an integer"},
    {"{'model':'m','max_tokens':5}", "messages: Field required"},
    {"{" M "'messages':[]}", "messages: must be a non-empty array"},
    {"{" M "'messages':{}}", "messages: must be a non-empty array"},
    {"{" M "'messages':['hi']}", "messages.0: must be an object"},
    {"{" M "'messages':[{'role':'system','content':'x'}]}", "messages.0.role"},
    {"{" M "'messages':[{'content':'x'}]}", "messages.0.role"},
    {"{" M "'messages':[{'role':'user','content':'x','name':'n'}]}",
     "messages.0.name: unknown field"},
    {"{" M "'messages':[{'role':'user'}]}", "messages.0.content: must be a string or a non-empty"},
    {"{" M "'messages':[{'role':'user','content':[]}]}",
     "messages.0.content: must be a string or a non-empty"},
    {"{" M "'messages':[{'role':'user','content':7}]}", "messages.0.content: must be"},
    {"{" M "'messages':[{'role':'user','content':['x']}]}",
     "messages.0.content.0: must be a content block"},
    {"{" M "'messages':[{'role':'user','content':[{'text':'x'}]}]}",
     "messages.0.content.0: must be a content block"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'document','source':{}}]}]}",
     "messages.0.content.0.type: 'document' is not supported"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'redacted_thinking','data':'x'}]}]}",
     "'redacted_thinking' is not supported"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'server_tool_use'}]}]}",
     "'server_tool_use' is not supported"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'text'}]}]}",
     "messages.0.content.0.text: must be a string"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'text','text':1}]}]}",
     "messages.0.content.0.text: must be a string"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'text','text':'x','extra':1}]}]}",
     "messages.0.content.0.extra: unknown field"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'text','text':'x','citations':[{}]}]}]}",
     "citations are not supported"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'text','text':'x','cache_control':{'type'"
     ":'persistent'}}]}]}",
     "messages.0.content.0.cache_control"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'text','text':'x','cache_control':{'type'"
     ":'ephemeral','ttl':'2h'}}]}]}",
     "cache_control"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'text','text':'x','cache_control':{'type'"
     ":'ephemeral','scope':1}}]}]}",
     "cache_control.scope: unknown field"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'image'}]}]}",
     "messages.0.content.0.source: must be"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'image','source':{'type':'url','url':'"
     "http://x'}}]}]}",
     "source.type: 'url' is not supported"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'image','source':{'type':'file','file_id'"
     ":'f'}}]}]}",
     "source.type: 'file' is not supported"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'image','source':{'type':'base64','media_"
     "type':'image/gif','data':'R0lG'}}]}]}",
     "source.media_type"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'image','source':{'type':'base64','media_"
     "type':'image/png'}}]}]}",
     "source.data: must be a non-empty base64"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'image','source':{'type':'base64','media_"
     "type':'image/png','data':''}}]}]}",
     "source.data"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'image','source':{'type':'base64','media_"
     "type':'image/png','data':'QQ','x':1}}]}]}",
     "source.x: unknown field"},
    {"{" M "'messages':[{'role':'assistant','content':[{'type':'image','source':{'type':'base64','"
     "media_type':'image/png','data':'QQ'}}]}," UHI "]}",
     "a 'image' block belongs in a user message"},
    {"{" M
     "'messages':[{'role':'user','content':[{'type':'tool_use','id':'a','name':'b','input':{}}]}]}",
     "a 'tool_use' block belongs in an assistant message"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'thinking','thinking':'a'}]}]}",
     "a 'thinking' block belongs in an assistant message"},
    {"{" M "'messages':[" UHI
     ",{'role':'assistant','content':[{'type':'tool_result','tool_use_id':'a'}]}," UHI "]}",
     "a 'tool_result' block belongs in a user message"},
    {"{" M "'messages':[" UHI
     ",{'role':'assistant','content':[{'type':'tool_use','name':'b','input':{}}]}," UHI "]}",
     "messages.1.content.0.id: must be a non-empty string"},
    {"{" M "'messages':[" UHI
     ",{'role':'assistant','content':[{'type':'tool_use','id':'a','input':{}}]}," UHI "]}",
     "messages.1.content.0.name: must be"},
    {"{" M "'messages':[" UHI
     ",{'role':'assistant','content':[{'type':'tool_use','id':'a','name':'b','input':'{}'}]}," UHI
     "]}",
     "messages.1.content.0.input: must be an object"},
    {"{" M "'messages':[" UHI ",{'role':'assistant','content':[{'type':'tool_use','id':'a','name':'"
     "b','input':{},'caller':{}}]}," UHI "]}",
     "messages.1.content.0.caller: unknown field"},
    {"{" M "'messages':[" UHI
     ",{'role':'assistant','content':[{'type':'thinking','thinking':1}]}," UHI "]}",
     "messages.1.content.0.thinking: must be a string"},
    {"{" M "'messages':[" UHI
     ",{'role':'assistant','content':[{'type':'thinking','thinking':'t','signature':5}]}," UHI "]}",
     "signature: must be a string"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'tool_result'}]}]}",
     "messages.0.content.0.tool_use_id"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'a','is_"
     "error':'yes'}]}]}",
     "is_error: must be a boolean"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'a','content'"
     ":5}]}]}",
     "messages.0.content.0.content: must be a string or an array"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'a','content'"
     ":[{'type':'document'}]}]}]}",
     "messages.0.content.0.content.0.type: 'document' is not supported in a tool_result"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'a','content'"
     ":[7]}]}]}",
     "messages.0.content.0.content.0: must be a content block"},
    {"{" M "'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'a','content'"
     ":[{'type':'text','text':2}]}]}]}",
     "messages.0.content.0.content.0.text"},
    {"{" M "'messages':[" UHI ",{'role':'assistant','content':'prefill'}]}",
     "messages.1: a last assistant message"},
    {"{" M "'system':5,'messages':[" UHI "]}", "system: must be a string or an array"},
    {"{" M "'system':[{'type':'image'}],'messages':[" UHI "]}", "system.0: must be a text block"},
    {"{" M "'system':['x'],'messages':[" UHI "]}", "system.0: must be a text block"},
    {"{" M "'system':[{'type':'text','text':'a','x':1}],'messages':[" UHI "]}",
     "system.0.x: unknown field"},
    {"{" M "'temperature':1.5,'messages':[" UHI "]}",
     "temperature: must be a number between 0 and 1"},
    {"{" M "'temperature':'hot','messages':[" UHI "]}", "temperature"},
    {"{" M "'top_p':-0.1,'messages':[" UHI "]}", "top_p"},
    {"{" M "'top_k':-1,'messages':[" UHI "]}", "top_k: must be an integer"},
    {"{" M "'top_k':2.5,'messages':[" UHI "]}", "top_k"},
    {"{" M "'stream':'yes','messages':[" UHI "]}", "stream: must be a boolean"},
    {"{" M "'stop_sequences':'END','messages':[" UHI "]}", "stop_sequences: must be an array"},
    {"{" M "'stop_sequences':['a','b','c','d','e'],'messages':[" UHI "]}", "at most 4"},
    {"{" M "'stop_sequences':[''],'messages':[" UHI "]}",
     "stop_sequences.0: must be a non-empty string"},
    {"{" M "'stop_sequences':[3],'messages':[" UHI "]}", "stop_sequences.0"},
    {"{" M "'tools':{},'messages':[" UHI "]}", "tools: must be an array"},
    {"{" M "'tools':['x'],'messages':[" UHI "]}", "tools.0: must be an object"},
    {"{" M "'tools':[{'type':'web_search_20250305','name':'web_search'}],'messages':[" UHI "]}",
     "tools.0.type: 'web_search_20250305' is not supported"},
    {"{" M "'tools':[{'type':'bash_20250124','name':'bash'}],'messages':[" UHI "]}",
     "tools.0.type: 'bash_20250124'"},
    {"{" M "'tools':[{'input_schema':{'type':'object'}}],'messages':[" UHI "]}", "tools.0.name"},
    {"{" M "'tools':[{'name':'a b','input_schema':{'type':'object'}}],'messages':[" UHI "]}",
     "tools.0.name"},
    {"{" M "'tools':[{'name':'a'}],'messages':[" UHI "]}", "tools.0.input_schema"},
    {"{" M "'tools':[{'name':'a','input_schema':{'type':'string'}}],'messages':[" UHI "]}",
     "tools.0.input_schema"},
    {"{" M
     "'tools':[{'name':'a','input_schema':{'type':'object'},'description':5}],'messages':[" UHI
     "]}",
     "tools.0.description"},
    {"{" M "'tools':[" TOOL "," TOOL "],'messages':[" UHI "]}",
     "tools.1.name: 'get' is used by tools.0 too"},
    {"{" M "'tools':[{'name':'a','input_schema':{'type':'object'},'strict':true}],'messages':[" UHI
     "]}",
     "tools.0.strict: true is not supported"},
    {"{" M
     "'tools':[{'name':'a','input_schema':{'type':'object'},'defer_loading':true}],'messages':[" UHI
     "]}",
     "tools.0.defer_loading"},
    {"{" M "'tools':[{'name':'a','input_schema':{'type':'object'},'strict':'no'}],'messages':[" UHI
     "]}",
     "must be booleans"},
    {"{" M
     "'tools':[{'name':'a','input_schema':{'type':'object'},'input_examples':[]}],'messages':[" UHI
     "]}",
     "tools.0.input_examples: unknown field"},
    {"{" M "'tool_choice':'auto','messages':[" UHI "]}", "tool_choice: must be"},
    {"{" M "'tool_choice':{'type':'required'},'messages':[" UHI "]}", "tool_choice: must be"},
    {"{" M "'tool_choice':{'type':'any'},'messages':[" UHI "]}", "type \"any\" needs 'tools'"},
    {"{" M "'tools':[" TOOL "],'tool_choice':{'type':'tool'},'messages':[" UHI "]}",
     "tool_choice.name: required"},
    {"{" M "'tools':[" TOOL "],'tool_choice':{'type':'tool','name':'nope'},'messages':[" UHI "]}",
     "'nope' is not one of 'tools'"},
    {"{" M "'tools':[" TOOL "],'tool_choice':{'type':'auto','name':'get'},'messages':[" UHI "]}",
     "tool_choice.name: only with type"},
    {"{" M "'tools':[" TOOL
     "],'tool_choice':{'type':'none','disable_parallel_tool_use':true},'messages':[" UHI "]}",
     "not with type \"none\""},
    {"{" M "'tools':[" TOOL
     "],'tool_choice':{'type':'auto','disable_parallel_tool_use':1},'messages':[" UHI "]}",
     "disable_parallel_tool_use: must be a boolean"},
    {"{" M "'tools':[" TOOL "],'tool_choice':{'type':'auto','x':1},'messages':[" UHI "]}",
     "tool_choice.x: unknown field"},
    {"{" M "'thinking':true,'messages':[" UHI "]}", "thinking: must be"},
    {"{" M "'thinking':{'type':'on'},'messages':[" UHI "]}", "thinking: must be"},
    {"{'model':'m','max_tokens':4000,'thinking':{'type':'enabled'},'messages':[" UHI "]}",
     "thinking.budget_tokens: must be an integer >= 1024"},
    {"{'model':'m','max_tokens':4000,'thinking':{'type':'enabled','budget_tokens':100},'messages':"
     "[" UHI "]}",
     "budget_tokens: must be an integer >= 1024"},
    {"{'model':'m','max_tokens':1024,'thinking':{'type':'enabled','budget_tokens':1024},'messages':"
     "[" UHI "]}",
     "must be less than max_tokens (1024)"},
    {"{" M "'thinking':{'type':'disabled','budget_tokens':2000},'messages':[" UHI "]}",
     "thinking.budget_tokens: unknown field"},
    {"{" M "'thinking':{'type':'adaptive','display':'omitted'},'messages':[" UHI "]}",
     "thinking.display"},
    {"{" M "'thinking':{'type':'between_tools'},'messages':[" UHI "]}", "thinking: must be"},
    {"{" M "'metadata':'u','messages':[" UHI "]}", "metadata: must be"},
    {"{" M "'metadata':{'user_id':5},'messages':[" UHI "]}", "metadata: must be"},
    {"{" M "'metadata':{'session':'x'},'messages':[" UHI "]}", "metadata.session: unknown field"},
    {"{" M "'service_tier':'priority','messages':[" UHI "]}", "service_tier"},
    {"{" M "'speed':'fast','messages':[" UHI "]}", "speed: only \"standard\""},
    {"{" M "'cache_control':{'type':'x'},'messages':[" UHI "]}", ".cache_control"},
    {"{" M "'output_config':5,'messages':[" UHI "]}", "output_config: must be an object"},
    {"{" M "'output_config':{'effort':'extreme'},'messages':[" UHI "]}", "output_config.effort"},
    {"{" M "'output_config':{'format':{'type':'json_object'}},'messages':[" UHI "]}",
     "output_config.format"},
    {"{" M
     "'output_config':{'format':{'type':'json_schema','schema':{},'name':'x'}},'messages':[" UHI
     "]}",
     "output_config.format.name: unknown field"},
    {"{" M "'output_config':{'task_budget':1},'messages':[" UHI "]}",
     "output_config.task_budget: unknown field"},
    {"{" M "'container':'c','messages':[" UHI "]}", "container: unknown field"},
    {"{" M "'mcp_servers':[],'messages':[" UHI "]}", "mcp_servers: unknown field"},
    {"{" M "'context_management':{},'messages':[" UHI "]}", "context_management: unknown field"},
    {"{" M "'n':2,'messages':[" UHI "]}", "n: unknown field"},
};

static const refusal refused_count[] = {
    {"{'model':'m','max_tokens':5,'messages':[" UHI "]}", "max_tokens: unknown field"},
    {"{'model':'m','stream':true,'messages':[" UHI "]}", "stream: unknown field"},
    {"{'model':'m','temperature':0,'messages':[" UHI "]}", "temperature: unknown field"},
    {"{'model':'m'}", "messages: Field required"},
    {"{'model':'m','thinking':{'type':'enabled'},'messages':[" UHI "]}", "budget_tokens"},
};

static void check_refused(const refusal *cases, size_t n, anth_kind kind) {
  for (size_t i = 0; i < n; i++) {
    const char *text = cases[i].in, *says = cases[i].says;
    json_t *in = J(text);
    api_error err = {0};
    json_t *got = anth_to_chat(in, kind, &err);
    if (got) {
      char *g = dump(got);
      fail_msg("case %zu (%s) was accepted: %s", i, text, g);
    }
    if (err.status != 400 || strcmp(err.type, "invalid_request_error") != 0)
      fail_msg("case %zu: status %d type %s", i, err.status, err.type);
    if (!strstr(err.message, says))
      fail_msg("case %zu (%s): message \"%s\" lacks \"%s\"", i, text, err.message, says);
    json_decref(in);
  }
}

static void test_refused(void **state) {
  (void)state;
  check_refused(refused, sizeof refused / sizeof *refused, ANTH_MESSAGES);
  check_refused(refused_count, sizeof refused_count / sizeof *refused_count, ANTH_COUNT_TOKENS);
}

/* Key order is part of the prompt (templates write tools and calls out with tojson): OpenAI's
 * order, as a chat request would have it. */
static void test_key_order(void **state) {
  (void)state;
  json_t *in = J("{" M
                 "'tools':[{'input_schema':{'type':'object'},'description':'d','name':'get'}],"
                 "'messages':[" UHI
                 ",{'role':'assistant','content':[{'input':{'b':1,'a':2},"
                 "'name':'get','id':'t','type':'tool_use'}]}," UHI "]}");
  api_error err = {0};
  json_t *chat = anth_to_chat(in, ANTH_MESSAGES, &err);
  assert_non_null(chat);
  char *fn = json_dumps(json_array_get(json_object_get(chat, "tools"), 0), JSON_COMPACT);
  assert_string_equal(fn,
                      "{\"type\":\"function\",\"function\":{\"name\":\"get\",\"description\":"
                      "\"d\",\"parameters\":{\"type\":\"object\"}}}");
  free(fn);
  char *call = json_dumps(
      json_object_get(json_array_get(json_object_get(chat, "messages"), 1), "tool_calls"),
      JSON_COMPACT);
  assert_string_equal(call,
                      "[{\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"get\","
                      "\"arguments\":{\"b\":1,\"a\":2}}}]");
  free(call);
  json_decref(chat);
  json_decref(in);
}

/* too many tools: 129 */
static void test_limits(void **state) {
  (void)state;
  json_t *req = J("{" M "'messages':[" UHI "]}"), *tools = json_array();
  for (int i = 0; i < ANTH_MAX_TOOLS + 1; i++) {
    char name[16];
    snprintf(name, sizeof name, "t%d", i);
    json_array_append_new(
        tools, json_pack("{s:s, s:{s:s}}", "name", name, "input_schema", "type", "object"));
  }
  json_object_set_new(req, "tools", tools);
  api_error err = {0};
  assert_null(anth_to_chat(req, ANTH_MESSAGES, &err));
  assert_non_null(strstr(err.message, "at most 128 tools"));
  json_array_remove(tools, 0);
  json_t *ok = anth_to_chat(req, ANTH_MESSAGES, &err);
  assert_non_null(ok);
  assert_int_equal(json_array_size(json_object_get(ok, "tools")), ANTH_MAX_TOOLS);
  json_decref(ok);
  json_decref(req);
}

/* ---- the answer ---- */

/* A worker event: op and its header (single-quoted JSON). */
typedef struct ev {
  const char *op, *hdr;
} ev;

#define TXT(t) \
  { "delta", "{'text':'" t "'}" }
#define RSN(t) \
  { "delta", "{'delta':{'reasoning_content':'" t "'}}" }
#define CALL(k, id, name, args)                                                              \
  {                                                                                          \
    "delta", "{'delta':{'tool_calls':[{'index':" #k ",'id':'" id                             \
             "','type':'function','function':{'name':'" name "','arguments':'" args "'}}]}}" \
  }
#define ARGS(k, args) \
  { "delta", "{'delta':{'tool_calls':[{'index':" #k ",'function':{'arguments':'" args "'}}]}}" }
#define DONE(fin, extra)                                                             \
  {                                                                                  \
    "done", "{'finish_reason':'" fin                                                 \
            "','prompt_tokens':10,'cached_tokens':4,'completion_tokens':7" extra "}" \
  }
#define ERR \
  { "error", "{'status':400,'code':'context_length_exceeded','message':'too long'}" }
#define END \
  { NULL, NULL }

static const struct {
  const char *name;
  ev evs[8];
  /* streamed: the events as "name:detail" joined by " ", detail per event below */
  const char *stream;
  /* whole: the message's content, stop_reason and stop_sequence (single-quoted JSON), or NULL
   * when the answer is an error (the error's type then) */
  const char *content, *reason, *sseq;
} scripts[] = {
    {"text",
     {TXT("Hel"), TXT("lo"), DONE("stop", ""), END},
     "message_start ping content_block_start:0:text content_block_delta:0:text_delta:Hel "
     "content_block_delta:0:text_delta:lo content_block_stop:0 message_delta:end_turn "
     "message_stop",
     "[{'type':'text','text':'Hello'}]",
     "end_turn",
     NULL},
    {"thinking then text",
     {RSN("let me"), RSN(" see"), TXT("ok"), DONE("length", ""), END},
     "message_start ping content_block_start:0:thinking content_block_delta:0:thinking_delta:let "
     "me content_block_delta:0:thinking_delta: see content_block_delta:0:signature_delta "
     "content_block_stop:0 content_block_start:1:text content_block_delta:1:text_delta:ok "
     "content_block_stop:1 message_delta:max_tokens message_stop",
     "[{'type':'thinking','thinking':'let me see','signature':''},{'type':'text','text':'ok'}]",
     "max_tokens",
     NULL},
    {"text then two tool calls",
     {TXT("call:"), CALL(0, "call_abc", "get", ""), ARGS(0, "{\\\"a\\\":1}"),
      CALL(1, "call_def", "put", "{}"), ARGS(7, "stray"), DONE("tool_calls", ""), END},
     "message_start ping content_block_start:0:text content_block_delta:0:text_delta:call: "
     "content_block_stop:0 content_block_start:1:tool_use:toolu_abc:get "
     "content_block_delta:1:input_json_delta:{\"a\":1} content_block_stop:1 "
     "content_block_start:2:tool_use:toolu_def:put content_block_delta:2:input_json_delta:{} "
     "content_block_stop:2 message_delta:tool_use message_stop",
     "[{'type':'text','text':'call:'},{'type':'tool_use','id':'toolu_abc','name':'get','input':{'a'"
     ":1}},"
     "{'type':'tool_use','id':'toolu_def','name':'put','input':{}}]",
     "tool_use",
     NULL},
    {"stop sequence",
     {TXT("a"), DONE("stop", ",'stop':'END'"), END},
     "message_start ping content_block_start:0:text content_block_delta:0:text_delta:a "
     "content_block_stop:0 message_delta:stop_sequence message_stop",
     "[{'type':'text','text':'a'}]",
     "stop_sequence",
     "END"},
    {"nothing generated",
     {DONE("stop", ""), END},
     "message_start ping message_delta:end_turn message_stop",
     "[]",
     "end_turn",
     NULL},
    {"error mid-stream",
     {TXT("a"), ERR, TXT("after"), END},
     "message_start ping content_block_start:0:text content_block_delta:0:text_delta:a "
     "error:invalid_request_error",
     NULL,
     "invalid_request_error",
     NULL},
    {"events after done ignored",
     {TXT("a"), DONE("stop", ""), TXT("b"), DONE("length", ""), END},
     "message_start ping content_block_start:0:text content_block_delta:0:text_delta:a "
     "content_block_stop:0 message_delta:end_turn message_stop",
     "[{'type':'text','text':'a'}]",
     "end_turn",
     NULL},
    {"hostile deltas",
     {{"delta", "{'text':5,'delta':[1]}"},
      {"delta", "{'delta':{'tool_calls':'x','reasoning_content':3}}"},
      {"progress", "{}"},
      {"delta", "{'delta':{'tool_calls':[5,{'index':'0','id':7}]}}"},
      DONE("stop", ""),
      END},
     "message_start ping message_delta:end_turn message_stop",
     "[]",
     "end_turn",
     NULL},
};

/* One streamed SSE body as "name:detail" words. */
static void describe(const char *sse, sy_buf *out) {
  const char *p = sse;
  while ((p = strstr(p, "event: "))) {
    p += 7;
    const char *nl = strchr(p, '\n');
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(nl - p), p);
    assert_true(strncmp(nl + 1, "data: ", 6) == 0);
    const char *end = strstr(nl + 1, "\n\n");
    assert_non_null(end);
    json_t *d = json_loadb(nl + 7, (size_t)(end - nl - 7), 0, NULL);
    assert_non_null(d);
    if (strcmp(name, "ping") != 0 && strcmp(name, "error") != 0)
      assert_string_equal(json_string_value(json_object_get(d, "type")), name);
    sy_buf_printf(out, "%s%s", out->len ? " " : "", name);
    json_t *idx = json_object_get(d, "index"), *cb = json_object_get(d, "content_block"),
           *dl = json_object_get(d, "delta");
    if (json_is_integer(idx)) sy_buf_printf(out, ":%d", (int)json_integer_value(idx));
    if (cb) {
      const char *t = json_string_value(json_object_get(cb, "type"));
      sy_buf_printf(out, ":%s", t);
      if (strcmp(t, "tool_use") == 0) {
        sy_buf_printf(out, ":%s:%s", json_string_value(json_object_get(cb, "id")),
                      json_string_value(json_object_get(cb, "name")));
        assert_true(json_is_object(json_object_get(cb, "input")));
      }
    }
    if (strcmp(name, "content_block_delta") == 0) {
      const char *t = json_string_value(json_object_get(dl, "type"));
      sy_buf_printf(out, ":%s", t);
      const char *v = json_string_value(
          json_object_get(dl, strcmp(t, "text_delta") == 0         ? "text"
                              : strcmp(t, "thinking_delta") == 0   ? "thinking"
                              : strcmp(t, "input_json_delta") == 0 ? "partial_json"
                                                                   : "none"));
      if (v) sy_buf_printf(out, ":%s", v);
      if (strcmp(t, "signature_delta") == 0)
        assert_true(json_is_string(json_object_get(dl, "signature")));
    }
    if (strcmp(name, "message_delta") == 0) {
      sy_buf_printf(out, ":%s", json_string_value(json_object_get(dl, "stop_reason")));
      json_t *u = json_object_get(d, "usage");
      assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")), 6);
      assert_int_equal(json_integer_value(json_object_get(u, "cache_read_input_tokens")), 4);
      assert_int_equal(json_integer_value(json_object_get(u, "cache_creation_input_tokens")), 0);
      assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 7);
    }
    if (strcmp(name, "message_start") == 0) {
      json_t *m = json_object_get(d, "message");
      assert_string_equal(json_string_value(json_object_get(m, "id")), "msg_1");
      assert_string_equal(json_string_value(json_object_get(m, "model")), "qwen");
      assert_string_equal(json_string_value(json_object_get(m, "role")), "assistant");
      assert_true(json_is_array(json_object_get(m, "content")));
      assert_true(json_is_null(json_object_get(m, "stop_reason")));
    }
    if (strcmp(name, "error") == 0) {
      assert_string_equal(json_string_value(json_object_get(d, "type")), "error");
      sy_buf_printf(out, ":%s",
                    json_string_value(json_object_get(json_object_get(d, "error"), "type")));
    }
    json_decref(d);
    p = end;
  }
}

/* Feed a script to a translator; true when one event ended it. */
static bool feed(anth_out *o, const ev *evs, sy_buf *out) {
  bool ended = false;
  for (size_t k = 0; k < 8 && evs[k].op; k++) {
    json_t *h = J(evs[k].hdr);
    bool e = anth_out_event(o, evs[k].op, h, out);
    json_decref(h);
    if (ended) assert_true(e); /* stays ended */
    ended = ended || e;
  }
  return ended;
}

static void test_stream_events(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
    anth_out *o = anth_out_new("msg_1", "qwen", true);
    sy_buf out = {0}, words = {0};
    assert_true(feed(o, scripts[i].evs, &out));
    describe(out.data ? out.data : "", &words);
    if (strcmp(words.data ? words.data : "", scripts[i].stream) != 0)
      fail_msg("%s:\n got  %s\n want %s", scripts[i].name, words.data, scripts[i].stream);
    sy_buf_free(&out);
    sy_buf_free(&words);
    anth_out_free(o);
  }
}

static void test_whole_message(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
    anth_out *o = anth_out_new("msg_1", "qwen", false);
    sy_buf out = {0};
    assert_true(feed(o, scripts[i].evs, &out));
    assert_int_equal(out.len, 0); /* nothing written when collecting */
    api_error err = {0};
    json_t *m = anth_out_message(o, &err);
    if (!scripts[i].content) {
      assert_null(m);
      assert_int_equal(err.status, 400);
      assert_string_equal(api_error_anthropic_type(err.status), scripts[i].reason);
      anth_out_free(o);
      continue;
    }
    assert_non_null(m);
    json_t *want = J(scripts[i].content);
    if (!json_equal(json_object_get(m, "content"), want)) {
      char *g = dump(json_object_get(m, "content")), *w = dump(want);
      fail_msg("%s:\n got  %s\n want %s", scripts[i].name, g, w);
    }
    json_decref(want);
    assert_string_equal(json_string_value(json_object_get(m, "id")), "msg_1");
    assert_string_equal(json_string_value(json_object_get(m, "type")), "message");
    assert_string_equal(json_string_value(json_object_get(m, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(m, "model")), "qwen");
    assert_string_equal(json_string_value(json_object_get(m, "stop_reason")), scripts[i].reason);
    json_t *ss = json_object_get(m, "stop_sequence");
    if (scripts[i].sseq)
      assert_string_equal(json_string_value(ss), scripts[i].sseq);
    else
      assert_true(json_is_null(ss));
    json_t *u = json_object_get(m, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")), 6);
    assert_int_equal(json_integer_value(json_object_get(u, "cache_read_input_tokens")), 4);
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 7);
    json_decref(m);
    anth_out_free(o);
  }
  /* never ended: an error, not a message */
  anth_out *o = anth_out_new("msg_1", "qwen", false);
  api_error err = {0};
  assert_null(anth_out_message(o, &err));
  assert_int_equal(err.status, 500);
  anth_out_free(o);
}

static void test_small_parts(void **state) {
  (void)state;
  static const struct {
    const char *done, *reason;
  } reasons[] = {
      {"{'finish_reason':'stop'}", "end_turn"},
      {"{'finish_reason':'stop','stop':'x'}", "stop_sequence"},
      {"{'finish_reason':'stop','stop':5}", "end_turn"},
      {"{'finish_reason':'length','stop':'x'}", "max_tokens"},
      {"{'finish_reason':'tool_calls'}", "tool_use"},
      {"{'finish_reason':'cancelled'}", "end_turn"},
      {"{}", "end_turn"},
  };
  for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++) {
    json_t *d = J(reasons[i].done);
    assert_string_equal(anth_stop_reason(d), reasons[i].reason);
    json_decref(d);
  }
  assert_string_equal(anth_stop_reason(NULL), "end_turn");
  char id[32];
  anth_tool_id("call_XYZ", id, sizeof id);
  assert_string_equal(id, "toolu_XYZ");
  anth_tool_id("abc", id, sizeof id);
  assert_string_equal(id, "toolu_abc");
  anth_tool_id(NULL, id, sizeof id);
  assert_string_equal(id, "toolu_");
  anth_tool_id("call_0123456789012345678901234567890123456789", id, sizeof id);
  assert_int_equal(strlen(id), sizeof id - 1);
  json_t *d =
      J("{'prompt_tokens':3,'cached_tokens':9,'completion_tokens':2}"); /* cached > prompt */
  json_t *u = anth_usage(d), *want =
                                 J("{'input_tokens':3,'cache_creation_input_tokens':0,"
                                   "'cache_read_input_tokens':0,'output_tokens':2}");
  assert_true(json_equal(u, want));
  json_decref(d);
  json_decref(u);
  json_decref(want);
}

/* ---- fuzz ---- */

static uint32_t rng = 12345;
static uint32_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

/* A random JSON value, depth-bounded, drawn from the values the translation looks for. */
static json_t *rand_value(int depth) {
  static const char *const strs[] = {"text", "image",     "tool_use",  "tool_result", "thinking",
                                     "user", "assistant", "base64",    "image/png",   "object",
                                     "auto", "any",       "tool",      "none",        "enabled",
                                     "get",  "",          "ephemeral", "data",        "custom"};
  static const char *const keys[] = {
      "type",     "text",      "role",         "content",       "source",        "media_type",
      "data",     "id",        "name",         "input",         "tool_use_id",   "is_error",
      "thinking", "signature", "input_schema", "cache_control", "budget_tokens", "citations"};
  switch (depth > 3 ? next() % 4 : next() % 7) {
    case 0:
      return json_string(strs[next() % (sizeof strs / sizeof *strs)]);
    case 1:
      return json_integer((json_int_t)(next() % 3000) - 5);
    case 2:
      return next() % 2 ? json_true() : json_null();
    case 3:
      return json_real((double)(next() % 100) / 7);
    case 4:
    case 5: {
      json_t *o = json_object();
      for (uint32_t k = next() % 5; k; k--)
        json_object_set_new(o, keys[next() % (sizeof keys / sizeof *keys)], rand_value(depth + 1));
      return o;
    }
    default: {
      json_t *a = json_array();
      for (uint32_t k = next() % 4; k; k--) json_array_append_new(a, rand_value(depth + 1));
      return a;
    }
  }
}

static void test_fuzz(void **state) {
  (void)state;
  static const char *const fields[] = {
      "messages",       "system",   "tools",         "tool_choice", "thinking", "max_tokens",
      "stop_sequences", "metadata", "output_config", "temperature", "top_k",    "stream"};
  for (int i = 0; i < 20000; i++) {
    json_t *req =
        J("{" M "'tools':[" TOOL "],'messages':[" UHI
          ",{'role':'assistant','content':[{'type':'tool_use','id':'a','name':'get','input':{}}]},{"
          "'role':'user','content':[{'type':'tool_result','tool_use_id':'a','content':'x'}]}]}");
    for (uint32_t k = 1 + next() % 3; k; k--) {
      const char *f = fields[next() % (sizeof fields / sizeof *fields)];
      json_t *v = rand_value(0);
      if (next() % 3 == 0 && json_is_array(json_object_get(req, "messages")) &&
          json_is_array(v)) { /* inside a message: a random block list */
        json_t *m =
            json_pack("{s:s, s:o}", "role", next() % 2 ? "user" : "assistant", "content", v);
        json_array_append_new(json_object_get(req, "messages"), m);
      } else {
        json_object_set_new(req, f, v);
      }
    }
    api_error err = {0};
    json_t *chat = anth_to_chat(req, next() % 4 ? ANTH_MESSAGES : ANTH_COUNT_TOKENS, &err);
    if (chat) {
      assert_true(json_is_array(json_object_get(chat, "messages")));
      char *s = json_dumps(chat, 0);
      assert_non_null(s);
      free(s);
    } else {
      assert_int_equal(err.status, 400);
      assert_true(err.message[0] != '\0');
      json_t *e = api_error_anthropic_json(&err);
      assert_non_null(e);
      json_decref(e);
    }
    json_decref(chat);
    json_decref(req);
  }
  /* random event scripts */
  static const char *const ops[] = {"delta", "done", "error", "cancel", "delta", "delta"};
  for (int i = 0; i < 5000; i++) {
    bool stream = next() % 2;
    anth_out *o = anth_out_new("msg_x", "m", stream);
    sy_buf out = {0};
    for (uint32_t k = next() % 10; k; k--) {
      json_t *h = rand_value(0);
      if (next() % 2) {
        json_t *d = json_object();
        if (next() % 2)
          json_object_set_new(d, "tool_calls",
                              json_pack("[{s:i, s:s, s:{s:s, s:s}}]", "index", (int)(next() % 3),
                                        "id", next() % 2 ? "call_a" : "x", "function", "name", "f",
                                        "arguments", next() % 2 ? "{\"a\":" : "1}"));
        else
          json_object_set_new(d, "reasoning_content", json_string("r"));
        if (json_is_object(h))
          json_object_set_new(h, "delta", d);
        else
          json_decref(d);
        if (json_is_object(h) && next() % 2) json_object_set_new(h, "text", json_string("t"));
      }
      anth_out_event(o, ops[next() % (sizeof ops / sizeof *ops)], h, &out);
      json_decref(h);
    }
    api_error err = {0};
    json_t *m = anth_out_message(o, &err);
    if (m) {
      char *s = json_dumps(m, 0);
      assert_non_null(s);
      free(s);
    } else {
      assert_true(err.status >= 400);
    }
    json_decref(m);
    sy_buf_free(&out);
    anth_out_free(o);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepted),      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_key_order),     cmocka_unit_test(test_limits),
      cmocka_unit_test(test_stream_events), cmocka_unit_test(test_whole_message),
      cmocka_unit_test(test_small_parts),   cmocka_unit_test(test_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
