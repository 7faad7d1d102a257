/* toolcall.c — the incremental parser of toolcall.h: raw generated text in, content / reasoning /
 * tool call events out.
 *
 * The parser is a state machine over `in`, the text fed but not yet decided:
 *   START    output start: look through whitespace for the reasoning opener (when the prompt
 *            already opened it, an opener the model repeats is skipped)
 *   REASON   inside <think>: reasoning until the closer
 *   CONTENT  content until a tool-call marker (<tool_call>, [TOOL_CALLS], ...)
 *   CALL     inside a call: its text is kept in `raw` until it is complete and checked, then it
 *            becomes events, or, when it is not a valid call, content (raw as it was written)
 *   TRAILER  after a call: skip whitespace and the optional closer (</tool_call>)
 * A step decides as much of `in` as it can; a piece that could still be the start of a marker is
 * left in `in` for the next feed. Content and reasoning pass through a channel that holds back an
 * incomplete UTF-8 sequence and trailing whitespace (dropped before a call or </think>), so the
 * events are the same whatever the split of the text.
 *
 * Arguments are never re-serialized from parsed numbers (jansson would print 0.1 as
 * 0.10000000000000001): the model's JSON text is minified (whitespace outside strings dropped)
 * after jansson has checked it. */
#include "toolcall.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"

#define WS_HOLD_MAX 4096    /* trailing whitespace held back at most, then emitted */
#define START_LOOK_MAX 4096 /* leading whitespace looked through for a reasoning opener */
#define NAME_MAX_LEN 256    /* function, parameter and call id names */
#define MSG_MAX_BYTES (64u << 20)
#define MARK_MAX 64 /* reasoning markers longer than this are ignored */

enum fmt { F_NONE, F_HERMES, F_QWEN3C, F_LLAMA3, F_MISTRAL };
enum st { ST_START, ST_REASON, ST_CONTENT, ST_CALL, ST_TRAILER };
enum cs {
  CS_JSON_PRE,   /* whitespace, then '{' (or '[' when array_ok) */
  CS_JSON,       /* scanning the JSON to its balanced end */
  CS_MS_PRE,     /* after [TOOL_CALLS]: '[' (array form) or a name (NAME[ARGS] form) */
  CS_MS_NAME,    /* NAME up to [ARGS] or [CALL_ID] */
  CS_MS_ID,      /* call id up to [ARGS] */
  CS_QC_PRE,     /* after <tool_call>: whitespace, then <function= (or hermes JSON) */
  CS_QC_FNAME,   /* function name up to '>' */
  CS_QC_BETWEEN, /* whitespace, then <parameter= or </function> */
  CS_QC_PNAME,   /* parameter name up to '>' */
  CS_QC_PVALUE,  /* raw value up to </parameter> */
};
enum { M_NO, M_PART, M_FULL };
enum mk { MK_TOOL_CALL, MK_FUNCTION, MK_TOOL_CALLS, MK_PYTHON_TAG, MK_BRACE };

typedef struct marker {
  const char *lit;
  enum mk kind;
} marker;

/* An output channel (content or reasoning). */
typedef struct chan {
  sy_tc_kind kind;
  sy_buf ws;              /* trailing whitespace held back */
  unsigned char carry[4]; /* an incomplete UTF-8 sequence held back */
  size_t ncarry;
  bool strip_lead; /* drop leading whitespace (after </think>, after a call) */
  sy_buf all;      /* everything emitted, for the final message */
} chan;

typedef struct pend {
  char *name;
  char *args;
} pend;

struct sy_tc_parser {
  enum fmt fmt;
  char think_open[MARK_MAX + 1], think_close[MARK_MAX + 1]; /* "" when none */
  json_t *tools; /* the request's tools; NULL: tool parsing off */
  marker markers[3];
  int nmarkers;
  bool brace; /* llama3: a bare '{' at the start of a content segment may be a call */

  enum st st;
  enum cs cs;
  sy_buf in;
  size_t pos;
  chan content, reason;
  bool seg_nonws;   /* the content since the start or the last call has non-whitespace */
  bool forced_open; /* the prompt ends inside a reasoning block */

  /* the call being read */
  sy_buf raw, name, pname, val;
  size_t json_at; /* where the JSON starts in raw */
  int depth;
  bool in_str, esc, array_ok, bare, ms_args;
  const char *trailer; /* literal that may follow the call, or NULL */
  json_t *qargs;       /* qwen3_coder: parameter name -> rendered JSON value text */

  json_t *calls;
  uint64_t rng;
  bool failed;
  sy_buf text, join, evbuf; /* scratch */
  sy_tc_emit_fn emit;
  void *ud;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *s, size_t n, size_t i) {
  while (i < n && is_ws(s[i])) i++;
  return i;
}

/* Does s[0..n) start with lit (M_FULL), or is it a proper prefix of lit (M_PART)? */
static int match(const char *s, size_t n, const char *lit) {
  size_t m = strlen(lit);
  if (n >= m) return memcmp(s, lit, m) == 0 ? M_FULL : M_NO;
  return memcmp(s, lit, n) == 0 ? M_PART : M_NO;
}

