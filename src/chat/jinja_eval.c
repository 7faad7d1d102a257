/* jinja_eval.c — runs a parsed template, with llama.cpp's runtime semantics (common/jinja/
 * runtime.cpp): scopes copied on entry to for/macro/call, a for body that shares one scope across
 * iterations, dynamic scoping for macros, break/continue that cancel the output of the statement
 * they interrupt, and binary operators with its coercions. */
#include "jinja_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jv *eval(jr *r, const jnode *n, jscope *sc);
static void exec(jr *r, const jnode *n, jscope *sc, jsink *out);

static void enter(jr *r, size_t pos) {
  r->cur_pos = pos;
  if (++r->depth > r->max_depth) jr_fail(r, pos, "template recursion deeper than %d", r->max_depth);
  jr_step(r, pos, 1);
}

/* a literal's value or an identifier's name, made once per render */
static jv *node_str(jr *r, const jnode *n) {
  jv **slot = &r->node_cache[n->id];
  if (!*slot) *slot = jv_str(r, n->s, n->slen);
  return *slot;
}

static jscope *new_scope(jr *r, jscope *parent) {
  jscope *s = jr_alloc(r, sizeof(*s));
  s->parent = parent;
  s->vars = jv_object(r);
  s->vars->nobi = true;
  return s;
}

static jv *lookup(jscope *sc, const char *name, size_t len) {
  for (; sc; sc = sc->parent) {
    jv *v = jv_obj_get_cstr(sc->vars, name, len);
    if (v) return v;
  }
  return NULL;
}

static void set_var(jr *r, jscope *sc, const jnode *id, jv *val) {
  jv_obj_set(r, id->pos, sc->vars, node_str(r, id), val);
}

static void exec_list(jr *r, jnodes l, jscope *sc, jsink *out) {
  for (size_t i = 0; i < l.n; i++) exec(r, l.v[i], sc, out);
}

static jv *exec_to_str(jr *r, jnodes l, jscope *sc) {
  jsink s = {0};
  exec_list(r, l, sc, &s);
  return jsink_to_str(r, &s);
}

/* ---- calls ---- */

static jv *get_kwarg(jv **args, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (args[i]->t == JV_KWARG && strcmp(args[i]->u.kw.key, key) == 0) return args[i]->u.kw.val;
  return NULL;
}

static jv *kw_or_pos(jr *r, jv **args, size_t n, const char *key, size_t pos) {
  jv *v = get_kwarg(args, n, key);
  if ((!v || v->t == JV_UNDEF) && pos < n && args[pos]->t != JV_KWARG) return args[pos];
  return v ? v : r->undef;
}

/* llama.cpp's bind_parameters: a slot taken by another keyword leaves the parameter undefined */
static void bind_params(jr *r, size_t pos, const char *name, jnodes params, jv **args, size_t n,
                        jscope *into, jscope *caller) {
  for (size_t i = 0; i < params.n; i++) {
    const jnode *p = params.v[i];
    const jnode *id = p;
    if (p->kind == N_KWARG) {
      id = p->a;
      if (id->kind != N_IDENT)
        jr_fail(r, p->pos, "Keyword argument key must be an identifier in '%s'", name);
    } else if (i < n && p->kind != N_IDENT) {
      jr_fail(r, p->pos, "Invalid parameter type in '%s'", name);
    }
    if (i < n) {
      set_var(r, into, id, kw_or_pos(r, args, n, id->s, i));
    } else if (p->kind == N_KWARG) {
      set_var(r, into, id, eval(r, p->b, caller));
    } else {
      jr_fail(r, pos, "Not enough arguments provided to '%s'", name);
    }
  }
}

static jv *invoke(jr *r, size_t pos, jv *fn, jv **args, size_t n, jscope *sc) {
  enter(r, pos);
  jv *res;
  if (fn->u.fn.kind == JF_BUILTIN) {
    jargs a = {args, n, pos, fn->u.fn.name};
    jv *small[8];
    if (fn->u.fn.self) {
      jv **nv = n + 1 <= 8 ? small : jr_alloc(r, (n + 1) * sizeof(jv *));
      nv[0] = fn->u.fn.self;
      if (n) memcpy(nv + 1, args, n * sizeof(jv *));
      a.v = nv;
      a.n = n + 1;
    }
    res = fn->u.fn.bi(r, &a);
  } else if (fn->u.fn.kind == JF_MACRO) {
    const jnode *m = fn->u.fn.node;
    jscope *ms = new_scope(r, sc);
    bind_params(r, pos, fn->u.fn.name, m->l1, args, n, ms, sc);
    res = exec_to_str(r, m->l2, ms);
  } else {
    const jnode *cs = fn->u.fn.node;
    jscope *bs = new_scope(r, fn->u.fn.scope);
    bind_params(r, pos, "caller", cs->l1, args, n, bs, sc);
    res = exec_to_str(r, cs->l2, bs);
  }
  r->depth--;
  return res;
}

