/* events.c — see events.h. */
#include "obs/events.h"

#include "clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct events {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  json_t *ring[EVENTS_RING];
  unsigned long long next; /* sequence of the next event; ring[seq % EVENTS_RING] holds seq */
};

events *events_new(void) {
  events *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->cond, NULL);
  return e;
}

void events_free(events *e) {
  if (!e) return;
  for (int i = 0; i < EVENTS_RING; i++) json_decref(e->ring[i]);
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cond);
  free(e);
}

void events_publish(events *e, json_t *ev) {
  if (!e || !ev) {
    json_decref(ev);
    return;
  }
  pthread_mutex_lock(&e->mu);
  json_object_set_new(ev, "seq", json_integer((json_int_t)e->next));
  json_object_set_new(ev, "time", json_integer((json_int_t)time(NULL)));
  json_t **slot = &e->ring[e->next % EVENTS_RING];
  json_decref(*slot);
  *slot = ev;
  e->next++;
  pthread_cond_broadcast(&e->cond);
  pthread_mutex_unlock(&e->mu);
}

unsigned long long events_next_seq(events *e) {
  pthread_mutex_lock(&e->mu);
  unsigned long long n = e->next;
  pthread_mutex_unlock(&e->mu);
  return n;
}

json_t *events_wait(events *e, unsigned long long *seq, int timeout_ms) {
  struct timespec ts = sy_deadline(timeout_ms);
  pthread_mutex_lock(&e->mu);
  while (*seq >= e->next) {
    if (pthread_cond_timedwait(&e->cond, &e->mu, &ts) != 0 && *seq >= e->next) {
      pthread_mutex_unlock(&e->mu);
      return NULL;
    }
  }
  json_t *out;
  unsigned long long oldest = e->next > EVENTS_RING ? e->next - EVENTS_RING : 0;
  if (*seq < oldest) {
    out = json_pack("{s:s, s:I}", "type", "lost", "count", (json_int_t)(oldest - *seq));
    *seq = oldest;
  } else {
    out = json_incref(e->ring[*seq % EVENTS_RING]);
    (*seq)++;
  }
  pthread_mutex_unlock(&e->mu);
  return out;
}
