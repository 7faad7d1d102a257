/* statedir.h — where Switchyard keeps what it remembers between runs (measured footprints, the
 * prompt cache on disk): $SWITCHYARD_STATE_DIR, else $XDG_STATE_HOME/switchyard, else
 * ~/.local/state/switchyard (or /tmp/.local/state/switchyard without a HOME). Never somewhere a
 * relative path would put it. Thread safety: reads the environment only. */
#ifndef SY_STATEDIR_H
#define SY_STATEDIR_H

#include <stddef.h>

/* The folder (not created here), without a trailing slash, into buf. */
void sy_state_dir(char *buf, size_t len);

#endif
