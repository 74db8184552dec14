/* End-to-end acknowledgements through a stage in the middle: a deferring
 * receiver that forwards each batch with fr_data_send_notify and answers
 * its sender only when the next stage has acknowledged; how notified
 * batches end (acked, refused, abandoned at close); a receiver that stops
 * with calls still deferred; and fr_seqwin_seen. */
#include "testsupport.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "fresco/data.h"
#include "fresco/log.h"

#define N_BATCHES 2000

/* ---- the last stage: counts what it acknowledges ---- */

typedef struct sink {
    atomic_uint count[N_BATCHES];
    atomic_int refuse_below; /* refuse indexes below this */
} sink;

static int sink_handle(void *ctx, const void *data, size_t len, fr_error *err)
{
    sink *k = ctx;
    uint32_t idx;
    if (len != sizeof(idx)) {
        return fr_error_set(err, FR_EINVAL, NULL, "not a test batch");
    }
    memcpy(&idx, data, sizeof(idx));
    if (idx >= N_BATCHES) {
        return fr_error_set(err, FR_EINVAL, NULL, "index %u out of range", idx);
    }
    if ((int)idx < atomic_load(&k->refuse_below)) {
        return fr_error_set(err, FR_EINVAL, "metrics[0]", "batch %u refused", idx);
    }
    atomic_fetch_add(&k->count[idx], 1);
    return 0;
}

/* ---- the middle stage: answers when the sink has ---- */

typedef struct middle {
    fr_data_sender *down;
    sink *k;
    atomic_uint answered_after_sink; /* answers given after the sink acked */
    atomic_uint answered_early;      /* must stay 0 */
    atomic_uint refusals_seen;
    atomic_uint closed_seen;
} middle;

typedef struct pending {
    middle *m;
    fr_data_call *call;
    uint32_t idx;
} pending;

static void middle_done(void *arg, int rv, const fr_error *err)
{
    pending *p = arg;
    middle *m = p->m;
    if (rv == 0) {
        if (atomic_load(&m->k->count[p->idx]) > 0) {
            atomic_fetch_add(&m->answered_after_sink, 1);
        } else {
            atomic_fetch_add(&m->answered_early, 1);
        }
        fr_data_answer(p->call, 0, NULL);
    } else if (rv == FR_EREMOTE) {
        atomic_fetch_add(&m->refusals_seen, 1);
        assert_non_null(err);
        assert_non_null(strstr(err->message, "refused"));
        /* The next stage will never take it: neither will we. */
        fr_data_answer(p->call, FR_EINVAL, err);
    } else {
        atomic_fetch_add(&m->closed_seen, 1);
        assert_int_equal(rv, FR_ECLOSED);
        assert_null(err);
        fr_error busy;
        fr_error_set(&busy, FR_EBUSY, NULL, "downstream closed");
        fr_data_answer(p->call, FR_EBUSY, &busy);
    }
    free(p);
}

static int middle_handle(void *ctx, fr_data_call *call, const void *data, size_t len,
                         fr_error *err)
{
    middle *m = ctx;
    pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return FR_EBUSY;
    }
    p->m = m;
    p->call = call;
    memcpy(&p->idx, data, sizeof(p->idx) <= len ? sizeof(p->idx) : len);
    fr_buf b = FR_BUF_INIT;
    if (fr_buf_append(&b, data, len) != 0) {
        free(p);
        return FR_EBUSY;
    }
    int rv = fr_data_send_notify(m->down, &b, 0, middle_done, p);
    fr_buf_free(&b);
    if (rv != 0) {
        free(p);
        return fr_error_set(err, FR_EBUSY, NULL, "downstream full");
    }
    return FR_DATA_LATER;
}

static void send_all(fr_data_sender *s, uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to; i++) {
        assert_fr_ok(fr_data_send(s, &i, sizeof(i), 20000));
    }
}