static jv **eval_args(jr *r, jnodes l, jscope *sc) {
  jv **args = jr_alloc(r, (l.n ? l.n : 1) * sizeof(jv *));
  for (size_t i = 0; i < l.n; i++) args[i] = eval(r, l.v[i], sc);
  return args;
}

/* ---- filters and tests ---- */

static const char *filter_alias(const char *id) {
  if (!strcmp(id, "count")) return "length";
  if (!strcmp(id, "d")) return "default";
  if (!strcmp(id, "e")) return "escape";
  if (!strcmp(id, "trim")) return "strip";
  return id;
}

static jv *apply_filter(jr *r, const jnode *f, jv *input, jscope *sc) {
  if (f->kind == N_IDENT) {
    const char *id = filter_alias(f->s);
    if (input->t != JV_UNDEF && input->t != JV_STR &&
        (!strcmp(id, "capitalize") || !strcmp(id, "lower") || !strcmp(id, "replace") ||
         !strcmp(id, "strip") || !strcmp(id, "title") || !strcmp(id, "upper") ||
         !strcmp(id, "wordcount"))) {
      jv *s = jv_as_string(r, f->pos, input);
      input = jv_str(r, s->u.s.p, s->u.s.len);
    }
    jbi_fn fn = jinja_type_builtin(r, f->pos, input, id, strlen(id));
    if (!fn)
      jr_fail(r, f->pos, "Unknown (built-in) filter '%s' for type %s", id, jv_type_name(input));
    return invoke(r, f->pos, jv_func_builtin(r, id, fn, input), NULL, 0, sc);
  }
  if (f->kind == N_CALL) {
    if (f->a->kind != N_IDENT) jr_fail(r, f->pos, "Filter callee must be an identifier");
    const char *id = filter_alias(f->a->s);
    jv **args = eval_args(r, f->l1, sc);
    jbi_fn fn = jinja_type_builtin(r, f->pos, input, id, strlen(id));
    if (!fn)
      jr_fail(r, f->pos, "Unknown (built-in) filter '%s' for type %s", id, jv_type_name(input));
    return invoke(r, f->pos, jv_func_builtin(r, id, fn, input), args, f->l1.n, sc);
  }
  jr_fail(r, f->pos, "Invalid filter expression");
}

static jv *eval_test(jr *r, const jnode *n, jscope *sc) {
  jv *input = eval(r, n->a, sc);
  const jnode *t = n->b;
  const char *id;
  jv **args;
  size_t na;
  if (t->kind == N_IDENT) {
    id = t->s;
    args = jr_alloc(r, sizeof(jv *));
    na = 1;
  } else if (t->kind == N_CALL) {
    if (t->a->kind != N_IDENT) jr_fail(r, t->pos, "Test callee must be an identifier");
    id = t->a->s;
    args = jr_alloc(r, (t->l1.n + 1) * sizeof(jv *));
    for (size_t i = 0; i < t->l1.n; i++) args[i + 1] = eval(r, t->l1.v[i], sc);
    na = t->l1.n + 1;
  } else {
    jr_fail(r, t->pos, "Invalid test expression");
  }
  args[0] = input;
  jbi_fn fn = jinja_test_builtin(id, strlen(id));
  if (!fn) jr_fail(r, n->pos, "Unknown test '%s'", id);
  jargs a = {args, na, n->pos, id};
  jv *res = fn(r, &a);
  if (n->flag) return jv_bool(r, !jv_as_bool(r, n->pos, res));
  return res;
}

/* ---- operators ---- */

static const char *op_name(int op) {
  static const char *const names[] = {
      "and", "or", "==", "!=", "<", ">", "<=", ">=", "+", "-", "~", "*", "/", "%", "in", "not in"};
  return names[op];
}

static jv *concat_null(jr *r, size_t pos, int op, jv *l, jv *rt) {
  if (op != OP_ADD && op != OP_CONCAT) return NULL;
  bool ln = l->t == JV_NONE || l->t == JV_UNDEF, rn = rt->t == JV_NONE || rt->t == JV_UNDEF;
  if (ln && rt->t == JV_STR) return jv_concat(r, pos, r->empty_str, rt);
  if (rn && l->t == JV_STR) return jv_concat(r, pos, l, r->empty_str);
  return NULL;
}

