/* realtime_parse.c — see realtime_parse.h. jansson parses (it rejects invalid UTF-8 and bounds
 * nothing by itself: the caller's frame limit bounds the text); base64 by media/base64.c; G.711 by
 * the ITU-T formulas (no tables).
 * Must never read a field without checking its type, never apply half an update. */
#include "parse/realtime_parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/base64.h"

/* Event names: current first, then the beta names still sent. */
static const struct {
  const char *name;
  rt_type type;
} rt_names[] = {
    {"session.update", RT_SESSION_UPDATE},
    {"transcription_session.update", RT_SESSION_UPDATE},
    {"input_audio_buffer.append", RT_AUDIO_APPEND},
    {"input_audio_buffer.commit", RT_AUDIO_COMMIT},
    {"input_audio_buffer.clear", RT_AUDIO_CLEAR},
    {"conversation.item.create", RT_ITEM_CREATE},
    {"conversation.item.truncate", RT_ITEM_TRUNCATE},
    {"conversation.item.delete", RT_ITEM_DELETE},
    {"conversation.item.retrieve", RT_ITEM_RETRIEVE},
    {"response.create", RT_RESPONSE_CREATE},
    {"response.cancel", RT_RESPONSE_CANCEL},
    {"output_audio_buffer.clear", RT_OUTPUT_AUDIO_CLEAR},
};

#define BAD(e, param, code, ...) \
  api_error_set(e, 400, "invalid_request_error", code, param, __VA_ARGS__)

void rt_event_clear(rt_event *ev) {
  json_decref(ev->obj);
  free(ev->audio);
  memset(ev, 0, sizeof *ev);
}

/* A string field of o into out (cap bytes with the NUL), or -1 with e when present but not a
 * string or too long. Absent: 0, out untouched. */
static int id_field(const json_t *o, const char *k, char *out, size_t cap, const char *param,
                    api_error *e) {
  json_t *v = json_object_get(o, k);
  if (!v) return 0;
  if (!json_is_string(v) || json_string_length(v) >= cap) {
    BAD(e, param, "invalid_value", "'%s' must be a string of at most %zu bytes", param, cap - 1);
    return -1;
  }
  memcpy(out, json_string_value(v), json_string_length(v) + 1);
  return 0;
}

static int decode_audio(const json_t *v, size_t max, uint8_t **out, size_t *n, const char *param,
                        api_error *e) {
  if (!json_is_string(v)) {
    BAD(e, param, "missing_field", "'%s' must be a base64 string", param);
    return -1;
  }
  char msg[256];
  unsigned char *b = NULL;
  if (sy_base64_decode(json_string_value(v), json_string_length(v), max, &b, n, msg, sizeof msg)) {
    BAD(e, param, strstr(msg, "larger") ? "audio_too_large" : "invalid_value", "'%s': %s", param,
        msg);
    return -1;
  }
  *out = b;
  return 0;
}

