/* yarn: queue and scheduler metrics of a Hadoop YARN ResourceManager that
 * runs the capacity scheduler, from its REST API
 * (GET /ws/v1/cluster/scheduler), under the namespaces of snap's yarn
 * plugin: /intel/yarn/queue/<queue>/<metric> and
 * /intel/yarn/schedulerinfo/{capacity,maxcapacity}.
 *
 * Every queue below root is reported, however deep (snap's plugin stopped
 * at the second level). The <queue> element is the queue's own name
 * (queueName), as snap's plugin used it; when one answer holds two queues
 * of the same name (Hadoop 3.3+ allows that under different parents) both
 * are named by their full path instead. Each metric carries the full path
 * as the tag queue_path. The queue list is read afresh on every collect,
 * so new queues appear on the next tick. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/plugin.h"
#include "yarn/http_get.h"
#include "yarn/json.h"

#define YN_PREFIX     "/intel/yarn"
#define YN_PATH       "/ws/v1/cluster/scheduler"
#define YN_MAX_QUEUES 4096
#define YN_PATH_MAX   512 /* bytes of a queue's full path */

typedef struct yn_config {
    char *url;
    int64_t timeout_ms;
    int64_t max_size;
    char *hostname;
    int64_t port;
} yn_config;

static const fr_cfg_field yn_policy[] = {
    {"url", FR_CFG_STRING, "http://localhost:8088" YN_PATH, offsetof(yn_config, url),
     "the ResourceManager's scheduler resource (http:// only)", 0, 0, NULL},
    {"timeout", FR_CFG_DURATION, "2s", offsetof(yn_config, timeout_ms),
     "most time one collect waits for the whole answer", 1, 600000, NULL},
    {"max_size", FR_CFG_SIZE, "16MiB", offsetof(yn_config, max_size),
     "largest answer accepted; a larger one fails the collect", 1024, (int64_t)1 << 30, NULL},
    {"hostname", FR_CFG_STRING, NULL, offsetof(yn_config, hostname),
     "snap's key: when set, url becomes http://<hostname>:<port>" YN_PATH, 0, 0, NULL},
    {"port", FR_CFG_INT, "8088", offsetof(yn_config, port),
     "snap's key: the ResourceManager's web port, used with hostname", 1, 65535, NULL},
};

typedef enum yn_kind {
    YN_DOUBLE, /* any JSON number */
    YN_COUNT,  /* a JSON number with an integral value */
    YN_TEXT,   /* a JSON string */
} yn_kind;

/* One per-queue metric: where YARN puts it (member, or member.sub). */
typedef struct yn_field {
    const char *name;
    const char *member;
    const char *sub;
    yn_kind kind;
} yn_field;

static const yn_field yn_fields[] = {
    {"absolutecapacity", "absoluteCapacity", NULL, YN_DOUBLE},
    {"absolutemaxcapacity", "absoluteMaxCapacity", NULL, YN_DOUBLE},
    {"absoluteusedcapacity", "absoluteUsedCapacity", NULL, YN_DOUBLE},
    {"capacity", "capacity", NULL, YN_DOUBLE},
    {"maxactiveapplications", "maxActiveApplications", NULL, YN_COUNT},
    {"maxactiveapplicationsperuser", "maxActiveApplicationsPerUser", NULL, YN_COUNT},
    {"maxapplications", "maxApplications", NULL, YN_COUNT},
    {"maxapplicationsperuser", "maxApplicationsPerUser", NULL, YN_COUNT},
    {"maxcapacity", "maxCapacity", NULL, YN_DOUBLE},
    {"numactiveapplications", "numActiveApplications", NULL, YN_COUNT},
    {"numapplications", "numApplications", NULL, YN_COUNT},
    {"numcontainers", "numContainers", NULL, YN_COUNT},
    {"numpendingapplications", "numPendingApplications", NULL, YN_COUNT},
    {"usedcapacity", "usedCapacity", NULL, YN_DOUBLE},
    {"usedresources", "usedResources", NULL, YN_TEXT},
    {"userlimit", "userLimit", NULL, YN_DOUBLE},
    {"userlimitfactor", "userLimitFactor", NULL, YN_DOUBLE},
    {"resources_memory", "resourcesUsed", "memory", YN_COUNT},
    {"resources_vcores", "resourcesUsed", "vCores", YN_COUNT},
};

#define YN_NFIELDS (sizeof(yn_fields) / sizeof(yn_fields[0]))

