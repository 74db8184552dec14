/* Task manifests: the report's two examples, every field, $VAR expansion,
 * the errors (each naming file:line:col and the key path), RFC 3339, cron,
 * and the msgpack round trip. */
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/manifest.h"
#include "fresco/metric.h"
#include "fresco/mpdoc.h"

/* ---- helpers ---------------------------------------------------------- */

static fr_manifest *parse_ok(const char *text)
{
    fr_manifest *m = NULL;
    fr_error err;
    int rv = fr_manifest_parse(text, strlen(text), "t.yaml", &m, &err);
    if (rv != 0) {
        fail_msg("parse failed (%d): %s: %s\n%s", rv, err.where, err.message, text);
    }
    assert_non_null(m);
    return m;
}

/* Parses text expecting failure with code, where (NULL: not checked) and
 * a message containing msg. */
static void parse_err(const char *text, int code, const char *where, const char *msg)
{
    fr_manifest *m = (fr_manifest *)0x1;
    fr_error err;
    int rv = fr_manifest_parse(text, strlen(text), "t.yaml", &m, &err);
    if (rv == 0) {
        fail_msg("accepted:\n%s", text);
    }
    assert_null(m);
    if (rv != code || err.code != code) {
        fail_msg("code %d (%s), want %d; %s: %s\n%s", rv, fr_errcode(rv), code, err.where,
                 err.message, text);
    }
    if (where != NULL && strcmp(err.where, where) != 0) {
        fail_msg("where '%s', want '%s' (%s)\n%s", err.where, where, err.message, text);
    }
    if (strstr(err.message, msg) == NULL) {
        fail_msg("message '%s' lacks '%s'\n%s", err.message, msg, text);
    }
}

static char *read_fixture(const char *name, size_t *len)
{
    char rel[256], path[512];
    snprintf(rel, sizeof(rel), "tests/manifest/fixtures/%s", name);
    tst_src(path, sizeof(path), rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int64_t t3339(const char *s)
{
    int64_t ns = 0;
    if (fr_parse_rfc3339(s, &ns) != 0) {
        fail_msg("bad time %s", s);
    }
    return ns;
}

/* A manifest's msgpack form, decoded. */
static void pack_doc(const fr_manifest *m, fr_doc *doc, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    assert_fr_ok(fr_manifest_pack(m, &pk));
    fr_error err;
    int rv = fr_doc_decode(sb->data, sb->size, doc, &err);
    if (rv != 0) {
        fail_msg("decode: %s: %s", err.where, err.message);
    }
}

static void assert_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        assert_true(a == b);
    } else {
        assert_string_equal(a, b);
    }
}

static void map_eq(const fr_mf_map *a, const fr_mf_map *b);

static void value_eq(const fr_mf_value *a, const fr_mf_value *b)
{
    assert_int_equal(a->type, b->type);
    assert_str_eq(a->text, b->text);
    map_eq(&a->map, &b->map);
}

static void map_eq(const fr_mf_map *a, const fr_mf_map *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->v[i].key, b->v[i].key);
        value_eq(&a->v[i].value, &b->v[i].value);
    }
}

static void nodes_eq(const fr_mf_node *a, size_t na, const fr_mf_node *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].plugin_name, b[i].plugin_name);
        assert_int_equal(a[i].plugin_version, b[i].plugin_version);
        assert_string_equal(a[i].path, b[i].path);
        map_eq(&a[i].config, &b[i].config);
        nodes_eq(a[i].process, a[i].nprocess, b[i].process, b[i].nprocess);
        nodes_eq(a[i].publish, a[i].npublish, b[i].publish, b[i].npublish);
    }
}

static void manifest_eq(const fr_manifest *a, const fr_manifest *b)
{
    assert_int_equal(a->version, b->version);
    assert_str_eq(a->name, b->name);
    assert_int_equal(a->deadline_ms, b->deadline_ms);
    assert_int_equal(a->max_failures, b->max_failures);
    const fr_schedule *x = &a->schedule, *y = &b->schedule;
    assert_int_equal(x->type, y->type);
    assert_str_eq(x->interval, y->interval);
    assert_int_equal(x->interval_ms, y->interval_ms);
    assert_memory_equal(&x->cron, &y->cron, sizeof(x->cron));
    assert_int_equal(x->has_start, y->has_start);
    assert_int_equal(x->has_stop, y->has_stop);
    assert_int_equal(x->start_ns, y->start_ns);
    assert_int_equal(x->stop_ns, y->stop_ns);
    assert_int_equal(x->count, y->count);
    map_eq(&a->collect.metrics, &b->collect.metrics);
    map_eq(&a->collect.config, &b->collect.config);
    map_eq(&a->collect.tags, &b->collect.tags);
    nodes_eq(a->collect.process, a->collect.nprocess, b->collect.process, b->collect.nprocess);
    nodes_eq(a->collect.publish, a->collect.npublish, b->collect.publish, b->collect.npublish);
}

/* pack -> decode -> unpack gives an equal manifest, and packing that
 * gives the same bytes. */
static void round_trip(const fr_manifest *m)
{
    msgpack_sbuffer sb1, sb2;
    fr_doc doc1, doc2;
    fr_manifest *u = NULL;
    fr_error err;
    pack_doc(m, &doc1, &sb1);
    int rv = fr_manifest_unpack(doc1.root, &u, &err);
    if (rv != 0) {
        fail_msg("unpack: %s: %s", err.where, err.message);
    }
    manifest_eq(m, u);
    assert_null(u->source);
    assert_int_equal(u->pos.interval.line, 0);
    pack_doc(u, &doc2, &sb2);
    assert_int_equal(sb1.size, sb2.size);
    assert_memory_equal(sb1.data, sb2.data, sb1.size);
    fr_doc_free(&doc1);
    fr_doc_free(&doc2);
    msgpack_sbuffer_destroy(&sb1);
    msgpack_sbuffer_destroy(&sb2);
    fr_manifest_free(u);
}

/* ---- the report's manifests ------------------------------------------- */

static void test_report_libvirt_yaml(void **state)
{
    (void)state;
    size_t len;
    char *text = read_fixture("report-libvirt.yaml", &len);
    fr_manifest *m = NULL;
    fr_error err;
    int rv = fr_manifest_parse(text, len, "report-libvirt.yaml", &m, &err);
    if (rv != 0) {
        fail_msg("%s: %s", err.where, err.message);
    }
    assert_int_equal(m->version, 1);
    assert_null(m->name);
    assert_int_equal(m->deadline_ms, 5000);
    assert_int_equal(m->max_failures, 10);
    assert_int_equal(m->schedule.type, FR_SCHED_SIMPLE);
    assert_string_equal(m->schedule.interval, "1s");
    assert_int_equal(m->schedule.interval_ms, 1000);
    assert_false(m->schedule.has_start);
    assert_false(m->schedule.has_stop);
    assert_int_equal(m->schedule.count, 0);

    const fr_mf_map *mx = &m->collect.metrics;
    assert_int_equal(mx->n, 25);
    assert_string_equal(mx->v[0].key, "/intel/libvirt/*/cpu/*/cputime");
    assert_string_equal(mx->v[1].key, "/intel/libvirt/*/cpu/cputime");
    assert_string_equal(mx->v[24].key, "/intel/libvirt/*/network/*/txpackets");
    for (size_t i = 0; i < mx->n; i++) {
        assert_int_equal(mx->v[i].value.type, FR_MF_MAP);
        assert_int_equal(mx->v[i].value.map.n, 0);
    }
    /* Every other line of the report's text is blank: line 1 is version. */
    assert_int_equal(m->pos.interval.line, 7);
    assert_int_equal(m->pos.interval.col, 15);
    assert_int_equal(mx->v[0].pos.line, 16);
    assert_int_equal(mx->v[0].pos.col, 10);

    assert_int_equal(m->collect.nprocess, 0);
    assert_int_equal(m->collect.npublish, 1);
    const fr_mf_node *pub = &m->collect.publish[0];
    assert_string_equal(pub->plugin_name, "file");
    assert_string_equal(pub->path, "workflow.collect.publish[0]");
    const fr_mf_value *file = fr_mf_map_get(&pub->config, "file");
    assert_non_null(file);
    assert_int_equal(file->type, FR_MF_STRING);
    assert_string_equal(file->text, "/tmp/libvirt_metrics");
    assert_null(fr_mf_map_get(&pub->config, "nope"));
    assert_fr_ok(fr_manifest_validate(m, t3339("2017-01-01T00:00:00Z"), &err));
    round_trip(m);
    fr_manifest_free(m);
    free(text);
}

