/* jinja_parse.c — lexer and parser: template text -> AST, as llama.cpp's common/jinja/lexer.cpp
 * and parser.cpp do it (lstrip_blocks and trim_blocks always on, one trailing newline dropped,
 * `-` after an operand is binary, otherwise it starts a number).
 *
 * Node fields by kind:
 *   N_TEXT/N_STR s,slen   N_COMMENT   N_INT i   N_FLOAT f   N_IDENT s,slen
 *   N_IF a=test l1=body l2=else        N_FOR a=loopvar b=iterable l1=body l2=else
 *   N_SET a=target b=value|NULL l1=body   N_MACRO a=name l1=params l2=body
 *   N_CALLSTMT a=call l1=caller params l2=body   N_FILTERSTMT a=filter l1=body
 *   N_ARRAY/N_TUPLE l1   N_OBJECT l1=keys l2=values   N_MEMBER a=object b=property flag=computed
 *   N_CALL a=callee l1=args   N_BINARY op a b   N_NOT a   N_FILTER a=operand b=filter
 *   N_TEST a=operand b=test flag=negate   N_SELECT a=value b=test   N_TERNARY a=cond b=then c=else
 *   N_SLICE a,b,c (each may be NULL)   N_KWARG a=key b=value   N_SPREAD a   N_BLANK */
#include "jinja_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JP_MAX_DEPTH 200

/* ---- arena ---- */

struct ja_block {
  ja_block *next;
  size_t used, cap;
  max_align_t data[];
};

#define JA_BLOCK 65536

void *ja_alloc(ja_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n == 0) n = 16;
  ja_block *b = a->head;
  if (!b || b->cap - b->used < n) {
    size_t cap = n > JA_BLOCK / 2 ? n : JA_BLOCK;
    if (a->limit && (a->total + cap + sizeof(ja_block) > a->limit || cap > a->limit)) return NULL;
    ja_block *nb = malloc(sizeof(ja_block) + cap);
    if (!nb) return NULL;
    nb->used = 0;
    nb->cap = cap;
    a->total += sizeof(ja_block) + cap;
    if (b && cap != JA_BLOCK && b->cap - b->used >= 256) {
      /* a big one-off: keep the current block in front for small allocations */
      nb->next = b->next;
      b->next = nb;
      nb->used = n;
      memset(nb->data, 0, n);
      return nb->data;
    }
    nb->next = b;
    a->head = nb;
    b = nb;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  memset(p, 0, n);
  return p;
}

void ja_free_all(ja_arena *a) {
  ja_block *b = a->head;
  while (b) {
    ja_block *n = b->next;
    free(b);
    b = n;
  }
  a->head = NULL;
  a->total = 0;
}

void jinja_line_col(const char *src, size_t len, size_t pos, int *line, int *col) {
  int l = 1, c = 1;
  for (size_t i = 0; i < pos && i < len; i++) {
    if (src[i] == '\n') {
      l++;
      c = 1;
    } else {
      c++;
    }
  }
  *line = l;
  *col = c;
}

/* ---- lexer ---- */

enum {
  T_EOF,
  T_TEXT,
  T_NUM,
  T_STR,
  T_IDENT,
  T_EQUALS,
  T_LPAREN,
  T_RPAREN,
  T_OPEN_STMT,
  T_CLOSE_STMT,
  T_OPEN_EXPR,
  T_CLOSE_EXPR,
  T_LBRACKET,
  T_RBRACKET,
  T_LBRACE,
  T_RBRACE,
  T_COMMA,
  T_DOT,
  T_COLON,
  T_PIPE,
  T_ADD,
  T_MUL,
  T_CMP,
  T_UNARY,
  T_COMMENT
};

typedef struct {
  int t;
  const char *v;
  size_t vlen;
  size_t pos;
} jtok;

typedef struct {
  jinja_tmpl *t;
  const char *src;
  size_t n;
  jtok *tok;
  size_t ntok, ctok;
  size_t cur;
  int depth;
  jmp_buf jb;
  char *err;
  size_t err_len;
} jp;

static _Noreturn __attribute__((format(printf, 3, 4))) void jp_fail(jp *p, size_t pos,
                                                                    const char *fmt, ...) {
  if (p->err && p->err_len) {
    int line, col;
    jinja_line_col(p->src, p->n, pos, &line, &col);
    int k = snprintf(p->err, p->err_len, "jinja: %d:%d: ", line, col);
    if (k >= 0 && (size_t)k < p->err_len) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->err + k, p->err_len - (size_t)k, fmt, ap);
      va_end(ap);
    }
    for (char *q = p->err; *q; q++)
      if (*q == '\n' || *q == '\r') *q = ' ';
  }
  longjmp(p->jb, 1);
}

static void *jp_alloc(jp *p, size_t n) {
  void *q = ja_alloc(&p->t->arena, n);
  if (!q) jp_fail(p, 0, "out of memory");
  return q;
}