int rt_event_parse(const char *text, size_t len, size_t max_audio, rt_event *ev, api_error *e) {
  memset(ev, 0, sizeof *ev);
  json_error_t je;
  json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!o) {
    BAD(e, NULL, "invalid_json", "the event is not JSON: %s", je.text);
    return -1;
  }
  ev->obj = o;
  if (!json_is_object(o)) {
    BAD(e, NULL, "invalid_event", "an event must be a JSON object");
    goto fail;
  }
  json_t *eid = json_object_get(o, "event_id");
  if (json_is_string(eid) && json_string_length(eid) <= RT_MAX_ID)
    memcpy(ev->event_id, json_string_value(eid), json_string_length(eid) + 1);
  const char *type = json_string_value(json_object_get(o, "type"));
  if (!type) {
    BAD(e, "type", "missing_field", "the event has no 'type'");
    goto fail;
  }
  size_t i = 0, n = sizeof rt_names / sizeof rt_names[0];
  while (i < n && strcmp(rt_names[i].name, type) != 0) i++;
  if (i == n) {
    BAD(e, "type", "unknown_event", "unknown event type '%.100s'", type);
    goto fail;
  }
  ev->type = rt_names[i].type;
  switch (ev->type) {
    case RT_SESSION_UPDATE:
      if (!json_is_object(json_object_get(o, "session"))) {
        BAD(e, "session", "missing_field", "session.update needs a 'session' object");
        goto fail;
      }
      break;
    case RT_AUDIO_APPEND:
      if (decode_audio(json_object_get(o, "audio"), max_audio, &ev->audio, &ev->audio_len, "audio",
                       e))
        goto fail;
      break;
    case RT_ITEM_CREATE:
      if (!json_is_object(json_object_get(o, "item"))) {
        BAD(e, "item", "missing_field", "conversation.item.create needs an 'item' object");
        goto fail;
      }
      break;
    case RT_ITEM_TRUNCATE: {
      json_t *ci = json_object_get(o, "content_index"), *end = json_object_get(o, "audio_end_ms");
      if (id_field(o, "item_id", ev->item_id, sizeof ev->item_id, "item_id", e)) goto fail;
      if (!ev->item_id[0] || !json_is_integer(end) || json_integer_value(end) < 0 ||
          (ci &&
           (!json_is_integer(ci) || json_integer_value(ci) < 0 || json_integer_value(ci) > 1000))) {
        BAD(e, "audio_end_ms", "missing_field",
            "conversation.item.truncate needs item_id, content_index and audio_end_ms >= 0");
        goto fail;
      }
      ev->content_index = ci ? (int)json_integer_value(ci) : 0;
      ev->audio_end_ms = (long long)json_integer_value(end);
      break;
    }
    case RT_ITEM_DELETE:
    case RT_ITEM_RETRIEVE:
      if (id_field(o, "item_id", ev->item_id, sizeof ev->item_id, "item_id", e)) goto fail;
      if (!ev->item_id[0]) {
        BAD(e, "item_id", "missing_field", "'%s' needs an item_id", type);
        goto fail;
      }
      break;
    case RT_RESPONSE_CREATE: {
      json_t *r = json_object_get(o, "response");
      if (r && !json_is_object(r) && !json_is_null(r)) {
        BAD(e, "response", "invalid_value", "'response' must be an object");
        goto fail;
      }
      break;
    }
    default:
      break;
  }
  return 0;
fail:
  json_decref(ev->obj);
  ev->obj = NULL;
  free(ev->audio);
  ev->audio = NULL;
  ev->audio_len = 0;
  return -1;
}

/* ---- the session ---- */

void rt_session_init(rt_session *s, bool transcription) {
  memset(s, 0, sizeof *s);
  s->transcription = transcription;
  s->audio_out = !transcription;
  s->vad = (rt_vad){true, 0.5, 300, 500, !transcription, true};
  s->temperature = -1;
}

void rt_session_free(rt_session *s) {
  free(s->instructions);
  json_decref(s->tools);
  json_decref(s->tool_choice);
  s->instructions = NULL;
  s->tools = NULL;
  s->tool_choice = NULL;
}

static int fmt_parse(const json_t *v, rt_fmt *out, const char *param, api_error *e) {
  const char *t = json_string_value(v);
  if (json_is_object(v)) {
    t = json_string_value(json_object_get(v, "type"));
    json_t *rate = json_object_get(v, "rate");
    if (t && strcmp(t, "audio/pcm") == 0 && rate &&
        !(json_is_integer(rate) && json_integer_value(rate) == RT_RATE)) {
      BAD(e, param, "invalid_value", "'%s': audio/pcm is spoken at rate 24000 only", param);
      return -1;
    }
  }
  if (t && (strcmp(t, "pcm16") == 0 || strcmp(t, "audio/pcm") == 0))
    *out = RT_FMT_PCM16;
  else if (t && (strcmp(t, "g711_ulaw") == 0 || strcmp(t, "audio/pcmu") == 0))
    *out = RT_FMT_ULAW;
  else if (t && (strcmp(t, "g711_alaw") == 0 || strcmp(t, "audio/pcma") == 0))
    *out = RT_FMT_ALAW;
  else {
    BAD(e, param, "invalid_value",
        "'%s' must be pcm16, g711_ulaw or g711_alaw (or {type: audio/pcm|audio/pcmu|audio/pcma})",
        param);
    return -1;
  }
  return 0;
}