static void test_report_psutil_json(void **state)
{
    (void)state;
    size_t len;
    char *text = read_fixture("report-psutil-tag.json", &len);
    fr_manifest *m = NULL;
    fr_error err;
    int rv = fr_manifest_parse(text, len, "report-psutil-tag.json", &m, &err);
    if (rv != 0) {
        fail_msg("%s: %s", err.where, err.message);
    }
    assert_int_equal(m->schedule.interval_ms, 1000);
    assert_int_equal(m->max_failures, 10);
    const fr_mf_map *mx = &m->collect.metrics;
    assert_int_equal(mx->n, 5);
    static const char *const want[] = {"/intel/psutil/load/load1", "/intel/psutil/load/load5",
                                       "/intel/psutil/load/load15", "/intel/psutil/vm/free",
                                       "/intel/psutil/vm/used"};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(mx->v[i].key, want[i]);
    }
    assert_int_equal(m->collect.nprocess, 1);
    assert_int_equal(m->collect.npublish, 0);
    const fr_mf_node *tag = &m->collect.process[0];
    assert_string_equal(tag->plugin_name, "tag");
    assert_string_equal(fr_mf_map_get(&tag->config, "tags")->text,
                        "rack1:rack,datacenter:dublin,experiment:1");
    assert_int_equal(tag->nprocess, 0);
    assert_int_equal(tag->npublish, 1);
    assert_string_equal(tag->publish[0].plugin_name, "file");
    assert_string_equal(tag->publish[0].path, "workflow.collect.process[0].publish[0]");
    assert_string_equal(fr_mf_map_get(&tag->publish[0].config, "file")->text,
                        "/tmp/published_tag.log");
    assert_string_equal(m->source, "report-psutil-tag.json");
    round_trip(m);
    fr_manifest_free(m);
    free(text);
}

/* ---- every field ------------------------------------------------------ */

static const char full_yaml[] = "version: 1\n"
                                "name: libvirt-1s\n"
                                "deadline: 500us\n"
                                "schedule:\n"
                                "  type: windowed\n"
                                "  interval: 250ms\n"
                                "  start_timestamp: 2030-06-01T14:00:00.25+02:00\n"
                                "  stop_timestamp: 2030-06-01T13:00:00Z\n"
                                "  count: 100\n"
                                "max-failures: -1\n"
                                "workflow:\n"
                                "  collect:\n"
                                "    metrics:\n"
                                "      /intel/psutil/load/(load1;load15): {}\n"
                                "      /intel/libvirt/*: {version: 2}\n"
                                "      /intel/procfs/*:\n"
                                "    config:\n"
                                "      /intel/libvirt:\n"
                                "        uri: test:///default\n"
                                "        timeout: 007\n"
                                "        ratio: 1.50\n"
                                "        verbose: True\n"
                                "        quoted: \"007\"\n"
                                "        nothing: ~\n"
                                "        big: 99999999999999999999\n"
                                "      /:\n"
                                "        everywhere: yes\n"
                                "    tags:\n"
                                "      /intel:\n"
                                "        rack: 01\n"
                                "        dc: dublin\n"
                                "    process:\n"
                                "      - plugin_name: tag\n"
                                "        plugin_version: 3\n"
                                "        config:\n"
                                "          tags: rack1:rack\n"
                                "          nested: {a: 1, b: {c: .inf}}\n"
                                "        process:\n"
                                "          - plugin_name: anomaly\n"
                                "            publish:\n"
                                "              - plugin_name: kafka\n"
                                "                config: {topic: t}\n"
                                "        publish:\n"
                                "          - plugin_name: file\n"
                                "            config: {file: /tmp/x}\n"
                                "    publish:\n"
                                "      - plugin_name: postgres\n";

static void test_full(void **state)
{
    (void)state;
    fr_manifest *m = parse_ok(full_yaml);
    assert_string_equal(m->name, "libvirt-1s");
    assert_int_equal(m->deadline_ms, 1); /* below 1ms rounds up */
    assert_int_equal(m->max_failures, -1);
    const fr_schedule *s = &m->schedule;
    assert_int_equal(s->type, FR_SCHED_WINDOWED);
    assert_string_equal(fr_sched_type_name(s->type), "windowed");
    assert_int_equal(s->interval_ms, 250);
    assert_true(s->has_start && s->has_stop);
    assert_int_equal(s->start_ns, t3339("2030-06-01T12:00:00.25Z"));
    assert_int_equal(s->stop_ns, t3339("2030-06-01T13:00:00Z"));
    assert_int_equal(s->count, 100);
    assert_int_equal(m->pos.stop.line, 8);
    assert_int_equal(m->pos.stop.col, 19);

    const fr_mf_map *mx = &m->collect.metrics;
    assert_int_equal(mx->n, 3);
    assert_string_equal(mx->v[1].key, "/intel/libvirt/*");
    assert_string_equal(fr_mf_map_get(&mx->v[1].value.map, "version")->text, "2");
    assert_int_equal(mx->v[2].value.type, FR_MF_MAP); /* null reads as {} */
    assert_int_equal(mx->v[2].value.map.n, 0);

    const fr_mf_map *cfg = &m->collect.config;
    assert_int_equal(cfg->n, 2);
    assert_string_equal(cfg->v[0].key, "/intel/libvirt");
    const fr_mf_map *lv = &cfg->v[0].value.map;
    struct {
        const char *key;
        fr_mf_type type;
        const char *text;
    } want[] = {
        {"uri", FR_MF_STRING, "test:///default"},
        {"timeout", FR_MF_INT, "7"},
        {"ratio", FR_MF_FLOAT, "1.5"},
        {"verbose", FR_MF_BOOL, "true"},
        {"quoted", FR_MF_STRING, "007"},
        {"nothing", FR_MF_NULL, ""},
        {"big", FR_MF_FLOAT, "1e+20"},
    };
    assert_int_equal(lv->n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < lv->n; i++) {
        assert_string_equal(lv->v[i].key, want[i].key);
        assert_int_equal(lv->v[i].value.type, want[i].type);
        assert_string_equal(lv->v[i].value.text, want[i].text);
    }
    assert_int_equal(lv->v[1].pos.line, 20);
    assert_int_equal(lv->v[1].value.pos.col, 18);
    /* yes is a string in YAML 1.2; fresco's bool parser still reads it. */
    assert_int_equal(cfg->v[1].value.map.v[0].value.type, FR_MF_STRING);

    /* Tag values are text as written. */
    const fr_mf_map *tags = &m->collect.tags.v[0].value.map;
    assert_string_equal(tags->v[0].value.text, "01");
    assert_int_equal(tags->v[0].value.type, FR_MF_STRING);

    assert_int_equal(m->collect.nprocess, 1);
    const fr_mf_node *tag = &m->collect.process[0];
    assert_int_equal(tag->plugin_version, 3);
    const fr_mf_value *nested = fr_mf_map_get(&tag->config, "nested");
    assert_int_equal(nested->type, FR_MF_MAP);
    assert_null(nested->text);
    const fr_mf_value *b = fr_mf_map_get(&nested->map, "b");
    assert_string_equal(fr_mf_map_get(&b->map, "c")->text, ".inf");
    assert_int_equal(tag->nprocess, 1);
    assert_string_equal(tag->process[0].publish[0].plugin_name, "kafka");
    assert_string_equal(tag->process[0].publish[0].path,
                        "workflow.collect.process[0].process[0].publish[0]");
    assert_string_equal(tag->publish[0].plugin_name, "file");
    assert_int_equal(m->collect.npublish, 1);
    assert_string_equal(m->collect.publish[0].plugin_name, "postgres");

    round_trip(m);
    fr_error err;
    assert_fr_ok(fr_manifest_validate(m, t3339("2030-06-01T12:59:59Z"), &err));
    assert_int_equal(fr_manifest_validate(m, t3339("2030-06-01T13:00:00Z"), &err), FR_EINVAL);
    assert_string_equal(err.where, "t.yaml:8:19");
    assert_string_equal(err.message, "schedule.stop_timestamp: 2030-06-01T13:00:00Z is in the past "
                                     "(now 2030-06-01T13:00:00Z)");
    fr_manifest_free(m);
}

