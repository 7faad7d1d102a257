/* responses_store.c — see responses_store.h. A doubly linked list in recency order (head: the most
 * recently used); lookups walk it, which is cheap at RSP_STORE_MAX_ENTRIES entries. */
#include "api/responses_store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct rsp_entry {
  struct rsp_entry *prev, *next;
  char *id;
  char *response, *history; /* JSON text */
  size_t bytes;             /* what the entry counts against the bound */
} rsp_entry;

struct rsp_store {
  pthread_mutex_t mu;
  rsp_entry *head, *tail;
  size_t entries, bytes;
  size_t max_entries, max_bytes;
};

rsp_store *rsp_store_new(size_t max_entries, size_t max_bytes) {
  rsp_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  pthread_mutex_init(&s->mu, NULL);
  s->max_entries = max_entries ? max_entries : RSP_STORE_MAX_ENTRIES;
  s->max_bytes = max_bytes ? max_bytes : RSP_STORE_MAX_BYTES;
  return s;
}

static void entry_free(rsp_entry *e) {
  free(e->id);
  free(e->response);
  free(e->history);
  free(e);
}

static void unlink_entry(rsp_store *s, rsp_entry *e) {
  if (e->prev)
    e->prev->next = e->next;
  else
    s->head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    s->tail = e->prev;
  e->prev = e->next = NULL;
  s->entries--;
  s->bytes -= e->bytes;
}

static void push_front(rsp_store *s, rsp_entry *e) {
  e->prev = NULL;
  e->next = s->head;
  if (s->head) s->head->prev = e;
  s->head = e;
  if (!s->tail) s->tail = e;
  s->entries++;
  s->bytes += e->bytes;
}

static rsp_entry *find(const rsp_store *s, const char *id) {
  for (rsp_entry *e = s->head; e; e = e->next)
    if (strcmp(e->id, id) == 0) return e;
  return NULL;
}

void rsp_store_free(rsp_store *s) {
  if (!s) return;
  for (rsp_entry *e = s->head, *n; e; e = n) {
    n = e->next;
    entry_free(e);
  }
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int rsp_store_put(rsp_store *s, const json_t *response, const json_t *history) {
  const char *id = json_string_value(json_object_get(response, "id"));
  if (!id || !json_is_array(history)) return -1;
  rsp_entry *e = calloc(1, sizeof *e);
  if (!e) return -1;
  e->id = strdup(id);
  e->response = json_dumps(response, JSON_COMPACT);
  e->history = json_dumps(history, JSON_COMPACT);
  if (!e->id || !e->response || !e->history) {
    entry_free(e);
    return -1;
  }
  e->bytes = sizeof *e + strlen(e->id) + strlen(e->response) + strlen(e->history);
  if (e->bytes > s->max_bytes) {
    entry_free(e);
    return -1;
  }
  pthread_mutex_lock(&s->mu);
  rsp_entry *old = find(s, id);
  if (old) unlink_entry(s, old);
  while (s->tail && (s->entries + 1 > s->max_entries || s->bytes + e->bytes > s->max_bytes)) {
    rsp_entry *lru = s->tail;
    unlink_entry(s, lru);
    entry_free(lru);
  }
  push_front(s, e);
  pthread_mutex_unlock(&s->mu);
  if (old) entry_free(old);
  return 0;
}

bool rsp_store_get(rsp_store *s, const char *id, json_t **response, json_t **history) {
  char *resp_text = NULL, *hist_text = NULL;
  pthread_mutex_lock(&s->mu);
  rsp_entry *e = id ? find(s, id) : NULL;
  if (e) {
    unlink_entry(s, e); /* most recently used now */
    push_front(s, e);
    resp_text = response ? strdup(e->response) : NULL;
    hist_text = history ? strdup(e->history) : NULL;
  }
  pthread_mutex_unlock(&s->mu);
  if (!e) return false;
  if (response) *response = resp_text ? json_loads(resp_text, 0, NULL) : NULL;
  if (history) *history = hist_text ? json_loads(hist_text, 0, NULL) : NULL;
  free(resp_text);
  free(hist_text);
  if ((response && !*response) || (history && !*history)) { /* out of memory */
    if (response) {
      json_decref(*response);
      *response = NULL;
    }
    if (history) {
      json_decref(*history);
      *history = NULL;
    }
    return false;
  }
  return true;
}

bool rsp_store_delete(rsp_store *s, const char *id) {
  pthread_mutex_lock(&s->mu);
  rsp_entry *e = id ? find(s, id) : NULL;
  if (e) unlink_entry(s, e);
  pthread_mutex_unlock(&s->mu);
  if (e) entry_free(e);
  return e != NULL;
}

void rsp_store_usage(rsp_store *s, size_t *entries, size_t *bytes) {
  pthread_mutex_lock(&s->mu);
  if (entries) *entries = s->entries;
  if (bytes) *bytes = s->bytes;
  pthread_mutex_unlock(&s->mu);
}