static int num_field(const json_t *o, const char *k, double lo, double hi, double *out,
                     const char *param, api_error *e) {
  json_t *v = json_object_get(o, k);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
    BAD(e, param, "invalid_value", "'%s' must be a number in %g..%g", param, lo, hi);
    return -1;
  }
  *out = json_number_value(v);
  return 0;
}

static int vad_parse(const json_t *v, rt_vad *vad, bool transcription, api_error *e) {
  if (!v || json_is_null(v)) {
    vad->server = false;
    return 0;
  }
  const char *t = json_string_value(json_object_get(v, "type"));
  if (!json_is_object(v) || !t ||
      (strcmp(t, "server_vad") != 0 && strcmp(t, "semantic_vad") != 0)) {
    BAD(e, "session.turn_detection", "invalid_value",
        "turn_detection must be null or {type: server_vad, threshold, prefix_padding_ms, "
        "silence_duration_ms}");
    return -1;
  }
  rt_vad n = *vad;
  if (!n.server) n = (rt_vad){true, 0.5, 300, 500, !transcription, true};
  double th = n.threshold, pre = n.prefix_padding_ms, sil = n.silence_duration_ms;
  if (num_field(v, "threshold", 0, 1, &th, "session.turn_detection.threshold", e) ||
      num_field(v, "prefix_padding_ms", 0, 10000, &pre, "session.turn_detection.prefix_padding_ms",
                e) ||
      num_field(v, "silence_duration_ms", 50, 10000, &sil,
                "session.turn_detection.silence_duration_ms", e))
    return -1;
  json_t *cr = json_object_get(v, "create_response"),
         *ir = json_object_get(v, "interrupt_response");
  if ((cr && !json_is_boolean(cr)) || (ir && !json_is_boolean(ir))) {
    BAD(e, "session.turn_detection", "invalid_value",
        "create_response and interrupt_response must be booleans");
    return -1;
  }
  n.threshold = th;
  n.prefix_padding_ms = (int)pre;
  n.silence_duration_ms = (int)sil;
  if (cr) n.create_response = json_is_true(cr) && !transcription;
  if (ir) n.interrupt_response = json_is_true(ir);
  *vad = n;
  return 0;
}

/* Realtime tools ({type, name, description, parameters}) as chat-completions tools. */
static json_t *tools_parse(const json_t *v, api_error *e) {
  if (!json_is_array(v) || json_array_size(v) > RT_MAX_TOOLS) {
    BAD(e, "session.tools", "invalid_value", "tools must be an array of at most %d functions",
        RT_MAX_TOOLS);
    return NULL;
  }
  json_t *out = json_array();
  size_t i;
  json_t *t;
  json_array_foreach(v, i, t) {
    const char *type = json_string_value(json_object_get(t, "type"));
    json_t *name = json_object_get(t, "name");
    if (!json_is_object(t) || !type || strcmp(type, "function") != 0 || !json_is_string(name)) {
      BAD(e, "session.tools", "invalid_value", "tools[%zu] must be {type: function, name, ...}", i);
      json_decref(out);
      return NULL;
    }
    json_t *fn = json_pack("{s:O}", "name", name);
    json_t *d = json_object_get(t, "description"), *p = json_object_get(t, "parameters");
    if (json_is_string(d)) json_object_set(fn, "description", d);
    if (json_is_object(p)) json_object_set(fn, "parameters", p);
    json_array_append_new(out, json_pack("{s:s, s:o}", "type", "function", "function", fn));
  }
  return out;
}