static bool test_in(jr *r, size_t pos, jv *needle, jv *hay) {
  if (hay->t == JV_UNDEF) return false;
  if (jv_is_array(hay)) {
    for (size_t i = 0; i < hay->u.a.n; i++)
      if (jv_equiv(needle, hay->u.a.v[i])) return true;
    return false;
  }
  if (hay->t == JV_STR) {
    if (needle->t != JV_STR)
      jr_fail(r, pos, "'in' test expects args[1] as string when args[0] is string, got %s",
              jv_type_name(needle));
    if (needle->u.s.len == 0) return true;
    return memmem(hay->u.s.p, hay->u.s.len, needle->u.s.p, needle->u.s.len) != NULL;
  }
  if (hay->t == JV_OBJECT) return jv_obj_get(r, pos, hay, needle) != NULL;
  jr_fail(r, pos, "'in' test expects iterable as first argument, got %s", jv_type_name(hay));
}

bool jinja_test_in(jr *r, size_t pos, jv *needle, jv *hay) { return test_in(r, pos, needle, hay); }

static jv *eval_binary(jr *r, const jnode *n, jscope *sc) {
  size_t pos = n->pos;
  int op = n->op;
  jv *l = eval(r, n->a, sc);
  if (op == OP_AND) return jv_as_bool(r, pos, l) ? eval(r, n->b, sc) : l;
  if (op == OP_OR) return jv_as_bool(r, pos, l) ? l : eval(r, n->b, sc);
  jv *rt = eval(r, n->b, sc);
  if (op == OP_EQ) return jv_bool(r, jv_equiv(l, rt));
  if (op == OP_NE) return jv_bool(r, !jv_equiv(l, rt));
  if (l->t == JV_UNDEF || rt->t == JV_UNDEF) {
    if (rt->t == JV_UNDEF && (op == OP_IN || op == OP_NOTIN)) return jv_bool(r, op == OP_NOTIN);
    jv *res = concat_null(r, pos, op, l, rt);
    if (res) return res;
    jr_fail(r, pos, "Cannot perform operation %s on undefined values", op_name(op));
  }
  if (l->t == JV_NONE || rt->t == JV_NONE) {
    jv *res = concat_null(r, pos, op, l, rt);
    if (res) return res;
    jr_fail(r, pos, "Cannot perform operation on null values");
  }
  if (jv_is_num(l) && jv_is_num(rt)) {
    double a = jv_as_float(r, pos, l), b = jv_as_float(r, pos, rt);
    bool fl = l->t == JV_FLOAT || rt->t == JV_FLOAT;
    switch (op) {
      case OP_ADD:
      case OP_SUB:
      case OP_MUL: {
        double res = op == OP_ADD ? a + b : op == OP_SUB ? a - b : a * b;
        return fl ? jv_float(r, res) : jv_int(r, jv_d2i(res));
      }
      case OP_DIV:
        return jv_float(r, a / b);
      case OP_MOD: {
        double rem = fmod(a, b);
        return fl ? jv_float(r, rem) : jv_int(r, jv_d2i(rem));
      }
      case OP_LT:
        return jv_bool(r, a < b);
      case OP_GT:
        return jv_bool(r, a > b);
      case OP_GE:
        return jv_bool(r, a >= b);
      case OP_LE:
        return jv_bool(r, a <= b);
      default:
        break;
    }
  }
  if (jv_is_array(l) && jv_is_array(rt)) {
    if (op == OP_ADD) {
      jv *res = jv_array(r, l->u.a.n + rt->u.a.n);
      for (size_t i = 0; i < l->u.a.n; i++) jv_push(r, res, l->u.a.v[i]);
      for (size_t i = 0; i < rt->u.a.n; i++) jv_push(r, res, rt->u.a.v[i]);
      return res;
    }
  } else if (jv_is_array(rt)) {
    if (op == OP_IN || op == OP_NOTIN) {
      bool m = test_in(r, pos, l, rt);
      return jv_bool(r, op == OP_IN ? m : !m);
    }
  }
  if ((l->t == JV_STR || rt->t == JV_STR) && (op == OP_CONCAT || op == OP_ADD))
    return jv_concat(r, pos, jv_as_string(r, pos, l), jv_as_string(r, pos, rt));
  if (op == OP_MUL &&
      ((l->t == JV_STR && rt->t == JV_INT) || (l->t == JV_INT && rt->t == JV_STR))) {
    jv *s = l->t == JV_STR ? l : rt;
    int64_t rep = rt->t == JV_INT ? rt->u.i : l->u.i;
    if (rep <= 0) return jv_str(r, "", 0);
    if (s->u.s.len && (uint64_t)rep > r->max_output / s->u.s.len)
      jr_fail(r, pos, "string repetition longer than %zu bytes", r->max_output);
    jsink out = {0};
    bool parts = rep <= 4096;
    for (int64_t i = 0; i < rep; i++) {
      if (parts)
        jsink_put_str(r, &out, s);
      else
        jsink_put(r, &out, s->u.s.p, s->u.s.len);
      if (!s->u.s.len) jr_step(r, pos, 1);
    }
    return jsink_to_str(r, &out);
  }
  if (l->t == JV_STR && rt->t == JV_STR && (op == OP_IN || op == OP_NOTIN)) {
    bool m = test_in(r, pos, l, rt);
    return jv_bool(r, op == OP_IN ? m : !m);
  }
  if (rt->t == JV_OBJECT && (op == OP_IN || op == OP_NOTIN)) {
    bool m = test_in(r, pos, l, rt);
    return jv_bool(r, op == OP_IN ? m : !m);
  }
  jr_fail(r, pos, "Unknown operator \"%s\" between %s and %s", op_name(op), jv_type_name(l),
          jv_type_name(rt));
}

