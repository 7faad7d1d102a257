/* log.c — see log.h. The only process-wide state is the tag, level and format, set at start.
 * A JSON line is built with jansson (the escaping is its, not ours); a message that jansson cannot
 * take (out of memory) falls back to the text line rather than being lost. */
#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

#define LOG_LINE_MAX 2048 /* bytes of one message; a longer one is cut */
#define LOG_HEAD_MAX 96   /* a text line's "HH:MM:SS.mmm L tag: " and its newline */

static char log_tag[64] = "switchyard";
static enum sy_log_level log_level = SY_LOG_INFO;
static enum sy_log_format log_format = SY_LOG_TEXT;
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const format_names[] = {"text", "json"};

void sy_log_init(const char *tag, enum sy_log_level level) {
  snprintf(log_tag, sizeof log_tag, "%s", tag);
  log_level = level;
}

int sy_log_parse_level(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcasecmp(s, level_names[i]) == 0) return i;
  return -1;
}

enum sy_log_level sy_log_get_level(void) { return log_level; }

void sy_log_set_format(enum sy_log_format format) { log_format = format; }

int sy_log_parse_format(const char *s) {
  for (int i = 0; i < 2; i++)
    if (strcasecmp(s, format_names[i]) == 0) return i;
  return -1;
}

enum sy_log_format sy_log_get_format(void) { return log_format; }

const char *sy_log_format_name(enum sy_log_format format) {
  return format == SY_LOG_JSON ? "json" : "text";
}

static void log_write(const char *s, size_t n) {
  ssize_t w = write(STDERR_FILENO, s, n);
  (void)w;
}

/* {"time","level","tag","pid","message"} and a newline, in one write; -1 when out of memory. */
static int log_json(enum sy_log_level level, const struct tm *tm, long ms, const char *msg,
                    size_t len) {
  char when[96]; /* 24 bytes; room for what gcc assumes any int may print */
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm->tm_year + 1900,
           tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec, ms);
  size_t vlen;
  char *valid = sy_utf8_repair(msg, len, &vlen); /* a cut line may end inside a character */
  json_t *o =
      valid ? json_pack("{s:s, s:s, s:s, s:i, s:s%}", "time", when, "level", level_names[level],
                        "tag", log_tag, "pid", (int)getpid(), "message", valid, vlen)
            : NULL;
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  free(valid);
  if (!s) return -1;
  size_t n = strlen(s);
  s[n] = '\n'; /* over the NUL: the line is written by length */
  log_write(s, n + 1);
  free(s);
  return 0;
}

void sy_log(enum sy_log_level level, const char *fmt, ...) {
  if (level > log_level) return;
  static const char lv[] = "EWID";
  char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + LOG_HEAD_MAX];
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (len < 0) return;
  if ((size_t)len >= sizeof msg) len = (int)sizeof msg - 1; /* cut */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  long ms = ts.tv_nsec / 1000000;
  if (log_format == SY_LOG_JSON && log_json(level, &tm, ms, msg, (size_t)len) == 0) return;
  /* text, or JSON out of memory: the text line rather than nothing */
  int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %c %s: %.*s\n", tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ms, lv[level], log_tag, len, msg);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) { /* cannot happen: the tag is shorter than LOG_HEAD_MAX */
    n = (int)sizeof line - 1;
    line[n - 1] = '\n';
  }
  log_write(line, (size_t)n);
}
