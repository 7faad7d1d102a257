/* peer.h — the daemon's peers at run time (CONFIG.md "Peers"): for each `peers:` entry of the
 * matrix, a thread that reads the peer's GET /v1/models and GET /api/ps every `refresh` seconds
 * (and soon after every request forwarded to it ends), and keeps what it offers (peer_offer.h),
 * whether it answered, and why not. Requests for its models are forwarded by engines/proxy.c
 * (proxy_peer); api_resolve finds them here (peers_find), /v1/models and /api/ps show them.
 *
 * Thread safety: every function may be called from any thread once peers_new returned; the
 * table's lock is taken before a peer's, never the other way round. A `peer *` handed out stays
 * valid until peers_free, even after a reload retired it (its thread stopped, its last offer
 * kept), so a request that resolved it may finish with it. A peer that is down keeps offering
 * what it offered last: its models answer 503 (with Retry-After) rather than 404 while it is away.
 */
#ifndef SY_PEER_H
#define SY_PEER_H

#include <jansson.h>
#include <stdbool.h>

#include "config/matrix.h"
#include "engines/peer_offer.h"

/* The header a forwarded request carries; a daemon never forwards a request that has it. */
#define PEER_HOP_HEADER "X-Switchyard-Forwarded"
/* A read of a peer's /v1/models or /api/ps gives up after this long (connection included). */
#define PEER_FETCH_TIMEOUT_MS 10000

typedef struct peers peers;
typedef struct peer peer;

/* Start a poller thread for each of mx's peers (none: an empty table). NULL only when out of
 * memory. */
peers *peers_new(const matrix *mx);
/* After a reload to mx: a peer whose settings are unchanged keeps its thread and what it knows;
 * the others are retired (threads stopped) and new ones started. 0, or -1 when out of memory (the
 * table is then as it was). */
int peers_reload(peers *ps, const matrix *mx);
/* Stop every thread and free the table (no request may use a peer afterwards). NULL is fine. */
void peers_free(peers *ps);

/* The first peer (config order) that offers name, or NULL. ps may be NULL (no peers). A peer
 * that never answered yet offers the names its `models` list gives (so they answer 503, not 404,
 * while it is away). */
peer *peers_find(peers *ps, const char *name);

/* /v1/models: an entry (a copy, marked "peer") for every model the peers offer whose name local
 * (the matrix's models, aliases, routers and pipelines) does not take, nor an earlier peer,
 * appended to data. */
void peers_models_json(peers *ps, const matrix *local, json_t *data);
/* GET /v1/models/{name}: the entry of the peer model name (a new reference), or NULL. */
json_t *peers_model_json(peers *ps, const char *name);
/* /api/ps: the offered models the peers have loaded (their own /api/ps entries, marked "peer")
 * appended to ps.models, and ps.peers: one object per peer (name, url, state up|down|unknown,
 * seconds since it last answered, why not, its memory and devices as it reports them). */
void peers_ps_json(peers *ps, const matrix *local, json_t *ps_obj);

/* Accessors of a peer's settings (fixed for its life). */
const char *peer_name(const peer *p);
const char *peer_url(const peer *p);
const char *peer_api_key(const peer *p); /* NULL: none */
int peer_connect_timeout_ms(const peer *p);
int peer_retry_after_s(const peer *p); /* what a 503 for it says in Retry-After */

/* A request forwarded to p got its answer's headers, or ended: read its state again soon (so
 * /api/ps follows what the request did there). unreachable: it could not connect (the peer is
 * marked down at once). */
void peer_touched(peer *p, bool unreachable);

#endif