/* ---- member access ---- */

/* name must stay valid through the render; it is copied unless NUL-terminated already */
static jv *bound_builtin(jr *r, size_t pos, jv *obj, const char *name, size_t len, bool cstr) {
  jbi_fn fn = jinja_type_builtin(r, pos, obj, name, len);
  if (!fn) return NULL;
  return jv_func_builtin(r, cstr ? name : jr_strdup(r, name, len), fn, obj);
}

static jv *eval_member(jr *r, const jnode *n, jscope *sc) {
  size_t pos = n->pos;
  jv *obj = eval(r, n->a, sc);
  jv *prop;
  if (n->flag) {
    const jnode *p = n->b;
    if (p->kind == N_SLICE) {
      int64_t size = jv_is_array(obj)   ? (int64_t)obj->u.a.n
                     : obj->t == JV_STR ? (int64_t)obj->u.s.len
                                        : 0;
      jv *step = p->c ? eval(r, p->c, sc) : jv_int(r, 1);
      jv *start = p->a ? eval(r, p->a, sc) : jv_int(r, jv_as_int(r, pos, step) < 0 ? size - 1 : 0);
      jv *stop = p->b ? eval(r, p->b, sc) : jv_int(r, jv_as_int(r, pos, step) < 0 ? -1 : size);
      jv *fn = bound_builtin(r, pos, obj, "slice", 5, true);
      if (!fn) jr_fail(r, pos, "Unknown (built-in) filter 'slice' for type %s", jv_type_name(obj));
      jv *args[3] = {start, stop, step};
      return invoke(r, pos, fn, args, 3, sc);
    }
    prop = eval(r, p, sc);
  } else {
    if (n->b->kind != N_IDENT) jr_fail(r, pos, "Static member property must be an identifier");
    prop = node_str(r, n->b);
    jv *fn = bound_builtin(r, pos, obj, n->b->s, n->b->slen, true);
    if (fn) return fn;
  }
  if (prop->t == JV_UNDEF) return jv_undef(r, "object_property");
  if (!jv_hashable(prop))
    jr_fail(r, pos, "Type: %s is not allowed as object key", jv_type_name(prop));
  if (obj->t == JV_UNDEF) return jv_undef(r, "object_property");
  if (obj->t == JV_OBJECT) {
    bool st = !n->flag;
    jv *key = st ? prop : jv_as_string(r, pos, prop);
    jv *v = jv_obj_get(r, pos, obj, prop);
    if (v && v->t != JV_UNDEF) return v;
    jv *fn = bound_builtin(r, pos, obj, key->u.s.p, key->u.s.len, st);
    if (fn) return fn;
    return jv_undef(r, st ? n->b->s : jr_strdup(r, key->u.s.p, key->u.s.len));
  }
  if (jv_is_array(obj) || obj->t == JV_STR) {
    if (prop->t == JV_INT) {
      int64_t i = prop->u.i;
      if (jv_is_array(obj)) {
        if (i < 0) i += (int64_t)obj->u.a.n;
        if (i >= 0 && i < (int64_t)obj->u.a.n) return obj->u.a.v[i];
      } else if (i >= 0 && i < (int64_t)obj->u.s.len) {
        return jv_str(r, obj->u.s.p + i, 1);
      }
      return jv_undef(r, "object_property");
    }
    if (prop->t == JV_STR) {
      bool st = !n->flag;
      jv *fn = bound_builtin(r, pos, obj, prop->u.s.p, prop->u.s.len, st);
      return fn ? fn : jv_undef(r, st ? n->b->s : jr_strdup(r, prop->u.s.p, prop->u.s.len));
    }
    jr_fail(r, pos, "Cannot access property with non-string/non-number: got %s",
            jv_type_name(prop));
  }
  if (prop->t != JV_STR)
    jr_fail(r, pos, "Cannot access property with non-string: got %s", jv_type_name(prop));
  bool st = !n->flag;
  jv *fn = bound_builtin(r, pos, obj, prop->u.s.p, prop->u.s.len, st);
  return fn ? fn : jv_undef(r, st ? n->b->s : jr_strdup(r, prop->u.s.p, prop->u.s.len));
}

