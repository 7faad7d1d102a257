/* peer_offer.h — what a peer (another Switchyard daemon, CONFIG.md "Peers") offers, read from its
 * own answers: the entries of its GET /v1/models this daemon may serve (its models, routers and
 * pipelines; not the models it in turn forwards to peers of its own, nor those the config's
 * `models:` list leaves out), the names they answer to (ids and aliases), and its GET /api/ps
 * (state, memory, load) of those models. Pure: bytes in, a value out; no I/O, no locks, so the
 * poller (engines/peer.c) and the fuzzer (tests/fuzz/fuzz_peer.c) run the same code.
 *
 * A peer's answers are outside input: they are parsed with bounds (PEER_OFFER_MAX_BYTES each,
 * PEER_OFFER_MAX_MODELS entries, names as a model name must be), and anything malformed is
 * left out or refused with a reason, never trusted for its shape. */
#ifndef SY_PEER_OFFER_H
#define SY_PEER_OFFER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define PEER_OFFER_MAX_BYTES (4 << 20) /* one answer of the peer's (/v1/models, /api/ps) */
#define PEER_OFFER_MAX_MODELS 1024     /* entries of its /v1/models taken */
#define PEER_OFFER_MAX_NAMES 4096      /* names (ids and aliases) they answer to */
#define PEER_OFFER_NAME_MAX 128        /* a name's bytes, as the matrix's names */

typedef struct peer_offer {
  json_t *models; /* /v1/models entries offered (copies), each with "peer": NAME added */
  char **names;   /* the names they answer to: each entry's id, then its aliases */
  size_t n_names;
  json_t *ps;      /* the offered models' /api/ps entries (copies, "peer" added); an array */
  json_t *memory;  /* the peer's /api/ps "memory" object (a copy), or NULL */
  json_t *devices; /* its /api/ps "devices" array (a copy), or NULL */
} peer_offer;

/* Parse a peer's answers into *out (zeroed first): models_body is its GET /v1/models body, ps_body
 * its GET /api/ps body (NULL: none; then no state is known). peer: the peer's name (the mark
 * added to every entry). all: every entry is offered; else only those whose id or an alias is one
 * of want[0..n_want). Entries already marked with a "peer" (the peer's own peers' models) are
 * never offered: a request is forwarded once at most. 0, or -1 with why (then *out is empty). */
int peer_offer_parse(const char *models_body, size_t models_len, const char *ps_body, size_t ps_len,
                     const char *peer, bool all, char *const *want, size_t n_want, peer_offer *out,
                     char *why, size_t wl);

/* Whether o offers name (an id or an alias). */
bool peer_offer_has(const peer_offer *o, const char *name);

/* The /v1/models entry that answers to name (borrowed from o), or NULL. */
const json_t *peer_offer_entry(const peer_offer *o, const char *name);

void peer_offer_clear(peer_offer *o);

#endif