static void push_tok(jp *p, int t, const char *v, size_t vlen, size_t pos) {
  if (p->ntok == p->ctok) {
    size_t nc = p->ctok ? p->ctok * 2 : 256;
    jtok *nt = realloc(p->tok, nc * sizeof(*nt));
    if (!nt) jp_fail(p, pos, "out of memory");
    p->tok = nt;
    p->ctok = nc;
  }
  p->tok[p->ntok++] = (jtok){t, v, vlen, pos};
}

static char at(const jp *p, size_t i) { return i < p->n ? p->src[i] : '\0'; }

/* llama.cpp's next_pos_is: src[pos + k] is one of chars (and exists) */
static bool next_is(const jp *p, size_t pos, size_t k, const char *chars) {
  if (pos + k >= p->n) return false;
  return strchr(chars, p->src[pos + k]) != NULL && p->src[pos + k] != '\0';
}

static bool is_word(char c) { return isalnum((unsigned char)c) || c == '_'; }

static bool is_digit(char c) { return isdigit((unsigned char)c) != 0; }

static size_t consume_numeric(const jp *p, size_t pos) {
  while (pos < p->n && is_digit(p->src[pos])) pos++;
  if (pos < p->n && p->src[pos] == '.' && pos + 1 < p->n && is_digit(p->src[pos + 1])) {
    pos++;
    while (pos < p->n && is_digit(p->src[pos])) pos++;
  }
  return pos;
}

static const struct {
  const char *seq;
  int t;
} lex_table[] = {
    {"{%-", T_OPEN_STMT}, {"-%}", T_CLOSE_STMT}, {"{{-", T_OPEN_EXPR}, {"-}}", T_CLOSE_EXPR},
    {"{%", T_OPEN_STMT},  {"%}", T_CLOSE_STMT},  {"{{", T_OPEN_EXPR},  {"}}", T_CLOSE_EXPR},
    {"(", T_LPAREN},      {")", T_RPAREN},       {"{", T_LBRACE},      {"}", T_RBRACE},
    {"[", T_LBRACKET},    {"]", T_RBRACKET},     {",", T_COMMA},       {".", T_DOT},
    {":", T_COLON},       {"|", T_PIPE},         {"<=", T_CMP},        {">=", T_CMP},
    {"==", T_CMP},        {"!=", T_CMP},         {"<", T_CMP},         {">", T_CMP},
    {"+", T_ADD},         {"-", T_ADD},          {"~", T_ADD},         {"*", T_MUL},
    {"/", T_MUL},         {"%", T_MUL},          {"=", T_EQUALS},
};