static void test_json_and_flow(void **state)
{
    (void)state;
    fr_manifest *m =
        parse_ok("{\"version\": 1, \"name\": \"j\", \"deadline\": \"2s\",\n"
                 " \"schedule\": {\"type\": \"cron\", \"interval\": \"0 */5 * * * *\"},\n"
                 " \"max-failures\": 0,\n"
                 " \"workflow\": {\"collect\": {\"metrics\": {\"/a/b\": {}},\n"
                 "   \"config\": {\"/a\": {\"n\": 5, \"f\": 0.5, \"t\": true, "
                 "\"z\": null, \"s\": \"5\"}}}}}");
    assert_int_equal(m->deadline_ms, 2000);
    assert_int_equal(m->max_failures, 0);
    assert_int_equal(m->schedule.type, FR_SCHED_CRON);
    assert_string_equal(m->schedule.interval, "0 */5 * * * *");
    assert_int_equal(m->schedule.interval_ms, 0);
    assert_int_equal(fr_cron_next(&m->schedule.cron, t3339("2017-06-01T12:00:00Z")),
                     t3339("2017-06-01T12:05:00Z"));
    const fr_mf_map *c = &m->collect.config.v[0].value.map;
    assert_int_equal(c->v[0].value.type, FR_MF_INT);
    assert_int_equal(c->v[1].value.type, FR_MF_FLOAT);
    assert_string_equal(c->v[1].value.text, "0.5");
    assert_int_equal(c->v[2].value.type, FR_MF_BOOL);
    assert_int_equal(c->v[3].value.type, FR_MF_NULL);
    assert_int_equal(c->v[4].value.type, FR_MF_STRING);
    round_trip(m);
    fr_manifest_free(m);
}

/* Tab-indented JSON, CRLF line ends and a UTF-8 byte order mark. */
static void test_json_tabs_crlf(void **state)
{
    (void)state;
    fr_manifest *m =
        parse_ok("\xef\xbb\xbf{\r\n\t\"version\": 1,\r\n\t\"schedule\": {\r\n"
                 "\t\t\"type\": \"simple\",\r\n\t\t\"interval\": \"10s\"\r\n\t},\r\n"
                 "\t\"workflow\": {\"collect\": {\"metrics\": {\"/a\": {}}}}\r\n}\r\n");
    assert_int_equal(m->schedule.interval_ms, 10000);
    assert_int_equal(m->pos.interval.line, 5);
    assert_int_equal(m->pos.interval.col, 15);
    fr_manifest_free(m);
    m = parse_ok("version: 1\r\nschedule:\r\n  type: simple\r\n  interval: 1m\r\n"
                 "workflow:\r\n  collect:\r\n    metrics:\r\n      /a: {}\r\n");
    assert_int_equal(m->schedule.interval_ms, 60000);
    fr_manifest_free(m);
}

/* ---- $VAR ------------------------------------------------------------- */

static void test_env(void **state)
{
    (void)state;
    setenv("FR_T_IVL", "2s", 1);
    setenv("FR_T_N", "42", 1);
    setenv("FR_T_HOST", "node-7", 1);
    setenv("FR_T_EMPTY", "", 1);
    fr_manifest *m = parse_ok("version: 1\n"
                              "name: task-$FR_T_HOST\n"
                              "schedule: {type: simple, interval: $FR_T_IVL, count: $FR_T_N}\n"
                              "workflow:\n"
                              "  collect:\n"
                              "    metrics: {/a: {}}\n"
                              "    tags:\n"
                              "      /a:\n"
                              "        host: ${FR_T_HOST}.example\n"
                              "        cost: \"5$ or $$FR_T_HOST or $ 1 or $\"\n"
                              "        empty: \"[$FR_T_EMPTY]\"\n"
                              "        key$FR_T_N: x\n");
    assert_string_equal(m->name, "task-node-7");
    assert_int_equal(m->schedule.interval_ms, 2000);
    assert_string_equal(m->schedule.interval, "2s");
    assert_int_equal(m->schedule.count, 42);
    const fr_mf_map *t = &m->collect.tags.v[0].value.map;
    assert_string_equal(t->v[0].value.text, "node-7.example");
    assert_string_equal(t->v[1].value.text, "5$ or $FR_T_HOST or $ 1 or $");
    assert_string_equal(t->v[2].value.text, "[]");
    /* Keys are not expanded. */
    assert_string_equal(t->v[3].key, "key$FR_T_N");
    round_trip(m); /* unpack does not expand again: "$FR_T_HOST" stays */
    fr_manifest_free(m);

    unsetenv("FR_T_UNSET");
    parse_err("version: 1\nschedule: {type: simple, interval: $FR_T_UNSET}\n", FR_EINVAL,
              "t.yaml:2:36", "schedule.interval: variable 'FR_T_UNSET' is not set");
    parse_err("version: 1\nschedule:\n  type: simple\n  interval: \"${FR_T_UNSET}s\"\n", FR_EINVAL,
              "t.yaml:4:13", "schedule.interval: variable 'FR_T_UNSET' is not set");
    parse_err("version: 1\nname: a${FR_T_N\n", FR_EINVAL, "t.yaml:2:7",
              "name: '${' has no closing '}'");
    parse_err("version: 1\nname: a${9x}\n", FR_EINVAL, "t.yaml:2:7",
              "name: '${9x}' is not a variable name");
    parse_err("version: 1\nname: a${}\n", FR_EINVAL, NULL, "'${}' is not a variable name");
    /* After expansion an empty count is null, not an integer. */
    parse_err("version: 1\nschedule: {type: simple, interval: 1s, count: $FR_T_EMPTY}\n", FR_ETYPE,
              "t.yaml:2:47", "schedule.count: expected an integer, found null");
}

/* ---- errors ----------------------------------------------------------- */

#define HEAD "version: 1\nschedule: {type: simple, interval: 1s}\n"
#define WF   "workflow: {collect: {metrics: {/a: {}}}}\n"

