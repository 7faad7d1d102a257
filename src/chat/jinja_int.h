/* jinja_int.h — internals shared by the jinja_*.c files (not a public interface).
 *
 * Memory: a template owns one arena (its AST); a render owns another (every value, string and
 * scope it makes), freed in one go at the end, so values are plain shared pointers with no
 * reference counts and cycles cannot leak. Errors, `break` and `continue` unwind with longjmp to
 * the render root or to the innermost running for-loop, like exceptions in llama.cpp's engine. */
#ifndef SY_JINJA_INT_H
#define SY_JINJA_INT_H

#include "jinja.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- arena ---- */

typedef struct ja_block ja_block;
typedef struct {
  ja_block *head;
  size_t total; /* bytes taken from malloc */
  size_t limit; /* 0 = none */
} ja_arena;

void *ja_alloc(ja_arena *a, size_t n); /* zeroed; NULL past the limit or on OOM */
void ja_free_all(ja_arena *a);

/* ---- AST ---- */

enum {
  N_TEXT,
  N_COMMENT,
  N_IF,
  N_FOR,
  N_BREAK,
  N_CONTINUE,
  N_NOOP,
  N_SET,
  N_MACRO,
  N_CALLSTMT,
  N_FILTERSTMT,
  N_INT,
  N_FLOAT,
  N_STR,
  N_IDENT,
  N_ARRAY,
  N_TUPLE,
  N_OBJECT,
  N_MEMBER,
  N_CALL,
  N_BINARY,
  N_NOT,
  N_FILTER,
  N_TEST,
  N_SELECT,
  N_TERNARY,
  N_SLICE,
  N_KWARG,
  N_SPREAD,
  N_BLANK
};

enum {
  OP_AND,
  OP_OR,
  OP_EQ,
  OP_NE,
  OP_LT,
  OP_GT,
  OP_LE,
  OP_GE,
  OP_ADD,
  OP_SUB,
  OP_CONCAT,
  OP_MUL,
  OP_DIV,
  OP_MOD,
  OP_IN,
  OP_NOTIN
};

typedef struct jnode jnode;
typedef struct {
  jnode **v;
  size_t n;
} jnodes;

/* One node shape for all kinds; which fields mean what is noted at each kind in jinja_parse.c. */
struct jnode {
  int kind;
  int op;
  bool flag;
  size_t pos;  /* byte offset in the (normalized) source */
  uint32_t id; /* index into a render's per-node cache */
  jnode *a, *b, *c;
  jnodes l1, l2;
  const char *s;
  size_t slen;
  int64_t i;
  double f;
};

struct jinja_tmpl {
  ja_arena arena;
  char *src; /* normalized source (CRLF -> LF, one trailing newline dropped) */
  size_t len;
  jnodes body;
  uint32_t nnodes;
};

void jinja_line_col(const char *src, size_t len, size_t pos, int *line, int *col);

/* ---- values ---- */

enum {
  JV_UNDEF,
  JV_NONE,
  JV_BOOL,
  JV_INT,
  JV_FLOAT,
  JV_STR,
  JV_ARRAY,
  JV_TUPLE,
  JV_OBJECT,
  JV_FUNC,
  JV_KWARG
};
enum { JF_BUILTIN, JF_MACRO, JF_CALLER };

typedef struct jv jv;
typedef struct jr jr;
typedef struct jscope jscope;
typedef struct jstrbuf {
  size_t used, cap;
  char data[];
} jstrbuf;

typedef struct {
  jv **v;
  size_t n;
  size_t pos; /* source position, for messages */
  const char *name;
} jargs;

typedef jv *(*jbi_fn)(jr *r, const jargs *a);
typedef struct {
  const char *name;
  jbi_fn fn;
} jbuiltin;

struct jv {
  uint8_t t;
  bool nobi; /* object without builtins (scopes, loop) */
  union {
    int64_t i; /* int, bool */
    double f;
    struct {
      const char *p;
      size_t len;
      size_t *offs; /* starts of the 2nd, 3rd, ... parts (llama.cpp keeps strings in parts) */
      size_t noffs;
      struct jstrbuf *buf; /* spare room after p + len that a concatenation may take */
    } s;
    struct {
      jv **v;
      size_t n, cap;
    } a;
    struct {
      jv **k;
      jv **v;
      size_t n, cap;
      uint32_t *idx; /* hash index (slot -> position + 1) when large */
      size_t icap;
    } o;
    struct {
      int kind;
      const char *name;
      jbi_fn bi;
      jv *self;
      const jnode *node;
      jscope *scope;
    } fn;
    struct {
      const char *key;
      jv *val;
    } kw;
    const char *hint; /* undefined: where it came from */
  } u;
};

struct jscope {
  jscope *parent;
  jv *vars;
};

typedef struct jloop jloop;
struct jloop {
  jmp_buf jb;
  jloop *prev;
  int depth;
};

/* an array printed by {{ }}: llama.cpp prints it only when the enclosing block ends, so later
 * changes to it (append, pop) show */
typedef struct {
  size_t at;
  jv *arr;
} jdefer;