static const fr_dyn_info yn_dyn_queue[] = {
    {"queue", "queue name (queueName: default, a1); the full path (root.a.x) when two queues "
              "share a name"},
};

#define YN_Q YN_PREFIX "/queue/*/"

/* In yn_fields order, then the two scheduler metrics. */
static const fr_metric_info yn_catalog[] = {
    {YN_Q "absolutecapacity", FR_VAL_DOUBLE, "percent",
     "absolute capacity percentage of the entire cluster this queue can use", yn_dyn_queue, 1},
    {YN_Q "absolutemaxcapacity", FR_VAL_DOUBLE, "percent",
     "absolute maximum capacity percentage of the entire cluster this queue can use", yn_dyn_queue,
     1},
    {YN_Q "absoluteusedcapacity", FR_VAL_DOUBLE, "percent",
     "absolute used capacity percentage of the entire cluster this queue is using", yn_dyn_queue,
     1},
    {YN_Q "capacity", FR_VAL_DOUBLE, "percent",
     "configured queue capacity in percentage relative to its parent queue", yn_dyn_queue, 1},
    {YN_Q "maxactiveapplications", FR_VAL_INT64, "",
     "maximum number of active applications this queue can have (leaf queues)", yn_dyn_queue, 1},
    {YN_Q "maxactiveapplicationsperuser", FR_VAL_INT64, "",
     "maximum number of active applications one user can have in this queue (leaf queues)",
     yn_dyn_queue, 1},
    {YN_Q "maxapplications", FR_VAL_INT64, "",
     "maximum number of applications this queue can hold (leaf queues)", yn_dyn_queue, 1},
    {YN_Q "maxapplicationsperuser", FR_VAL_INT64, "",
     "maximum number of applications one user can have in this queue (leaf queues)", yn_dyn_queue,
     1},
    {YN_Q "maxcapacity", FR_VAL_DOUBLE, "percent",
     "configured maximum queue capacity in percentage relative to its parent queue", yn_dyn_queue,
     1},
    {YN_Q "numactiveapplications", FR_VAL_INT64, "",
     "number of active applications in this queue (leaf queues)", yn_dyn_queue, 1},
    {YN_Q "numapplications", FR_VAL_INT64, "", "number of applications currently in the queue",
     yn_dyn_queue, 1},
    {YN_Q "numcontainers", FR_VAL_INT64, "", "number of containers the queue is using",
     yn_dyn_queue, 1},
    {YN_Q "numpendingapplications", FR_VAL_INT64, "",
     "number of pending applications in this queue (leaf queues)", yn_dyn_queue, 1},
    {YN_Q "usedcapacity", FR_VAL_DOUBLE, "percent",
     "used queue capacity in percentage of the queue's capacity", yn_dyn_queue, 1},
    {YN_Q "usedresources", FR_VAL_STRING, "",
     "used queue resources as YARN writes them: <memory:2048, vCores:2>", yn_dyn_queue, 1},
    {YN_Q "userlimit", FR_VAL_DOUBLE, "percent",
     "minimum user limit percent set in the configuration (leaf queues)", yn_dyn_queue, 1},
    {YN_Q "userlimitfactor", FR_VAL_DOUBLE, "",
     "user limit factor set in the configuration (leaf queues)", yn_dyn_queue, 1},
    {YN_Q "resources_memory", FR_VAL_INT64, "MB", "memory the queue is using", yn_dyn_queue, 1},
    {YN_Q "resources_vcores", FR_VAL_INT64, "", "virtual cores the queue is using", yn_dyn_queue,
     1},
    {YN_PREFIX "/schedulerinfo/capacity", FR_VAL_DOUBLE, "percent",
     "configured capacity of the root queue in percent", NULL, 0},
    {YN_PREFIX "/schedulerinfo/maxcapacity", FR_VAL_DOUBLE, "percent",
     "configured maximum capacity of the root queue in percent", NULL, 0},
};

#define YN_NCATALOG  (sizeof(yn_catalog) / sizeof(yn_catalog[0]))
#define YN_SCHED_CAP (YN_NFIELDS)

_Static_assert(YN_NCATALOG == YN_NFIELDS + 2, "one catalog entry per queue field");

typedef struct yn_queue {
    const yarn_json_node *node;
    char path[YN_PATH_MAX]; /* root.a.a1 */
    const char *name;       /* last element of path */
    bool by_path;           /* name shared with another queue */
} yn_queue;

typedef struct yn_state {
    yarn_http *http;
    yn_queue *queues; /* YN_MAX_QUEUES, reused each collect */
} yn_state;

