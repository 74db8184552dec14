/* Namespace queries: exact names, '*' for one element and, last, for
 * everything below, snap's (a;b) tuples, prefixes, catalog coverage and
 * the errors for malformed queries. */
#include "testsupport.h"

#include <stdio.h>
#include <string.h>

#include "fresco/ns.h"

/* A query built from a NULL-terminated list; fails the test on error. */
static fr_ns_query *query_of(const char *const *list)
{
    fr_ns_query *q = fr_ns_query_new();
    assert_non_null(q);
    for (size_t i = 0; list[i] != NULL; i++) {
        fr_error err;
        fr_error_clear(&err);
        int rv = fr_ns_query_add(q, list[i], &err);
        if (rv != 0) {
            fail_msg("add '%s': %s: %s", list[i], err.where, err.message);
        }
    }
    return q;
}

static void test_exact(void **state)
{
    (void)state;
    assert_true(fr_ns_match("/intel/psutil/load/load1", "/intel/psutil/load/load1"));
    assert_false(fr_ns_match("/intel/psutil/load/load1", "/intel/psutil/load/load15"));
    assert_false(fr_ns_match("/intel/psutil/load/load1", "/intel/psutil/load/load"));
    assert_false(fr_ns_match("/intel/psutil/load/load1", "/intel/psutil/load"));
    assert_false(fr_ns_match("/intel/psutil/load", "/intel/psutil/load/load1"));
    assert_false(fr_ns_match("/intel/psutil/load/load1", "/intel/psutil/load/load1/"));
    assert_false(fr_ns_match("/intel/psutil/load/load1", "intel/psutil/load/load1"));
    assert_false(fr_ns_match("/intel/psutil/load/load1", ""));
    assert_false(fr_ns_match("/a", "/"));
    assert_true(fr_ns_match("/a", "/a"));
    /* Case matters, as in snap. */
    assert_false(fr_ns_match("/intel/PSUTIL", "/intel/psutil"));
}

static void test_star_one(void **state)
{
    (void)state;
    const char *q = "/intel/libvirt/*/cpu/*/cputime";
    assert_true(fr_ns_match(q, "/intel/libvirt/vm-1/cpu/0/cputime"));
    assert_true(fr_ns_match(q, "/intel/libvirt/instance-0000002a/cpu/17/cputime"));
    assert_false(fr_ns_match(q, "/intel/libvirt/vm-1/cpu/cputime"));
    assert_false(fr_ns_match(q, "/intel/libvirt/vm-1/x/cpu/0/cputime"));
    assert_false(fr_ns_match(q, "/intel/libvirt/vm-1/cpu/0/cputime/x"));
    /* A '*' takes exactly one non-empty element. */
    assert_false(fr_ns_match(q, "/intel/libvirt//cpu/0/cputime"));
    assert_true(fr_ns_match("/intel/libvirt/*/cpu/cputime", "/intel/libvirt/a/cpu/cputime"));
    assert_false(fr_ns_match("/intel/libvirt/*/cpu/cputime", "/intel/libvirt/a/b/cpu/cputime"));
}

static void test_star_tail(void **state)
{
    (void)state;
    /* Last '*': one or more elements below. */
    assert_true(fr_ns_match("/intel/psutil/*", "/intel/psutil/load/load1"));
    assert_true(fr_ns_match("/intel/psutil/*", "/intel/psutil/vm/free"));
    assert_true(fr_ns_match("/intel/psutil/*", "/intel/psutil/x"));
    assert_true(fr_ns_match("/intel/psutil/*", "/intel/psutil/a/b/c/d/e/f"));
    assert_false(fr_ns_match("/intel/psutil/*", "/intel/psutil"));
    assert_false(fr_ns_match("/intel/psutil/*", "/intel/psutil/"));
    assert_false(fr_ns_match("/intel/psutil/*", "/intel/psutil/a//b"));
    assert_false(fr_ns_match("/intel/psutil/*", "/intel/psutil/a/"));
    assert_false(fr_ns_match("/intel/psutil/*", "/intel/procfs/load/load1"));
    assert_true(fr_ns_match("/*", "/anything/at/all"));
    assert_true(fr_ns_match("/*", "/x"));
    assert_false(fr_ns_match("/*", "/"));
    /* Middle and last stars together. */
    assert_true(fr_ns_match("/intel/libvirt/*/disk/*", "/intel/libvirt/vm/disk/vda/rdbytes"));
    assert_false(fr_ns_match("/intel/libvirt/*/disk/*", "/intel/libvirt/vm/disk"));
}

