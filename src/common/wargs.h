/* wargs.h — the command line every worker program takes (docs/PROTOCOL.md): --ipc-fd N (the
 * daemon's socket, default 3), --log-level debug|info|warn|error, --log-format text|json (the
 * daemon's own, log.h), --tag MODEL (the model's name, for the log), and for switchyard-llama
 * --list-devices [--rpc HOST:PORT,...]. Parsing and the start-up every worker
 * does the same way: the log, SIGPIPE ignored, the socket checked. */
#ifndef SY_WARGS_H
#define SY_WARGS_H

#include <stdbool.h>

typedef struct sy_wargs {
  int fd;
  int level;         /* enum sy_log_level */
  int format;        /* enum sy_log_format */
  char tag[96];      /* "<engine>:<model>", or "<engine>" */
  bool list_devices; /* --list-devices was given (only where allowed) */
  char rpc[4352];    /* with it, --rpc HOST:PORT,...: RPC servers whose devices to list too (16
                        of the longest, endpoint.h, and their commas) */
} sy_wargs;

/* Parse argv for the worker named engine ("llama", "whisper", "espeak"). 0, or -1 for a bad
 * command line (the caller prints its usage and exits 2). */
int sy_wargs_parse(int argc, char **argv, const char *engine, bool allow_list_devices,
                   sy_wargs *out);

/* The log under a->tag at a->level in a->format, SIGPIPE ignored (the daemon may go away mid-write:
 * the write fails instead), and a->fd checked open. 0, or -1 (logged). */
int sy_wargs_start(const sy_wargs *a);

#endif