static void test_errors_top(void **state)
{
    (void)state;
    parse_err("version: 1\nscheduel: {}\n", FR_EUNKNOWN, "t.yaml:2:1",
              "scheduel: unknown key (did you mean 'schedule'?)");
    parse_err("version: 1\nfoo: 1\n", FR_EUNKNOWN, "t.yaml:2:1",
              "foo: unknown key; expected one of version, name, deadline, schedule, "
              "max-failures, workflow");
    parse_err("version: 1\nversion: 1\n", FR_EDUP, "t.yaml:2:1",
              "version: given twice (first at line 1, column 1)");
    parse_err(HEAD WF "schedule: {}\n", FR_EDUP, "t.yaml:4:1", "schedule: given twice");
    parse_err("schedule: {type: simple, interval: 1s}\n" WF, FR_EMISSING, "t.yaml:1:1",
              "version: missing; write version: 1");
    parse_err("version: 2\n", FR_EINVAL, "t.yaml:1:10", "version: must be 1, got 2");
    parse_err("version: \"1\"\n", FR_ETYPE, "t.yaml:1:10",
              "version: expected an integer, found a string '1'");
    parse_err("version: [1]\n", FR_ETYPE, "t.yaml:1:10",
              "version: expected an integer, found a list");
    parse_err("version: 1\n" WF, FR_EMISSING, "t.yaml:1:1", "schedule: missing");
    parse_err(HEAD, FR_EMISSING, "t.yaml:1:1", "workflow: missing");
    parse_err(HEAD WF "max-failures: -2\n", FR_EINVAL, "t.yaml:4:15",
              "max-failures: must be -1 (never disable) or >= 0, got -2");
    parse_err(HEAD WF "max-failures: lots\n", FR_ETYPE, "t.yaml:4:15",
              "max-failures: expected an integer, found a string 'lots'");
    parse_err(HEAD WF "max-failures: 99999999999999999999\n", FR_ETYPE, NULL,
              "max-failures: expected an integer, found a number");
    parse_err(HEAD WF "deadline: 0s\n", FR_EINVAL, "t.yaml:4:11",
              "deadline: must be > 0, got '0s'");
    parse_err(HEAD WF "deadline: soon\n", FR_EINVAL, "t.yaml:4:11",
              "deadline: not a duration: 'soon'");
    parse_err(HEAD WF "name: ''\n", FR_EINVAL, "t.yaml:4:7", "name: must not be empty");
    parse_err(HEAD WF "name: {a: 1}\n", FR_ETYPE, "t.yaml:4:7",
              "name: expected a string, found a mapping");
    parse_err("- 1\n", FR_ETYPE, "t.yaml:1:1", "a manifest is a mapping");
    parse_err("~\n", FR_ETYPE, "t.yaml:1:1", "found nothing");
    parse_err("", FR_EMISSING, "t.yaml:1:1", "the manifest is empty");
    parse_err("# only a comment\n", FR_EMISSING, NULL, "the manifest is empty");
    parse_err("version: 1\n---\nversion: 1\n", FR_EINVAL, "t.yaml:2:1", "one YAML document");
    parse_err("version: 1\n  bad: indent\n", FR_ECONFIG, "t.yaml:2:6", "invalid YAML");
    parse_err("{\"version\": 1,\n \"schedule\": {\"type\": \"simple\" \"interval\": \"1s\"}}\n",
              FR_ECONFIG, NULL, "invalid YAML");
    parse_err("a: &x 1\nb: *x\n", FR_EINVAL, "t.yaml:2:4", "b: aliases (*name) are not supported");
    parse_err("version: !foo 1\n", FR_ETYPE, "t.yaml:1:10", "version: unsupported tag '!foo'");
    parse_err("version: !!int x\n", FR_ETYPE, "t.yaml:1:10",
              "version: tagged as an integer but 'x' is not");
    parse_err("version: !!str 1\n", FR_ETYPE, "t.yaml:1:10",
              "version: expected an integer, found a string '1'");
    parse_err("? [a]\n: 1\n", FR_ETYPE, "t.yaml:1:3", "keys must be strings");
    parse_err("version: \"a\\0b\"\n", FR_EINVAL, "t.yaml:1:10",
              "version: the value contains a NUL");
}

static void test_errors_schedule(void **state)
{
    (void)state;
    parse_err("version: 1\nschedule:\n  type: simple\n" WF, FR_EMISSING, "t.yaml:3:3",
              "schedule.interval: missing; give a duration, e.g. interval: 1s");
    parse_err("version: 1\nschedule:\n  type: cron\n" WF, FR_EMISSING, "t.yaml:3:3",
              "schedule.interval: missing; give a cron expression with seconds");
    parse_err("version: 1\nschedule:\n  interval: 1s\n" WF, FR_EMISSING, "t.yaml:3:3",
              "schedule.type: missing; one of simple, windowed, cron");
    parse_err("version: 1\nschedule:\n  type: simple\n  interval: 0s\n" WF, FR_EINVAL,
              "t.yaml:4:13", "schedule.interval: must be > 0, got '0s'");
    parse_err("version: 1\nschedule:\n  type: simple\n  interval: -1s\n", FR_EINVAL, "t.yaml:4:13",
              "schedule.interval: must be > 0, got '-1s'");
    parse_err("version: 1\nschedule:\n  type: simple\n  interval: 0\n", FR_EINVAL, "t.yaml:4:13",
              "schedule.interval: must be > 0, got '0'");
    parse_err("version: 1\nschedule:\n  type: simple\n  interval: 10\n", FR_EINVAL, "t.yaml:4:13",
              "schedule.interval: not a duration: '10'");
    parse_err("version: 1\nschedule:\n  type: simple\n  interval: [1s]\n", FR_ETYPE, "t.yaml:4:13",
              "schedule.interval: expected a string, found a list");
    parse_err("version: 1\nschedule: {type: sometimes, interval: 1s}\n", FR_EINVAL, "t.yaml:2:18",
              "schedule.type: unknown type 'sometimes'; one of simple, windowed, cron");
    parse_err("version: 1\nschedule: {type: streaming, interval: 1s}\n", FR_EINVAL, NULL,
              "'streaming' schedules are not supported");
    parse_err("version: 1\nschedule: {type: simple, interval: 1s, every: 2}\n", FR_EUNKNOWN,
              "t.yaml:2:40",
              "schedule.every: unknown key; expected one of type, interval, "
              "start_timestamp, stop_timestamp, count");
    parse_err("version: 1\nschedule: {type: simple, intervall: 1s}\n", FR_EUNKNOWN, NULL,
              "schedule.intervall: unknown key (did you mean 'interval'?)");
    parse_err("version: 1\nschedule: {type: simple, interval: 1s, count: -1}\n", FR_EINVAL,
              "t.yaml:2:47", "schedule.count: must be >= 0 (0: no limit), got -1");
    parse_err("version: 1\nschedule: {type: simple, interval: 1s, count: 1.5}\n", FR_ETYPE,
              "t.yaml:2:47", "schedule.count: expected an integer, found a number '1.5'");
    parse_err("version: 1\nschedule:\n  type: windowed\n  interval: 1s\n"
              "  start_timestamp: 2030-01-01T00:00:00Z\n"
              "  stop_timestamp: 2029-12-31T23:00:00+02:00\n",
              FR_EINVAL, "t.yaml:6:19",
              "schedule.stop_timestamp: 2029-12-31T21:00:00Z is not after the start "
              "2030-01-01T00:00:00Z");
    parse_err("version: 1\nschedule:\n  type: windowed\n  interval: 1s\n"
              "  start_timestamp: 2030-01-01 00:00:00\n",
              FR_EINVAL, "t.yaml:5:20",
              "schedule.start_timestamp: not an RFC 3339 time: '2030-01-01 00:00:00'");
    parse_err("version: 1\nschedule:\n  type: windowed\n  interval: 1s\n"
              "  stop_timestamp: 2030-02-30T00:00:00Z\n",
              FR_EINVAL, "t.yaml:5:19", "not an RFC 3339 time");
    parse_err("version: 1\nschedule:\n  type: windowed\n  interval: 1s\n"
              "  stop_timestamp: 2300-01-01T00:00:00Z\n",
              FR_EINVAL, "t.yaml:5:19", "is outside the years 1678 to 2262");
    parse_err("version: 1\nschedule:\n  type: cron\n  interval: 0 0 25 * * *\n", FR_EINVAL,
              "t.yaml:4:13",
              "schedule.interval: not a cron expression: field 3 (hour): 25 is out of range 0-23");
    parse_err("version: 1\nschedule:\n  type: cron\n  interval: '*/5 * * * *'\n", FR_EINVAL,
              "t.yaml:4:13", "expected 6 fields");
    parse_err("version: 1\nschedule:\n  type: cron\n  interval: 1s\n", FR_EINVAL, "t.yaml:4:13",
              "schedule.interval: not a cron expression: expected 6 fields");
}