int rt_session_apply(rt_session *s0, const json_t *v, api_error *e) {
  rt_session s = *s0; /* a copy: applied only when all of it is good */
  s.tools = NULL;
  json_t *choice = NULL;
  char *instr = NULL;
  json_t *tools = NULL;
  const char *type = json_string_value(json_object_get(v, "type"));
  if (type && strcmp(type, "realtime") != 0 && strcmp(type, "transcription") != 0) {
    BAD(e, "session.type", "invalid_value", "session.type must be realtime or transcription");
    return -1;
  }
  if (type && (strcmp(type, "transcription") == 0) != s0->transcription) {
    BAD(e, "session.type", "invalid_value",
        "session.type cannot change (open the session with intent=transcription for "
        "transcription)");
    return -1;
  }
  json_t *audio = json_object_get(v, "audio");
  json_t *in = json_object_get(audio, "input"), *out = json_object_get(audio, "output");
  if (audio && !json_is_object(audio)) {
    BAD(e, "session.audio", "invalid_value", "session.audio must be an object");
    return -1;
  }
  /* formats */
  json_t *f = json_object_get(in, "format");
  if (!f) f = json_object_get(v, "input_audio_format");
  if (f && fmt_parse(f, &s.in_fmt, "session.audio.input.format", e)) return -1;
  f = json_object_get(out, "format");
  if (!f) f = json_object_get(v, "output_audio_format");
  if (f && fmt_parse(f, &s.out_fmt, "session.audio.output.format", e)) return -1;
  /* voice */
  json_t *voice = json_object_get(out, "voice");
  if (!voice) voice = json_object_get(v, "voice");
  if (voice) {
    if (!json_is_string(voice) || json_string_length(voice) == 0 ||
        json_string_length(voice) > RT_MAX_VOICE) {
      BAD(e, "session.audio.output.voice", "invalid_value", "voice must be a name of 1..%d bytes",
          RT_MAX_VOICE);
      return -1;
    }
    memcpy(s.voice, json_string_value(voice), json_string_length(voice) + 1);
  }
  /* turn detection */
  json_t *td = json_object_get(in, "turn_detection");
  bool has_td = in && json_object_get(in, "turn_detection");
  if (!has_td) {
    td = json_object_get(v, "turn_detection");
    has_td = json_object_get(v, "turn_detection") != NULL;
  }
  if (has_td && vad_parse(td, &s.vad, s.transcription, e)) return -1;
  /* transcription */
  json_t *tr = json_object_get(in, "transcription");
  if (!tr) tr = json_object_get(v, "input_audio_transcription");
  if (tr && !json_is_null(tr)) {
    if (!json_is_object(tr) ||
        id_field(tr, "model", s.transcribe_model, sizeof s.transcribe_model,
                 "session.audio.input.transcription.model", e) ||
        id_field(tr, "language", s.language, sizeof s.language,
                 "session.audio.input.transcription.language", e)) {
      if (!json_is_object(tr))
        BAD(e, "session.audio.input.transcription", "invalid_value",
            "transcription must be an object or null");
      return -1;
    }
  } else if (tr) {
    s.transcribe_model[0] = '\0';
  }
  /* modalities */
  json_t *mods = json_object_get(v, "output_modalities");
  if (!mods) mods = json_object_get(v, "modalities");
  if (mods) {
    bool a = false, t = false, ok = json_is_array(mods) && json_array_size(mods) > 0;
    size_t i;
    json_t *m;
    json_array_foreach(mods, i, m) {
      const char *ms = json_string_value(m);
      if (ms && strcmp(ms, "audio") == 0)
        a = true;
      else if (ms && strcmp(ms, "text") == 0)
        t = true;
      else
        ok = false;
    }
    if (!ok || (!a && !t)) {
      BAD(e, "session.output_modalities", "invalid_value",
          "output_modalities must be [\"audio\"] or [\"text\"] (or both)");
      return -1;
    }
    s.audio_out = a;
  }
  /* instructions, tools, temperature, tokens */
  json_t *ins = json_object_get(v, "instructions");
  if (ins && !json_is_null(ins)) {
    if (!json_is_string(ins) || json_string_length(ins) > RT_MAX_INSTRUCTIONS) {
      BAD(e, "session.instructions", "invalid_value",
          "instructions must be a string of at most %d bytes", RT_MAX_INSTRUCTIONS);
      return -1;
    }
    instr = strdup(json_string_value(ins));
    if (!instr) {
      API_SERVER(e, "out_of_memory", "out of memory");
      return -1;
    }
  }
  json_t *tl = json_object_get(v, "tools");
  if (tl && !(tools = tools_parse(tl, e))) {
    free(instr);
    return -1;
  }
  double temp = s.temperature;
  if (num_field(v, "temperature", 0, 2, &temp, "session.temperature", e)) goto fail;
  json_t *mt = json_object_get(v, "max_output_tokens");
  if (!mt) mt = json_object_get(v, "max_response_output_tokens");
  if (mt && !(json_is_string(mt) && strcmp(json_string_value(mt), "inf") == 0)) {
    if (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > 32768) {
      BAD(e, "session.max_output_tokens", "invalid_value",
          "max_output_tokens must be 1..32768 or \"inf\"");
      goto fail;
    }
    s.max_output_tokens = (int)json_integer_value(mt);
  } else if (mt) {
    s.max_output_tokens = 0;
  }
  json_t *tc = json_object_get(v, "tool_choice");
  if (tc) {
    const char *cs = json_string_value(tc);
    const char *fname = json_string_value(json_object_get(tc, "name"));
    if (cs && (!strcmp(cs, "auto") || !strcmp(cs, "none") || !strcmp(cs, "required")))
      choice = json_string(cs);
    else if (json_is_object(tc) && fname)
      choice = json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", fname);
    else {
      BAD(e, "session.tool_choice", "invalid_value",
          "tool_choice must be auto, none, required or {type: function, name}");
      goto fail;
    }
  }
  s.temperature = temp;
  /* all good: apply */
  if (instr) {
    free(s0->instructions);
    s.instructions = instr;
  }
  if (tools) {
    json_decref(s0->tools);
    s.tools = tools;
  } else {
    s.tools = s0->tools;
  }
  if (choice) {
    json_decref(s0->tool_choice);
    s.tool_choice = choice;
  }
  *s0 = s;
  return 0;
fail:
  free(instr);
  json_decref(tools);
  json_decref(choice);
  return -1;
}

