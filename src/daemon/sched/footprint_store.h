/* footprint_store.h — measured model footprints remembered across restarts: a small JSON file
 * mapping a key (file identity + the settings that change memory) to the largest resident size
 * seen, so the scheduler can count a measurement from the first request after a restart instead of
 * an estimate. Written atomically (temp file + rename). A missing, corrupt or oversized file is
 * treated as empty, never as an error that stops the daemon.
 * Thread safety: all functions may be called from any thread. */
#ifndef SY_FOOTPRINT_STORE_H
#define SY_FOOTPRINT_STORE_H

#include <stddef.h>

#include "config/matrix.h"

typedef struct footprint_store footprint_store;

/* Open (and read, if present) the state file at path; NULL path = remember in memory only. */
footprint_store *footprint_store_open(const char *path);
void footprint_store_close(footprint_store *s);

/* The key of model m: its file's path, size and modification time, plus context, parallel,
 * batch, GPU layers and mode. */
void footprint_store_key(const matrix_model *m, char *buf, size_t len);

/* Remembered bytes for key, or -1. */
long long footprint_store_get(footprint_store *s, const char *key);
/* Remember bytes for key if larger than what is remembered; saves the file when it changed.
 * Returns 0, or -1 if the file could not be written (the value is still kept in memory). */
int footprint_store_put_max(footprint_store *s, const char *key, long long bytes);

/* The default path: $SWITCHYARD_STATE_DIR, else $XDG_STATE_HOME/switchyard, else
 * ~/.local/state/switchyard, + "/measurements.json". */
void footprint_store_default_path(char *buf, size_t len);

#endif
