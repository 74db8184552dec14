/* Line-oriented logging to stderr. */
#include "fresco/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fresco/err.h"

static char log_service[32];
static _Atomic int log_level = FR_LOG_INFO;
static bool log_json;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_words[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void fr_log_init(const char *service, fr_log_level level, bool json)
{
    snprintf(log_service, sizeof(log_service), "%s", service != NULL ? service : "");
    log_level = level;
    log_json = json;
}

void fr_log_set_level(fr_log_level level)
{
    log_level = level;
}

fr_log_level fr_log_get_level(void)
{
    return (fr_log_level)log_level;
}

int fr_log_level_parse(const char *s, fr_log_level *out)
{
    static const struct {
        const char *name;
        fr_log_level level;
    } names[] = {{"debug", FR_LOG_DEBUG}, {"info", FR_LOG_INFO},   {"warn", FR_LOG_WARN},
                 {"warning", FR_LOG_WARN}, {"error", FR_LOG_ERROR}, {"off", FR_LOG_OFF}};
    for (size_t i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return FR_EINVAL;
}

/* Appends s to line as JSON string contents, escaping what JSON requires. */
static size_t json_escape(char *dst, size_t cap, size_t pos, const char *s)
{
    for (; *s != '\0' && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dst[pos++] = '\\';
            dst[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(dst + pos, cap - pos, "\\u%04x", c);
        } else {
            dst[pos++] = (char)c;
        }
    }
    return pos;
}

void fr_log(fr_log_level level, const char *module, const char *fmt, ...)
{
    if ((int)level < log_level || level >= FR_LOG_OFF) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    char line[2048];
    size_t pos;
    if (log_json) {
        pos = (size_t)snprintf(line, sizeof(line),
                               "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":\"", when,
                               level_names[level]);
        pos = json_escape(line, sizeof(line), pos, log_service);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\",\"module\":\"");
        pos = json_escape(line, sizeof(line), pos, module != NULL ? module : "");
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\",\"msg\":\"");
        pos = json_escape(line, sizeof(line), pos, msg);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\"}\n");
    } else {
        pos = (size_t)snprintf(line, sizeof(line), "%s %-5s %s%s%s: %s\n", when,
                               level_words[level], log_service,
                               log_service[0] != '\0' && module != NULL ? "/" : "",
                               module != NULL ? module : "", msg);
    }
    if (pos >= sizeof(line)) {
        pos = sizeof(line) - 1;
        line[pos - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}