/* ---- expressions ---- */

static jv *eval_inner(jr *r, const jnode *n, jscope *sc) {
  switch (n->kind) {
    case N_TEXT:
    case N_STR:
      return node_str(r, n);
    case N_INT:
      return jv_int(r, n->i);
    case N_FLOAT: {
      jv **slot = &r->node_cache[n->id];
      if (!*slot) *slot = jv_float(r, n->f);
      return *slot;
    }
    case N_IDENT: {
      jv *v = lookup(sc, n->s, n->slen);
      if (v && v->t != JV_UNDEF) return v;
      jbi_fn fn = jinja_global_builtin(n->s, n->slen);
      if (fn) return jv_func_builtin(r, n->s, fn, NULL);
      return jv_undef(r, n->s);
    }
    case N_ARRAY:
    case N_TUPLE: {
      jv *a = n->kind == N_ARRAY ? jv_array(r, n->l1.n) : jv_tuple(r, n->l1.n);
      for (size_t i = 0; i < n->l1.n; i++) jv_push(r, a, eval(r, n->l1.v[i], sc));
      return a;
    }
    case N_OBJECT: {
      jv *o = jv_object(r);
      for (size_t i = 0; i < n->l1.n; i++) {
        jv *k = eval(r, n->l1.v[i], sc);
        jv *v = eval(r, n->l2.v[i], sc);
        jv_obj_set(r, n->pos, o, k, v);
      }
      return o;
    }
    case N_MEMBER:
      return eval_member(r, n, sc);
    case N_CALL: {
      jv **args = eval_args(r, n->l1, sc);
      jv *fn = eval(r, n->a, sc);
      if (fn->t != JV_FUNC)
        jr_fail(r, n->pos, "Callee is not a function: got %s", jv_type_name(fn));
      return invoke(r, n->pos, fn, args, n->l1.n, sc);
    }
    case N_BINARY:
      return eval_binary(r, n, sc);
    case N_NOT:
      return jv_bool(r, !jv_as_bool(r, n->pos, eval(r, n->a, sc)));
    case N_FILTER:
      return apply_filter(r, n->b, eval(r, n->a, sc), sc);
    case N_TEST:
      return eval_test(r, n, sc);
    case N_SELECT:
      if (!jv_as_bool(r, n->pos, eval(r, n->b, sc))) return r->undef;
      return eval(r, n->a, sc);
    case N_TERNARY:
      return jv_as_bool(r, n->pos, eval(r, n->a, sc)) ? eval(r, n->b, sc) : eval(r, n->c, sc);
    case N_KWARG:
      if (n->a->kind != N_IDENT) jr_fail(r, n->pos, "Keyword argument key must be identifiers");
      return jv_kwarg(r, n->a->s, eval(r, n->b, sc));
    case N_BLANK:
    case N_COMMENT:
    case N_NOOP:
      return r->undef;
    case N_SPREAD:
      jr_fail(r, n->pos, "cannot exec SpreadExpression");
    case N_SLICE:
      jr_fail(r, n->pos, "must be handled by MemberExpression");
    default:
      jr_fail(r, n->pos, "cannot evaluate a statement as an expression");
  }
}

static jv *eval(jr *r, const jnode *n, jscope *sc) {
  enter(r, n->pos);
  jv *v = eval_inner(r, n, sc);
  r->depth--;
  return v;
}

/* ---- statements ---- */

static void bind_loopvar(jr *r, const jnode *lv, jv *item, bool obj, jscope *sc) {
  if (lv->kind == N_IDENT) {
    set_var(r, sc, lv, obj ? item->u.a.v[0] : item);
    return;
  }
  for (size_t j = 0; j < lv->l1.n; j++) {
    const jnode *id = lv->l1.v[j];
    if (id->kind != N_IDENT) jr_fail(r, id->pos, "Cannot unpack non-identifier type");
    set_var(r, sc, id, item->u.a.v[j]);
  }
}

typedef struct {
  size_t i;
  bool no_iter;
  size_t mark_len, mark_offs, mark_defs;
} loop_state;

