/* chat.c — a chat request into a prompt, and the generated text back into OpenAI's message parts.
 *
 * The prompt is the model's own chat template (the GGUF's tokenizer.chat_template, its `tool_use`
 * variant when the request has tools, or a template text given in the matrix) rendered by our
 * Jinja interpreter (src/chat/jinja.h) from the request's messages, tools and options, with the
 * variables Hugging Face templates expect. A llama.cpp built-in template (chatml, llama3, …) is
 * used only when the matrix names one, which is how a GGUF without a template gets chat.
 *
 * The output goes through a tool-call/reasoning parser (src/chat/toolcall.h) chosen from the
 * template: content, reasoning_content and tool_calls leave the worker as separate deltas.
 * response_format and forced tool calls (tool_choice required or a named function) become a GBNF
 * grammar (src/chat/json_schema.h) that the sampler enforces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"
#include "json_schema.h"
#include "log.h"
#include "toolcall.h"
#include "worker.h"

/* Whether text is a Jinja template rather than the name of a llama.cpp built-in one. */
static bool chat_is_jinja(const char *t) { return strstr(t, "{{") || strstr(t, "{%"); }

/* Whether llama_chat_apply_template understands tmpl (it only knows built-in formats). */
static bool chat_builtin_works(const char *tmpl) {
  llama_chat_message m = {"user", "hi"};
  char buf[256];
  return llama_chat_apply_template(tmpl, &m, 1, true, buf, (int32_t)sizeof buf) >= 0;
}

/* The text of a special token, or "" (owned copy). */
static char *chat_token_text(const worker *w, llama_token t) {
  const char *s = t == LLAMA_TOKEN_NULL ? NULL : llama_vocab_get_text(w->vocab, t);
  return strdup(s ? s : "");
}

/* Parse a template as llama.cpp builds it (with its two source patches: gpt-oss's channel check
 * and Mistral's empty-assistant guard). */
static struct jinja_tmpl *chat_parse(const char *src, char *err, size_t err_len) {
  size_t n = 0;
  char *patched = jinja_llama_patch(src, strlen(src), &n);
  if (!patched) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  struct jinja_tmpl *t = jinja_parse(patched, n, err, err_len);
  free(patched);
  return t;
}

/* Qwen3-ASR answers "language English<asr_text>the words": with its <asr_text> control token
 * (w->asr_sep, rendered as text by tok_piece), an answer that starts with "language " has the
 * language as reasoning and the words as content, so a transcription keeps only the words. Only
 * where the template names no reasoning markers of its own. */
static void chat_asr_markers(const worker *w, sy_chat_format *f) {
  if (w->asr_sep < 0 || f->think_open) return;
  f->think_open = "language ";
  f->think_close = "<asr_text>";
}

int chat_load(worker *w, const char *configured, char *err, size_t err_len) {
  const char *src =
      configured && *configured ? configured : llama_model_chat_template(w->model, NULL);
  w->chat_kind = WK_CHAT_NONE;
  w->bos_text = chat_token_text(w, llama_vocab_bos(w->vocab));
  w->eos_text = chat_token_text(w, llama_vocab_eos(w->vocab));
  if (!w->bos_text || !w->eos_text) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  if (!src || !*src) {
    LOG_I(
        "no chat template in the model and none in the matrix: chat is off (set chat_template, "
        "e.g. chatml)");
    return 0;
  }
  if (chat_is_jinja(src)) {
    char perr[256];
    w->jt = chat_parse(src, perr, sizeof perr);
    if (!w->jt) {
      if (configured && *configured) {
        snprintf(err, err_len, "chat_template: %s", perr);
        return -1;
      }
      LOG_W("the model's chat template does not parse (%s); chat is off", perr);
      return 0;
    }
    w->chat_kind = WK_CHAT_JINJA;
    sy_chat_format_detect(src, &w->chat_fmt);
    const char *tu =
        configured && *configured ? NULL : llama_model_chat_template(w->model, "tool_use");
    if (tu && *tu) {
      w->jt_tools = chat_parse(tu, perr, sizeof perr);
      if (!w->jt_tools)
        LOG_W("the model's tool_use chat template does not parse (%s); using the default one",
              perr);
      else
        sy_chat_format_detect(tu, &w->chat_fmt_tools);
    }
    chat_asr_markers(w, &w->chat_fmt);
    chat_asr_markers(w, &w->chat_fmt_tools);
    LOG_I("chat template: Jinja (%zu bytes%s), tool calls: %s, reasoning: %s", strlen(src),
          w->jt_tools ? ", plus a tool_use variant" : "", w->chat_fmt.tools,
          w->chat_fmt.think_open ? w->chat_fmt.think_open : "none");
    return 0;
  }
  if (chat_builtin_works(src)) {
    w->chat_builtin = strdup(src);
    if (!w->chat_builtin) {
      snprintf(err, err_len, "out of memory");
      return -1;
    }
    w->chat_kind = WK_CHAT_BUILTIN;
    sy_chat_format_detect(NULL, &w->chat_fmt);
    LOG_I("chat template: llama.cpp's built-in '%s' (no tools, no reasoning parsing)", src);
    return 0;
  }
  if (configured && *configured) {
    snprintf(err, err_len,
             "chat_template: '%.60s' is neither a Jinja template nor a llama.cpp built-in name",
             src);
    return -1;
  }
  LOG_W("the model's chat template is not Jinja and not a llama.cpp built-in; chat is off");
  return 0;
}