static void lex(jp *p) {
  const char *src = p->src;
  size_t n = p->n, pos = 0, curly = 0;
  while (pos < n) {
    size_t start_pos = pos;
    int last = p->ntok ? p->tok[p->ntok - 1].t : T_CLOSE_STMT;
    if (last == T_CLOSE_STMT || last == T_CLOSE_EXPR || last == T_COMMENT) {
      bool can_rm_nl = false, rstrip = false;
      if (pos > 3) {
        char c0 = src[pos - 3], c1 = src[pos - 2], c2 = src[pos - 1];
        rstrip = c0 == '-' && (c1 == '%' || c1 == '}' || c1 == '#') && c2 == '}';
        can_rm_nl = (c1 == '#' || c1 == '%' || c1 == '-') && c2 == '}';
      }
      size_t start = pos, end = start;
      while (pos < n && !(src[pos] == '{' && next_is(p, pos, 1, "%{#"))) end = ++pos;
      if (at(p, pos) == '{' && next_is(p, pos, 1, "%#-")) {
        size_t cur = end;
        while (cur > start) {
          char c = src[cur - 1];
          if (cur == 1) {
            end = 0;
            break;
          }
          if (c == '\n') {
            end = cur;
            break;
          }
          if (!isspace((unsigned char)c)) break;
          --cur;
        }
      }
      size_t ts = start, tl = end > start ? end - start : 0;
      if (can_rm_nl && tl && src[ts] == '\n') {
        ts++;
        tl--;
      }
      if (rstrip)
        while (tl && strchr(" \t\r\n", src[ts]) && src[ts]) {
          ts++;
          tl--;
        }
      bool lstrip = at(p, pos) == '{' && next_is(p, pos, 1, "{%#") && next_is(p, pos, 2, "-");
      if (lstrip)
        while (tl && strchr(" \t\r\n", src[ts + tl - 1]) && src[ts + tl - 1]) tl--;
      if (tl) {
        push_tok(p, T_TEXT, src + ts, tl, start_pos);
        continue;
      }
    }
    if (at(p, pos) == '{' && next_is(p, pos, 1, "#")) {
      start_pos = pos;
      pos += 2;
      while (!(at(p, pos) == '#' && next_is(p, pos, 1, "}"))) {
        if (pos + 2 >= n) jp_fail(p, pos, "missing end of comment tag");
        pos++;
      }
      push_tok(p, T_COMMENT, src + start_pos, 0, start_pos);
      pos += 2;
      continue;
    }
    if (at(p, pos) == '-' && (last == T_OPEN_EXPR || last == T_OPEN_STMT)) {
      pos++;
      if (pos >= n) break;
    }
    while (pos < n && isspace((unsigned char)src[pos])) pos++;
    if (pos >= n) break;
    char ch = src[pos];
    bool closing = ch == '-' && next_is(p, pos, 1, "%}");
    if (!closing && (ch == '-' || ch == '+')) {
      start_pos = pos;
      int lt = p->ntok ? p->tok[p->ntok - 1].t : T_EOF;
      if (lt == T_TEXT || lt == T_EOF) jp_fail(p, pos, "unexpected character: %c", ch);
      if (!(lt == T_IDENT || lt == T_NUM || lt == T_STR || lt == T_RPAREN || lt == T_RBRACKET)) {
        pos++;
        size_t e = consume_numeric(p, pos);
        push_tok(p, e > pos ? T_NUM : T_UNARY, src + start_pos, e - start_pos, start_pos);
        pos = e;
        continue;
      }
    }
    bool matched = false;
    for (size_t i = 0; i < sizeof(lex_table) / sizeof(lex_table[0]); i++) {
      const char *seq = lex_table[i].seq;
      size_t sl = strlen(seq);
      if (curly > 0 && strcmp(seq, "}}") == 0) continue;
      if (pos + sl <= n && memcmp(src + pos, seq, sl) == 0) {
        int t = lex_table[i].t;
        push_tok(p, t, seq, sl, pos);
        if (t == T_OPEN_EXPR)
          curly = 0;
        else if (t == T_LBRACE)
          curly++;
        else if (t == T_RBRACE)
          curly--; /* wraps below zero like llama.cpp's size_t */
        pos += sl;
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (ch == '\'' || ch == '"') {
      start_pos = pos;
      pos++;
      /* the unescaped text is never longer than the source */
      size_t cap = 0;
      while (pos + cap < n && src[pos + cap] != ch) {
        if (src[pos + cap] == '\\') cap++;
        cap++;
      }
      char *buf = jp_alloc(p, cap + 1);
      size_t bl = 0;
      while (true) {
        if (pos >= n) jp_fail(p, start_pos, "unexpected end of input in string literal");
        char c = src[pos];
        if (c == ch) break;
        if (c == '\\') {
          pos++;
          if (pos >= n) jp_fail(p, pos, "unexpected end of input after escape character");
          char e = src[pos++], u;
          switch (e) {
            case 'n':
              u = '\n';
              break;
            case 't':
              u = '\t';
              break;
            case 'r':
              u = '\r';
              break;
            case 'b':
              u = '\b';
              break;
            case 'f':
              u = '\f';
              break;
            case 'v':
              u = '\v';
              break;
            case '\\':
              u = '\\';
              break;
            case '\'':
              u = '\'';
              break;
            case '"':
              u = '"';
              break;
            default:
              jp_fail(p, pos, "unknown escape character \\%c", e);
          }
          buf[bl++] = u;
          continue;
        }
        buf[bl++] = c;
        pos++;
      }
      pos++;
      push_tok(p, T_STR, buf, bl, start_pos);
      continue;
    }
    if (is_digit(ch)) {
      size_t e = consume_numeric(p, pos);
      push_tok(p, T_NUM, src + pos, e - pos, pos);
      pos = e;
      continue;
    }
    if (is_word(ch)) {
      size_t e = pos;
      while (e < n && is_word(src[e])) e++;
      push_tok(p, T_IDENT, src + pos, e - pos, pos);
      pos = e;
      continue;
    }
    jp_fail(p, pos, "unexpected character: %c", ch);
  }
}

/* ---- parser ---- */

static const jtok eof_tok = {T_EOF, "", 0, 0};

static const jtok *peek(const jp *p, size_t off) {
  if (p->cur + off >= p->ntok) return &eof_tok;
  return &p->tok[p->cur + off];
}

static size_t peek_pos(const jp *p) {
  const jtok *t = peek(p, 0);
  if (t == &eof_tok) return p->n;
  return t->pos;
}

static const jtok *next(jp *p) {
  if (p->cur >= p->ntok) jp_fail(p, p->n, "Parser Error: Unexpected EOF");
  return &p->tok[p->cur++];
}

static bool is(const jp *p, int t) { return peek(p, 0)->t == t; }

static bool tok_is(const jtok *t, int type, const char *v) {
  return t->t == type && t->vlen == strlen(v) && memcmp(t->v, v, t->vlen) == 0;
}

static bool is_ident(const jp *p, const char *name) { return tok_is(peek(p, 0), T_IDENT, name); }

static void expect(jp *p, int t, const char *what) {
  const jtok *k = peek(p, 0);
  if (k->t != t)
    jp_fail(p, peek_pos(p), "Parser Error: %s (Got %.*s)", what, (int)(k->vlen > 40 ? 40 : k->vlen),
            k->v);
  p->cur++;
}

static void expect_ident(jp *p, const char *name) {
  if (!is_ident(p, name)) jp_fail(p, peek_pos(p), "Expected identifier: %s", name);
  p->cur++;
}

/* {% name ... where name is one of the NULL-terminated list */
static bool is_statement(const jp *p, const char *const *names) {
  if (peek(p, 0)->t != T_OPEN_STMT || peek(p, 1)->t != T_IDENT) return false;
  for (; *names; names++)
    if (tok_is(peek(p, 1), T_IDENT, *names)) return true;
  return false;
}

static jnode *mk(jp *p, int kind, size_t tokidx) {
  jnode *n = jp_alloc(p, sizeof(*n));
  n->kind = kind;
  n->pos = tokidx < p->ntok ? p->tok[tokidx].pos : p->n;
  n->id = p->t->nnodes++;
  return n;
}

typedef struct {
  jnode **v;
  size_t n, cap;
} nvec;

static void nv_push(jp *p, nvec *v, jnode *n) {
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 4;
    jnode **nn = jp_alloc(p, nc * sizeof(*nn));
    if (v->n) memcpy(nn, v->v, v->n * sizeof(*nn));
    v->v = nn;
    v->cap = nc;
  }
  v->v[v->n++] = n;
}

static jnodes nv_done(nvec *v) { return (jnodes){v->v, v->n}; }

static void enter(jp *p) {
  if (++p->depth > JP_MAX_DEPTH) jp_fail(p, peek_pos(p), "template nests too deeply");
}

static jnode *parse_any(jp *p);
static jnode *parse_expression(jp *p);
static jnode *parse_primary(jp *p);
static jnode *parse_call(jp *p, jnode *callee);
static jnodes parse_args(jp *p);

static jnodes parse_until(jp *p, const char *const *names) {
  nvec body = {0};
  while (!is_statement(p, names)) nv_push(p, &body, parse_any(p));
  return nv_done(&body);
}

static jnode *parse_expression_sequence(jp *p, bool primary) {
  size_t start = p->cur;
  nvec v = {0};
  nv_push(p, &v, primary ? parse_primary(p) : parse_expression(p));
  bool tuple = is(p, T_COMMA);
  while (is(p, T_COMMA)) {
    p->cur++;
    nv_push(p, &v, primary ? parse_primary(p) : parse_expression(p));
  }
  if (!tuple) return v.v[0];
  jnode *n = mk(p, N_TUPLE, start);
  n->l1 = nv_done(&v);
  return n;
}

static jnode *parse_if_statement(jp *p, size_t start) {
  static const char *const stop[] = {"elif", "else", "endif", NULL};
  static const char *const endif[] = {"endif", NULL};
  enter(p);
  jnode *n = mk(p, N_IF, start);
  n->a = parse_expression(p);
  expect(p, T_CLOSE_STMT, "Expected %}");
  n->l1 = parse_until(p, stop);
  if (is_statement(p, (const char *const[]){"elif", NULL})) {
    size_t pos0 = p->cur;
    p->cur += 2;
    nvec alt = {0};
    nv_push(p, &alt, parse_if_statement(p, pos0));
    n->l2 = nv_done(&alt);
  } else if (is_statement(p, (const char *const[]){"else", NULL})) {
    p->cur += 2;
    expect(p, T_CLOSE_STMT, "Expected %}");
    n->l2 = parse_until(p, endif);
  }
  p->depth--;
  return n;
}

static void expect_end(jp *p, const char *name) {
  expect(p, T_OPEN_STMT, "Expected {%");
  expect_ident(p, name);
  expect(p, T_CLOSE_STMT, "Expected %}");
}

static jnode *parse_statement(jp *p) {
  expect(p, T_OPEN_STMT, "Expected {%");
  if (peek(p, 0)->t != T_IDENT) jp_fail(p, peek_pos(p), "Unknown statement");
  size_t start = p->cur;
  const jtok *nt = next(p);
  jnode *n;
  enter(p);
  if (tok_is(nt, T_IDENT, "set")) {
    static const char *const endset[] = {"endset", NULL};
    n = mk(p, N_SET, start);
    n->a = parse_expression_sequence(p, false);
    if (is(p, T_EQUALS)) {
      p->cur++;
      n->b = parse_expression_sequence(p, false);
    } else {
      expect(p, T_CLOSE_STMT, "Expected %}");
      n->l1 = parse_until(p, endset);
      expect(p, T_OPEN_STMT, "Expected {%");
      expect_ident(p, "endset");
    }
    expect(p, T_CLOSE_STMT, "Expected %}");
  } else if (tok_is(nt, T_IDENT, "if")) {
    n = parse_if_statement(p, start);
    expect_end(p, "endif");
  } else if (tok_is(nt, T_IDENT, "macro")) {
    static const char *const endmacro[] = {"endmacro", NULL};
    n = mk(p, N_MACRO, start);
    n->a = parse_primary(p);
    n->l1 = parse_args(p);
    expect(p, T_CLOSE_STMT, "Expected %}");
    n->l2 = parse_until(p, endmacro);
    expect_end(p, "endmacro");
  } else if (tok_is(nt, T_IDENT, "for")) {
    static const char *const stop[] = {"endfor", "else", NULL};
    static const char *const endfor[] = {"endfor", NULL};
    n = mk(p, N_FOR, start);
    n->a = parse_expression_sequence(p, true);
    if (!is_ident(p, "in")) jp_fail(p, peek_pos(p), "Expected 'in'");
    p->cur++;
    n->b = parse_expression(p);
    expect(p, T_CLOSE_STMT, "Expected %}");
    n->l1 = parse_until(p, stop);
    if (is_statement(p, (const char *const[]){"else", NULL})) {
      p->cur += 2;
      expect(p, T_CLOSE_STMT, "Expected %}");
      n->l2 = parse_until(p, endfor);
    }
    expect_end(p, "endfor");
  } else if (tok_is(nt, T_IDENT, "break")) {
    expect(p, T_CLOSE_STMT, "Expected %}");
    n = mk(p, N_BREAK, start);
  } else if (tok_is(nt, T_IDENT, "continue")) {
    expect(p, T_CLOSE_STMT, "Expected %}");
    n = mk(p, N_CONTINUE, start);
  } else if (tok_is(nt, T_IDENT, "call")) {
    static const char *const endcall[] = {"endcall", NULL};
    n = mk(p, N_CALLSTMT, start);
    if (is(p, T_LPAREN)) n->l1 = parse_args(p);
    jnode *callee = parse_primary(p);
    if (callee->kind != N_IDENT) jp_fail(p, callee->pos, "Expected identifier");
    jnode *call = mk(p, N_CALL, start);
    call->a = callee;
    call->l1 = parse_args(p);
    expect(p, T_CLOSE_STMT, "Expected %}");
    n->a = call;
    n->l2 = parse_until(p, endcall);
    expect_end(p, "endcall");
  } else if (tok_is(nt, T_IDENT, "filter")) {
    static const char *const endfilter[] = {"endfilter", NULL};
    n = mk(p, N_FILTERSTMT, start);
    jnode *f = parse_primary(p);
    if (f->kind == N_IDENT && is(p, T_LPAREN)) f = parse_call(p, f);
    n->a = f;
    expect(p, T_CLOSE_STMT, "Expected %}");
    n->l1 = parse_until(p, endfilter);
    expect_end(p, "endfilter");
  } else if (tok_is(nt, T_IDENT, "generation") || tok_is(nt, T_IDENT, "endgeneration")) {
    n = mk(p, N_NOOP, start);
    p->cur++;
  } else {
    jp_fail(p, nt->pos, "Unknown statement: %.*s", (int)nt->vlen, nt->v);
  }
  p->depth--;
  return n;
}

static jnode *binary(jp *p, size_t tokidx, int op, jnode *a, jnode *b) {
  jnode *n = mk(p, N_BINARY, tokidx);
  n->op = op;
  n->a = a;
  n->b = b;
  return n;
}

static jnode *parse_logical_or(jp *p);

static jnode *parse_if_expression(jp *p) {
  enter(p);
  jnode *a = parse_logical_or(p);
  if (is_ident(p, "if")) {
    size_t start = p->cur;
    p->cur++;
    jnode *test = parse_logical_or(p);
    if (is_ident(p, "else")) {
      size_t pos0 = p->cur;
      p->cur++;
      jnode *n = mk(p, N_TERNARY, pos0);
      n->a = test;
      n->b = a;
      n->c = parse_if_expression(p);
      a = n;
    } else {
      jnode *n = mk(p, N_SELECT, start);
      n->a = a;
      n->b = test;
      a = n;
    }
  }
  p->depth--;
  return a;
}

static jnode *parse_expression(jp *p) { return parse_if_expression(p); }

static jnode *parse_logical_and(jp *p);
static jnode *parse_logical_not(jp *p);
static jnode *parse_comparison(jp *p);
static jnode *parse_additive(jp *p);
static jnode *parse_multiplicative(jp *p);
static jnode *parse_test(jp *p);
static jnode *parse_filter(jp *p);
static jnode *parse_call_member(jp *p);
static jnode *parse_member(jp *p, jnode *obj);

static jnode *parse_logical_or(jp *p) {
  jnode *left = parse_logical_and(p);
  while (is_ident(p, "or")) {
    size_t s = p->cur++;
    left = binary(p, s, OP_OR, left, parse_logical_and(p));
  }
  return left;
}

static jnode *parse_logical_and(jp *p) {
  jnode *left = parse_logical_not(p);
  while (is_ident(p, "and")) {
    size_t s = p->cur++;
    left = binary(p, s, OP_AND, left, parse_logical_not(p));
  }
  return left;
}

static jnode *parse_logical_not(jp *p) {
  if (is_ident(p, "not")) {
    size_t s = p->cur++;
    enter(p);
    jnode *n = mk(p, N_NOT, s);
    n->a = parse_logical_not(p);
    p->depth--;
    return n;
  }
  return parse_comparison(p);
}

static jnode *parse_comparison(jp *p) {
  jnode *left = parse_additive(p);
  while (true) {
    size_t s = p->cur;
    int op;
    if (is_ident(p, "not") && tok_is(peek(p, 1), T_IDENT, "in")) {
      op = OP_NOTIN;
      p->cur += 2;
    } else if (is_ident(p, "in")) {
      op = OP_IN;
      p->cur++;
    } else if (is(p, T_CMP)) {
      const jtok *t = next(p);
      if (t->v[0] == '<')
        op = t->vlen == 2 ? OP_LE : OP_LT;
      else if (t->v[0] == '>')
        op = t->vlen == 2 ? OP_GE : OP_GT;
      else if (t->v[0] == '=')
        op = OP_EQ;
      else
        op = OP_NE;
    } else {
      break;
    }
    left = binary(p, s, op, left, parse_additive(p));
  }
  return left;
}

static jnode *parse_additive(jp *p) {
  jnode *left = parse_multiplicative(p);
  while (is(p, T_ADD)) {
    size_t s = p->cur;
    const jtok *t = next(p);
    int op = t->v[0] == '+' ? OP_ADD : t->v[0] == '-' ? OP_SUB : OP_CONCAT;
    left = binary(p, s, op, left, parse_multiplicative(p));
  }
  return left;
}

static jnode *parse_multiplicative(jp *p) {
  jnode *left = parse_test(p);
  while (is(p, T_MUL)) {
    size_t s = p->cur;
    const jtok *t = next(p);
    int op = t->v[0] == '*' ? OP_MUL : t->v[0] == '/' ? OP_DIV : OP_MOD;
    left = binary(p, s, op, left, parse_test(p));
  }
  return left;
}

static jnode *parse_test(jp *p) {
  jnode *operand = parse_filter(p);
  while (is_ident(p, "is")) {
    size_t s = p->cur++;
    bool negate = false;
    if (is_ident(p, "not")) {
      p->cur++;
      negate = true;
    }
    jnode *test = parse_primary(p);
    if (is(p, T_LPAREN)) test = parse_call(p, test);
    jnode *n = mk(p, N_TEST, s);
    n->a = operand;
    n->b = test;
    n->flag = negate;
    operand = n;
  }
  return operand;
}

static jnode *parse_filter(jp *p) {
  jnode *operand = parse_call_member(p);
  while (is(p, T_PIPE)) {
    size_t s = p->cur++;
    jnode *f = parse_primary(p);
    if (is(p, T_LPAREN)) f = parse_call(p, f);
    jnode *n = mk(p, N_FILTER, s);
    n->a = operand;
    n->b = f;
    operand = n;
  }
  return operand;
}

static jnode *parse_call_member(jp *p) {
  jnode *m = parse_member(p, parse_primary(p));
  return is(p, T_LPAREN) ? parse_call(p, m) : m;
}

static jnode *parse_call(jp *p, jnode *callee) {
  enter(p);
  jnode *n = mk(p, N_CALL, p->cur);
  n->a = callee;
  n->l1 = parse_args(p);
  jnode *m = parse_member(p, n);
  if (is(p, T_LPAREN)) m = parse_call(p, m);
  p->depth--;
  return m;
}

static jnodes parse_args(jp *p) {
  expect(p, T_LPAREN, "Expected (");
  nvec args = {0};
  while (!is(p, T_RPAREN)) {
    jnode *arg;
    if (peek(p, 0)->t == T_MUL && peek(p, 0)->v[0] == '*') {
      size_t s = p->cur++;
      arg = mk(p, N_SPREAD, s);
      arg->a = parse_expression(p);
    } else {
      arg = parse_expression(p);
      if (is(p, T_EQUALS)) {
        size_t s = p->cur++;
        jnode *kw = mk(p, N_KWARG, s);
        kw->a = arg;
        kw->b = parse_expression(p);
        arg = kw;
      }
    }
    nv_push(p, &args, arg);
    if (is(p, T_COMMA)) p->cur++;
  }
  expect(p, T_RPAREN, "Expected )");
  return nv_done(&args);
}

static jnode *parse_member_args(jp *p) {
  size_t start = p->cur;
  jnode *sl[3] = {NULL, NULL, NULL};
  size_t ns = 0;
  bool slice = false;
  while (!is(p, T_RBRACKET)) {
    jnode *e = NULL;
    if (is(p, T_COLON)) {
      p->cur++;
      slice = true;
    } else {
      e = parse_expression(p);
      if (is(p, T_COLON)) {
        p->cur++;
        slice = true;
      }
    }
    if (ns < 3) sl[ns] = e;
    ns++;
  }
  if (slice) {
    jnode *n = mk(p, N_SLICE, start);
    n->a = sl[0];
    n->b = sl[1];
    n->c = sl[2];
    return n;
  }
  if (ns == 0) return mk(p, N_BLANK, start);
  return sl[0];
}

static jnode *parse_member(jp *p, jnode *obj) {
  size_t start = p->cur;
  while (is(p, T_DOT) || is(p, T_LBRACKET)) {
    const jtok *op = next(p);
    bool computed = op->t == T_LBRACKET;
    jnode *prop;
    if (computed) {
      prop = parse_member_args(p);
      expect(p, T_RBRACKET, "Expected ]");
    } else {
      prop = parse_primary(p);
    }
    jnode *n = mk(p, N_MEMBER, start);
    n->a = obj;
    n->b = prop;
    n->flag = computed;
    obj = n;
  }
  return obj;
}

static jnode *parse_primary(jp *p) {
  size_t start = p->cur;
  const jtok *t = next(p);
  switch (t->t) {
    case T_NUM: {
      char buf[512];
      if (t->vlen >= sizeof(buf)) jp_fail(p, t->pos, "number too long");
      memcpy(buf, t->v, t->vlen);
      buf[t->vlen] = '\0';
      errno = 0;
      char *end;
      if (memchr(t->v, '.', t->vlen)) {
        jnode *n = mk(p, N_FLOAT, start);
        n->f = strtod(buf, &end);
        if (errno == ERANGE || end == buf) jp_fail(p, t->pos, "stod: out of range");
        return n;
      }
      jnode *n = mk(p, N_INT, start);
      n->i = strtoll(buf, &end, 10);
      if (errno == ERANGE || end == buf) jp_fail(p, t->pos, "stoll: out of range");
      return n;
    }
    case T_STR: {
      size_t total = t->vlen;
      size_t k = p->cur;
      while (k < p->ntok && p->tok[k].t == T_STR) total += p->tok[k++].vlen;
      jnode *n = mk(p, N_STR, start);
      if (k == p->cur) {
        n->s = t->v;
        n->slen = t->vlen;
        return n;
      }
      char *buf = jp_alloc(p, total + 1);
      memcpy(buf, t->v, t->vlen);
      size_t l = t->vlen;
      while (p->cur < k) {
        const jtok *u = &p->tok[p->cur++];
        memcpy(buf + l, u->v, u->vlen);
        l += u->vlen;
      }
      n->s = buf;
      n->slen = l;
      return n;
    }
    case T_IDENT: {
      jnode *n = mk(p, N_IDENT, start);
      char *s = jp_alloc(p, t->vlen + 1);
      memcpy(s, t->v, t->vlen);
      n->s = s;
      n->slen = t->vlen;
      return n;
    }
    case T_LPAREN: {
      enter(p);
      jnode *e = parse_expression_sequence(p, false);
      expect(p, T_RPAREN, "Expected )");
      p->depth--;
      return e;
    }
    case T_LBRACKET: {
      enter(p);
      nvec v = {0};
      while (!is(p, T_RBRACKET)) {
        nv_push(p, &v, parse_expression(p));
        if (is(p, T_COMMA)) p->cur++;
      }
      p->cur++;
      jnode *n = mk(p, N_ARRAY, start);
      n->l1 = nv_done(&v);
      p->depth--;
      return n;
    }
    case T_LBRACE: {
      enter(p);
      nvec ks = {0}, vs = {0};
      while (!is(p, T_RBRACE)) {
        nv_push(p, &ks, parse_expression(p));
        expect(p, T_COLON, "Expected :");
        nv_push(p, &vs, parse_expression(p));
        if (is(p, T_COMMA)) p->cur++;
      }
      p->cur++;
      jnode *n = mk(p, N_OBJECT, start);
      n->l1 = nv_done(&ks);
      n->l2 = nv_done(&vs);
      p->depth--;
      return n;
    }
    default:
      jp_fail(p, t->pos, "Unexpected token: %.*s", (int)(t->vlen > 40 ? 40 : t->vlen), t->v);
  }
}

static jnode *parse_any(jp *p) {
  size_t start = p->cur;
  switch (peek(p, 0)->t) {
    case T_COMMENT:
      p->cur++;
      return mk(p, N_COMMENT, start);
    case T_TEXT: {
      const jtok *t = next(p);
      jnode *n = mk(p, N_TEXT, start);
      n->s = t->v;
      n->slen = t->vlen;
      return n;
    }
    case T_OPEN_STMT:
      return parse_statement(p);
    case T_OPEN_EXPR: {
      p->cur++;
      jnode *e = parse_expression(p);
      expect(p, T_CLOSE_EXPR, "Expected }}");
      return e;
    }
    default:
      jp_fail(p, peek_pos(p), "Unexpected token type");
  }
}

static void parse_all(jp *p, const char *src, size_t len) {
  /* normalize newlines: CRLF -> LF, lone CR -> LF; drop one trailing newline of the original */
  char *s = jp_alloc(p, len + 1);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (src[i] == '\r') {
      if (i + 1 < len && src[i + 1] == '\n') continue;
      s[n++] = '\n';
    } else {
      s[n++] = src[i];
    }
  }
  if (len > 0 && src[len - 1] == '\n' && n > 0) n--;
  s[n] = '\0';
  p->t->src = s;
  p->t->len = n;
  p->src = s;
  p->n = n;
  lex(p);
  nvec body = {0};
  while (p->cur < p->ntok) nv_push(p, &body, parse_any(p));
  p->t->body = nv_done(&body);
}

