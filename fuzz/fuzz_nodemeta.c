/* The node metadata reader and writer on anything. A parse that fails must
 * say where ("line:col") and why and give no tree. One that succeeds must
 * write canonical ASCII text that parses again to an equal tree and the
 * same bytes, and a node diffed against itself (or against its re-parsed
 * copy) must show no difference: 0, or an error naming what is wrong with
 * the document, never a count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nodemeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_where(const fr_error *e)
{
    const char *p = e->where;
    size_t a = strspn(p, "0123456789");
    if (a == 0 || p[a] != ':') {
        abort();
    }
    size_t b = strspn(p + a + 1, "0123456789");
    if (b == 0 || p[a + 1 + b] != '\0') {
        abort();
    }
}

static void check_self_diff(const hpc_json *a, const hpc_json *b)
{
    fr_buf report = FR_BUF_INIT;
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_nodemeta_diff(a, NULL, b, NULL, &report, &e);
    if (rv > 0 || report.len != 0 || (rv < 0 && (e.code != rv || e.message[0] == '\0'))) {
        abort();
    }
    fr_buf_free(&report);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hpc_json *j = NULL;
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_json_parse((const char *)data, size, &j, &e);
    if (rv != 0) {
        if (j != NULL || e.code != rv || e.message[0] == '\0') {
            abort();
        }
        check_where(&e);
        return 0;
    }
    fr_buf text = FR_BUF_INIT;
    if (hpc_json_write(j, &text) != 0) {
        abort();
    }
    for (size_t i = 0; i < text.len; i++) {
        if (text.data[i] >= 0x7F || (text.data[i] < 0x20 && text.data[i] != '\n')) {
            abort();
        }
    }
    hpc_json *again = NULL;
    if (hpc_json_parse((const char *)text.data, text.len, &again, &e) != 0 ||
        !hpc_json_equal(j, again)) {
        abort();
    }
    fr_buf text2 = FR_BUF_INIT;
    if (hpc_json_write(again, &text2) != 0 || text2.len != text.len ||
        memcmp(text2.data, text.data, text.len) != 0) {
        abort();
    }
    check_self_diff(j, j);
    check_self_diff(j, again);
    fr_buf_free(&text2);
    fr_buf_free(&text);
    hpc_json_free(again);
    hpc_json_free(j);
    return 0;
}