void chat_unload(worker *w) {
  jinja_free(w->jt);
  jinja_free(w->jt_tools);
  w->jt = w->jt_tools = NULL;
  free(w->chat_builtin);
  free(w->bos_text);
  free(w->eos_text);
  w->chat_builtin = w->bos_text = w->eos_text = NULL;
  w->chat_kind = WK_CHAT_NONE;
}

void chat_prep_clear(chat_prep *p) {
  free(p->prompt);
  free(p->grammar);
  sy_tc_free(p->parser);
  memset(p, 0, sizeof *p);
}

#define CHAT_FAIL(st, c, ...)            \
  do {                                   \
    *status = (st);                      \
    *code = (c);                         \
    snprintf(msg, msg_len, __VA_ARGS__); \
    goto fail;                           \
  } while (0)

/* The messages as templates want them: content "" rather than null (an assistant turn that only
 * called tools: templates do string operations on it, as llama-server also normalises), and a tool
 * call's arguments as an object when they are a JSON object in a string (OpenAI clients send
 * strings; templates `tojson` them). */
static json_t *chat_messages(const json_t *messages) {
  json_t *out = json_deep_copy(messages);
  size_t i, k;
  json_t *m, *c;
  json_array_foreach(out, i, m) {
    if (json_is_null(json_object_get(m, "content")))
      json_object_set_new(m, "content", json_string(""));
    json_array_foreach(json_object_get(m, "tool_calls"), k, c) {
      json_t *fn = json_object_get(c, "function");
      json_t *args = json_object_get(fn, "arguments");
      if (!json_is_string(args)) continue;
      json_t *obj = json_loads(json_string_value(args), JSON_DECODE_ANY, NULL);
      if (json_is_object(obj))
        json_object_set_new(fn, "arguments", obj);
      else
        json_decref(obj);
    }
  }
  return out;
}

/* Render the prompt with the Jinja template t and these options. NULL + msg on failure. */
static char *chat_render(const worker *w, const jinja_tmpl *t, const json_t *hdr,
                         const json_t *tools, bool enable_thinking, char *msg, size_t msg_len) {
  json_t *ctx = json_object();
  json_t *kw = json_object_get(hdr, "chat_template_kwargs");
  const char *k;
  json_t *v;
  json_object_foreach(kw, k, v) json_object_set(ctx, k, v); /* the fixed ones below win */
  json_object_set_new(ctx, "messages", chat_messages(json_object_get(hdr, "messages")));
  if (tools) json_object_set(ctx, "tools", (json_t *)tools);
  json_object_set_new(ctx, "add_generation_prompt", json_true());
  json_object_set_new(ctx, "bos_token", json_string(w->bos_text));
  json_object_set_new(ctx, "eos_token", json_string(w->eos_text));
  json_object_set_new(ctx, "enable_thinking", json_boolean(enable_thinking));
  json_t *re = json_object_get(hdr, "reasoning_effort");
  if (json_is_string(re)) json_object_set(ctx, "reasoning_effort", re);
  char *out = NULL, err[512];
  size_t len = 0;
  if (jinja_render(t, ctx, NULL, &out, &len, err, sizeof err) != 0) {
    snprintf(msg, msg_len, "the model's chat template failed: %s", err);
    out = NULL;
  }
  json_decref(ctx);
  /* The vocabulary adds BOS itself when it wants one; a template that writes it too would double
   * it (llama-server strips it the same way). */
  if (out && *w->bos_text && llama_vocab_get_add_bos(w->vocab) &&
      strncmp(out, w->bos_text, strlen(w->bos_text)) == 0)
    memmove(out, out + strlen(w->bos_text), len - strlen(w->bos_text) + 1);
  return out;
}