/* First position where lit occurs (M_FULL) or where a suffix of s starts lit (M_PART). */
static int find_lit(const char *s, size_t n, const char *lit, size_t *at) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] != lit[0]) continue;
    int r = match(s + i, n - i, lit);
    if (r != M_NO) {
      *at = i;
      return r;
    }
  }
  return M_NO;
}

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == ':';
}

static void buf_reset(sy_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

/* Length of the UTF-8 sequence at s: 1..4 when valid, 0 when invalid, -1 when the n bytes are a
 * valid but incomplete start. */
static int utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  int len;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
  } else {
    return 0;
  }
  for (int k = 1; k < len; k++) {
    if ((size_t)k >= n) return -1;
    unsigned b = s[k];
    if ((b & 0xC0) != 0x80) return 0;
    if (k == 1 && ((c == 0xE0 && b < 0xA0) || (c == 0xED && b > 0x9F) || (c == 0xF0 && b < 0x90) ||
                   (c == 0xF4 && b > 0x8F)))
      return 0;
  }
  return len;
}

/* One character of JSON text inside a string (*in_str): tracks escapes; returns true when c is
 * the quote that closes the string. */
static bool str_step(char c, bool *in_str, bool *esc) {
  if (*esc) {
    *esc = false;
  } else if (c == '\\') {
    *esc = true;
  } else if (c == '"') {
    *in_str = false;
    return true;
  }
  return false;
}

/* JSON text with the whitespace outside strings dropped (the compact form OpenAI sends). */
static char *minify(const char *s, size_t n) {
  char *o = malloc(n + 1);
  if (!o) return NULL;
  size_t k = 0;
  bool in_str = false, esc = false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      str_step(c, &in_str, &esc);
    } else if (c == '"') {
      in_str = true;
    } else if (is_ws(c)) {
      continue;
    }
    o[k++] = c;
  }
  o[k] = '\0';
  return o;
}

/* Index just past the JSON value at s[i] (the text was checked by jansson; bounds kept anyway). */
static size_t skip_value(const char *s, size_t n, size_t i) {
  int depth = 0;
  bool in_str = false, esc = false;
  for (; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (str_step(c, &in_str, &esc) && depth == 0) return i + 1;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return i; /* end of the enclosing container: a primitive ended */
      if (--depth == 0) return i + 1;
    } else if (depth == 0 && (c == ',' || is_ws(c))) {
      return i;
    }
  }
  return n;
}

/* The text span of the last member named key in the object at s[i] == '{'. */
static bool member_span(const char *s, size_t n, size_t i, const char *key, size_t *vs,
                        size_t *ve) {
  size_t klen = strlen(key);
  bool found = false;
  i++;
  while (i < n) {
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != '"') break;
    size_t ks = i;
    i = skip_value(s, n, i);
    bool hit = i - ks == klen + 2 && memcmp(s + ks + 1, key, klen) == 0;
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != ':') break;
    i = skip_ws(s, n, i + 1);
    size_t v0 = i;
    i = skip_value(s, n, i);
    if (hit) {
      *vs = v0;
      *ve = i;
      found = true;
    }
    i = skip_ws(s, n, i);
    if (i >= n || s[i] != ',') break;
    i++;
  }
  return found;
}

/* ---- events and channels ------------------------------------------------------------------- */

static int emit_ev(sy_tc_parser *p, const sy_tc_event *ev) {
  if (p->failed) return -1;
  if (p->emit && p->emit(ev, p->ud) != 0) {
    p->failed = true;
    return -1;
  }
  return 0;
}

/* Emit a (held whitespace + body) piece of a channel. */
static int chan_emit(sy_tc_parser *p, chan *ch, const char *body, size_t n) {
  sy_buf *e = &p->evbuf;
  buf_reset(e);
  if (sy_buf_append(e, ch->ws.data, ch->ws.len) || sy_buf_append(e, body, n)) {
    p->failed = true;
    return -1;
  }
  buf_reset(&ch->ws);
  if (e->len == 0) return 0;
  (void)sy_buf_append(&ch->all, e->data, e->len); /* past MSG_MAX_BYTES the message is cut */
  sy_tc_event ev = {.kind = ch->kind, .index = -1, .text = e->data, .len = e->len};
  return emit_ev(p, &ev);
}

static const char REPL[] = "\xEF\xBF\xBD"; /* U+FFFD for bytes that are not UTF-8 */

/* Put text into a channel: emitted at once except an incomplete UTF-8 tail and trailing
 * whitespace, which wait for what follows. */