static void exec_for(jr *r, const jnode *n, jscope *sc, jsink *out) {
  size_t defs0 = out->ndefs;
  jscope *scope = new_scope(r, sc);
  const jnode *iter = n->b, *test = NULL;
  if (iter->kind == N_SELECT) {
    test = iter->b;
    iter = iter->a;
  }
  jv *it = eval(r, iter, scope);
  if (it->t == JV_UNDEF) it = jv_array(r, 0);
  if (!jv_is_array(it) && it->t != JV_OBJECT)
    jr_fail(r, n->pos, "Expected iterable or object type in for loop: got %s", jv_type_name(it));
  bool obj = it->t == JV_OBJECT;
  size_t cnt = obj ? it->u.o.n : it->u.a.n;
  jv **items = jr_alloc(r, (cnt ? cnt : 1) * sizeof(jv *));
  for (size_t i = 0; i < cnt; i++) {
    if (obj) {
      jv *t = jv_tuple(r, 2);
      jv_push(r, t, it->u.o.k[i]);
      jv_push(r, t, it->u.o.v[i]);
      items[i] = t;
    } else {
      items[i] = it->u.a.v[i];
    }
  }
  const jnode *lv = n->a;
  bool same = !test && !obj; /* then the filtered items are the items */
  jv **fitems = same ? items : jr_alloc(r, (cnt ? cnt : 1) * sizeof(jv *));
  jv **fsrc = same ? items : jr_alloc(r, (cnt ? cnt : 1) * sizeof(jv *));
  size_t nf = 0;
  jscope *ls = test ? new_scope(r, scope) : NULL;
  for (size_t i = 0; i < cnt; i++) {
    jr_step(r, n->pos, 1);
    jv *cur = items[i];
    if (lv->kind == N_IDENT) {
      if (obj) cur = items[i]->u.a.v[0];
    } else if (lv->kind == N_TUPLE) {
      if (!jv_is_array(cur))
        jr_fail(r, n->pos, "Cannot unpack non-iterable type: %s", jv_type_name(cur));
      if (lv->l1.n != cur->u.a.n)
        jr_fail(r, n->pos, "Too %s items to unpack", lv->l1.n > cur->u.a.n ? "few" : "many");
    } else {
      jr_fail(r, n->pos, "Invalid loop variable(s)");
    }
    if (test) {
      bind_loopvar(r, lv, items[i], obj, ls);
      if (!jv_as_bool(r, test->pos, eval(r, test, ls))) continue;
    }
    fitems[nf] = cur;
    fsrc[nf] = items[i];
    nf++;
  }

  jloop *lj = jr_alloc(r, sizeof(*lj));
  loop_state *st = jr_alloc(r, sizeof(*st));
  lj->prev = r->loop;
  lj->depth = r->depth;
  st->no_iter = true;
  r->loop = lj;
  int sig = setjmp(lj->jb);
  if (sig) {
    /* break or continue: drop what the interrupted statement printed */
    r->depth = lj->depth;
    r->loop = lj;
    out->len = st->mark_len;
    out->noffs = st->mark_offs;
    out->ndefs = st->mark_defs;
    if (out->p) out->p[out->len] = '\0';
    if (sig == 1) goto done;
    st->i++;
  }
  for (; st->i < nf; st->i++) {
    size_t i = st->i;
    jr_step(r, n->pos, 1);
    /* a fresh loop object per iteration, as in llama.cpp, but its keys are shared: any
     * insertion into it reallocates (n == cap) */
    jv *loop = jv_object(r);
    loop->nobi = true;
    jv **vals = jr_alloc(r, 9 * sizeof(jv *));
    vals[0] = jv_int(r, (int64_t)i + 1);
    vals[1] = jv_int(r, (int64_t)i);
    vals[2] = jv_int(r, (int64_t)(nf - i));
    vals[3] = jv_int(r, (int64_t)(nf - i - 1));
    vals[4] = jv_bool(r, i == 0);
    vals[5] = jv_bool(r, i == nf - 1);
    vals[6] = jv_int(r, (int64_t)nf);
    vals[7] = i > 0 ? fitems[i - 1] : r->u_previtem;
    vals[8] = i + 1 < nf ? fitems[i + 1] : r->u_nextitem;
    loop->u.o.k = r->loop_keys;
    loop->u.o.v = vals;
    loop->u.o.n = loop->u.o.cap = 9;
    jv_obj_set(r, n->pos, scope->vars, r->k_loop, loop);
    bind_loopvar(r, lv, fsrc[i], obj, scope);
    for (size_t k = 0; k < n->l1.n; k++) {
      st->mark_len = out->len;
      st->mark_offs = out->noffs;
      st->mark_defs = out->ndefs;
      exec(r, n->l1.v[k], scope, out);
    }
    st->no_iter = false;
  }
done:
  r->loop = lj->prev;
  if (st->no_iter) exec_list(r, n->l2, sc, out);
  jsink_resolve(r, n->pos, out, defs0);
}