static void test_errors_workflow(void **state)
{
    (void)state;
    parse_err(HEAD "workflow: {}\n", FR_EMISSING, "t.yaml:3:11", "workflow.collect: missing");
    parse_err(HEAD "workflow: {collect: {}}\n", FR_EMISSING, "t.yaml:3:21",
              "workflow.collect.metrics: missing");
    parse_err(HEAD "workflow: {collect: {metrics: {}}}\n", FR_EMISSING, "t.yaml:3:31",
              "workflow.collect.metrics: no metrics");
    parse_err(HEAD "workflow: {collect: {metrics: [/a]}}\n", FR_ETYPE, "t.yaml:3:31",
              "workflow.collect.metrics: expected a mapping of namespaces");
    parse_err(HEAD "workflow: {collect: {metrics: {/a: 1}}}\n", FR_ETYPE, "t.yaml:3:36",
              "workflow.collect.metrics./a: expected {} or a mapping, found '1'");
    parse_err(HEAD "workflow:\n  collect:\n    metrics:\n      /intel/x*/y: {}\n", FR_EINVAL,
              "t.yaml:6:7",
              "workflow.collect.metrics./intel/x*/y: not a namespace query: element 2 'x*' "
              "mixes '*' with other characters");
    parse_err(HEAD "workflow:\n  collect:\n    metrics:\n      /a/(b;c: {}\n", FR_EINVAL,
              "t.yaml:6:7", "element 2 '(b;c' has no closing parenthesis");
    parse_err(HEAD "workflow:\n  collect:\n    metrics:\n      /a: {}\n      /a: {}\n", FR_EDUP,
              "t.yaml:7:7", "workflow.collect.metrics./a: given twice (first at line 6, column 7)");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    metric: {}\n", FR_EUNKNOWN,
              "t.yaml:6:5", "workflow.collect.metric: unknown key (did you mean 'metrics'?)");
    parse_err(HEAD
              "workflow:\n  collect:\n    metrics: {/a: {}}\n    config:\n      /a/*: {x: 1}\n",
              FR_EINVAL, "t.yaml:7:7",
              "workflow.collect.config./a/*: a namespace prefix names elements exactly");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    config:\n      a: {x: 1}\n",
              FR_EINVAL, "t.yaml:7:7", "a namespace prefix starts with '/'");
    parse_err(HEAD
              "workflow:\n  collect:\n    metrics: {/a: {}}\n    config:\n      /a: {x: {y: 1}}\n",
              FR_ETYPE, "t.yaml:7:15",
              "workflow.collect.config./a.x: expected a scalar, found a mapping");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    config:\n      /a: 5\n",
              FR_ETYPE, "t.yaml:7:11",
              "workflow.collect.config./a: expected a mapping of config keys");
    parse_err(
        HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    tags:\n      /a: {rack: [1]}\n",
        FR_ETYPE, "t.yaml:7:18", "workflow.collect.tags./a.rack: expected a string, found a list");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    tags:\n      /a: {rack: }\n",
              FR_ETYPE, NULL, "workflow.collect.tags./a.rack: expected a string, found null");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    publish: {plugin_name: f}\n",
              FR_ETYPE, "t.yaml:6:14", "workflow.collect.publish: expected a list of plugins");
    parse_err(HEAD
              "workflow:\n  collect:\n    metrics: {/a: {}}\n    publish:\n      - config: {}\n",
              FR_EMISSING, "t.yaml:7:9", "workflow.collect.publish[0].plugin_name: missing");
    parse_err(
        HEAD
        "workflow:\n  collect:\n    metrics: {/a: {}}\n    publish:\n      - plugin_name: \"\"\n",
        FR_EINVAL, "t.yaml:7:22", "workflow.collect.publish[0].plugin_name: must not be empty");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    publish:\n"
                   "      - plugin_name: file\n        publish: []\n",
              FR_EINVAL, "t.yaml:8:9",
              "workflow.collect.publish[0].publish: a publish node ends its chain: it has no "
              "publish (plugin 'file')");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    process:\n"
                   "      - plugin_name: tag\n        plugin_version: -1\n",
              FR_EINVAL, "t.yaml:8:25", "workflow.collect.process[0].plugin_version: must be >= 0");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    process:\n"
                   "      - plugin_name: tag\n        targt: x\n",
              FR_EUNKNOWN, "t.yaml:8:9", "workflow.collect.process[0].targt: unknown key");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    process:\n"
                   "      - plugin_name: tag\n        config:\n          list: [1, 2]\n",
              FR_ETYPE, "t.yaml:9:17",
              "workflow.collect.process[0].config.list: expected a scalar or a mapping, found a "
              "list");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    process:\n"
                   "      - plugin_name: tag\n        config:\n          a: 1\n          a: 2\n",
              FR_EDUP, "t.yaml:10:11", "workflow.collect.process[0].config.a: given twice");
    parse_err(HEAD "workflow:\n  collect:\n    metrics: {/a: {}}\n    process:\n      - 5\n",
              FR_ETYPE, "t.yaml:7:9",
              "workflow.collect.process[0]: expected a mapping with plugin_name");
}

static void test_errors_limits(void **state)
{
    (void)state;
    /* Nesting: 24 containers are fine, 25 are not. */
    char buf[4096];
    size_t pos = 0;
    pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos,
                            HEAD "workflow: {collect: {metrics: {/a: {}}, process: [{plugin_name: "
                                 "p, config: ");
    /* root, workflow, collect, process, node: 5; config and below: 19. */
    for (int i = 0; i < 19; i++) {
        pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "{a: ");
    }
    pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "1");
    for (int i = 0; i < 19; i++) {
        pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "}");
    }
    snprintf(buf + pos, sizeof(buf) - pos, "}]}}\n");
    fr_manifest *m = parse_ok(buf);
    round_trip(m);
    fr_manifest_free(m);
    pos = 0;
    pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos,
                            HEAD "workflow: {collect: {metrics: {/a: {}}, process: [{plugin_name: "
                                 "p, config: ");
    for (int i = 0; i < 20; i++) {
        pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "{a: ");
    }
    pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "1");
    for (int i = 0; i < 20; i++) {
        pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "}");
    }
    snprintf(buf + pos, sizeof(buf) - pos, "}]}}\n");
    parse_err(buf, FR_EDEPTH, NULL, "nested deeper than 24 levels");

    /* Too much text. */
    fr_manifest *out = NULL;
    fr_error err;
    char *big = calloc(1, FR_MANIFEST_MAX_BYTES + 2);
    memset(big, ' ', FR_MANIFEST_MAX_BYTES + 1);
    assert_int_equal(fr_manifest_parse(big, FR_MANIFEST_MAX_BYTES + 1, "big.yaml", &out, &err),
                     FR_ETOOBIG);
    assert_string_equal(err.where, "big.yaml");
    free(big);
    /* A long value. */
    size_t n = FR_MAX_STRING + 64;
    char *lng = malloc(n + 32);
    int k = snprintf(lng, n + 32, "version: 1\nname: ");
    memset(lng + k, 'x', n - (size_t)k - 1);
    lng[n - 1] = '\n';
    lng[n] = '\0';
    parse_err(lng, FR_ETOOBIG, "t.yaml:2:7", "name: the value is longer than 65536 bytes");
    free(lng);

    assert_int_equal(fr_manifest_parse(NULL, 3, NULL, &out, &err), FR_EINVAL);
    assert_int_equal(fr_manifest_parse("", 0, NULL, NULL, &err), FR_EINVAL);
    /* No source: errors cite "<memory>". */
    assert_int_equal(fr_manifest_parse("version: 3\n", 11, NULL, &out, &err), FR_EINVAL);
    assert_string_equal(err.where, "<memory>:1:10");
}

