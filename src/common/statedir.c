/* statedir.c — the state folder (statedir.h). */
#include "statedir.h"

#include <stdio.h>
#include <stdlib.h>

void sy_state_dir(char *buf, size_t len) {
  const char *d = getenv("SWITCHYARD_STATE_DIR"), *x = getenv("XDG_STATE_HOME"),
             *h = getenv("HOME");
  if (d && *d)
    snprintf(buf, len, "%s", d);
  else if (x && *x)
    snprintf(buf, len, "%s/switchyard", x);
  else
    snprintf(buf, len, "%s/.local/state/switchyard", h && *h ? h : "/tmp");
}
