/* peer_offer.c — see peer_offer.h. Must never crash, loop or grow without a bound on any bytes a
 * peer sends, and never offer an entry without a usable name or one the peer itself forwards. */
#include "engines/peer_offer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void peer_offer_clear(peer_offer *o) {
  json_decref(o->models);
  json_decref(o->ps);
  json_decref(o->memory);
  json_decref(o->devices);
  for (size_t i = 0; i < o->n_names; i++) free(o->names[i]);
  free(o->names);
  memset(o, 0, sizeof *o);
}

/* A name as the matrix's: 1..PEER_OFFER_NAME_MAX bytes, no spaces or control characters. */
static bool name_ok(const json_t *v) {
  const char *s = json_string_value(v);
  size_t n = json_string_length(v);
  if (!s || n == 0 || n > PEER_OFFER_NAME_MAX || strlen(s) != n) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) return false;
  return true;
}

static bool wanted(const json_t *e, bool all, char *const *want, size_t n_want) {
  if (all) return true;
  const char *id = json_string_value(json_object_get(e, "id"));
  for (size_t k = 0; k < n_want; k++) {
    if (!strcmp(id, want[k])) return true;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(e, "aliases"), i, a) {
      if (name_ok(a) && !strcmp(json_string_value(a), want[k])) return true;
    }
  }
  return false;
}

bool peer_offer_has(const peer_offer *o, const char *name) {
  for (size_t i = 0; name && i < o->n_names; i++)
    if (!strcmp(o->names[i], name)) return true;
  return false;
}

const json_t *peer_offer_entry(const peer_offer *o, const char *name) {
  size_t i;
  json_t *e;
  if (!name) return NULL;
  json_array_foreach(o->models, i, e) {
    if (!strcmp(json_string_value(json_object_get(e, "id")), name)) return e;
    size_t k;
    json_t *a;
    json_array_foreach(json_object_get(e, "aliases"), k, a) {
      if (json_is_string(a) && !strcmp(json_string_value(a), name)) return e;
    }
  }
  return NULL;
}

static int add_name(peer_offer *o, const char *s) {
  if (peer_offer_has(o, s)) return 0; /* the first entry that answers to it keeps it */
  if (o->n_names >= PEER_OFFER_MAX_NAMES) return 0;
  char **nv = realloc(o->names, (o->n_names + 1) * sizeof *nv);
  if (!nv) return -1;
  o->names = nv;
  if (!(nv[o->n_names] = strdup(s))) return -1;
  o->n_names++;
  return 0;
}

static json_t *load(const char *body, size_t len, const char *what, char *why, size_t wl) {
  json_error_t je;
  if (len > PEER_OFFER_MAX_BYTES) {
    snprintf(why, wl, "its %s answer is larger than %d bytes", what, PEER_OFFER_MAX_BYTES);
    return NULL;
  }
  json_t *j = json_loadb(body, len, 0, &je);
  if (!json_is_object(j)) {
    snprintf(why, wl, "its %s answer is not a JSON object%s%.100s", what, j ? "" : ": ",
             j ? "" : je.text);
    json_decref(j);
    return NULL;
  }
  return j;
}

int peer_offer_parse(const char *models_body, size_t models_len, const char *ps_body, size_t ps_len,
                     const char *peer, bool all, char *const *want, size_t n_want, peer_offer *out,
                     char *why, size_t wl) {
  memset(out, 0, sizeof *out);
  json_t *ml =
      load(models_body ? models_body : "", models_body ? models_len : 0, "/v1/models", why, wl);
  if (!ml) return -1;
  json_t *data = json_object_get(ml, "data");
  if (!json_is_array(data)) {
    snprintf(why, wl, "its /v1/models answer has no \"data\" list");
    json_decref(ml);
    return -1;
  }
  out->models = json_array();
  out->ps = json_array();
  size_t i;
  json_t *e;
  json_array_foreach(data, i, e) {
    if (json_array_size(out->models) >= PEER_OFFER_MAX_MODELS) break;
    if (!json_is_object(e) || !name_ok(json_object_get(e, "id"))) continue;
    if (json_object_get(e, "peer")) continue; /* forwarded by the peer itself: never twice */
    if (!wanted(e, all, want, n_want)) continue;
    json_t *c = json_deep_copy(e);
    if (!c || json_object_set_new(c, "peer", json_string(peer)) != 0 ||
        json_array_append_new(out->models, c) != 0)
      goto oom;
    if (add_name(out, json_string_value(json_object_get(e, "id")))) goto oom;
    size_t k;
    json_t *a;
    json_array_foreach(json_object_get(e, "aliases"), k, a) {
      if (name_ok(a) && add_name(out, json_string_value(a))) goto oom;
    }
  }
  json_decref(ml);
  if (!ps_body) return 0;
  json_t *ps = load(ps_body, ps_len, "/api/ps", why, wl);
  if (!ps) {
    peer_offer_clear(out);
    return -1;
  }
  json_array_foreach(json_object_get(ps, "models"), i, e) {
    if (json_array_size(out->ps) >= PEER_OFFER_MAX_MODELS) break;
    if (!json_is_object(e) || !name_ok(json_object_get(e, "name")) || json_object_get(e, "peer"))
      continue;
    const json_t *entry = peer_offer_entry(out, json_string_value(json_object_get(e, "name")));
    if (!entry) continue;
    json_t *c = json_deep_copy(e);
    if (!c || json_object_set_new(c, "peer", json_string(peer)) != 0 ||
        json_array_append_new(out->ps, c) != 0) {
      json_decref(ps);
      goto oom2;
    }
  }
  json_t *mem = json_object_get(ps, "memory"), *dev = json_object_get(ps, "devices");
  if (json_is_object(mem)) out->memory = json_deep_copy(mem);
  if (json_is_array(dev)) out->devices = json_deep_copy(dev);
  json_decref(ps);
  return 0;
oom:
  json_decref(ml);
oom2:
  peer_offer_clear(out);
  snprintf(why, wl, "out of memory");
  return -1;
}