static int chan_put(sy_tc_parser *p, chan *ch, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t un = n;
  if (ch->ncarry) {
    buf_reset(&p->join);
    if (sy_buf_append(&p->join, ch->carry, ch->ncarry) || sy_buf_append(&p->join, s, n)) {
      p->failed = true;
      return -1;
    }
    u = (const unsigned char *)p->join.data;
    un = p->join.len;
    ch->ncarry = 0;
  }
  sy_buf *t = &p->text;
  buf_reset(t);
  size_t i = 0, from = 0;
  int rc = 0;
  while (i < un) {
    int l = utf8_seq(u + i, un - i);
    if (l > 0 && u[i] != 0) {
      i += (size_t)l;
      continue;
    }
    rc |= sy_buf_append(t, u + from, i - from);
    if (l < 0) {
      memcpy(ch->carry, u + i, un - i);
      ch->ncarry = un - i;
      from = i = un;
      break;
    }
    rc |= sy_buf_append(t, REPL, 3);
    from = ++i;
  }
  rc |= sy_buf_append(t, u + from, i - from);
  if (rc) {
    p->failed = true;
    return -1;
  }
  size_t a = 0, b = t->len;
  if (ch->strip_lead) {
    while (a < b && is_ws(t->data[a])) a++;
    if (a == b) return 0;
    ch->strip_lead = false;
  }
  while (b > a && is_ws(t->data[b - 1])) b--;
  if (b > a && chan_emit(p, ch, t->data + a, b - a)) return -1;
  if (sy_buf_append(&ch->ws, t->data + b, t->len - b)) {
    p->failed = true;
    return -1;
  }
  if (ch->ws.len > WS_HOLD_MAX) return chan_emit(p, ch, "", 0);
  return 0;
}

/* End of a channel's run: an incomplete UTF-8 tail becomes U+FFFD; held whitespace is emitted
 * (keep_ws) or dropped. */
static int chan_end(sy_tc_parser *p, chan *ch, bool keep_ws) {
  if (ch->ncarry) {
    ch->ncarry = 0;
    ch->strip_lead = false;
    if (chan_emit(p, ch, REPL, 3)) return -1;
  }
  if (keep_ws && ch->ws.len) return chan_emit(p, ch, "", 0);
  buf_reset(&ch->ws);
  return 0;
}

/* ---- tool calls ---------------------------------------------------------------------------- */

static const json_t *find_tool(const sy_tc_parser *p, const char *name) {
  size_t i;
  json_t *t;
  json_array_foreach(p->tools, i, t) {
    json_t *fn = json_object_get(t, "function");
    if (!fn) fn = t;
    const char *nm = json_string_value(json_object_get(fn, "name"));
    if (nm && strcmp(nm, name) == 0) return fn;
  }
  return NULL;
}

static void call_reset(sy_tc_parser *p) {
  buf_reset(&p->raw);
  buf_reset(&p->name);
  buf_reset(&p->pname);
  buf_reset(&p->val);
  p->json_at = 0;
  p->depth = 0;
  p->in_str = p->esc = p->array_ok = p->bare = p->ms_args = false;
  p->trailer = NULL;
  json_decref(p->qargs);
  p->qargs = NULL;
}

/* Not a valid call: its text so far is content, and the rest of `in` is read as content. */
static int call_fail(sy_tc_parser *p) {
  int rc = chan_put(p, &p->content, p->raw.data, p->raw.len);
  p->seg_nonws = true;
  call_reset(p);
  p->st = ST_CONTENT;
  return rc ? -1 : 1;
}

static uint64_t rnd(sy_tc_parser *p) {
  uint64_t x = p->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  p->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static void pend_free(pend *pd, int n) {
  for (int i = 0; i < n; i++) {
    free(pd[i].name);
    free(pd[i].args);
  }
}

/* Checked calls become events; then the trailer (if any) and content again. */
static int commit(sy_tc_parser *p, pend *pd, int n) {
  if (n <= 0 || json_array_size(p->calls) + (size_t)n > SY_TC_MAX_CALLS) return call_fail(p);
  if (chan_end(p, &p->content, false)) return -1;
  for (int k = 0; k < n; k++) {
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char id[5 + 24 + 1] = "call_";
    for (int j = 0; j < 24; j++) id[5 + j] = al[rnd(p) % 62];
    id[29] = '\0';
    int idx = (int)json_array_size(p->calls);
    json_t *c = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function",
                          "name", pd[k].name, "arguments", pd[k].args);
    if (!c || json_array_append_new(p->calls, c)) {
      p->failed = true;
      return -1;
    }
    sy_tc_event b = {.kind = SY_TC_CALL_BEGIN, .index = idx, .id = id, .name = pd[k].name};
    sy_tc_event a = {
        .kind = SY_TC_CALL_ARGS, .index = idx, .text = pd[k].args, .len = strlen(pd[k].args)};
    sy_tc_event e = {.kind = SY_TC_CALL_END, .index = idx};
    if (emit_ev(p, &b) || emit_ev(p, &a) || emit_ev(p, &e)) return -1;
  }
  const char *trailer = p->trailer;
  call_reset(p);
  p->content.strip_lead = true;
  p->seg_nonws = false;
  p->st = trailer ? ST_TRAILER : ST_CONTENT;
  p->trailer = trailer;
  return 1;
}