static int parse_protected(jp *p, const char *src, size_t len) {
  if (setjmp(p->jb)) return -1;
  parse_all(p, src, len);
  return 0;
}

jinja_tmpl *jinja_parse(const char *src, size_t len, char *err, size_t err_len) {
  if (err && err_len) err[0] = '\0';
  jinja_tmpl *t = calloc(1, sizeof(*t));
  jp *p = calloc(1, sizeof(*p));
  if (!t || !p) {
    free(t);
    free(p);
    if (err && err_len) snprintf(err, err_len, "jinja: out of memory");
    return NULL;
  }
  p->t = t;
  p->err = err;
  p->err_len = err_len;
  p->src = "";
  int rc = parse_protected(p, src ? src : "", src ? len : 0);
  free(p->tok);
  free(p);
  if (rc) {
    ja_free_all(&t->arena);
    free(t);
    return NULL;
  }
  return t;
}

/* replace every `from` in buf (malloc'd, *len bytes) with `to`; NULL on OOM (buf freed) */
static char *replace_all(char *buf, size_t *len, const char *from, const char *to) {
  size_t fl = strlen(from), tl = strlen(to), n = 0;
  for (const char *p = buf; (p = memmem(p, *len - (size_t)(p - buf), from, fl)) != NULL; p += fl)
    n++;
  if (!n) return buf;
  size_t nl = *len - n * fl + n * tl;
  char *out = malloc(nl + 1);
  if (!out) {
    free(buf);
    return NULL;
  }
  size_t o = 0;
  const char *p = buf, *end = buf + *len, *f;
  while ((f = memmem(p, (size_t)(end - p), from, fl)) != NULL) {
    memcpy(out + o, p, (size_t)(f - p));
    o += (size_t)(f - p);
    memcpy(out + o, to, tl);
    o += tl;
    p = f + fl;
  }
  memcpy(out + o, p, (size_t)(end - p));
  o += (size_t)(end - p);
  out[o] = '\0';
  free(buf);
  *len = o;
  return out;
}