static void exec_set(jr *r, const jnode *n, jscope *sc) {
  jv *rhs = n->b ? eval(r, n->b, sc) : exec_to_str(r, n->l1, sc);
  const jnode *t = n->a;
  if (t->kind == N_IDENT) {
    set_var(r, sc, t, rhs);
  } else if (t->kind == N_TUPLE) {
    if (!jv_is_array(rhs))
      jr_fail(r, n->pos, "Cannot unpack non-iterable type in set: %s", jv_type_name(rhs));
    if (rhs->u.a.n != t->l1.n)
      jr_fail(r, n->pos, "Too %s items to unpack in set", t->l1.n > rhs->u.a.n ? "few" : "many");
    for (size_t i = 0; i < t->l1.n; i++) {
      if (t->l1.v[i]->kind != N_IDENT) jr_fail(r, n->pos, "Cannot unpack to non-identifier in set");
      set_var(r, sc, t->l1.v[i], rhs->u.a.v[i]);
    }
  } else if (t->kind == N_MEMBER) {
    if (t->flag) jr_fail(r, n->pos, "Cannot assign to computed member");
    if (t->b->kind != N_IDENT)
      jr_fail(r, n->pos, "Cannot assign to member with non-identifier property");
    jv *o = eval(r, t->a, sc);
    if (o->t != JV_OBJECT) jr_fail(r, n->pos, "Cannot assign to member of non-object");
    jv_obj_set(r, n->pos, o, jv_str(r, t->b->s, t->b->slen), rhs);
  } else {
    jr_fail(r, n->pos, "Invalid LHS inside assignment expression");
  }
}

static void exec(jr *r, const jnode *n, jscope *sc, jsink *out) {
  enter(r, n->pos);
  switch (n->kind) {
    case N_TEXT:
      jsink_part(r, out);
      jsink_put(r, out, n->s, n->slen);
      break;
    case N_COMMENT:
    case N_NOOP:
      break;
    case N_IF: {
      size_t defs0 = out->ndefs;
      if (jv_as_bool(r, n->pos, eval(r, n->a, sc)))
        exec_list(r, n->l1, sc, out);
      else
        exec_list(r, n->l2, sc, out);
      jsink_resolve(r, n->pos, out, defs0);
      break;
    }
    case N_FOR:
      exec_for(r, n, sc, out);
      break;
    case N_BREAK:
    case N_CONTINUE:
      if (!r->loop)
        jr_fail(r, n->pos, "%s statement executed outside a loop",
                n->kind == N_BREAK ? "Break" : "Continue");
      longjmp(r->loop->jb, n->kind == N_BREAK ? 1 : 2);
    case N_SET:
      exec_set(r, n, sc);
      break;
    case N_MACRO: {
      if (n->a->kind != N_IDENT) jr_fail(r, n->pos, "Macro name must be an identifier");
      jv *fn = jv_func_builtin(r, n->a->s, NULL, NULL);
      fn->u.fn.kind = JF_MACRO;
      fn->u.fn.node = n;
      set_var(r, sc, n->a, fn);
      break;
    }
    case N_CALLSTMT: {
      const jnode *call = n->a;
      jv *callee = eval(r, call->a, sc);
      if (callee->t != JV_FUNC)
        jr_fail(r, n->pos, "Callee is not a function: got %s", jv_type_name(callee));
      jv *caller = jv_func_builtin(r, "caller", NULL, NULL);
      caller->u.fn.kind = JF_CALLER;
      caller->u.fn.node = n;
      caller->u.fn.scope = sc;
      jscope *cs = new_scope(r, sc);
      jv_obj_set_cstr(r, cs->vars, "caller", caller);
      jv **args = eval_args(r, call->l1, sc);
      jsink_emit(r, n->pos, out, invoke(r, n->pos, callee, args, call->l1.n, cs));
      break;
    }
    case N_FILTERSTMT: {
      jv *body = exec_to_str(r, n->l1, sc);
      jsink_emit(r, n->pos, out, apply_filter(r, n->a, body, sc));
      break;
    }
    default:
      jsink_emit(r, n->pos, out, eval(r, n, sc));
      break;
  }
  r->depth--;
}

/* ---- entry ---- */