/* A function the request's tools offer. */
static bool name_known(const sy_tc_parser *p, const char *name) {
  return name[0] && find_tool(p, name) != NULL;
}

/* Arguments JSON text from a member value: an object (minified), a string holding an object,
 * null or missing ({}). */
static char *args_text(const char *s, size_t n, const json_t *v, size_t vs, size_t ve) {
  if (!v || json_is_null(v)) return strdup("{}");
  if (json_is_object(v)) return minify(s + vs, ve - vs);
  if (!json_is_string(v)) return NULL;
  const char *str = json_string_value(v);
  size_t len = json_string_length(v);
  json_t *in = json_loadb(str, len, JSON_DECODE_INT_AS_REAL, NULL);
  bool ok = json_is_object(in);
  json_decref(in);
  return ok ? minify(str, len) : NULL;
}

/* One {"name": ..., "arguments"|"parameters": ...} object (text at s[i], parsed as obj). */
static int obj_call(const sy_tc_parser *p, const char *s, size_t n, size_t i, const json_t *obj,
                    pend *out) {
  if (!json_is_object(obj)) return -1;
  const char *name = json_string_value(json_object_get(obj, "name"));
  if (!name || !name_known(p, name)) return -1;
  const char *key = json_object_get(obj, "arguments") ? "arguments" : "parameters";
  const json_t *v = json_object_get(obj, key);
  size_t vs = 0, ve = 0;
  if (v && !member_span(s, n, i, key, &vs, &ve)) return -1;
  out->args = args_text(s, n, v, vs, ve);
  out->name = strdup(name);
  return out->args && out->name ? 0 : -1;
}

/* The call's JSON is complete: check it and commit, or fall back to content. */
static int json_done(sy_tc_parser *p) {
  const char *s = p->raw.data + p->json_at;
  size_t n = p->raw.len - p->json_at;
  json_t *v = json_loadb(s, n, JSON_DECODE_INT_AS_REAL, NULL);
  if (!v) return call_fail(p);
  pend pd[SY_TC_MAX_CALLS];
  int np = 0, bad = 0;
  memset(pd, 0, sizeof pd);
  if (p->ms_args) { /* [TOOL_CALLS]NAME[ARGS]{...} */
    pd[0].name = strdup(p->name.data);
    pd[0].args = json_is_object(v) ? minify(s, n) : NULL;
    bad = !pd[0].name || !pd[0].args;
    np = 1;
  } else if (json_is_array(v)) { /* [TOOL_CALLS][{...}, ...] */
    size_t i = skip_ws(s, n, 0) + 1;
    for (size_t k = 0; k < json_array_size(v) && !bad; k++) {
      i = skip_ws(s, n, i);
      if (np >= SY_TC_MAX_CALLS) {
        bad = 1;
        break;
      }
      bad = obj_call(p, s, n, i, json_array_get(v, k), &pd[np++]) != 0;
      i = skip_ws(s, n, skip_value(s, n, i));
      if (i < n && s[i] == ',') i++;
    }
  } else {
    bad = obj_call(p, s, n, skip_ws(s, n, 0), v, &pd[np++]) != 0;
  }
  json_decref(v);
  int rc = bad ? call_fail(p) : commit(p, pd, np);
  pend_free(pd, np);
  return rc;
}

static bool type_is_string(const json_t *type) {
  if (json_is_string(type)) return strcmp(json_string_value(type), "string") == 0;
  size_t i;
  json_t *t;
  json_array_foreach(type, i, t) {
    if (json_is_string(t) && strcmp(json_string_value(t), "string") == 0) return true;
  }
  return false;
}

/* A qwen3_coder parameter is complete: render its value as JSON text by the tool's schema. */
static int qc_param(sy_tc_parser *p) {
  const char *name = p->pname.data;
  const char *v = p->val.data ? p->val.data : "";
  size_t n = p->val.len;
  /* the template writes "<parameter=P>\n" VALUE "\n</parameter>" */
  if (n && v[0] == '\n') v++, n--;
  if (n && v[n - 1] == '\n') n--;
  const json_t *fn = find_tool(p, p->name.data);
  const json_t *props = json_object_get(json_object_get(fn, "parameters"), "properties");
  const json_t *type = json_object_get(json_object_get(props, name), "type");
  char *rendered = NULL;
  if (!type_is_string(type)) {
    size_t a = skip_ws(v, n, 0), b = n;
    while (b > a && is_ws(v[b - 1])) b--;
    json_t *j =
        b > a ? json_loadb(v + a, b - a, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL) : NULL;
    if (j) rendered = minify(v + a, b - a);
    json_decref(j);
  }
  if (!rendered) {
    json_t *js = json_stringn(v, n);
    rendered = js ? json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(js);
  }
  json_t *r = rendered ? json_string(rendered) : NULL;
  free(rendered);
  if (!r || json_object_set_new(p->qargs, name, r)) return -1;
  return 0;
}