static void yn_destroy(void *state)
{
    yn_state *st = state;
    if (st == NULL) {
        return;
    }
    yarn_http_destroy(st->http);
    free(st->queues);
    free(st);
}

/* Starts a helper's message with the plugin's name, as log lines do. */
static int yn_prefix_error(fr_error *err, int rv)
{
    if (err == NULL) {
        return rv;
    }
    fr_error e = *err;
    return fr_error_set(err, rv, e.where, "yarn: %s", e.message);
}

static int yn_init(void **state, const void *config, fr_error *err)
{
    const yn_config *cfg = config;
    *state = NULL;
    char built[300];
    const char *url = cfg->url;
    if (cfg->hostname != NULL && cfg->hostname[0] != '\0') {
        if (strpbrk(cfg->hostname, "/?#@ ") != NULL || strlen(cfg->hostname) > 253) {
            return fr_error_set(err, FR_ECONFIG, "hostname", "yarn: hostname '%.60s' is not a host",
                                cfg->hostname);
        }
        snprintf(built, sizeof(built), "http://%s:%" PRId64 YN_PATH, cfg->hostname, cfg->port);
        url = built;
    }
    if (url == NULL || url[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "url", "yarn: url is empty");
    }
    yn_state *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->queues = calloc(YN_MAX_QUEUES, sizeof(yn_queue))) == NULL) {
        yn_destroy(st);
        return fr_error_set(err, FR_ENOMEM, "", "yarn: out of memory");
    }
    int rv = yarn_http_open(&st->http, url, cfg->timeout_ms, (size_t)cfg->max_size, err);
    if (rv != 0) {
        yn_destroy(st);
        return yn_prefix_error(err, rv);
    }
    *state = st;
    return 0;
}

/* Fails the collect for an answer of the wrong shape. */
static int yn_shape(const yn_state *st, fr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int yn_shape(const yn_state *st, fr_error *err, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return fr_error_set(err, FR_EPROTO, yarn_http_url(st->http), "yarn: %s: unexpected answer: %s",
                        yarn_http_url(st->http), why);
}

static bool yn_wants(const fr_ns_query *q, size_t from, size_t to)
{
    for (size_t c = from; c < to; c++) {
        for (size_t i = 0; i < fr_ns_query_count(q); i++) {
            if (fr_ns_query_covers_pattern(q, i, yn_catalog[c].ns)) {
                return true;
            }
        }
    }
    return false;
}

/* The children of a queue or of schedulerInfo: "queues": {"queue": [..]}
 * (or a single object where an older ResourceManager wrote one child
 * without its array). Appends them to st->queues. */
static int yn_add_children(yn_state *st, const yarn_json_doc *doc, const yarn_json_node *parent,
                           const char *parent_path, size_t *nq, fr_error *err)
{
    const yarn_json_node *queues = yarn_json_get(doc, parent, "queues");
    if (queues == NULL || queues->type == YARN_JSON_NULL) {
        return 0;
    }
    if (queues->type != YARN_JSON_OBJECT) {
        return yn_shape(st, err, "%s: queues is %s, expected an object", parent_path,
                        yarn_json_type_name(queues->type));
    }
    const yarn_json_node *list = yarn_json_get(doc, queues, "queue");
    if (list == NULL || list->type == YARN_JSON_NULL) {
        return 0;
    }
    const yarn_json_node *q = list;
    if (list->type == YARN_JSON_ARRAY) {
        q = yarn_json_first(doc, list);
    } else if (list->type != YARN_JSON_OBJECT) {
        return yn_shape(st, err, "%s: queues.queue is %s, expected an array", parent_path,
                        yarn_json_type_name(list->type));
    }
    for (; q != NULL; q = list->type == YARN_JSON_ARRAY ? yarn_json_next(doc, q) : NULL) {
        if (q->type != YARN_JSON_OBJECT) {
            return yn_shape(st, err, "%s: a child queue is %s, expected an object", parent_path,
                            yarn_json_type_name(q->type));
        }
        const yarn_json_node *name = yarn_json_get(doc, q, "queueName");
        if (name == NULL || name->type != YARN_JSON_STRING || name->len == 0 ||
            strlen(name->s) != name->len) {
            return yn_shape(st, err, "%s: a child queue has no queueName", parent_path);
        }
        if (*nq == YN_MAX_QUEUES) {
            return yn_shape(st, err, "more than %d queues", YN_MAX_QUEUES);
        }
        yn_queue *e = &st->queues[*nq];
        int n = snprintf(e->path, sizeof(e->path), "%s.%s", parent_path, name->s);
        if (n < 0 || (size_t)n >= sizeof(e->path)) {
            return yn_shape(st, err, "queue path %.60s... longer than %d bytes", e->path,
                            YN_PATH_MAX - 1);
        }
        e->node = q;
        e->name = e->path + strlen(parent_path) + 1;
        e->by_path = false;
        (*nq)++;
    }
    return 0;
}

/* Copies s as one namespace element: characters that would split or
 * pattern a namespace become '_'. */
static void yn_element(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < cap; i++) {
        char c = s[i];
        dst[i] = (c == '/' || c == '*' || c == '(' || c == ')' || c == ';') ? '_' : c;
    }
    dst[i] = '\0';
}