static int render_protected(jr *r, const jinja_tmpl *t, const json_t *context, char **out,
                            size_t *out_len) {
  if (setjmp(*r->fail_jb)) {
    if (*out) {
      free(*out);
      *out = NULL;
    }
    return -1;
  }
  r->undef = jr_alloc(r, sizeof(jv));
  r->undef->t = JV_UNDEF;
  r->none = jr_alloc(r, sizeof(jv));
  r->none->t = JV_NONE;
  r->vtrue = jr_alloc(r, sizeof(jv));
  r->vtrue->t = JV_BOOL;
  r->vtrue->u.i = 1;
  r->vfalse = jr_alloc(r, sizeof(jv));
  r->vfalse->t = JV_BOOL;
  r->empty_str = jv_str(r, "", 0);
  r->node_cache = jr_alloc(r, (t->nnodes ? t->nnodes : 1) * sizeof(jv *));
  r->small_ints = jr_alloc(r, 1152 * sizeof(jv *));
  static const char *const lk[9] = {"index", "index0", "revindex", "revindex0", "first",
                                    "last",  "length", "previtem", "nextitem"};
  for (int i = 0; i < 9; i++) r->loop_keys[i] = jv_str(r, lk[i], strlen(lk[i]));
  r->k_loop = jv_str(r, "loop", 4);
  r->u_previtem = jv_undef(r, "previtem");
  r->u_nextitem = jv_undef(r, "nextitem");

  jscope *root = new_scope(r, NULL);
  jv_obj_set_cstr(r, root->vars, "true", r->vtrue);
  jv_obj_set_cstr(r, root->vars, "True", r->vtrue);
  jv_obj_set_cstr(r, root->vars, "false", r->vfalse);
  jv_obj_set_cstr(r, root->vars, "False", r->vfalse);
  jv_obj_set_cstr(r, root->vars, "none", r->none);
  jv_obj_set_cstr(r, root->vars, "None", r->none);
  if (context) {
    if (!json_is_object(context))
      jr_fail(r, 0, "global_from_json: input JSON value must be an object");
    json_t *pr = json_object_get(context, "preserve_reasoning");
    if (json_is_boolean(pr)) {
      bool on = json_is_true(pr);
      jv_obj_set_cstr(r, root->vars, "preserve_thinking", jv_bool(r, on));
      jv_obj_set_cstr(r, root->vars, "clear_thinking", jv_bool(r, !on));
      jv_obj_set_cstr(r, root->vars, "truncate_history_thinking", jv_bool(r, !on));
      jv_obj_set_cstr(r, root->vars, "drop_thinking", jv_bool(r, !on));
    }
    json_t *re = json_object_get(context, "reasoning_effort");
    if (json_is_string(re)) {
      jv *v = jv_str(r, json_string_value(re), json_string_length(re));
      jv_obj_set_cstr(r, root->vars, "reasoning_effort", v);
      jv_obj_set_cstr(r, root->vars, "reasoning_strength", v);
    }
    jv *ctx = jv_from_json(r, context, 0);
    for (size_t i = 0; i < ctx->u.o.n; i++)
      jv_obj_set(r, 0, root->vars, ctx->u.o.k[i], ctx->u.o.v[i]);
  }
  jsink s = {0};
  exec_list(r, t->body, root, &s);
  jsink_resolve(r, 0, &s, 0);
  char *res = malloc(s.len + 1);
  if (!res) jr_oom(r);
  if (s.len) memcpy(res, s.p, s.len);
  res[s.len] = '\0';
  *out = res;
  if (out_len) *out_len = s.len;
  return 0;
}

int jinja_render(const jinja_tmpl *t, const json_t *context, const jinja_limits *lim, char **out,
                 size_t *out_len, char *err, size_t err_len) {
  if (out) *out = NULL;
  if (out_len) *out_len = 0;
  if (err && err_len) err[0] = '\0';
  if (!t || !out) {
    if (err && err_len) snprintf(err, err_len, "jinja: no template");
    return -1;
  }
  jr *r = calloc(1, sizeof(*r));
  jmp_buf *jb = malloc(sizeof(*jb));
  if (!r || !jb) {
    free(r);
    free(jb);
    if (err && err_len) snprintf(err, err_len, "jinja: out of memory");
    return -1;
  }
  r->t = t;
  r->err = err;
  r->err_len = err_len;
  r->fail_jb = jb;
  r->max_depth = lim && lim->max_depth > 0 ? lim->max_depth : JINJA_DEFAULT_MAX_DEPTH;
  r->max_output = lim && lim->max_output > 0 ? lim->max_output : JINJA_DEFAULT_MAX_OUTPUT;
  r->max_steps = lim && lim->max_steps > 0 ? lim->max_steps : JINJA_DEFAULT_MAX_STEPS;
  r->arena.limit = lim && lim->max_memory > 0 ? lim->max_memory : JINJA_DEFAULT_MAX_MEMORY;
  const char *now = getenv("SY_JINJA_NOW");
  r->now = now && *now ? (time_t)strtoll(now, NULL, 10) : time(NULL);
  int rc = render_protected(r, t, context, out, out_len);
  ja_free_all(&r->arena);
  free(jb);
  free(r);
  return rc;
}
