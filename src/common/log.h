/* log.h — one-line, leveled logging to stderr for the daemon and the workers, as text
 * ("12:00:00.000 I tag: message") or as JSON lines for log shippers
 * ({"time":"2026-01-02T12:00:00.000Z","level":"info","tag":"switchyard","pid":1,"message":"..."}).
 * Thread safe (one write(2) per line). Never logs request bodies above debug level; a JSON line is
 * always one valid JSON object on one line (the message is made valid UTF-8 first). */
#ifndef SY_LOG_H
#define SY_LOG_H

enum sy_log_level { SY_LOG_ERROR = 0, SY_LOG_WARN, SY_LOG_INFO, SY_LOG_DEBUG };
enum sy_log_format { SY_LOG_TEXT = 0, SY_LOG_JSON };

/* Set the process's log tag ("switchyard", "llama:qwen", ...) and threshold. */
void sy_log_init(const char *tag, enum sy_log_level level);
/* Parse "error|warn|info|debug"; returns -1 when unknown. */
int sy_log_parse_level(const char *s);
enum sy_log_level sy_log_get_level(void);
/* The line format (text unless set; set at start, before threads log). Parse "text|json" (any
 * case) → enum sy_log_format, or -1 when unknown; the name of a format ("text", "json"). */
void sy_log_set_format(enum sy_log_format format);
int sy_log_parse_format(const char *s);
enum sy_log_format sy_log_get_format(void);
const char *sy_log_format_name(enum sy_log_format format);
void sy_log(enum sy_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_E(...) sy_log(SY_LOG_ERROR, __VA_ARGS__)
#define LOG_W(...) sy_log(SY_LOG_WARN, __VA_ARGS__)
#define LOG_I(...) sy_log(SY_LOG_INFO, __VA_ARGS__)
#define LOG_D(...) sy_log(SY_LOG_DEBUG, __VA_ARGS__)

#endif