static void test_tuple(void **state)
{
    (void)state;
    const char *q = "/intel/psutil/load/(load1;load15)";
    assert_true(fr_ns_match(q, "/intel/psutil/load/load1"));
    assert_true(fr_ns_match(q, "/intel/psutil/load/load15"));
    assert_false(fr_ns_match(q, "/intel/psutil/load/load5"));
    assert_false(fr_ns_match(q, "/intel/psutil/load/load"));
    assert_false(fr_ns_match(q, "/intel/psutil/load/load1;load15"));
    assert_false(fr_ns_match(q, "/intel/psutil/load/(load1;load15)"));
    /* A one-name tuple is that name. */
    assert_true(fr_ns_match("/a/(b)/c", "/a/b/c"));
    assert_false(fr_ns_match("/a/(b)/c", "/a/bb/c"));
    /* Tuples anywhere, several of them, with stars. */
    const char *q3 = "/intel/(psutil;procfs)/*/(rxbytes;txbytes)";
    assert_true(fr_ns_match(q3, "/intel/procfs/eth0/txbytes"));
    assert_true(fr_ns_match(q3, "/intel/psutil/lo/rxbytes"));
    assert_false(fr_ns_match(q3, "/intel/use/lo/rxbytes"));
    assert_false(fr_ns_match(q3, "/intel/psutil/lo/rxdrop"));
    assert_true(fr_ns_match("/(a;b;c)/*", "/c/d/e"));
}

static void test_query_many(void **state)
{
    (void)state;
    static const char *const list[] = {
        "/intel/psutil/load/load1",
        "/intel/libvirt/*/cpu/cputime",
        "/intel/procfs/(meminfo;vmstat)/*",
        NULL,
    };
    fr_ns_query *q = query_of(list);
    assert_int_equal(fr_ns_query_count(q), 3);
    assert_string_equal(fr_ns_query_get(q, 1), "/intel/libvirt/*/cpu/cputime");
    assert_null(fr_ns_query_get(q, 3));
    assert_true(fr_ns_query_match(q, "/intel/psutil/load/load1"));
    assert_true(fr_ns_query_match(q, "/intel/libvirt/vm-7/cpu/cputime"));
    assert_true(fr_ns_query_match(q, "/intel/procfs/vmstat/pgfault"));
    assert_true(fr_ns_query_match(q, "/intel/procfs/meminfo/mem_free"));
    assert_false(fr_ns_query_match(q, "/intel/procfs/diskstats/sda/reads"));
    assert_false(fr_ns_query_match(q, "/intel/psutil/load/load5"));
    assert_false(fr_ns_query_match(q, NULL));
    assert_false(fr_ns_query_match(NULL, "/a"));
    fr_ns_query_destroy(q);

    /* An empty query matches nothing and wants nothing. */
    q = fr_ns_query_new();
    assert_int_equal(fr_ns_query_count(q), 0);
    assert_false(fr_ns_query_match(q, "/a"));
    assert_false(fr_ns_query_wants_prefix(q, "/"));
    fr_ns_query_destroy(q);
    fr_ns_query_destroy(NULL);
}

