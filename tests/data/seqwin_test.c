/* Duplicate detection by (source, seq): new, duplicate, out of order, too
 * old, window sliding, many sources, and many threads at once. */
#include "testsupport.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/clock.h"
#include "fresco/data.h"
#include "fresco/log.h"

static void test_new_and_duplicate(void **state)
{
    fr_seqwin *w = fr_seqwin_new();
    assert_non_null(w);
    assert_int_equal(fr_seqwin_check(w, "node-a", 1), 1);
    assert_int_equal(fr_seqwin_check(w, "node-a", 1), 0);
    assert_int_equal(fr_seqwin_check(w, "node-a", 2), 1);
    assert_int_equal(fr_seqwin_check(w, "node-a", 2), 0);
    /* Sources are independent. */
    assert_int_equal(fr_seqwin_check(w, "node-b", 1), 1);
    assert_int_equal(fr_seqwin_check(w, "node-b", 2), 1);
    assert_int_equal(fr_seqwin_check(w, "node-a", 3), 1);
    /* A prefix of a name is another source. */
    assert_int_equal(fr_seqwin_check(w, "node-", 1), 1);
    assert_int_equal(fr_seqwin_check(w, "", 1), 1);
    assert_int_equal(fr_seqwin_check(w, "", 1), 0);
    /* 0 is a sequence number like any other. */
    assert_int_equal(fr_seqwin_check(w, "node-z", 0), 1);
    assert_int_equal(fr_seqwin_check(w, "node-z", 0), 0);
    fr_seqwin_destroy(w);
    fr_seqwin_destroy(NULL);
}

static void test_out_of_order(void **state)
{
    fr_seqwin *w = fr_seqwin_new();
    assert_non_null(w);
    uint64_t order[] = {10, 5, 7, 1, 9, 2, 8, 3, 6, 4};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        assert_int_equal(fr_seqwin_check(w, "s", order[i]), 1);
    }
    for (uint64_t q = 1; q <= 10; q++) {
        assert_int_equal(fr_seqwin_check(w, "s", q), 0);
    }
    /* Holes left behind the newest are still new when they arrive. */
    assert_int_equal(fr_seqwin_check(w, "s", 1000), 1);
    assert_int_equal(fr_seqwin_check(w, "s", 500), 1);
    assert_int_equal(fr_seqwin_check(w, "s", 11), 1);
    assert_int_equal(fr_seqwin_check(w, "s", 500), 0);
    fr_seqwin_destroy(w);
}

static void test_too_old(void **state)
{
    fr_seqwin *w = fr_seqwin_new();
    assert_non_null(w);
    const uint64_t top = 10u * FR_SEQWIN_BITS + 123;
    assert_int_equal(fr_seqwin_check(w, "s", top), 1);
    /* The window holds the newest FR_SEQWIN_BITS numbers; below it
     * nothing is known, so a number there counts as new every time. */
    assert_int_equal(fr_seqwin_check(w, "s", top - (FR_SEQWIN_BITS - 1)), 1);
    assert_int_equal(fr_seqwin_check(w, "s", top - (FR_SEQWIN_BITS - 1)), 0);
    assert_int_equal(fr_seqwin_check(w, "s", top - FR_SEQWIN_BITS), 1);
    assert_int_equal(fr_seqwin_check(w, "s", top - FR_SEQWIN_BITS), 1);
    assert_false(fr_seqwin_seen(w, "s", top - FR_SEQWIN_BITS));
    assert_int_equal(fr_seqwin_check(w, "s", 1), 1);
    /* A far jump (a restarted sender's clock-based numbers) forgets
     * everything before it: the old run's late batches are new. */
    const uint64_t far = UINT64_C(1) << 40;
    assert_int_equal(fr_seqwin_check(w, "s", far), 1);
    assert_int_equal(fr_seqwin_check(w, "s", far - 1), 1);
    assert_int_equal(fr_seqwin_check(w, "s", top), 1);
    /* The very top of the range works too. */
    assert_int_equal(fr_seqwin_check(w, "s", UINT64_MAX), 1);
    assert_int_equal(fr_seqwin_check(w, "s", UINT64_MAX), 0);
    assert_int_equal(fr_seqwin_check(w, "s", UINT64_MAX - 1), 1);
    assert_int_equal(fr_seqwin_check(w, "s", far), 1);
    fr_seqwin_destroy(w);
}