/* a growable string in the render arena that remembers where its parts start */
typedef struct {
  char *p;
  size_t len, cap;
  size_t *offs;
  size_t noffs, ocap;
  jdefer *defs;
  size_t ndefs, dcap;
} jsink;

struct jr {
  ja_arena arena;
  const jinja_tmpl *t;
  jmp_buf *fail_jb;
  jloop *loop;
  int depth, max_depth;
  size_t cur_pos; /* where the evaluation is, for messages without a position */
  long steps, max_steps;
  size_t max_output;
  time_t now;
  char *err;
  size_t err_len;
  jv *undef, *none, *vtrue, *vfalse, *empty_str;
  jv **node_cache;  /* per AST node: its literal value, or an identifier's name as a string */
  jv **small_ints;  /* -128 .. 1023 */
  jv *loop_keys[9]; /* the keys of every `loop` object */
  jv *k_loop, *u_previtem, *u_nextitem;
};

/* errors and budgets (all noreturn via longjmp) */
_Noreturn void jr_fail(jr *r, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void jr_oom(jr *r);
void jr_step(jr *r, size_t pos, long n);
void *jr_alloc(jr *r, size_t n);
char *jr_strdup(jr *r, const char *p, size_t n);

/* value constructors */
jv *jv_int(jr *r, int64_t i);
jv *jv_float(jr *r, double f);
jv *jv_bool(jr *r, bool b);
jv *jv_undef(jr *r, const char *hint);
jv *jv_str(jr *r, const char *p, size_t len); /* borrows p: it must outlive the render */
jv *jv_str_copy(jr *r, const char *p, size_t len);
jv *jv_str_cstr(jr *r, const char *s);
jv *jv_array(jr *r, size_t cap);
jv *jv_tuple(jr *r, size_t cap);
jv *jv_object(jr *r);
jv *jv_kwarg(jr *r, const char *key, jv *val);
jv *jv_func_builtin(jr *r, const char *name, jbi_fn fn, jv *self);
void jv_push(jr *r, jv *arr, jv *item); /* no immutability check */
jv *jv_from_json(jr *r, const json_t *j, int depth);

/* int <-> float as llama.cpp's value_int_t / value_float_t see them (x86 conversions) */
double jv_int_flt(int64_t i);
int64_t jv_d2i(double d);

/* type-generic operations (llama.cpp's value_t virtuals) */
const char *jv_type_name(const jv *v);
bool jv_is_array(const jv *v); /* array or tuple */
bool jv_is_num(const jv *v);   /* int or float (not bool) */
bool jv_as_bool(jr *r, size_t pos, const jv *v);
int64_t jv_as_int(jr *r, size_t pos, const jv *v);
double jv_as_float(jr *r, size_t pos, const jv *v);
jv *jv_as_string(jr *r, size_t pos, jv *v);
bool jv_hashable(const jv *v);
bool jv_immutable(const jv *v);
bool jv_equiv(const jv *a, const jv *b);
enum { CMP_EQ, CMP_GE, CMP_GT, CMP_LT, CMP_NE };
bool jv_compare(jr *r, size_t pos, jv *a, jv *b, int op);

/* objects: keys compared as llama.cpp does (1 == 1.0 == true) */
jv *jv_obj_get(jr *r, size_t pos, jv *obj, jv *key); /* NULL if absent; errors on bad key */
jv *jv_obj_get_cstr(jv *obj, const char *key, size_t klen);
void jv_obj_set(jr *r, size_t pos, jv *obj, jv *key, jv *val);
void jv_obj_set_cstr(jr *r, jv *obj, const char *key, jv *val);

/* strings and sinks */
void jsink_put(jr *r, jsink *s, const char *p, size_t n);         /* bytes into the current part */
void jsink_part(jr *r, jsink *s);                                 /* a new part starts here */
void jsink_put_str(jr *r, jsink *s, const jv *str);               /* keeps str's parts */
void jsink_gather(jr *r, size_t pos, jsink *s, jv *v, int depth); /* print a value */
void jsink_emit(jr *r, size_t pos, jsink *s, jv *v); /* a statement's value (arrays deferred) */
void jsink_resolve(jr *r, size_t pos, jsink *s, size_t from); /* print deferred arrays */
jv *jsink_to_str(jr *r, jsink *s);
jv *jv_concat(jr *r, size_t pos, jv *a, jv *b);
void jv_repr(jr *r, size_t pos, jsink *s, jv *v, int depth);
void jv_to_json(jr *r, size_t pos, jsink *s, jv *v, int indent, int lvl, const char *isep,
                size_t isl, const char *ksep, size_t ksl, int depth);
void jv_float_str(double f, char *buf, size_t n); /* std::to_string, zeros trimmed */

/* builtins */
jbi_fn jinja_global_builtin(const char *name, size_t len);
jbi_fn jinja_test_builtin(const char *name, size_t len);
jbi_fn jinja_type_builtin(jr *r, size_t pos, jv *v, const char *name, size_t len);
bool jinja_test_in(jr *r, size_t pos, jv *needle, jv *hay);

#define JR_MAX_NEST 512 /* a hard cap on recursion in printing, repr and JSON */

#endif
