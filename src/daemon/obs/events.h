/* events.h — the scheduler's event feed (load started/finished/failed, unloaded with a reason)
 * for GET /api/events: a bounded ring of recent events with sequence numbers that any number of
 * readers follow at their own pace. A slow reader loses the oldest events (it is told how many),
 * never slows the scheduler. Thread safety: all functions may be called from any thread. */
#ifndef SY_EVENTS_H
#define SY_EVENTS_H

#include <jansson.h>
#include <stdbool.h>

#define EVENTS_RING 256

typedef struct events events;

events *events_new(void);
void events_free(events *e);

/* Append an event (stolen): {"type", ...}; "seq" and "time" (unix seconds) are added. */
void events_publish(events *e, json_t *ev);

/* The sequence number the next event will get (start following from here). */
unsigned long long events_next_seq(events *e);

/* The event with sequence *seq, waiting up to timeout_ms for it; advances *seq. Returns a new
 * reference, or NULL on timeout. If the ring has moved past *seq, returns a {"type":"lost",
 * "count"} event and jumps to the oldest kept one. */
json_t *events_wait(events *e, unsigned long long *seq, int timeout_ms);

#endif