static json_t *fmt_json(rt_fmt f) {
  return f == RT_FMT_PCM16  ? json_pack("{s:s, s:i}", "type", "audio/pcm", "rate", RT_RATE)
         : f == RT_FMT_ULAW ? json_pack("{s:s}", "type", "audio/pcmu")
                            : json_pack("{s:s}", "type", "audio/pcma");
}

json_t *rt_session_json(const rt_session *s, const char *id, const char *model) {
  json_t *td =
      s->vad.server
          ? json_pack("{s:s, s:f, s:i, s:i, s:b, s:b}", "type", "server_vad", "threshold",
                      s->vad.threshold, "prefix_padding_ms", s->vad.prefix_padding_ms,
                      "silence_duration_ms", s->vad.silence_duration_ms, "create_response",
                      s->vad.create_response, "interrupt_response", s->vad.interrupt_response)
          : json_null();
  json_t *tr =
      s->transcribe_model[0] ? json_pack("{s:s}", "model", s->transcribe_model) : json_null();
  if (json_is_object(tr) && s->language[0])
    json_object_set_new(tr, "language", json_string(s->language));
  json_t *input = json_pack("{s:o, s:o, s:o}", "format", fmt_json(s->in_fmt), "transcription", tr,
                            "turn_detection", td);
  json_t *o =
      json_pack("{s:s, s:s, s:s, s:s}", "type", s->transcription ? "transcription" : "realtime",
                "object", s->transcription ? "realtime.transcription_session" : "realtime.session",
                "id", id, "model", model);
  json_object_set_new(o, "audio", json_pack("{s:o}", "input", input));
  if (!s->transcription) {
    json_object_set_new(json_object_get(o, "audio"), "output",
                        json_pack("{s:o, s:s}", "format", fmt_json(s->out_fmt), "voice",
                                  s->voice[0] ? s->voice : "default"));
    json_object_set_new(o, "output_modalities", json_pack("[s]", s->audio_out ? "audio" : "text"));
    json_object_set_new(o, "instructions", json_string(s->instructions ? s->instructions : ""));
    json_t *tools = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(s->tools, i, t) {
      json_t *fn = json_object_get(t, "function");
      json_t *rt = json_pack("{s:s, s:O}", "type", "function", "name", json_object_get(fn, "name"));
      if (json_object_get(fn, "description"))
        json_object_set(rt, "description", json_object_get(fn, "description"));
      if (json_object_get(fn, "parameters"))
        json_object_set(rt, "parameters", json_object_get(fn, "parameters"));
      json_array_append_new(tools, rt);
    }
    json_object_set_new(o, "tools", tools);
    json_object_set_new(o, "tool_choice",
                        s->tool_choice ? json_incref(s->tool_choice) : json_string("auto"));
    json_object_set_new(
        o, "max_output_tokens",
        s->max_output_tokens ? json_integer(s->max_output_tokens) : json_string("inf"));
  }
  return o;
}