/* A llama.cpp built-in template applied to a validated messages array (with the assistant
 * prefix). A malloc'd NUL-terminated prompt, or NULL with status, code and msg set. */
static char *chat_builtin_prompt(const worker *w, const json_t *messages, int *status,
                                 const char **code, char *msg, size_t msg_len) {
  *status = 400;
  *code = "invalid_request";
  if (w->chat_kind != WK_CHAT_BUILTIN || !w->chat_builtin) {
    *code = "no_chat_template";
    snprintf(msg, msg_len, "no built-in chat template");
    return NULL;
  }
  size_t n = json_array_size(messages);
  if (!json_is_array(messages) || n == 0 || n > WK_MAX_MESSAGES) {
    snprintf(msg, msg_len, "\"messages\" must be a non-empty array (at most %d)", WK_MAX_MESSAGES);
    return NULL;
  }
  llama_chat_message *chat = calloc(n, sizeof *chat);
  if (!chat) {
    *status = 500;
    *code = "out_of_memory";
    snprintf(msg, msg_len, "out of memory");
    return NULL;
  }
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    const json_t *m = json_array_get(messages, i);
    const json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
    if (!json_is_string(role) || !(json_is_string(content) || json_is_null(content))) {
      snprintf(msg, msg_len, "messages[%zu] needs string \"role\" and \"content\"", i);
      free(chat);
      return NULL;
    }
    chat[i].role = json_string_value(role);
    chat[i].content = json_is_string(content) ? json_string_value(content) : "";
    total += strlen(chat[i].role) + strlen(chat[i].content) + 64;
  }
  if (total > (size_t)INT32_MAX / 4) {
    snprintf(msg, msg_len, "the messages are too long");
    free(chat);
    return NULL;
  }
  int32_t cap = (int32_t)(total * 2 + 1024);
  char *buf = malloc((size_t)cap);
  int32_t r = buf ? llama_chat_apply_template(w->chat_builtin, chat, n, true, buf, cap) : -1;
  if (buf && r >= cap && r < INT32_MAX) {
    cap = r + 1;
    char *b2 = realloc(buf, (size_t)cap);
    if (!b2) {
      free(buf);
      buf = NULL;
    } else {
      buf = b2;
      r = llama_chat_apply_template(w->chat_builtin, chat, n, true, buf, cap);
    }
  }
  free(chat);
  if (!buf || r < 0 || r >= cap) {
    free(buf);
    *status = buf ? 400 : 500;
    *code = buf ? "no_chat_template" : "out_of_memory";
    snprintf(msg, msg_len, "%s", buf ? "the chat template could not be applied" : "out of memory");
    return NULL;
  }
  buf[r] = '\0';
  return buf;
}

