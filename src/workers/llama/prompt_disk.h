/* prompt_disk.h — a worker's prompt cache on disk (docs/PROMPT_CACHE.md): the hottest saved
 * sequence states, written when the model unloads (keep-alive, eviction, reload, shutdown) and
 * restored after it loads again, so a conversation survives an unload and a daemon restart.
 *
 * One folder per model (the daemon names it: "<state dir>/prompt-cache/<model>"), one file per
 * state: "<hash of its tokens>.sypc", written as "<name>.tmp.<pid>" then renamed (a reader never
 * sees half a file). A file holds a header (magic, version, the model key, token count, reusable
 * count, state size, a checksum of the rest), the tokens, then the state's bytes. The key is a
 * hash of what makes a state usable (the model file's path, size and mtime, the projector, the
 * context per sequence, the batch, the mode, GPU offload and the worker program itself): a file
 * made for anything else is stale. The folder is bounded (limit bytes): the least recently used
 * files (mtime; a restore touches it) go first.
 *
 * Must never use a file it has not checked: a wrong magic (foreign), another key (stale), a size
 * that does not add up (truncated) or a wrong checksum is logged, deleted and counted in
 * `rejected`, never restored. Never writes outside its folder; names come from hashes only.
 * Thread safety: none (the worker's main thread only). */
#ifndef SY_PROMPT_DISK_H
#define SY_PROMPT_DISK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "prompt_cache.h"

#define PD_MAX_TOKENS (1 << 22) /* tokens per saved state (WK_MAX_CTX) */
#define PD_MAX_FILES 4096       /* files one folder indexes; more are ignored */

typedef struct pd_file {
  uint64_t name;   /* the file is "<name as 16 hex digits>.sypc" */
  int32_t *tokens; /* its tokens (read at open, to match prompts without reading states) */
  int32_t n_tokens, n_reusable;
  uint64_t bytes;       /* the file's size */
  struct timespec used; /* its mtime: when it was written or last restored */
} pd_file;

typedef struct pdisk {
  char dir[PATH_MAX]; /* "" = off */
  uint64_t key;
  uint64_t limit; /* bytes the folder may hold */
  bool trim;      /* as pcache's: whether a longer state serves a shorter prefix */
  pd_file *f;
  size_t n, cap;
  uint64_t bytes;    /* the indexed files' sizes, summed */
  unsigned rejected; /* files found unusable and deleted since open */
} pdisk;

/* The key of a model's states: a hash of the NUL-terminated parts given (an identity string the
 * worker builds, see prompt_disk.c's callers). */
uint64_t pdisk_key(const char *identity);
/* Open the folder (made if missing) and index its files, checking each header; limit 0 or dir ""
 * turns the disk cache off (nothing is read or written). 0, or -1 when the folder cannot be made
 * (then off). */
int pdisk_open(pdisk *d, const char *dir, uint64_t key, uint64_t limit, bool trim);
void pdisk_close(pdisk *d);
/* The file a prompt keeps the most of (slot_pick.h's sp_keep), that count in *keep; -1 if none. */
int pdisk_best(const pdisk *d, const int32_t *prompt, int32_t n_prompt, int32_t align,
               int32_t *keep);
/* Read file i whole into out (malloc'd tokens and state; the caller frees them), checking it
 * again, checksum included; touches its mtime. -1 (logged, the file deleted, unindexed) when it
 * is not usable any more. */
int pdisk_read(pdisk *d, int i, pc_entry *out);
/* Write a state (tokens[0..n_tokens), n_reusable, state bytes) atomically, replacing a file of the
 * same tokens; the least recently used files go until the folder fits its limit. 0, or -1 (logged;
 * nothing half-written stays). */
int pdisk_write(pdisk *d, const int32_t *tokens, int32_t n_tokens, int32_t n_reusable,
                const void *state, size_t state_size);

#endif