static int qc_commit(sy_tc_parser *p) {
  sy_buf a = {0};
  int rc = sy_buf_append(&a, "{", 1);
  const char *k;
  json_t *v;
  bool first = true;
  json_object_foreach(p->qargs, k, v) {
    json_t *ks = json_string(k);
    char *kt = ks ? json_dumps(ks, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(ks);
    rc |= !kt || sy_buf_printf(&a, "%s%s:%s", first ? "" : ",", kt, json_string_value(v));
    free(kt);
    first = false;
  }
  rc |= sy_buf_append(&a, "}", 1);
  pend pd = {.name = strdup(p->name.data), .args = a.data};
  if (rc || !pd.name) {
    pend_free(&pd, 1);
    return call_fail(p);
  }
  rc = commit(p, &pd, 1);
  pend_free(&pd, 1);
  return rc;
}

/* ---- steps --------------------------------------------------------------------------------- */

/* Move n bytes of `in` into the call's raw text. */
static int take(sy_tc_parser *p, size_t n) {
  if (sy_buf_append(&p->raw, p->in.data + p->pos, n)) {
    p->failed = true;
    return -1;
  }
  p->pos += n;
  return 0;
}

/* Start a call at a marker (mlen bytes of `in`, 0 for a bare '{'). */
static int call_begin(sy_tc_parser *p, enum mk kind, size_t mlen) {
  call_reset(p);
  if (take(p, mlen)) return -1;
  p->st = ST_CALL;
  switch (kind) {
    case MK_TOOL_CALL:
      p->cs = p->fmt == F_QWEN3C ? CS_QC_PRE : CS_JSON_PRE;
      p->trailer = "</tool_call>";
      break;
    case MK_FUNCTION:
      p->cs = CS_QC_FNAME;
      p->trailer = "</tool_call>";
      break;
    case MK_TOOL_CALLS:
      p->cs = CS_MS_PRE;
      break;
    case MK_PYTHON_TAG:
    case MK_BRACE:
      p->cs = CS_JSON_PRE;
      p->bare = kind == MK_BRACE;
      p->trailer = ";";
      break;
  }
  return 1;
}

/* Read a name up to '>' into dst (qwen3_coder function and parameter names). 1: got it. */
static int read_tag_name(sy_tc_parser *p, sy_buf *dst, const char *s, size_t n, bool *bad) {
  size_t k = 0;
  while (k < n && s[k] != '>') {
    unsigned char c = (unsigned char)s[k];
    if (c < 0x20 || c == '<' || dst->len + k >= NAME_MAX_LEN) {
      *bad = true;
      return 0;
    }
    k++;
  }
  if (sy_buf_append(dst, s, k) || take(p, k < n ? k + 1 : k)) {
    p->failed = true;
    return 0;
  }
  if (k == n) return 0;
  while (dst->len && dst->data[dst->len - 1] == ' ') dst->data[--dst->len] = '\0';
  size_t a = 0;
  while (a < dst->len && dst->data[a] == ' ') a++;
  sy_buf_consume(dst, a);
  if (dst->len == 0) *bad = true;
  return 1;
}

static int step_call(sy_tc_parser *p, const char *s, size_t n, bool eof) {
  size_t at;
  int m;
  bool bad = false;
  switch (p->cs) {
    case CS_JSON_PRE: {
      size_t j = skip_ws(s, n, 0);
      if (take(p, j)) return -1;
      if (j == n) return eof ? call_fail(p) : j > 0;
      if (s[j] != '{' && !(p->array_ok && s[j] == '[')) return call_fail(p);
      p->json_at = p->raw.len;
      p->depth = 0;
      p->cs = CS_JSON;
      return 1;
    }
    case CS_JSON: {
      size_t k = 0;
      bool done = false;
      for (; k < n && !done; k++) {
        char c = s[k];
        if (p->bare && p->depth == 1 && !is_ws(c)) {
          /* a bare '{' is a call only as {"...: prose and code fall back at once, the same
           * way whatever the split */
          if (c != '"') {
            bad = true;
            break;
          }
          p->bare = false;
        }
        if (p->in_str) {
          if (p->esc) {
            p->esc = false;
          } else if (c == '\\') {
            p->esc = true;
          } else if (c == '"') {
            p->in_str = false;
          }
        } else if (c == '"') {
          p->in_str = true;
        } else if (c == '{' || c == '[') {
          if (++p->depth > SY_TC_MAX_DEPTH) bad = true;
        } else if (c == '}' || c == ']') {
          if (--p->depth <= 0) done = true;
        }
        if (bad) break;
      }
      if (take(p, k)) return -1;
      if (bad) return call_fail(p);
      if (done) return json_done(p);
      if (eof) return call_fail(p);
      return k > 0;
    }
    case CS_MS_PRE: {
      size_t j = skip_ws(s, n, 0);
      if (take(p, j)) return -1;
      if (j == n) return eof ? call_fail(p) : j > 0;
      if (s[j] == '[' || s[j] == '{') { /* [{...}, ...], or a lone {...} */
        p->array_ok = true;
        p->cs = CS_JSON_PRE;
      } else {
        p->cs = CS_MS_NAME;
      }
      return 1;
    }
    case CS_MS_NAME:
    case CS_MS_ID: {
      sy_buf scratch = {0};
      sy_buf *dst = p->cs == CS_MS_NAME ? &p->name : &scratch;
      size_t k = 0;
      while (k < n && name_char(s[k])) k++;
      int rc = sy_buf_append(dst, s, k) | take(p, k);
      size_t have = dst->len;
      sy_buf_free(&scratch);
      if (rc) return -1;
      if (have > NAME_MAX_LEN) return call_fail(p);
      if (k == n) return eof ? call_fail(p) : k > 0;
      if (p->cs == CS_MS_NAME && p->name.len == 0) return call_fail(p);
      if ((m = match(s + k, n - k, "[ARGS]")) == M_FULL) {
        if (take(p, 6)) return -1;
        if (!name_known(p, p->name.data)) return call_fail(p);
        p->ms_args = true;
        p->cs = CS_JSON_PRE;
        return 1;
      }
      int m2 = p->cs == CS_MS_NAME ? match(s + k, n - k, "[CALL_ID]") : M_NO;
      if (m2 == M_FULL) {
        if (take(p, 9)) return -1;
        p->cs = CS_MS_ID;
        return 1;
      }
      if ((m == M_PART || m2 == M_PART) && !eof) return k > 0;
      return call_fail(p);
    }
    case CS_QC_PRE: {
      size_t j = skip_ws(s, n, 0);
      if (take(p, j)) return -1;
      if (j == n) return eof ? call_fail(p) : j > 0;
      if (s[j] == '{') { /* hermes JSON inside <tool_call>: take it too */
        p->cs = CS_JSON_PRE;
        return 1;
      }
      m = match(s + j, n - j, "<function=");
      if (m == M_FULL) {
        if (take(p, 10)) return -1;
        p->cs = CS_QC_FNAME;
        return 1;
      }
      if (m == M_PART && !eof) return j > 0;
      return call_fail(p);
    }
    case CS_QC_FNAME:
    case CS_QC_PNAME: {
      bool fn = p->cs == CS_QC_FNAME;
      size_t before = p->pos;
      int got = read_tag_name(p, fn ? &p->name : &p->pname, s, n, &bad);
      if (p->failed) return -1;
      if (bad) return call_fail(p);
      if (!got) return eof ? call_fail(p) : p->pos > before;
      if (fn) {
        if (!name_known(p, p->name.data)) return call_fail(p);
        p->qargs = json_object();
        if (!p->qargs) return -1;
        p->cs = CS_QC_BETWEEN;
      } else {
        buf_reset(&p->val);
        p->cs = CS_QC_PVALUE;
      }
      return 1;
    }
    case CS_QC_BETWEEN: {
      size_t j = skip_ws(s, n, 0);
      if (take(p, j)) return -1;
      /* at the end, a function whose parameters are all closed is a call even without the
       * closing tags (the model may stop on them) */
      if (j == n) return eof ? qc_commit(p) : j > 0;
      if ((m = match(s + j, n - j, "<parameter=")) == M_FULL) {
        if (take(p, 11)) return -1;
        buf_reset(&p->pname);
        p->cs = CS_QC_PNAME;
        return 1;
      }
      int m2 = match(s + j, n - j, "</function>");
      if (m2 == M_FULL) {
        if (take(p, 11)) return -1;
        return qc_commit(p);
      }
      if (m == M_PART || m2 == M_PART) {
        if (!eof) return j > 0;
        if (m2 == M_PART) {
          if (take(p, n - j)) return -1;
          return qc_commit(p);
        }
      }
      return call_fail(p);
    }
    case CS_QC_PVALUE: {
      m = find_lit(s, n, "</parameter>", &at);
      size_t k = m == M_NO ? n : at;
      if (sy_buf_append(&p->val, s, k) || take(p, k)) return -1;
      if (m == M_FULL) {
        if (take(p, 12)) return -1;
        if (qc_param(p)) return call_fail(p);
        p->cs = CS_QC_BETWEEN;
        return 1;
      }
      if (eof) return call_fail(p);
      return k > 0;
    }
  }
  return 0;
}

static int step_content(sy_tc_parser *p, const char *s, size_t n, bool eof) {
  size_t i = 0, lead = 0;
  int found = M_NO;
  enum mk kind = MK_BRACE;
  size_t mlen = 0;
  if (p->brace && !p->seg_nonws) lead = skip_ws(s, n, 0);
  for (; i < n && found == M_NO; i++) {
    if (p->brace && !p->seg_nonws && i == lead && s[i] == '{') {
      found = M_FULL;
      kind = MK_BRACE;
      mlen = 0;
      break;
    }
    for (int k = 0; k < p->nmarkers; k++) {
      if (s[i] != p->markers[k].lit[0]) continue;
      int r = match(s + i, n - i, p->markers[k].lit);
      if (r == M_FULL || (r == M_PART && found == M_NO)) {
        found = r;
        kind = p->markers[k].kind;
        mlen = strlen(p->markers[k].lit);
      }
      if (r == M_FULL) break;
    }
    if (found != M_NO) break;
  }
  if (found == M_PART && eof) found = M_NO;
  size_t k = found == M_NO ? n : i;
  if (k) {
    for (size_t j = 0; j < k && !p->seg_nonws; j++)
      if (!is_ws(s[j])) p->seg_nonws = true;
    if (chan_put(p, &p->content, s, k)) return -1;
    p->pos += k;
  }
  if (found == M_FULL) return call_begin(p, kind, mlen);
  return 0; /* everything decided, or the rest may be a marker: wait */
}

static int step_start(sy_tc_parser *p, const char *s, size_t n, bool eof) {
  size_t j = skip_ws(s, n, 0);
  int m = j < n ? match(s + j, n - j, p->think_open) : M_PART;
  if (m == M_FULL) {
    p->pos += j + strlen(p->think_open);
    p->reason.strip_lead = true;
    p->st = ST_REASON;
    return 1;
  }
  if (m == M_PART && !eof && n <= START_LOOK_MAX) return 0;
  if (p->forced_open) { /* the prompt opened the block: the text is reasoning from the start */
    p->reason.strip_lead = true;
    p->st = ST_REASON;
  } else {
    p->st = ST_CONTENT;
  }
  return 1;
}

static int step_reason(sy_tc_parser *p, const char *s, size_t n, bool eof) {
  size_t at = 0;
  int m = find_lit(s, n, p->think_close, &at);
  if (m == M_PART && eof) m = M_NO;
  size_t k = m == M_NO ? n : at;
  if (k && chan_put(p, &p->reason, s, k)) return -1;
  p->pos += k;
  if (m != M_FULL) return 0;
  p->pos += strlen(p->think_close);
  if (chan_end(p, &p->reason, false)) return -1;
  p->content.strip_lead = true;
  p->st = ST_CONTENT;
  return 1;
}

static int step_trailer(sy_tc_parser *p, const char *s, size_t n, bool eof) {
  size_t j = skip_ws(s, n, 0);
  p->pos += j; /* whitespace after a call is dropped anyway */
  if (j == n && !eof) return j > 0;
  int m = j < n ? match(s + j, n - j, p->trailer) : M_NO;
  if (m == M_PART && !eof) return j > 0;
  if (m == M_FULL) p->pos += strlen(p->trailer);
  if (m == M_PART) p->pos += n - j; /* cut off inside the closing tag: still markup */
  p->trailer = NULL;
  p->st = ST_CONTENT;
  return 1;
}

/* One step: 1 when it made progress, 0 when it needs more text, -1 on failure. */
static int step(sy_tc_parser *p, bool eof) {
  const char *s = p->in.data + p->pos;
  size_t n = p->in.len - p->pos;
  switch (p->st) {
    case ST_START:
      return step_start(p, s, n, eof);
    case ST_REASON:
      return step_reason(p, s, n, eof);
    case ST_CONTENT:
      return n ? step_content(p, s, n, eof) : 0;
    case ST_TRAILER:
      return step_trailer(p, s, n, eof);
    case ST_CALL: {
      int r = step_call(p, s, n, eof);
      if (r >= 0 && p->st == ST_CALL && p->raw.len > SY_TC_MAX_CALL_BYTES) return call_fail(p);
      return r;
    }
  }
  return 0;
}

static int run(sy_tc_parser *p, bool eof) {
  int r = 0;
  while (!p->failed && (r = step(p, eof)) > 0) {
  }
  if (!p->failed && r < 0) p->failed = true;
  sy_buf_consume(&p->in, p->pos);
  p->pos = 0;
  return p->failed ? -1 : 0;
}

/* ---- API ----------------------------------------------------------------------------------- */

sy_tc_parser *sy_tc_new(const sy_chat_format *f, const json_t *tools, bool thinking_open) {
  const char *name = f && f->tools ? f->tools : "none";
  enum fmt fmt;
  if (strcmp(name, "none") == 0) {
    fmt = F_NONE;
  } else if (strcmp(name, "hermes") == 0) {
    fmt = F_HERMES;
  } else if (strcmp(name, "qwen3_coder") == 0) {
    fmt = F_QWEN3C;
  } else if (strcmp(name, "llama3") == 0) {
    fmt = F_LLAMA3;
  } else if (strcmp(name, "mistral") == 0) {
    fmt = F_MISTRAL;
  } else {
    return NULL;
  }
  sy_tc_parser *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->fmt = fmt;
  if (f && f->think_open && f->think_close && f->think_open[0] && f->think_close[0] &&
      strlen(f->think_open) <= MARK_MAX && strlen(f->think_close) <= MARK_MAX) {
    strcpy(p->think_open, f->think_open);
    strcpy(p->think_close, f->think_close);
  }
  if (fmt != F_NONE && json_is_array(tools) && json_array_size(tools) > 0)
    p->tools = json_incref((json_t *)tools);
  if (p->tools) {
    switch (fmt) {
      case F_HERMES:
        p->markers[p->nmarkers++] = (marker){"<tool_call>", MK_TOOL_CALL};
        break;
      case F_QWEN3C:
        p->markers[p->nmarkers++] = (marker){"<tool_call>", MK_TOOL_CALL};
        p->markers[p->nmarkers++] = (marker){"<function=", MK_FUNCTION};
        break;
      case F_LLAMA3:
        p->markers[p->nmarkers++] = (marker){"<|python_tag|>", MK_PYTHON_TAG};
        p->brace = true;
        break;
      case F_MISTRAL:
        p->markers[p->nmarkers++] = (marker){"[TOOL_CALLS]", MK_TOOL_CALLS};
        break;
      case F_NONE:
        break;
    }
  }
  p->content.kind = SY_TC_CONTENT;
  p->reason.kind = SY_TC_REASONING;
  p->content.all.limit = p->reason.all.limit = MSG_MAX_BYTES;
  p->calls = json_array();
  if (!p->calls || sy_buf_append(&p->in, "", 0)) {
    sy_tc_free(p);
    return NULL;
  }
  if (!p->think_open[0]) {
    p->st = ST_CONTENT;
  } else {
    /* forced open: a model that repeats the opener anyway must not show it in its reasoning */
    p->forced_open = thinking_open;
    p->st = ST_START;
  }
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)p;
  }
  sy_tc_seed(p, seed);
  return p;
}