json_t *rt_error_event(const api_error *e, const char *client_event_id) {
  json_t *err = json_pack("{s:s, s:s}", "type", e->type ? e->type : "invalid_request_error",
                          "message", e->message);
  json_object_set_new(err, "code", e->code ? json_string(e->code) : json_null());
  json_object_set_new(err, "param", e->param ? json_string(e->param) : json_null());
  json_object_set_new(
      err, "event_id",
      client_event_id && *client_event_id ? json_string(client_event_id) : json_null());
  return json_pack("{s:s, s:o}", "type", "error", "error", err);
}

int rt_item_content(const json_t *item, char **text, uint8_t **audio, size_t *audio_len,
                    size_t max_audio, api_error *e) {
  *text = NULL;
  *audio = NULL;
  *audio_len = 0;
  const char *type = json_string_value(json_object_get(item, "type"));
  if (type && strcmp(type, "function_call_output") == 0) {
    json_t *out = json_object_get(item, "output");
    if (!json_is_string(out) || !json_is_string(json_object_get(item, "call_id"))) {
      BAD(e, "item.output", "missing_field", "function_call_output needs call_id and output");
      return -1;
    }
    *text = strdup(json_string_value(out));
    return *text ? 0 : (API_SERVER(e, "out_of_memory", "out of memory"), -1);
  }
  const char *role = json_string_value(json_object_get(item, "role"));
  if ((type && strcmp(type, "message") != 0) || !role ||
      (strcmp(role, "user") != 0 && strcmp(role, "system") != 0 &&
       strcmp(role, "assistant") != 0)) {
    BAD(e, "item", "invalid_value",
        "item must be a message (role user, system or assistant) or a function_call_output");
    return -1;
  }
  json_t *content = json_object_get(item, "content");
  if (!json_is_array(content) || json_array_size(content) > 64) {
    BAD(e, "item.content", "invalid_value", "item.content must be an array of parts");
    return -1;
  }
  size_t total = 0;
  char *t = calloc(1, 1);
  size_t i;
  json_t *p;
  json_array_foreach(content, i, p) {
    const char *pt = json_string_value(json_object_get(p, "type"));
    json_t *tx = json_object_get(p, "text");
    if (!tx) tx = json_object_get(p, "transcript");
    if (pt &&
        (strcmp(pt, "input_text") == 0 || strcmp(pt, "text") == 0 ||
         strcmp(pt, "output_text") == 0) &&
        json_is_string(tx) && json_string_length(tx) <= RT_MAX_TEXT && t) {
      size_t l = json_string_length(tx);
      char *g = realloc(t, total + l + 1);
      if (!g) break;
      t = g;
      memcpy(t + total, json_string_value(tx), l + 1);
      total += l;
    } else if (pt && strcmp(pt, "input_audio") == 0) {
      uint8_t *b = NULL;
      size_t n = 0;
      if (decode_audio(json_object_get(p, "audio"), max_audio - *audio_len, &b, &n,
                       "item.content.audio", e)) {
        free(t);
        free(*audio);
        *audio = NULL;
        return -1;
      }
      uint8_t *g = realloc(*audio, *audio_len + n + 1);
      if (g) {
        memcpy(g + *audio_len, b, n);
        *audio = g;
        *audio_len += n;
      }
      free(b);
    } else if (!(pt && strcmp(pt, "audio") == 0)) {
      BAD(e, "item.content", "invalid_value",
          "content parts must be input_text, input_audio, text or audio");
      free(t);
      free(*audio);
      *audio = NULL;
      return -1;
    }
  }
  if (!t) {
    free(*audio);
    *audio = NULL;
    API_SERVER(e, "out_of_memory", "out of memory");
    return -1;
  }
  *text = t;
  return 0;
}