/* Every prefix of a good manifest either parses or fails cleanly; under
 * the sanitizers this walks most error paths for leaks. */
static void test_every_prefix(void **state)
{
    (void)state;
    size_t len = strlen(full_yaml);
    for (size_t i = 0; i <= len; i++) {
        fr_manifest *m = NULL;
        fr_error err;
        int rv = fr_manifest_parse(full_yaml, i, "p.yaml", &m, &err);
        if (rv == 0) {
            assert_non_null(m);
            round_trip(m);
            fr_manifest_free(m);
        } else {
            assert_null(m);
            assert_int_equal(err.code, rv);
            assert_true(err.message[0] != '\0');
        }
    }
}

static void test_load_file(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("mf");
    char path[512];
    snprintf(path, sizeof(path), "%s/task.yaml", dir);
    const char *text = HEAD WF "deadline: 0s\n";
    assert_int_equal(tst_write_file(path, text, strlen(text)), 0);
    fr_manifest *m = NULL;
    fr_error err;
    assert_int_equal(fr_manifest_load_file(path, &m, &err), FR_EINVAL);
    char want[600];
    snprintf(want, sizeof(want), "%s:4:11", path);
    assert_string_equal(err.where, want);
    text = HEAD WF;
    assert_int_equal(tst_write_file(path, text, strlen(text)), 0);
    assert_fr_ok(fr_manifest_load_file(path, &m, &err));
    assert_string_equal(m->source, path);

    /* The helper for errors found later, e.g. a metric no plugin offers. */
    const fr_mf_entry *e = &m->collect.metrics.v[0];
    assert_int_equal(fr_manifest_error(m, &err, FR_ENOTFOUND, e->pos, "workflow.collect.metrics./a",
                                       "no plugin offers %s", e->key),
                     FR_ENOTFOUND);
    snprintf(want, sizeof(want), "%s:3:32", path);
    assert_string_equal(err.where, want);
    assert_string_equal(err.message, "workflow.collect.metrics./a: no plugin offers /a");
    fr_manifest_free(m);

    snprintf(path, sizeof(path), "%s/none.yaml", dir);
    assert_int_equal(fr_manifest_load_file(path, &m, &err), FR_EIO);
    assert_null(m);
    assert_int_equal(fr_manifest_load_file(dir, &m, &err), FR_EIO);
    tst_rmtree(dir);
    free(dir);
}

/* ---- msgpack ---------------------------------------------------------- */

/* Decodes a msgpack map built by fill and expects unpack to fail. */
static void unpack_err(void (*fill)(msgpack_packer *), int code, const char *where, const char *msg)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fill(&pk);
    fr_doc doc;
    fr_error err;
    assert_fr_ok(fr_doc_decode(sb.data, sb.size, &doc, &err));
    fr_manifest *m = NULL;
    int rv = fr_manifest_unpack(doc.root, &m, &err);
    assert_null(m);
    if (rv != code) {
        fail_msg("rv %d want %d: %s: %s", rv, code, err.where, err.message);
    }
    assert_string_equal(err.where, where);
    if (strstr(err.message, msg) == NULL) {
        fail_msg("message '%s' lacks '%s'", err.message, msg);
    }
    fr_doc_free(&doc);
    msgpack_sbuffer_destroy(&sb);
}

static void pk_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void fill_version_str(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_s(pk, "version");
    pk_s(pk, "1");
}

static void fill_bin(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_s(pk, "version");
    msgpack_pack_int(pk, 1);
    pk_s(pk, "name");
    msgpack_pack_bin(pk, 2);
    msgpack_pack_bin_body(pk, "ab", 2);
}

static void fill_interval(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_s(pk, "version");
    msgpack_pack_int(pk, 1);
    pk_s(pk, "schedule");
    msgpack_pack_map(pk, 2);
    pk_s(pk, "type");
    pk_s(pk, "simple");
    pk_s(pk, "interval");
    pk_s(pk, "0ms");
}

static void fill_array(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 1);
}

static void test_unpack_errors(void **state)
{
    (void)state;
    unpack_err(fill_version_str, FR_ETYPE, "version",
               "version: expected an integer, found a string");
    unpack_err(fill_bin, FR_ETYPE, "name", "name: binary data has no place in a manifest");
    unpack_err(fill_interval, FR_EINVAL, "schedule.interval",
               "schedule.interval: must be > 0, got '0ms'");
    unpack_err(fill_array, FR_ETYPE, "", "a manifest is a mapping");
    fr_manifest *m = NULL;
    fr_error err;
    assert_int_equal(fr_manifest_unpack(NULL, &m, &err), FR_EINVAL);
}

/* The packed form is a snap manifest itself: its JSON reads back. */
static void test_pack_is_a_manifest(void **state)
{
    (void)state;
    fr_manifest *m = parse_ok("version: 1\n"
                              "deadline: 1m30s\n"
                              "schedule:\n"
                              "  type: windowed\n"
                              "  interval: 1500us\n"
                              "  start_timestamp: 2030-06-01T14:00:00.25+02:00\n"
                              "workflow:\n"
                              "  collect:\n"
                              "    metrics: {/a/*: {}}\n"
                              "    config: {/a: {n: 1, f: 2.5, b: false, s: x, z: null}}\n");
    msgpack_sbuffer sb;
    fr_doc doc;
    pack_doc(m, &doc, &sb);
    const fr_node *sched = fr_node_get(doc.root, "schedule");
    const char *s = NULL;
    assert_fr_ok(fr_node_get_str(sched, "start_timestamp", &s));
    assert_string_equal(s, "2030-06-01T12:00:00.25Z");
    assert_fr_ok(fr_node_get_str(sched, "interval", &s));
    assert_string_equal(s, "1500us"); /* as written; it reads as 2ms */
    assert_int_equal(m->schedule.interval_ms, 2);
    assert_fr_ok(fr_node_get_str(doc.root, "deadline", &s));
    assert_string_equal(s, "1m30s");
    int64_t mf = 0;
    assert_fr_ok(fr_node_get_i64(doc.root, "max-failures", &mf));
    assert_int_equal(mf, 10);

    char *json = NULL;
    size_t jlen = 0;
    FILE *f = open_memstream(&json, &jlen);
    assert_fr_ok(fr_node_write_json(doc.root, f));
    fclose(f);
    fr_manifest *j = NULL;
    fr_error err;
    int rv = fr_manifest_parse(json, jlen, "packed.json", &j, &err);
    if (rv != 0) {
        fail_msg("%s: %s\n%s", err.where, err.message, json);
    }
    manifest_eq(m, j);
    fr_manifest_free(j);
    free(json);
    fr_doc_free(&doc);
    msgpack_sbuffer_destroy(&sb);
    fr_manifest_free(m);
}