static void test_chain_acks_end_to_end(void **state)
{
    sink *k = calloc(1, sizeof(*k));
    middle *m = calloc(1, sizeof(*m));
    assert_non_null(k);
    assert_non_null(m);
    m->k = k;
    char a_url[64], b_url[64];
    snprintf(a_url, sizeof(a_url), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(b_url, sizeof(b_url), "tcp://127.0.0.1:%d", tst_free_port());
    const char *a_urls[] = {a_url}, *b_urls[] = {b_url};

    fr_data_receiver *rk = NULL, *rm = NULL;
    fr_data_sender *top = NULL;
    assert_fr_ok(fr_data_receiver_start(&rk, b_url, true, NULL, 4, sink_handle, k));
    /* The middle's queue holds what its contexts can have in flight. */
    fr_data_sender_opts o = {.window = 4, .queue = 16};
    assert_fr_ok(fr_data_sender_open(&m->down, b_urls, 1, NULL, &o));
    assert_fr_ok(fr_data_receiver_start_deferring(&rm, a_url, true, NULL, 16, middle_handle, m));
    fr_data_sender_opts to = {.window = 16, .resend_ms = 5000};
    assert_fr_ok(fr_data_sender_open(&top, a_urls, 1, NULL, &to));

    send_all(top, 0, N_BATCHES);
    assert_fr_ok(fr_data_flush(top, 30000));
    for (uint32_t i = 0; i < N_BATCHES; i++) {
        assert_int_equal(atomic_load(&k->count[i]), 1);
    }
    assert_int_equal(atomic_load(&m->answered_early), 0);
    assert_int_equal(atomic_load(&m->answered_after_sink), N_BATCHES);
    fr_data_sender_stats st;
    fr_data_sender_stats_get(top, &st);
    assert_int_equal(st.acked, N_BATCHES);
    assert_int_equal(st.resends, 0);

    /* A refusal at the end travels back as a refusal. */
    atomic_store(&k->refuse_below, 5);
    send_all(top, 0, 5);
    assert_fr_ok(fr_data_flush(top, 30000));
    fr_data_sender_stats_get(top, &st);
    assert_int_equal(st.rejected, 5);
    assert_int_equal(atomic_load(&m->refusals_seen), 5);

    fr_data_sender_close(top);
    fr_data_receiver_stop(rm);
    fr_data_sender_close(m->down);
    fr_data_receiver_stop(rk);
    free(m);
    free(k);
}

/* With nothing downstream, the middle holds the calls; closing its sender
 * tells each one FR_ECLOSED, the answers say busy, and once a new sink and
 * sender are there the top's resends get everything through. */
static bool all_held(void *arg)
{
    fr_data_receiver *r = arg;
    fr_data_receiver_stats st;
    fr_data_receiver_stats_get(r, &st);
    return st.received >= 8;
}

static void test_close_downstream_answers_busy(void **state)
{
    sink *k = calloc(1, sizeof(*k));
    middle *m = calloc(1, sizeof(*m));
    assert_non_null(k);
    assert_non_null(m);
    m->k = k;
    char a_url[64], b_url[64];
    snprintf(a_url, sizeof(a_url), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(b_url, sizeof(b_url), "tcp://127.0.0.1:%d", tst_free_port());
    const char *a_urls[] = {a_url}, *b_urls[] = {b_url};

    fr_data_sender_opts o = {.window = 4, .queue = 16};
    assert_fr_ok(fr_data_sender_open(&m->down, b_urls, 1, NULL, &o));
    fr_data_receiver *rm = NULL;
    assert_fr_ok(fr_data_receiver_start_deferring(&rm, a_url, true, NULL, 8, middle_handle, m));
    fr_data_sender *top = NULL;
    fr_data_sender_opts to = {.window = 8, .busy_retry_ms = 50};
    assert_fr_ok(fr_data_sender_open(&top, a_urls, 1, NULL, &to));
    send_all(top, 0, 8);
    assert_true(tst_wait_until(all_held, rm, 10000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(top, &st);
    assert_int_equal(st.acked, 0);

    /* Closing the middle's sender releases every held call as busy. */
    fr_data_sender *old = m->down;
    fr_data_sender *fresh = NULL;
    assert_fr_ok(fr_data_sender_open(&fresh, b_urls, 1, NULL, &o));
    m->down = fresh;
    fr_data_sender_close(old);
    assert_int_equal(atomic_load(&m->closed_seen), 8);

    fr_data_receiver *rk = NULL;
    assert_fr_ok(fr_data_receiver_start(&rk, b_url, true, NULL, 4, sink_handle, k));
    assert_fr_ok(fr_data_flush(top, 30000));
    fr_data_sender_stats_get(top, &st);
    assert_int_equal(st.acked, 8);
    assert_true(st.busy >= 8);
    for (uint32_t i = 0; i < 8; i++) {
        assert_int_equal(atomic_load(&k->count[i]), 1);
    }
    fr_data_sender_close(top);
    fr_data_receiver_stop(rm);
    fr_data_sender_close(m->down);
    fr_data_receiver_stop(rk);
    free(m);
    free(k);
}

/* A receiver stopping with deferred calls waits for their answers, which
 * then send nothing. */
typedef struct holder {
    pthread_mutex_t mu;
    fr_data_call *calls[4];
    int n;
} holder;

static int hold_handle(void *ctx, fr_data_call *call, const void *data, size_t len, fr_error *err)
{
    holder *h = ctx;
    pthread_mutex_lock(&h->mu);
    h->calls[h->n++] = call;
    pthread_mutex_unlock(&h->mu);
    return FR_DATA_LATER;
}

static bool two_held(void *arg)
{
    holder *h = arg;
    pthread_mutex_lock(&h->mu);
    int n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n == 2;
}

typedef struct stopper {
    fr_data_receiver *r;
    atomic_bool done;
} stopper;

static void *stop_run(void *arg)
{
    stopper *s = arg;
    fr_data_receiver_stop(s->r);
    atomic_store(&s->done, true);
    return NULL;
}

static void test_stop_waits_for_deferred(void **state)
{
    holder h = {.n = 0};
    pthread_mutex_init(&h.mu, NULL);
    const char *urls[] = {"inproc://chain-hold"};
    fr_data_receiver *r = NULL;
    assert_fr_ok(fr_data_receiver_start_deferring(&r, urls[0], true, NULL, 2, hold_handle, &h));
    fr_data_sender *s = NULL;
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, NULL));
    uint32_t i = 0;
    assert_fr_ok(fr_data_send(s, &i, sizeof(i), 1000));
    i = 1;
    assert_fr_ok(fr_data_send(s, &i, sizeof(i), 1000));
    assert_true(tst_wait_until(two_held, &h, 10000));

    stopper st = {.r = r};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_run, &st), 0);
    /* Still waiting for the two answers after a while. */
    int64_t until = tst_mono_ms() + 200;
    while (tst_mono_ms() < until) {
        assert_false(atomic_load(&st.done));
    }
    fr_data_answer(h.calls[0], 0, NULL);
    assert_false(atomic_load(&st.done));
    fr_data_answer(h.calls[1], 0, NULL);
    pthread_join(t, NULL);
    assert_true(atomic_load(&st.done));
    fr_data_sender_stats ss;
    fr_data_sender_stats_get(s, &ss);
    assert_int_equal(ss.acked, 0); /* nothing was answered after the stop began */
    fr_data_sender_close(s);
    pthread_mutex_destroy(&h.mu);
}

