/* log.h — one-line, leveled logging to stderr for the daemon and the workers.
 * Thread safe (one write(2) per line). Never logs request bodies above debug level. */
#ifndef SY_LOG_H
#define SY_LOG_H

enum sy_log_level { SY_LOG_ERROR = 0, SY_LOG_WARN, SY_LOG_INFO, SY_LOG_DEBUG };

/* Set the process's log tag ("switchyard", "llama:qwen", ...) and threshold. */
void sy_log_init(const char *tag, enum sy_log_level level);
/* Parse "error|warn|info|debug"; returns -1 when unknown. */
int sy_log_parse_level(const char *s);
enum sy_log_level sy_log_get_level(void);
void sy_log(enum sy_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_E(...) sy_log(SY_LOG_ERROR, __VA_ARGS__)
#define LOG_W(...) sy_log(SY_LOG_WARN, __VA_ARGS__)
#define LOG_I(...) sy_log(SY_LOG_INFO, __VA_ARGS__)
#define LOG_D(...) sy_log(SY_LOG_DEBUG, __VA_ARGS__)

#endif
