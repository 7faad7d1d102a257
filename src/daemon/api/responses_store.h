/* responses_store.h — the Responses API's stored responses (store: true, the default): what
 * GET /v1/responses/{id} returns and what previous_response_id continues. In memory only: a
 * daemon restart forgets every response.
 *
 * Bounded: at most RSP_STORE_MAX_ENTRIES responses and RSP_STORE_MAX_BYTES of JSON text (a
 * response object plus its conversation, as chat messages) are kept. Putting one more evicts the
 * least recently used (a get or a put counts as a use) until both bounds hold; an entry larger
 * than the byte bound by itself is not kept at all (put says so). Each entry holds its whole
 * conversation, so a chain of turns costs the sum of its lengths, and evicting an old turn never
 * breaks a newer one.
 *
 * Entries are kept as JSON text and parsed on every get: a caller gets its own objects, and no
 * jansson value is ever shared between threads.
 *
 * Thread safety: every function may be called from any thread at once (one mutex per store,
 * held only while copying text in or out; lookups are linear over at most
 * RSP_STORE_MAX_ENTRIES ids). */
#ifndef SY_RESPONSES_STORE_H
#define SY_RESPONSES_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define RSP_STORE_MAX_ENTRIES 1024
#define RSP_STORE_MAX_BYTES ((size_t)64 << 20)

typedef struct rsp_store rsp_store;

/* A store of at most max_entries entries and max_bytes bytes (0: the RSP_STORE_MAX_* bounds), or
 * NULL when out of memory. */
rsp_store *rsp_store_new(size_t max_entries, size_t max_bytes);
void rsp_store_free(rsp_store *s);

/* Keep response (its "id" names it) with history (the conversation including its answer, an array
 * of chat messages); both borrowed, serialised here. An entry of the same id is replaced. 0, or
 * -1 when it cannot be kept (no id, larger than the byte bound, out of memory). */
int rsp_store_put(rsp_store *s, const json_t *response, const json_t *history);

/* The entry id: *response and/or *history (either may be NULL) set to new references. false when
 * there is no such entry (never stored, evicted, deleted). */
bool rsp_store_get(rsp_store *s, const char *id, json_t **response, json_t **history);

/* Forget id. false when there was no such entry. */
bool rsp_store_delete(rsp_store *s, const char *id);

/* Entries and bytes held now (tests, /metrics one day). */
void rsp_store_usage(rsp_store *s, size_t *entries, size_t *bytes);

#endif