/* Slides the window by one and by partial words many times over, with
 * holes filled late: every seq must be new exactly once. */
static void test_window_slides(void **state)
{
    fr_seqwin *w = fr_seqwin_new();
    assert_non_null(w);
    const uint64_t n = 4u * FR_SEQWIN_BITS;
    const uint64_t lag = FR_SEQWIN_BITS / 2;
    for (uint64_t q = 1; q <= n; q++) {
        if (q % 3 != 0) {
            assert_int_equal(fr_seqwin_check(w, "s", q), 1);
        }
        /* Fill the hole left lag numbers ago: still inside the window. */
        if (q > lag && (q - lag) % 3 == 0) {
            assert_int_equal(fr_seqwin_check(w, "s", q - lag), 1);
        }
        if (q % 7 == 0 && (q - 1) % 3 != 0) {
            assert_int_equal(fr_seqwin_check(w, "s", q - 1), 0);
        }
    }
    for (uint64_t q = n - FR_SEQWIN_BITS + 1; q <= n; q++) {
        int want = (q % 3 == 0 && q + lag > n) ? 1 : 0;
        assert_int_equal(fr_seqwin_check(w, "s", q), want);
    }
    /* Jumps of odd sizes clear exactly the bits leaving the window. */
    uint64_t top = n;
    for (uint64_t step = 1; step < 3 * 64; step += 37) {
        top += step;
        assert_int_equal(fr_seqwin_check(w, "s", top), 1);
        assert_int_equal(fr_seqwin_check(w, "s", top - 1), step > 1 ? 1 : 0);
    }
    fr_seqwin_destroy(w);
}

/* Random checks around a moving top against a plain model: a bitmap of
 * everything seen and the newest seq. */
static void test_against_model(void **state)
{
    fr_seqwin *w = fr_seqwin_new();
    assert_non_null(w);
    const uint64_t range = UINT64_C(1) << 23;
    uint8_t *seen = calloc(range / 8, 1);
    assert_non_null(seen);
    uint64_t newest = 0, rng = 88172645463325252ull;
    bool any = false;
    for (int i = 0; i < 1000000; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint64_t r = rng >> 11;
        uint64_t q;
        if (r % 100 < 3) {
            q = newest + 1 + (r >> 8) % (3 * FR_SEQWIN_BITS); /* a jump, big or small */
        } else {
            uint64_t span = FR_SEQWIN_BITS + FR_SEQWIN_BITS / 4;
            uint64_t lo = newest > span ? newest - span : 0;
            q = lo + (r >> 8) % (newest - lo + 64);
        }
        if (q >= range) {
            break;
        }
        int want;
        if (any && newest - q >= FR_SEQWIN_BITS && q < newest) {
            want = 1; /* below the window: new */
        } else {
            want = (seen[q / 8] >> (q % 8)) & 1 ? 0 : 1;
        }
        seen[q / 8] |= (uint8_t)(1u << (q % 8));
        if (!any || q > newest) {
            newest = q;
            any = true;
        }
        int got = fr_seqwin_check(w, "s", q);
        if (got != want) {
            fail_msg("op %d: seq %llu (newest %llu): got %d, want %d", i, (unsigned long long)q,
                     (unsigned long long)newest, got, want);
        }
    }
    free(seen);
    fr_seqwin_destroy(w);
}

static void test_many_sources(void **state)
{
    fr_seqwin *w = fr_seqwin_new();
    assert_non_null(w);
    char name[32];
    const int nsrc = 5000;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < nsrc; i++) {
            snprintf(name, sizeof(name), "node-%05d", i);
            for (uint64_t q = 1; q <= 3; q++) {
                assert_int_equal(fr_seqwin_check(w, name, q + (uint64_t)i), round == 0 ? 1 : 0);
            }
        }
    }
    fr_seqwin_destroy(w);
}

