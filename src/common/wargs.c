/* wargs.c — see wargs.h. */
#include "wargs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argnum.h"
#include "log.h"

int sy_wargs_parse(int argc, char **argv, const char *engine, bool allow_list_devices,
                   sy_wargs *out) {
  *out = (sy_wargs){.fd = 3, .level = SY_LOG_INFO, .format = SY_LOG_TEXT};
  snprintf(out->tag, sizeof out->tag, "%s", engine);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--ipc-fd") == 0 && i + 1 < argc) {
      long v;
      if (sy_parse_long(argv[++i], 0, 1 << 20, &v) != 0) return -1;
      out->fd = (int)v;
    } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
      if ((out->level = sy_log_parse_level(argv[++i])) < 0) return -1;
    } else if (strcmp(argv[i], "--log-format") == 0 && i + 1 < argc) {
      if ((out->format = sy_log_parse_format(argv[++i])) < 0) return -1;
    } else if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc) {
      snprintf(out->tag, sizeof out->tag, "%s:%.80s", engine, argv[++i]);
    } else if (allow_list_devices && strcmp(argv[i], "--list-devices") == 0) {
      out->list_devices = true;
    } else if (allow_list_devices && strcmp(argv[i], "--rpc") == 0 && i + 1 < argc) {
      if (strlen(argv[++i]) >= sizeof out->rpc) return -1;
      snprintf(out->rpc, sizeof out->rpc, "%s", argv[i]);
    } else {
      return -1;
    }
  }
  return out->rpc[0] && !out->list_devices ? -1 : 0; /* --rpc only lists */
}

int sy_wargs_start(const sy_wargs *a) {
  sy_log_init(a->tag, (enum sy_log_level)a->level);
  sy_log_set_format((enum sy_log_format)a->format);
  signal(SIGPIPE, SIG_IGN);
  if (fcntl(a->fd, F_GETFD) == -1) {
    LOG_E("fd %d is not open (%s)", a->fd, strerror(errno));
    return -1;
  }
  return 0;
}
