/* Logging: one line per event to stderr, the module name first.
 *   plain: 2026-11-25T17:55:15.123Z INFO  collector/libvirt: domain vm-3 gone
 *   json:  {"ts":"...","level":"info","service":"collector","module":"libvirt","msg":"..."}
 * Thread-safe; a line is written with one write(2). */
#ifndef FRESCO_LOG_H
#define FRESCO_LOG_H

#include <stdbool.h>

typedef enum fr_log_level {
    FR_LOG_DEBUG = 0,
    FR_LOG_INFO = 1,
    FR_LOG_WARN = 2,
    FR_LOG_ERROR = 3,
    FR_LOG_OFF = 4,
} fr_log_level;

/* Sets the service name (copied, up to 31 bytes), the minimum level and the
 * format. Before this is called: no service name, INFO, plain. */
void fr_log_init(const char *service, fr_log_level level, bool json);
void fr_log_set_level(fr_log_level level);
fr_log_level fr_log_get_level(void);

/* Parses "debug", "info", "warn"/"warning", "error", "off". 0 or FR_EINVAL. */
int fr_log_level_parse(const char *s, fr_log_level *out);

void fr_log(fr_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define fr_debug(mod, ...) fr_log(FR_LOG_DEBUG, (mod), __VA_ARGS__)
#define fr_info(mod, ...)  fr_log(FR_LOG_INFO, (mod), __VA_ARGS__)
#define fr_warn(mod, ...)  fr_log(FR_LOG_WARN, (mod), __VA_ARGS__)
#define fr_error(mod, ...) fr_log(FR_LOG_ERROR, (mod), __VA_ARGS__)

#endif