static int yn_emit(yn_state *st, const fr_collect_req *req, const char *ns, fr_value v,
                   const char *unit, const char *queue_path, fr_error *err)
{
    fr_metric *m = fr_batch_add(req->out, ns, req->now_ns, v, unit);
    if (m == NULL ||
        (queue_path != NULL && fr_batch_metric_tag(req->out, m, "queue_path", queue_path) != 0)) {
        return fr_error_set(err, FR_ENOMEM, ns, "yarn: out of memory");
    }
    return 0;
}

static int yn_emit_queue(yn_state *st, const fr_collect_req *req, const yarn_json_doc *doc,
                         const yn_queue *q, fr_error *err)
{
    char elem[YN_PATH_MAX];
    yn_element(elem, sizeof(elem), q->by_path ? q->path : q->name);
    for (size_t f = 0; f < YN_NFIELDS; f++) {
        const yn_field *fd = &yn_fields[f];
        char ns[YN_PATH_MAX + 128];
        snprintf(ns, sizeof(ns), YN_PREFIX "/queue/%s/%s", elem, fd->name);
        if (!fr_ns_query_match(req->query, ns)) {
            continue;
        }
        const yarn_json_node *v = yarn_json_get(doc, q->node, fd->member);
        if (fd->sub != NULL && v != NULL && v->type == YARN_JSON_OBJECT) {
            v = yarn_json_get(doc, v, fd->sub);
        } else if (fd->sub != NULL && v != NULL && v->type != YARN_JSON_NULL) {
            return yn_shape(st, err, "queue %s: %s is %s, expected an object", q->path, fd->member,
                            yarn_json_type_name(v->type));
        }
        if (v == NULL || v->type == YARN_JSON_NULL) {
            continue; /* parent queues lack the leaf-only fields */
        }
        const char *what = fd->sub != NULL ? fd->sub : fd->member;
        fr_value val;
        if (fd->kind == YN_TEXT) {
            if (v->type != YARN_JSON_STRING) {
                return yn_shape(st, err, "queue %s: %s is %s, expected a string", q->path, what,
                                yarn_json_type_name(v->type));
            }
            val = fr_val_str(v->s);
        } else if (v->type != YARN_JSON_NUMBER) {
            return yn_shape(st, err, "queue %s: %s is %s, expected a number", q->path, what,
                            yarn_json_type_name(v->type));
        } else if (fd->kind == YN_DOUBLE) {
            val = fr_val_f64(v->d);
        } else if (v->is_int) {
            val = fr_val_i64(v->i);
        } else if (v->d == floor(v->d) && fabs(v->d) < 9.0e15) {
            val = fr_val_i64((int64_t)v->d);
        } else {
            return yn_shape(st, err, "queue %s: %s is %g, expected a whole number", q->path, what,
                            v->d);
        }
        if (yn_emit(st, req, ns, val, yn_catalog[f].unit, q->path, err) != 0) {
            return FR_ENOMEM;
        }
    }
    return 0;
}

static int yn_emit_scheduler(yn_state *st, const fr_collect_req *req, const yarn_json_doc *doc,
                             const yarn_json_node *info, fr_error *err)
{
    static const char *const members[] = {"capacity", "maxCapacity"};
    for (size_t i = 0; i < 2; i++) {
        const fr_metric_info *mi = &yn_catalog[YN_SCHED_CAP + i];
        if (!fr_ns_query_match(req->query, mi->ns)) {
            continue;
        }
        const yarn_json_node *v = yarn_json_get(doc, info, members[i]);
        if (v == NULL || v->type != YARN_JSON_NUMBER) {
            return yn_shape(st, err, "scheduler.schedulerInfo.%s is %s, expected a number",
                            members[i], v == NULL ? "missing" : yarn_json_type_name(v->type));
        }
        if (yn_emit(st, req, mi->ns, fr_val_f64(v->d), mi->unit, NULL, err) != 0) {
            return FR_ENOMEM;
        }
    }
    return 0;
}

