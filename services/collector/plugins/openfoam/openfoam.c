/* openfoam: residuals of a running OpenFOAM solver, read from its log.
 *
 * A solver prints one line per linear solve, e.g.
 *   smoothSolver:  Solving for Ux, Initial residual = 0.0012, Final residual = 5.6e-06, No
 * Iterations 2 GAMG:  Solving for p, Initial residual = 0.02, Final residual = 0.00019, No
 * Iterations 4 The plugin reads only what was appended since the last tick and emits, for each of
 * k, p, Ux, Uy, Uz and omega that was solved for since then, the latest initial and final residual
 * as /intel/openfoam/<field>/{initial,final} (the names of snap's OpenFOAM plugin). Other fields
 * are ignored. */
#include <stdlib.h>
#include <string.h>

#include "fresco/plugin.h"
#include "logtail.h"

#define OF_PREFIX "/intel/openfoam"

typedef struct of_config {
    char *log_file;
    int64_t max_read;
} of_config;

static const fr_cfg_field of_policy[] = {
    {"log_file", FR_CFG_STRING, NULL, offsetof(of_config, log_file),
     "the solver's log (its standard output redirected to a file); required", 0, 0, NULL},
    {"max_read", FR_CFG_SIZE, "4MiB", offsetof(of_config, max_read),
     "most bytes read per tick; an older backlog is skipped", 4096, (int64_t)1 << 30, NULL},
};

/* The fields the report names, in catalog order. */
static const char *const of_fields[] = {"k", "p", "Ux", "Uy", "Uz", "omega"};
#define OF_NFIELDS (sizeof(of_fields) / sizeof(of_fields[0]))

#define OF_INITIAL(f)                                                                              \
    {                                                                                              \
        OF_PREFIX "/" f "/initial", FR_VAL_DOUBLE, "",                                             \
            "initial residual of the latest solve for " f " (before the solver iterates)", NULL, 0 \
    }
#define OF_FINAL(f)                                                                                \
    {                                                                                              \
        OF_PREFIX "/" f "/final", FR_VAL_DOUBLE, "",                                               \
            "final residual of the latest solve for " f " (after the solver's iterations)", NULL,  \
            0                                                                                      \
    }

/* Two entries per field, in of_fields order: of_collect relies on it. */
static const fr_metric_info of_catalog[] = {
    OF_INITIAL("k"),  OF_FINAL("k"),  OF_INITIAL("p"),     OF_FINAL("p"),
    OF_INITIAL("Ux"), OF_FINAL("Ux"), OF_INITIAL("Uy"),    OF_FINAL("Uy"),
    OF_INITIAL("Uz"), OF_FINAL("Uz"), OF_INITIAL("omega"), OF_FINAL("omega"),
};

typedef struct of_residual {
    double initial, final;
    bool fresh; /* solved for since the last tick */
} of_residual;

typedef struct of_state {
    const of_config *cfg;
    logtail tail;
    char *scratch;
    of_residual res[OF_NFIELDS];
} of_state;

static int of_field_index(const char *name, size_t len)
{
    for (size_t i = 0; i < OF_NFIELDS; i++) {
        if (strlen(of_fields[i]) == len && memcmp(of_fields[i], name, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Parses the number after `label` in line; false when label is missing or
 * not followed by a number. */
static bool of_number_after(const char *line, const char *label, double *out)
{
    const char *p = strstr(line, label);
    if (p == NULL) {
        return false;
    }
    p += strlen(label);
    char *end;
    double v = strtod(p, &end);
    if (end == p || (*end != ',' && *end != '\0' && *end != ' ')) {
        return false;
    }
    *out = v;
    return true;
}

static int of_parse_line(void *arg, char *line, size_t len, const char *where, fr_error *err)
{
    of_state *st = arg;
    static const char solving[] = "Solving for ";
    const char *p = strstr(line, solving);
    if (p == NULL) {
        return 0; /* Time = ..., continuity errors, ExecutionTime, banners */
    }
    p += sizeof(solving) - 1;
    size_t n = strcspn(p, ", ");
    int idx = of_field_index(p, n);
    if (idx < 0) {
        return 0; /* a field the report does not ask for (epsilon, T, p_rgh, ...) */
    }
    double initial, final;
    if (!of_number_after(p + n, "Initial residual = ", &initial) ||
        !of_number_after(p + n, "Final residual = ", &final)) {
        return fr_error_set(err, FR_EINVAL, where,
                            "%s: solver line for %s lacks a numeric initial or final residual",
                            where, of_fields[idx]);
    }
    st->res[idx].initial = initial;
    st->res[idx].final = final;
    st->res[idx].fresh = true;
    return 0;
}

static void of_destroy(void *state)
{
    of_state *st = state;
    if (st == NULL) {
        return;
    }
    logtail_close(&st->tail);
    free(st->scratch);
    free(st);
}

static int of_init(void **state, const void *config, fr_error *err)
{
    const of_config *cfg = config;
    *state = NULL;
    if (cfg->log_file == NULL || cfg->log_file[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "log_file",
                            "openfoam: log_file is required (the solver's log)");
    }
    of_state *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->scratch = malloc(LOGTAIL_CHUNK)) == NULL) {
        of_destroy(st);
        return fr_error_set(err, FR_ENOMEM, "", "openfoam: out of memory");
    }
    st->cfg = cfg;
    logtail_init(&st->tail, cfg->log_file, (uint64_t)cfg->max_read, true);
    *state = st;
    return 0;
}

static int of_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    of_state *st = state;
    int rv = logtail_poll(&st->tail, st->scratch, LOGTAIL_CHUNK, of_parse_line, st, err);
    /* Emit what was read even when some lines were malformed. */
    for (size_t i = 0; i < OF_NFIELDS; i++) {
        of_residual *r = &st->res[i];
        if (!r->fresh) {
            continue;
        }
        r->fresh = false;
        for (int which = 0; which < 2; which++) {
            const fr_metric_info *m = &of_catalog[2 * i + (size_t)which];
            if (!fr_ns_query_match(req->query, m->ns)) {
                continue;
            }
            if (fr_batch_add(req->out, m->ns, req->now_ns,
                             fr_val_f64(which == 0 ? r->initial : r->final), m->unit) == NULL) {
                return fr_error_set(err, FR_ENOMEM, m->ns, "openfoam: out of memory");
            }
        }
    }
    return rv;
}

const fr_collector_plugin fr_collector_openfoam = {
    .abi = FR_PLUGIN_ABI,
    .name = "openfoam",
    .version = 1,
    .description = "initial and final residuals of k, p, Ux, Uy, Uz and omega from a running "
                   "OpenFOAM solver's log, read incrementally",
    .ns_prefix = OF_PREFIX,
    .catalog = of_catalog,
    .ncatalog = sizeof(of_catalog) / sizeof(of_catalog[0]),
    .policy = of_policy,
    .npolicy = sizeof(of_policy) / sizeof(of_policy[0]),
    .config_size = sizeof(of_config),
    .init = of_init,
    .collect = of_collect,
    .destroy = of_destroy,
};