static void test_wants_prefix(void **state)
{
    (void)state;
    static const char *const list[] = {
        "/intel/libvirt/*/disk/*/rdbytes",
        "/intel/libvirt/(vm-1;vm-2)/memory/*",
        "/intel/psutil/load/load1",
        NULL,
    };
    fr_ns_query *q = query_of(list);
    assert_true(fr_ns_query_wants_prefix(q, "/"));
    assert_true(fr_ns_query_wants_prefix(q, "/intel"));
    assert_true(fr_ns_query_wants_prefix(q, "/intel/libvirt"));
    assert_true(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-3/disk"));
    assert_true(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-3/disk/"));
    assert_true(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-3/disk/vda"));
    assert_true(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-3/disk/vda/rdbytes"));
    assert_false(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-3/disk/vda/wrbytes"));
    assert_false(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-3/disk/vda/rdbytes/x"));
    assert_false(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-3/memory"));
    assert_true(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-2/memory"));
    /* Below a trailing '*' anything is wanted, however deep. */
    assert_true(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-2/memory/a/b/c"));
    assert_false(fr_ns_query_wants_prefix(q, "/intel/libvirt/vm-3/network"));
    assert_true(fr_ns_query_wants_prefix(q, "/intel/psutil/load"));
    assert_true(fr_ns_query_wants_prefix(q, "/intel/psutil/load/load1"));
    assert_false(fr_ns_query_wants_prefix(q, "/intel/psutil/vm"));
    assert_false(fr_ns_query_wants_prefix(q, "/ibm"));
    assert_false(fr_ns_query_wants_prefix(q, "intel"));
    assert_false(fr_ns_query_wants_prefix(q, NULL));
    fr_ns_query_destroy(q);
}

static void test_covers_pattern(void **state)
{
    (void)state;
    static const char *const list[] = {
        "/intel/libvirt/*/cpu/*/cputime",     /* 0 */
        "/intel/libvirt/vm-1/cpu/cputime",    /* 1 */
        "/intel/libvirt/*",                   /* 2 */
        "/intel/libvirt/*/memory/(rss;swap)", /* 3 */
        "/intel/libvirt/vm-1/memory/nope",    /* 4 */
        "/intel/libvirt/*/cpu",               /* 5 */
        "/*",                                 /* 6 */
        "/intel/libvirt/(a;b)/cpu/cputime",   /* 7 */
        NULL,
    };
    fr_ns_query *q = query_of(list);
    const char *cpu = "/intel/libvirt/*/cpu/*/cputime";
    const char *cputot = "/intel/libvirt/*/cpu/cputime";
    const char *rss = "/intel/libvirt/*/memory/rss";
    const char *avail = "/intel/libvirt/*/memory/available";

    assert_true(fr_ns_query_covers_pattern(q, 0, cpu));
    assert_false(fr_ns_query_covers_pattern(q, 0, cputot));
    /* A literal query element meets a dynamic catalog element. */
    assert_true(fr_ns_query_covers_pattern(q, 1, cputot));
    assert_false(fr_ns_query_covers_pattern(q, 1, cpu));
    /* A trailing '*' covers everything below, not the prefix itself. */
    assert_true(fr_ns_query_covers_pattern(q, 2, cpu));
    assert_true(fr_ns_query_covers_pattern(q, 2, rss));
    assert_false(fr_ns_query_covers_pattern(q, 2, "/intel/libvirt"));
    assert_false(fr_ns_query_covers_pattern(q, 2, "/intel/psutil/load/load1"));
    assert_true(fr_ns_query_covers_pattern(q, 3, rss));
    assert_false(fr_ns_query_covers_pattern(q, 3, avail));
    assert_false(fr_ns_query_covers_pattern(q, 4, rss));
    assert_false(fr_ns_query_covers_pattern(q, 4, avail));
    /* The catalog entry's "cpu" is a leaf here, the query's cpu a middle: no. */
    assert_false(fr_ns_query_covers_pattern(q, 5, cputot));
    assert_true(fr_ns_query_covers_pattern(q, 6, cputot));
    assert_true(fr_ns_query_covers_pattern(q, 7, cputot));
    /* A catalog pattern with a dynamic last element is one element. */
    assert_true(fr_ns_query_covers_pattern(q, 2, "/intel/libvirt/*"));
    assert_false(fr_ns_query_covers_pattern(q, 0, "bad"));
    assert_false(fr_ns_query_covers_pattern(q, 0, NULL));
    assert_false(fr_ns_query_covers_pattern(q, 99, cpu));
    fr_ns_query_destroy(q);
}

/* Adds query and checks it is refused with a message containing want. */
static void expect_bad(const char *query, const char *want)
{
    fr_ns_query *q = fr_ns_query_new();
    fr_error err;
    fr_error_clear(&err);
    int rv = fr_ns_query_add(q, query, &err);
    if (rv != FR_EINVAL) {
        fail_msg("'%s' accepted (rv %d)", query, rv);
    }
    assert_int_equal(err.code, FR_EINVAL);
    if (strstr(err.message, want) == NULL) {
        fail_msg("'%s': message '%s' lacks '%s'", query, err.message, want);
    }
    assert_int_equal(fr_ns_query_count(q), 0);
    assert_false(fr_ns_match(query, "/a/b"));
    fr_ns_query_destroy(q);
}

static void test_malformed(void **state)
{
    (void)state;
    expect_bad("", "starts with '/'");
    expect_bad("intel/psutil", "starts with '/'");
    expect_bad("/", "element 1 '' is empty");
    expect_bad("/a//b", "element 2 '' is empty");
    expect_bad("/a/b/", "element 3 '' is empty");
    expect_bad("/intel/(a;", "element 2 '(a;' has no closing parenthesis");
    expect_bad("/intel/(a;b", "element 2 '(a;b' has no closing parenthesis");
    expect_bad("/intel/(a;b)x", "element 2 '(a;b)x' has no closing parenthesis");
    expect_bad("/intel/a;b)", "element 2 'a;b)' has ';' outside a tuple");
    expect_bad("/intel/a(b)", "element 2 'a(b)' has a parenthesis outside a tuple");
    expect_bad("/intel/a;b", "element 2 'a;b' has ';' outside a tuple");
    expect_bad("/intel/()", "element 2 '()' has an empty name");
    expect_bad("/intel/(a;;b)", "element 2 '(a;;b)' has an empty name");
    expect_bad("/intel/(;b)", "has an empty name");
    expect_bad("/intel/(a;)", "has an empty name");
    expect_bad("/intel/((a))", "parenthesis inside a tuple");
    expect_bad("/intel/(a;*)", "mixes '*' with a tuple");
    expect_bad("/intel/load*", "element 2 'load*' mixes '*'");
    expect_bad("/intel/**", "element 2 '**' mixes '*'");
    expect_bad("/*x/a", "element 1 '*x' mixes '*'");

    /* 64 elements are fine, 65 are not. */
    char buf[256];
    size_t pos = 0;
    for (int i = 0; i < FR_NS_MAX_ELEMENTS; i++) {
        pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "/a");
    }
    assert_true(fr_ns_match(buf, buf));
    snprintf(buf + pos, sizeof(buf) - pos, "/b");
    expect_bad(buf, "element 65 'b' is past the limit of 64 elements");

    /* The error names the query in where. */
    fr_ns_query *q = fr_ns_query_new();
    fr_error err;
    assert_int_equal(fr_ns_query_add(q, "/intel/x*", &err), FR_EINVAL);
    assert_string_equal(err.where, "/intel/x*");
    assert_int_equal(fr_ns_query_add(q, NULL, &err), FR_EINVAL);
    assert_int_equal(fr_ns_query_add(NULL, "/a", &err), FR_EINVAL);
    fr_ns_query_destroy(q);
}

/* Many queries, many namespaces: a plugin's collect asks this per metric. */
static void test_many_queries(void **state)
{
    (void)state;
    fr_ns_query *q = fr_ns_query_new();
    char buf[128];
    for (int i = 0; i < 200; i++) {
        snprintf(buf, sizeof(buf), "/intel/libvirt/*/disk/*/m%d", i);
        assert_fr_ok(fr_ns_query_add(q, buf, NULL));
    }
    assert_int_equal(fr_ns_query_count(q), 200);
    assert_true(fr_ns_query_match(q, "/intel/libvirt/vm/disk/vda/m199"));
    assert_true(fr_ns_query_match(q, "/intel/libvirt/vm/disk/vda/m0"));
    assert_false(fr_ns_query_match(q, "/intel/libvirt/vm/disk/vda/m200"));
    fr_ns_query_destroy(q);
}

/* The last-element index: shared last names, tuples at the end, tails,
 * and namespaces longer than any query. */
static void test_index(void **state)
{
    (void)state;
    /* A tail first: the index starts empty. */
    static const char *const list[] = {
        "/d/*", "/a/x", "/b/x", "/c/(x;y;z)", "/e/*/x", "/f/(p;q)/w", NULL,
    };
    fr_ns_query *q = query_of(list);
    assert_true(fr_ns_query_match(q, "/a/x"));
    assert_true(fr_ns_query_match(q, "/b/x"));
    assert_false(fr_ns_query_match(q, "/g/x"));
    assert_true(fr_ns_query_match(q, "/c/y"));
    assert_true(fr_ns_query_match(q, "/c/z"));
    assert_false(fr_ns_query_match(q, "/c/w"));
    assert_true(fr_ns_query_match(q, "/e/anything/x"));
    assert_true(fr_ns_query_match(q, "/f/q/w"));
    assert_false(fr_ns_query_match(q, "/f/r/w"));
    assert_false(fr_ns_query_match(q, "/x"));
    char deep[512];
    size_t pos = (size_t)snprintf(deep, sizeof(deep), "/d");
    for (int i = 0; i < 80; i++) {
        pos += (size_t)snprintf(deep + pos, sizeof(deep) - pos, "/e%d", i);
    }
    assert_true(fr_ns_query_match(q, deep));
    deep[1] = 'a';
    assert_false(fr_ns_query_match(q, deep));
    /* Enough queries to grow the table several times. */
    char buf[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof(buf), "/m/%d/(v%d;w%d)", i, i, i);
        assert_fr_ok(fr_ns_query_add(q, buf, NULL));
    }
    for (int i = 0; i < 1000; i += 37) {
        snprintf(buf, sizeof(buf), "/m/%d/w%d", i, i);
        assert_true(fr_ns_query_match(q, buf));
        snprintf(buf, sizeof(buf), "/m/%d/w%d", i + 1, i);
        assert_false(fr_ns_query_match(q, buf));
    }
    assert_true(fr_ns_query_match(q, "/a/x"));
    fr_ns_query_destroy(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),          cmocka_unit_test(test_star_one),
        cmocka_unit_test(test_star_tail),      cmocka_unit_test(test_tuple),
        cmocka_unit_test(test_query_many),     cmocka_unit_test(test_wants_prefix),
        cmocka_unit_test(test_covers_pattern), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_many_queries),   cmocka_unit_test(test_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