/* ---- audio ---- */

int rt_fmt_rate(rt_fmt fmt) { return fmt == RT_FMT_PCM16 ? RT_RATE : RT_G711_RATE; }

static int16_t ulaw_dec(uint8_t u) {
  u = (uint8_t)~u;
  int t = ((u & 0x0f) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return (int16_t)(u & 0x80 ? 0x84 - t : t - 0x84);
}

static int16_t alaw_dec(uint8_t a) {
  a ^= 0x55;
  int t = (a & 0x0f) << 4;
  int seg = (a & 0x70) >> 4;
  if (seg == 0)
    t += 8;
  else if (seg == 1)
    t += 0x108;
  else
    t = (t + 0x108) << (seg - 1);
  return (int16_t)(a & 0x80 ? t : -t);
}

static uint8_t ulaw_enc(int16_t s) {
  static const int bias = 0x84, clip = 32635;
  int sign = (s >> 8) & 0x80, v = s;
  if (sign) v = -v;
  if (v > clip) v = clip;
  v += bias;
  int exp = 7;
  for (int mask = 0x4000; (v & mask) == 0 && exp > 0; mask >>= 1) exp--;
  int mant = (v >> (exp + 3)) & 0x0f;
  return (uint8_t) ~(sign | (exp << 4) | mant);
}

static uint8_t alaw_enc(int16_t s) {
  int sign = s >= 0 ? 0x80 : 0, v = s >= 0 ? s : -(int)s - 1;
  if (v > 32767) v = 32767;
  int exp = 7;
  for (int mask = 0x4000; (v & mask) == 0 && exp > 0; mask >>= 1) exp--;
  int mant = exp == 0 ? (v >> 4) & 0x0f : (v >> (exp + 3)) & 0x0f;
  return (uint8_t)((sign | (exp << 4) | mant) ^ 0x55);
}

int rt_audio_to_float(rt_fmt fmt, const uint8_t *in, size_t n, float **out, size_t *n_out) {
  size_t k = fmt == RT_FMT_PCM16 ? n / 2 : n;
  if (k == 0) return 0;
  float *g = realloc(*out, (*n_out + k) * sizeof *g);
  if (!g) return -1;
  *out = g;
  for (size_t i = 0; i < k; i++) {
    int16_t s = fmt == RT_FMT_PCM16  ? (int16_t)(in[2 * i] | (in[2 * i + 1] << 8))
                : fmt == RT_FMT_ULAW ? ulaw_dec(in[i])
                                     : alaw_dec(in[i]);
    g[*n_out + i] = (float)s / 32768.0f;
  }
  *n_out += k;
  return 0;
}

uint8_t *rt_audio_from_float(rt_fmt fmt, const float *in, size_t n, size_t *n_out) {
  size_t bytes = fmt == RT_FMT_PCM16 ? 2 * n : n;
  uint8_t *o = malloc(bytes ? bytes : 1);
  if (!o) return NULL;
  for (size_t i = 0; i < n; i++) {
    float f = in[i] != in[i] ? 0.0f : in[i];
    if (f > 1.0f) f = 1.0f;
    if (f < -1.0f) f = -1.0f;
    int16_t s = (int16_t)lrintf(f * 32767.0f);
    if (fmt == RT_FMT_PCM16) {
      o[2 * i] = (uint8_t)(s & 0xff);
      o[2 * i + 1] = (uint8_t)((s >> 8) & 0xff);
    } else {
      o[i] = fmt == RT_FMT_ULAW ? ulaw_enc(s) : alaw_enc(s);
    }
  }
  *n_out = bytes;
  return o;
}

double rt_vad_level(const float *pcm, size_t n) {
  if (n == 0) return 0;
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)pcm[i] * pcm[i];
  double rms = sqrt(sum / (double)n);
  if (rms < 1e-6) return 0;
  /* dBFS mapped onto 0..1: -60 dBFS → 0, 0 dBFS → 1 (so 0.5 ≈ -30 dBFS) */
  double db = 20 * log10(rms), v = (db + 60) / 60;
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
