/* Helpers shared by the cmocka suites. */
#ifndef FRESCO_TESTSUPPORT_H
#define FRESCO_TESTSUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

/* Asserts an fr_* call returned 0, printing fr_strerror otherwise. */
#define assert_fr_ok(expr)                                                                         \
    do {                                                                                           \
        int rv_ = (expr);                                                                          \
        if (rv_ != 0) {                                                                            \
            fail_msg("%s -> %d (%s)", #expr, rv_, fr_strerror(rv_));                               \
        }                                                                                          \
    } while (0)

/* Waits until cond() returns true or deadline_ms passes, polling every
 * millisecond or so. Returns cond()'s last answer. */
bool tst_wait_until(bool (*cond)(void *arg), void *arg, int deadline_ms);

/* Milliseconds on a monotonic clock. */
int64_t tst_mono_ms(void);

/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp), removed with
 * everything in it by tst_rmtree. The returned string is malloc'd. */
char *tst_tmpdir(const char *prefix);
void tst_rmtree(const char *path);

/* A free TCP port on 127.0.0.1 (bound then released; good enough for tests). */
int tst_free_port(void);

/* Path to a built binary: $FRESCO_TEST_BIN/<rel>, into buf. */
const char *tst_bin(char *buf, size_t len, const char *rel);
/* Path to a source file: $FRESCO_TEST_SRC/<rel>, into buf. */
const char *tst_src(char *buf, size_t len, const char *rel);

/* Starts argv[0] with argv (NULL-terminated) as a child process, stdout and
 * stderr to the log file path (NULL = inherit). Returns the pid, or -1. */
pid_t tst_spawn(char *const argv[], const char *log_path);

/* Sends sig and waits for the child up to deadline_ms; returns its exit
 * status as from waitpid, or -1 on timeout (then it is SIGKILLed). */
int tst_stop(pid_t pid, int sig, int deadline_ms);

/* A fresco service started from the build tree for a test. */
typedef struct tst_service {
    pid_t pid;
    char control[64];
    char events[64];
    char log[512];
    struct fr_ctl_client *cli;
} tst_service;

/* Starts services/<name>/fresco-<name> with --control and --events on
 * fresh loopback ports plus the extra flags (NULL-terminated), its output
 * to <logdir>/<name>-<port>.log, and waits up to 15 s until it answers
 * ping (fails the test otherwise, printing the log). */
void tst_service_start(tst_service *s, const char *name, const char *logdir,
                       const char *const *extra);

/* tst_service_start on given control and events addresses (NULL: fresh
 * loopback ports), so a service can be started again where its peers
 * expect it. */
void tst_service_start_at(tst_service *s, const char *name, const char *logdir, const char *control,
                          const char *events, const char *const *extra);

/* SIGTERM; the service must exit 0 within deadline_ms (fails otherwise,
 * printing the log). */
void tst_service_stop(tst_service *s, int deadline_ms);

/* The whole log of a service (or any file), malloc'd; "" when unreadable. */
char *tst_slurp(const char *path);

/* Writes len bytes to path (creating/truncating). 0 or -1. */
int tst_write_file(const char *path, const char *data, size_t len);

#endif