int chat_prepare(worker *w, const json_t *hdr, chat_prep *p, int *status, const char **code,
                 char *msg, size_t msg_len) {
  memset(p, 0, sizeof *p);
  *status = 400;
  *code = "invalid_request";
  const json_t *messages = json_object_get(hdr, "messages");
  if (!json_is_array(messages) || json_array_size(messages) == 0 ||
      json_array_size(messages) > WK_MAX_MESSAGES)
    CHAT_FAIL(400, "invalid_request", "\"messages\" must be a non-empty array (at most %d)",
              WK_MAX_MESSAGES);
  if (w->chat_kind == WK_CHAT_NONE)
    CHAT_FAIL(400, "no_chat_template",
              "This model has no usable chat template; use a completion prompt, or set the model's "
              "chat_template in the matrix (a Jinja template or a llama.cpp built-in name such as "
              "chatml)");

  const json_t *tools = json_object_get(hdr, "tools"),
               *choice = json_object_get(hdr, "tool_choice");
  if (!json_is_array(tools) || json_array_size(tools) == 0) tools = NULL;
  const char *cs = json_string_value(choice);
  const char *forced =
      json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
  bool required = cs && strcmp(cs, "required") == 0;
  if (cs && strcmp(cs, "none") == 0) tools = NULL; /* not offered, not parsed */
  const json_t *rf = json_object_get(hdr, "response_format");
  bool constrained = json_is_object(rf) || required || forced;

  if (w->chat_kind == WK_CHAT_BUILTIN) {
    if (tools || constrained)
      CHAT_FAIL(400, "unsupported_parameter",
                "tools and response_format need the model's Jinja chat template; this model uses "
                "llama.cpp's "
                "built-in '%s'",
                w->chat_builtin);
    p->prompt = chat_builtin_prompt(w, messages, status, code, msg, msg_len);
    if (!p->prompt) goto fail;
    return 0;
  }

  const jinja_tmpl *t = tools && w->jt_tools ? w->jt_tools : w->jt;
  const sy_chat_format *fmt = tools && w->jt_tools ? &w->chat_fmt_tools : &w->chat_fmt;
  json_t *kw = json_object_get(hdr, "chat_template_kwargs");
  json_t *et = json_object_get(kw, "enable_thinking");
  const char *re = json_string_value(json_object_get(hdr, "reasoning_effort"));
  bool thinking = json_is_boolean(et) ? json_is_true(et) : !(re && strcmp(re, "none") == 0);
  p->prompt = chat_render(w, t, hdr, tools, thinking, msg, msg_len);
  if (!p->prompt) {
    *code = "chat_template_error";
    goto fail; /* msg says why */
  }
  p->thinking_open = fmt->think_open && sy_chat_prompt_thinking_open(fmt, p->prompt);
  if (constrained && p->thinking_open) {
    /* A grammar must hold from the first token; a prompt that leaves the model inside its
     * reasoning block would force the reasoning into the grammar. Ask the template not to think
     * (Qwen3 and the like close the block in the prompt then). */
    free(p->prompt);
    p->prompt = chat_render(w, t, hdr, tools, false, msg, msg_len);
    if (!p->prompt) {
      *code = "chat_template_error";
      goto fail;
    }
    p->thinking_open = sy_chat_prompt_thinking_open(fmt, p->prompt);
    if (p->thinking_open)
      CHAT_FAIL(400, "unsupported_parameter",
                "this model always reasons before answering; response_format and forced tool calls "
                "cannot "
                "constrain its output");
  }

  char gerr[512] = "";
  if (required || forced) {
    if (strcmp(fmt->tools, "none") == 0)
      CHAT_FAIL(400, "unsupported_parameter",
                "tool_choice forces a call, but this model's chat template has no tool-call format "
                "Switchyard knows");
    bool parallel = !json_is_false(json_object_get(hdr, "parallel_tool_calls"));
    if (sy_gbnf_tool_calls(tools, forced, fmt->tools, parallel && !forced, &p->grammar, gerr,
                           sizeof gerr) != 0)
      CHAT_FAIL(400, "invalid_tools", "tools: %s", gerr);
  } else if (json_is_object(rf)) {
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (type && strcmp(type, "json_object") == 0) {
      p->grammar = strdup(sy_gbnf_json_object());
    } else if (sy_schema_to_gbnf(json_object_get(rf, "schema"), &p->grammar, gerr, sizeof gerr) !=
               0) {
      CHAT_FAIL(400, "invalid_json_schema", "response_format: %s", gerr);
    }
    if (!p->grammar) CHAT_FAIL(500, "out_of_memory", "out of memory");
  }
  p->parser = sy_tc_new(fmt, tools, p->thinking_open);
  if (!p->parser) CHAT_FAIL(500, "out_of_memory", "out of memory");
  return 0;
fail:
  chat_prep_clear(p);
  return -1;
}