void sy_tc_seed(sy_tc_parser *p, uint64_t seed) {
  /* splitmix64, so that small seeds spread; the xorshift state must not be 0 */
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  p->rng = z ? z : 0x9E3779B97F4A7C15ULL;
}

int sy_tc_feed(sy_tc_parser *p, const char *text, size_t len, sy_tc_emit_fn emit, void *ud) {
  if (p->failed) return -1;
  p->emit = emit;
  p->ud = ud;
  if (len && sy_buf_append(&p->in, text, len)) {
    p->failed = true;
    return -1;
  }
  return run(p, false);
}

int sy_tc_finish(sy_tc_parser *p, sy_tc_emit_fn emit, void *ud) {
  if (p->failed) return -1;
  p->emit = emit;
  p->ud = ud;
  if (run(p, true)) return -1;
  if (p->st == ST_CALL && call_fail(p) < 0) return -1; /* not reached: eof steps decide calls */
  if (run(p, true)) return -1;
  if (chan_end(p, &p->reason, false) || chan_end(p, &p->content, true)) return -1;
  return 0;
}

json_t *sy_tc_message(const sy_tc_parser *p) {
  bool calls = json_array_size(p->calls) > 0;
  json_t *m = json_object();
  if (!m) return NULL;
  int rc = json_object_set_new(m, "role", json_string("assistant"));
  if (p->content.all.len || !calls) {
    rc |= json_object_set_new(
        m, "content",
        json_stringn(p->content.all.data ? p->content.all.data : "", p->content.all.len));
  } else {
    rc |= json_object_set_new(m, "content", json_null());
  }
  if (p->reason.all.len)
    rc |= json_object_set_new(m, "reasoning_content",
                              json_stringn(p->reason.all.data, p->reason.all.len));
  if (calls) rc |= json_object_set_new(m, "tool_calls", json_deep_copy(p->calls));
  if (rc) {
    json_decref(m);
    return NULL;
  }
  return m;
}