/* ---- RFC 3339 --------------------------------------------------------- */

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t ns;
    assert_fr_ok(fr_parse_rfc3339("1970-01-01T00:00:00Z", &ns));
    assert_int_equal(ns, 0);
    assert_fr_ok(fr_parse_rfc3339("2017-06-01T12:00:00Z", &ns));
    assert_int_equal(ns, 1496318400ll * 1000000000);
    assert_fr_ok(fr_parse_rfc3339("2017-06-01T14:30:00+02:30", &ns));
    assert_int_equal(ns, 1496318400ll * 1000000000);
    assert_fr_ok(fr_parse_rfc3339("2017-06-01t07:00:00.5-05:00", &ns));
    assert_int_equal(ns, 1496318400ll * 1000000000 + 500000000);
    assert_fr_ok(fr_parse_rfc3339("2017-06-01T12:00:00.123456789123z", &ns));
    assert_int_equal(ns, 1496318400ll * 1000000000 + 123456789);
    assert_fr_ok(fr_parse_rfc3339("2016-02-29T00:00:00Z", &ns));
    assert_fr_ok(fr_parse_rfc3339("2000-02-29T00:00:00Z", &ns));
    assert_fr_ok(fr_parse_rfc3339("1969-12-31T23:59:59.9Z", &ns));
    assert_int_equal(ns, -100000000);
    assert_fr_ok(fr_parse_rfc3339("2016-12-31T23:59:60Z", &ns));
    assert_int_equal(ns, t3339("2017-01-01T00:00:00Z"));
    assert_fr_ok(fr_parse_rfc3339("2262-04-11T23:47:16.854775807Z", &ns));
    assert_int_equal(ns, INT64_MAX);
    assert_int_equal(fr_parse_rfc3339("2262-04-11T23:47:16.854775808Z", &ns), FR_ETOOBIG);
    assert_int_equal(fr_parse_rfc3339("1600-01-01T00:00:00Z", &ns), FR_ETOOBIG);

    static const char *const bad[] = {
        "",
        "2017-06-01",
        "2017-06-01T12:00:00",
        "2017-06-01 12:00:00Z",
        "2017-6-01T12:00:00Z",
        "2017-13-01T12:00:00Z",
        "2017-00-01T12:00:00Z",
        "2017-02-29T12:00:00Z",
        "1900-02-29T12:00:00Z",
        "2017-06-31T12:00:00Z",
        "2017-06-01T24:00:00Z",
        "2017-06-01T12:60:00Z",
        "2017-06-01T12:00:61Z",
        "2017-06-01T12:00:00.Z",
        "2017-06-01T12:00:00+2:00",
        "2017-06-01T12:00:00+24:00",
        "2017-06-01T12:00:00+02:60",
        "2017-06-01T12:00:00+0200",
        "2017-06-01T12:00:00Zx",
        "2017-06-01T12:00:00 Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fr_parse_rfc3339(bad[i], &ns) != FR_EINVAL) {
            fail_msg("accepted '%s'", bad[i]);
        }
    }

    char buf[40];
    assert_fr_ok(fr_format_rfc3339(0, buf, sizeof(buf)));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    assert_fr_ok(fr_format_rfc3339(-100000000, buf, sizeof(buf)));
    assert_string_equal(buf, "1969-12-31T23:59:59.9Z");
    assert_fr_ok(fr_format_rfc3339(INT64_MAX, buf, sizeof(buf)));
    assert_string_equal(buf, "2262-04-11T23:47:16.854775807Z");
    assert_fr_ok(fr_format_rfc3339(INT64_MIN, buf, sizeof(buf)));
    assert_string_equal(buf, "1677-09-21T00:12:43.145224192Z");
    assert_int_equal(fr_parse_rfc3339(buf, &ns), 0);
    assert_int_equal(ns, INT64_MIN);
    assert_int_equal(fr_format_rfc3339(0, buf, 10), FR_ETOOBIG);
    /* Format and parse agree across many instants. */
    for (int64_t t = -5000000000000000000ll; t < 9000000000000000000ll; t += 123456789123456789ll) {
        assert_fr_ok(fr_format_rfc3339(t, buf, sizeof(buf)));
        assert_fr_ok(fr_parse_rfc3339(buf, &ns));
        assert_int_equal(ns, t);
    }
}

/* ---- cron ------------------------------------------------------------- */

static fr_cron cron_ok(const char *expr)
{
    fr_cron c;
    fr_error err;
    if (fr_cron_parse(expr, &c, &err) != 0) {
        fail_msg("'%s': %s", expr, err.message);
    }
    return c;
}

static void cron_bad(const char *expr, const char *msg)
{
    fr_cron c;
    fr_error err;
    fr_error_clear(&err);
    if (fr_cron_parse(expr, &c, &err) != FR_EINVAL) {
        fail_msg("accepted '%s'", expr);
    }
    if (strstr(err.message, msg) == NULL) {
        fail_msg("'%s': message '%s' lacks '%s'", expr, err.message, msg);
    }
}

/* The next n fire times after `after` match want[]. */
static void cron_seq(const char *expr, const char *after, const char *const *want, size_t n)
{
    fr_cron c = cron_ok(expr);
    int64_t t = t3339(after);
    char got[40];
    for (size_t i = 0; i < n; i++) {
        t = fr_cron_next(&c, t);
        if (t < 0) {
            fail_msg("'%s': none after step %zu", expr, i);
        }
        fr_format_rfc3339(t, got, sizeof(got));
        if (strcmp(got, want[i]) != 0) {
            fail_msg("'%s' step %zu: %s, want %s", expr, i, got, want[i]);
        }
    }
}