/* ---- many threads ---- */

#define HAMMER_THREADS 4
#define HAMMER_SOURCES 8
#define HAMMER_SEQS    40000u /* below FR_SEQWIN_BITS: nothing can age out */

typedef struct hammer_arg {
    fr_seqwin *w;
    int id;
    uint8_t *got; /* [source][seq]: 1 when this thread saw it new */
} hammer_arg;

static void *hammer_run(void *p)
{
    hammer_arg *a = p;
    char name[16];
    /* Each thread walks the same numbers in its own order, so that every
     * pair is contended: forwards, backwards, and two strided walks. */
    for (uint32_t k = 0; k < HAMMER_SEQS; k++) {
        uint32_t q;
        switch (a->id % 4) {
        case 0:
            q = k;
            break;
        case 1:
            q = HAMMER_SEQS - 1 - k;
            break;
        case 2:
            q = (uint32_t)(((uint64_t)k * 7919u) % HAMMER_SEQS);
            break;
        default:
            q = (uint32_t)(((uint64_t)k * 104729u + 13u) % HAMMER_SEQS);
            break;
        }
        for (int s = 0; s < HAMMER_SOURCES; s++) {
            snprintf(name, sizeof(name), "src-%d", s);
            int rv = fr_seqwin_check(a->w, name, q + 1);
            if (rv < 0) {
                return (void *)1;
            }
            a->got[(size_t)s * HAMMER_SEQS + q] = (uint8_t)rv;
        }
    }
    return NULL;
}

static void test_threads_hammer(void **state)
{
    fr_seqwin *w = fr_seqwin_new();
    assert_non_null(w);
    pthread_t th[HAMMER_THREADS];
    hammer_arg args[HAMMER_THREADS];
    int64_t t0 = fr_mono_ns();
    for (int i = 0; i < HAMMER_THREADS; i++) {
        args[i].w = w;
        args[i].id = i;
        args[i].got = calloc((size_t)HAMMER_SOURCES * HAMMER_SEQS, 1);
        assert_non_null(args[i].got);
        assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &args[i]), 0);
    }
    for (int i = 0; i < HAMMER_THREADS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    int64_t dt = fr_mono_ns() - t0;
    for (size_t k = 0; k < (size_t)HAMMER_SOURCES * HAMMER_SEQS; k++) {
        int n = 0;
        for (int i = 0; i < HAMMER_THREADS; i++) {
            n += args[i].got[k];
        }
        if (n != 1) {
            fail_msg("source %zu seq %zu was new %d times", k / HAMMER_SEQS, k % HAMMER_SEQS + 1,
                     n);
        }
    }
    double checks = (double)HAMMER_THREADS * HAMMER_SOURCES * HAMMER_SEQS;
    print_message("seqwin: %d threads, %.0f checks, %.0f ns per check overall\n", HAMMER_THREADS,
                  checks, (double)dt / checks);
    for (int i = 0; i < HAMMER_THREADS; i++) {
        free(args[i].got);
    }
    fr_seqwin_destroy(w);
}

/* One source, in order, as a publisher sees its main collector. */
static void test_single_thread_speed(void **state)
{
    fr_seqwin *w = fr_seqwin_new();
    assert_non_null(w);
    const uint64_t n = 2000000;
    int64_t t0 = fr_mono_ns();
    uint64_t fresh = 0;
    for (uint64_t q = 1; q <= n; q++) {
        fresh += (uint64_t)fr_seqwin_check(w, "collector-node-017", q);
    }
    int64_t dt = fr_mono_ns() - t0;
    assert_int_equal(fresh, n);
    print_message("seqwin: %.1f ns per in-order check\n", (double)dt / (double)n);
    fr_seqwin_destroy(w);
}

int main(void)
{
    fr_log_init("seqwin_test", FR_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_duplicate), cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_too_old),           cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_against_model),     cmocka_unit_test(test_many_sources),
        cmocka_unit_test(test_threads_hammer),    cmocka_unit_test(test_single_thread_speed),
    };
    return cmocka_run_group_tests_name("seqwin", tests, NULL, NULL);
}