/* Walks the parsed answer: scheduler.schedulerInfo, then its queues
 * breadth first. */
static int yn_emit_all(yn_state *st, const fr_collect_req *req, const yarn_json_doc *doc,
                       fr_error *err)
{
    const yarn_json_node *root = yarn_json_root(doc);
    const yarn_json_node *sched = yarn_json_get(doc, root, "scheduler");
    const yarn_json_node *info = yarn_json_get(doc, sched, "schedulerInfo");
    if (info == NULL || info->type != YARN_JSON_OBJECT) {
        return yn_shape(st, err, "no scheduler.schedulerInfo object");
    }
    const yarn_json_node *type = yarn_json_get(doc, info, "type");
    if (type == NULL || type->type != YARN_JSON_STRING) {
        return yn_shape(st, err, "scheduler.schedulerInfo has no type");
    }
    if (strcmp(type->s, "capacityScheduler") != 0) {
        return yn_shape(st, err, "scheduler type '%.40s' is not supported, only capacityScheduler",
                        type->s);
    }
    int rv = yn_emit_scheduler(st, req, doc, info, err);
    if (rv != 0 || !yn_wants(req->query, 0, YN_NFIELDS)) {
        return rv;
    }

    const yarn_json_node *rootname = yarn_json_get(doc, info, "queueName");
    char root_path[64] = "root";
    if (rootname != NULL && rootname->type == YARN_JSON_STRING && rootname->len > 0 &&
        rootname->len < sizeof(root_path) && strlen(rootname->s) == rootname->len) {
        snprintf(root_path, sizeof(root_path), "%s", rootname->s);
    }
    size_t nq = 0;
    if ((rv = yn_add_children(st, doc, info, root_path, &nq, err)) != 0) {
        return rv;
    }
    for (size_t i = 0; i < nq; i++) {
        /* nq grows as children are appended behind the queue being read. */
        if ((rv = yn_add_children(st, doc, st->queues[i].node, st->queues[i].path, &nq, err)) !=
            0) {
            return rv;
        }
    }
    for (size_t i = 0; i < nq; i++) {
        for (size_t j = i + 1; j < nq; j++) {
            if (strcmp(st->queues[i].name, st->queues[j].name) == 0) {
                if (strcmp(st->queues[i].path, st->queues[j].path) == 0) {
                    return yn_shape(st, err, "queue %s listed twice", st->queues[i].path);
                }
                st->queues[i].by_path = st->queues[j].by_path = true;
            }
        }
    }
    for (size_t i = 0; i < nq; i++) {
        if ((rv = yn_emit_queue(st, req, doc, &st->queues[i], err)) != 0) {
            return rv;
        }
    }
    return 0;
}

static int yn_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    yn_state *st = state;
    if (!yn_wants(req->query, 0, YN_NCATALOG)) {
        return 0;
    }
    char *body = NULL;
    size_t len = 0;
    int rv = yarn_http_get(st->http, &body, &len, err);
    if (rv != 0) {
        return yn_prefix_error(err, rv);
    }
    yarn_json_doc doc;
    fr_error jerr;
    fr_error_clear(&jerr);
    rv = yarn_json_parse(body, len, &doc, &jerr);
    free(body);
    if (rv != 0) {
        return fr_error_set(err, rv, yarn_http_url(st->http), "yarn: %s: answer is not JSON: %s",
                            yarn_http_url(st->http), jerr.message);
    }
    rv = yn_emit_all(st, req, &doc, err);
    yarn_json_free(&doc);
    return rv;
}

const fr_collector_plugin fr_collector_yarn = {
    .abi = FR_PLUGIN_ABI,
    .name = "yarn",
    .version = 1,
    .description = "Hadoop YARN capacity scheduler: per-queue capacities, applications and "
                   "resources from the ResourceManager's REST API",
    .ns_prefix = YN_PREFIX,
    .catalog = yn_catalog,
    .ncatalog = YN_NCATALOG,
    .policy = yn_policy,
    .npolicy = sizeof(yn_policy) / sizeof(yn_policy[0]),
    .config_size = sizeof(yn_config),
    .init = yn_init,
    .collect = yn_collect,
    .destroy = yn_destroy,
};