static void test_cron(void **state)
{
    (void)state;
    static const char *const every5m[] = {"2017-06-01T12:05:00Z", "2017-06-01T12:10:00Z"};
    cron_seq("0 */5 * * * *", "2017-06-01T12:00:00Z", every5m, 2);
    /* Strictly after, whole seconds. */
    static const char *const sec[] = {"2017-06-01T12:00:01Z", "2017-06-01T12:00:02Z"};
    cron_seq("* * * * * *", "2017-06-01T12:00:00.5Z", sec, 2);
    static const char *const q[] = {"2017-06-01T12:00:15Z", "2017-06-01T12:00:30Z",
                                    "2017-06-01T12:00:45Z", "2017-06-01T12:01:00Z"};
    cron_seq("*/15 * * * * ?", "2017-06-01T12:00:00Z", q, 4);
    /* Weekdays at 9:30 in the first quarter; 2017-03-31 is a Friday. */
    static const char *const wd[] = {"2017-03-31T09:30:00Z", "2018-01-01T09:30:00Z",
                                     "2018-01-02T09:30:00Z"};
    cron_seq("0 30 9 * JAN-MAR MON-FRI", "2017-03-30T10:00:00Z", wd, 3);
    cron_seq("0 30 9 ? jan-mar mon-fri", "2017-03-30T10:00:00Z", wd, 3);
    /* Both day fields restricted: either fires (the 13th, or a Friday). */
    static const char *const orr[] = {"2017-10-06T00:00:00Z", "2017-10-13T00:00:00Z",
                                      "2017-10-20T00:00:00Z"};
    cron_seq("0 0 0 13 * 5", "2017-10-01T00:00:00Z", orr, 3);
    /* A step makes a field restricted: the 1st, 3rd... or a Sunday. */
    static const char *const stp[] = {"2017-10-01T00:00:00Z", "2017-10-03T00:00:00Z"};
    cron_seq("0 0 0 */2 * 0", "2017-09-30T12:00:00Z", stp, 2);
    /* 29 February: 2100 is not a leap year. */
    static const char *const leap[] = {"2096-02-29T00:00:00Z", "2104-02-29T00:00:00Z"};
    cron_seq("0 0 0 29 2 *", "2095-01-01T00:00:00Z", leap, 2);
    /* Lists, ranges, a/n, names, 7 for Sunday, rolling over a year. */
    static const char *const mix[] = {"2017-12-31T23:45:10Z", "2017-12-31T23:45:40Z",
                                      "2017-12-31T23:59:10Z", "2017-12-31T23:59:40Z",
                                      "2018-01-07T22:00:10Z"};
    cron_seq("10/30 0,45-59/14 22-23 * * 7", "2017-12-31T23:30:00Z", mix, 5);
    static const char *const hourly[] = {"2017-06-01T13:00:00Z", "2017-06-01T14:00:00Z"};
    cron_seq("@hourly", "2017-06-01T12:00:00Z", hourly, 2);
    static const char *const yearly[] = {"2018-01-01T00:00:00Z"};
    cron_seq("@yearly", "2017-06-01T12:00:00Z", yearly, 1);
    cron_seq("@annually", "2017-06-01T12:00:00Z", yearly, 1);
    static const char *const weekly[] = {"2017-06-04T00:00:00Z"};
    cron_seq("@weekly", "2017-06-01T12:00:00Z", weekly, 1);
    static const char *const every[] = {"2017-06-01T12:01:30Z", "2017-06-01T12:03:00Z"};
    cron_seq("@every 90s", "2017-06-01T12:00:00.7Z", every, 2);
    fr_cron c = cron_ok("@every 10ms");
    assert_int_equal(c.every_s, 1);
    c = cron_ok("  0 0 12 * * *  ");
    assert_true(c.dom_any && c.dow_any);
    c = cron_ok("0 0 12 * * sun,SAT");
    assert_int_equal(c.dow, 0x41);
    assert_false(c.dow_any);
    /* Near the end of int64 time there is no next. */
    c = cron_ok("0 0 0 1 1 *");
    assert_int_equal(fr_cron_next(&c, t3339("2262-01-02T00:00:00Z")), -1);
    assert_int_equal(fr_cron_next(NULL, 0), -1);

    cron_bad("", "expected 6 fields");
    cron_bad("* * * * *", "found 5: put the seconds first");
    cron_bad("* * * * * * *", "found 7");
    cron_bad("60 * * * * *", "field 1 (second): 60 is out of range 0-59");
    cron_bad("* 60 * * * *", "field 2 (minute): 60 is out of range 0-59");
    cron_bad("* * 24 * * *", "field 3 (hour): 24 is out of range 0-23");
    cron_bad("* * * 0 * *", "field 4 (day-of-month): 0 is out of range 1-31");
    cron_bad("* * * 32 * *", "field 4 (day-of-month): 32 is out of range 1-31");
    cron_bad("* * * * 13 *", "field 5 (month): 13 is out of range 1-12");
    cron_bad("* * * * FOO *", "field 5 (month): 'FOO' is not a number or a name (JAN-DEC)");
    cron_bad("* * * * * 8", "field 6 (day-of-week): 8 is out of range 0-7");
    cron_bad("* * * * * MONDAY", "'MONDAY' is not a number or a name (SUN-SAT)");
    cron_bad("* * JAN * * *", "field 3 (hour): 'JAN' is not a number");
    cron_bad("5-1 * * * * *", "the range 5-1 goes backwards");
    cron_bad("*/0 * * * * *", "a step of 0 never advances");
    cron_bad("*/x * * * * *", "the step after '/' must be a number");
    cron_bad("1/2/3 * * * * *", "a step is written");
    cron_bad("1, * * * * *", "a value is missing");
    cron_bad("1-2-3 * * * * *", "'2-3' is not a number");
    cron_bad("* * * L * *", "'L' is not a number");
    cron_bad("0 0 0 30 2 *", "never fires");
    cron_bad("0 0 0 31 4,6,9,11 *", "never fires");
    cron_bad("@often", "unknown descriptor '@often'");
    cron_bad("@every", "unknown descriptor");
    cron_bad("@every 0s", "@every takes a positive duration");
    assert_int_equal(fr_cron_parse(NULL, &c, NULL), FR_EINVAL);
    /* 30 February never fires, but with a day of the week it does. */
    cron_ok("0 0 0 30 2 MON");
    cron_ok("0 0 0 29 2 *");
}

/* A processor's or publisher's refusal names a path; the collector turns
 * it into the line and column the user wrote. */
static void test_locate_node_paths(void **state)
{
    fr_manifest *m = parse_ok("version: 1\n"
                              "schedule: {type: simple, interval: 1s}\n"
                              "workflow:\n"
                              "  collect:\n"
                              "    metrics: {/a/b: {}}\n"
                              "    publish:\n"
                              "      - plugin_name: file\n"
                              "        config: {file: /tmp/x}\n"
                              "    process:\n"
                              "      - plugin_name: tag\n"
                              "        config:\n"
                              "          tags: \"a:b\"\n"
                              "          rdkafka: {linger.ms: 5}\n"
                              "        process:\n"
                              "          - plugin_name: anomaly\n"
                              "            publish:\n"
                              "              - plugin_name: kafka\n"
                              "                config: {brokers: x}\n");
    fr_mf_pos pos;
    assert_fr_ok(fr_manifest_pos_of(m, "workflow.collect.publish[0]", &pos));
    assert_int_equal(pos.line, 7);
    assert_fr_ok(fr_manifest_pos_of(m, "workflow.collect.publish[0].config.file", &pos));
    assert_int_equal(pos.line, 8);
    assert_fr_ok(fr_manifest_pos_of(m, "workflow.collect.process[0].config.tags", &pos));
    assert_int_equal(pos.line, 12);
    assert_int_equal(pos.col, 11);
    /* a dotted key inside a map */
    assert_fr_ok(
        fr_manifest_pos_of(m, "workflow.collect.process[0].config.rdkafka.linger.ms", &pos));
    assert_int_equal(pos.line, 13);
    assert_true(pos.col > 11);
    assert_fr_ok(fr_manifest_pos_of(
        m, "workflow.collect.process[0].process[0].publish[0].config.brokers", &pos));
    assert_int_equal(pos.line, 18);
    /* an unknown key stops at its node */
    assert_fr_ok(fr_manifest_pos_of(m, "workflow.collect.process[0].config.nope", &pos));
    assert_int_equal(pos.line, 10);
    assert_int_equal(fr_manifest_pos_of(m, "workflow.collect.process[3]", &pos), FR_ENOTFOUND);
    assert_int_equal(fr_manifest_pos_of(m, "workflow.collect.publish[0].process[0]", &pos),
                     FR_ENOTFOUND);
    assert_int_equal(fr_manifest_pos_of(m, "schedule.interval", &pos), FR_ENOTFOUND);

    fr_error err;
    fr_error_set(&err, FR_ECONFIG, "workflow.collect.process[0].config.tags",
                 "tag: pair 1 'a' has no ':'");
    assert_int_equal(fr_manifest_locate(m, &err), FR_ECONFIG);
    assert_string_equal(err.where, "t.yaml:12:11");
    assert_string_equal(err.message,
                        "workflow.collect.process[0].config.tags: tag: pair 1 'a' has no ':'");
    fr_error_set(&err, FR_EINVAL, "elsewhere", "x");
    fr_manifest_locate(m, &err);
    assert_string_equal(err.where, "elsewhere");
    fr_manifest_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_libvirt_yaml),
        cmocka_unit_test(test_report_psutil_json),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_json_and_flow),
        cmocka_unit_test(test_json_tabs_crlf),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_errors_top),
        cmocka_unit_test(test_errors_schedule),
        cmocka_unit_test(test_errors_workflow),
        cmocka_unit_test(test_errors_limits),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_unpack_errors),
        cmocka_unit_test(test_pack_is_a_manifest),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_cron),
        cmocka_unit_test(test_locate_node_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