/* A deferring handler may also answer at once by returning a code. */
static int busy_then_ok(void *ctx, fr_data_call *call, const void *data, size_t len,
                        fr_error *err)
{
    atomic_int *n = ctx;
    if (atomic_fetch_add(n, 1) < 3) {
        return fr_error_set(err, FR_EBUSY, NULL, "not yet");
    }
    return 0;
}

static void test_deferring_handler_answers_at_once(void **state)
{
    atomic_int n = 0;
    const char *urls[] = {"inproc://chain-once"};
    fr_data_receiver *r = NULL;
    assert_fr_ok(fr_data_receiver_start_deferring(&r, urls[0], true, NULL, 1, busy_then_ok, &n));
    fr_data_sender *s = NULL;
    fr_data_sender_opts o = {.busy_retry_ms = 10};
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));
    assert_fr_ok(fr_data_send(s, "x", 1, 1000));
    assert_fr_ok(fr_data_flush(s, 10000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.acked, 1);
    assert_int_equal(st.busy, 3);
    fr_data_sender_close(s);
    fr_data_receiver_stop(r);
}

static void test_seqwin_seen(void **state)
{
    fr_seqwin *w = fr_seqwin_new();
    assert_non_null(w);
    assert_false(fr_seqwin_seen(w, "a", 10));
    assert_int_equal(fr_seqwin_check(w, "a", 10), 1);
    assert_true(fr_seqwin_seen(w, "a", 10));
    assert_false(fr_seqwin_seen(w, "a", 11));
    assert_false(fr_seqwin_seen(w, "b", 10));
    /* Far ahead: the old ones are below the window, not seen. */
    assert_int_equal(fr_seqwin_check(w, "a", 10 + 2 * FR_SEQWIN_BITS), 1);
    assert_false(fr_seqwin_seen(w, "a", 10));
    assert_false(fr_seqwin_seen(w, "a", 11 + 2 * FR_SEQWIN_BITS));
    fr_seqwin_destroy(w);
}

int main(void)
{
    fr_log_init("chain_test", FR_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_acks_end_to_end),
        cmocka_unit_test(test_close_downstream_answers_busy),
        cmocka_unit_test(test_stop_waits_for_deferred),
        cmocka_unit_test(test_deferring_handler_answers_at_once),
        cmocka_unit_test(test_seqwin_seen),
    };
    int failed = cmocka_run_group_tests_name("chain", tests, NULL, NULL);
    nng_fini();
    return failed;
}