static bool contains(const char *buf, size_t len, const char *s) {
  return memmem(buf, len, s, strlen(s)) != NULL;
}

char *jinja_llama_patch(const char *src, size_t len, size_t *out_len) {
  char *buf = malloc(len + 1);
  if (!buf) return NULL;
  if (len) memcpy(buf, src, len);
  buf[len] = '\0';
  if (contains(buf, len, "<|channel|>") && contains(buf, len, "in message.content or"))
    buf = replace_all(buf, &len,
                      "{%- if \"<|channel|>analysis<|message|>\" in message.content or "
                      "\"<|channel|>final<|message|>\" in message.content %}",
                      "{%- if false %}");
  if (buf && contains(buf, len, "[TOOL_CALLS]") &&
      contains(buf, len, "if (message['content'] is none or"))
    buf = replace_all(buf, &len,
                      "{%- if (message['content'] is none or message['content'] == '' or "
                      "message['content']|length == 0) and (message['tool_calls'] is not defined "
                      "or message['tool_calls'] is none or message['tool_calls']|length == 0) %}",
                      "{%- if false %}");
  if (buf && out_len) *out_len = len;
  return buf;
}

void jinja_free(jinja_tmpl *t) {
  if (!t) return;
  ja_free_all(&t->arena);
  free(t);
}
