/* log.c — see log.h. The only process-wide state is the tag and level, set once at start. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char log_tag[64] = "switchyard";
static enum sy_log_level log_level = SY_LOG_INFO;

void sy_log_init(const char *tag, enum sy_log_level level) {
  snprintf(log_tag, sizeof log_tag, "%s", tag);
  log_level = level;
}

int sy_log_parse_level(const char *s) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (strcasecmp(s, names[i]) == 0) return i;
  return -1;
}

enum sy_log_level sy_log_get_level(void) { return log_level; }

void sy_log(enum sy_log_level level, const char *fmt, ...) {
  if (level > log_level) return;
  static const char lv[] = "EWID";
  char line[2048];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %c %s: ", tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000, lv[level], log_tag);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line) n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}