int sy_tc_call_count(const sy_tc_parser *p) { return (int)json_array_size(p->calls); }

json_t *sy_tc_event_delta(const sy_tc_event *ev) {
  switch (ev->kind) {
    case SY_TC_CONTENT:
      return json_pack("{s:s%}", "content", ev->text, ev->len);
    case SY_TC_REASONING:
      return json_pack("{s:s%}", "reasoning_content", ev->text, ev->len);
    case SY_TC_CALL_BEGIN:
      return json_pack("{s:[{s:i, s:s, s:s, s:{s:s, s:s}}]}", "tool_calls", "index", ev->index,
                       "id", ev->id, "type", "function", "function", "name", ev->name, "arguments",
                       "");
    case SY_TC_CALL_ARGS:
      return json_pack("{s:[{s:i, s:{s:s%}}]}", "tool_calls", "index", ev->index, "function",
                       "arguments", ev->text, ev->len);
    case SY_TC_CALL_END:
      return NULL;
  }
  return NULL;
}

void sy_tc_free(sy_tc_parser *p) {
  if (!p) return;
  json_decref(p->tools);
  json_decref(p->qargs);
  json_decref(p->calls);
  sy_buf *bufs[] = {&p->in,         &p->content.ws, &p->content.all, &p->reason.ws,
                    &p->reason.all, &p->raw,        &p->name,        &p->pname,
                    &p->val,        &p->text,       &p->join,        &p->evbuf};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sy_buf_free(bufs[i]);
  free(p);
}
