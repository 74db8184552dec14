/* Torque's qsub command line and job script directives. */
#include "qsub.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hpc_qsub_optkind(char c)
{
    if (c != '\0' && strchr("aAbcCdDeFjklmMNopPqrStuvWw", c) != NULL) {
        return 1;
    }
    if (c != '\0' && strchr("fhInVxXz", c) != NULL) {
        return 0;
    }
    return -1;
}

static int push_opt(hpc_opt **v, size_t *n, char letter, const char *value, bool script, int line)
{
    hpc_opt *nv = realloc(*v, (*n + 1) * sizeof **v);
    if (nv == NULL) {
        return FR_ENOMEM;
    }
    *v = nv;
    char *copy = NULL;
    if (value != NULL && (copy = strdup(value)) == NULL) {
        return FR_ENOMEM;
    }
    nv[*n] = (hpc_opt){letter, copy, script, line};
    (*n)++;
    return 0;
}

static int push_vm(char ***v, int **lines, size_t *n, const char *value, int line)
{
    char **nv = realloc(*v, (*n + 1) * sizeof **v);
    if (nv == NULL) {
        return FR_ENOMEM;
    }
    *v = nv;
    int *nl = realloc(*lines, (*n + 1) * sizeof **lines);
    if (nl == NULL) {
        return FR_ENOMEM;
    }
    *lines = nl;
    if ((nv[*n] = strdup(value)) == NULL) {
        return FR_ENOMEM;
    }
    nl[*n] = line;
    (*n)++;
    return 0;
}

/* One list of words (the command line, or one directive) into options.
 * where names the source for errors ("argument 3", "job.sh:4"). */
typedef struct words_ctx {
    hpc_qsub *q;
    hpc_opt **opts;
    size_t *nopts;
    char ***vm;
    int **vm_line;
    size_t *nvm;
    bool script; /* directives: no job script word allowed */
    int line;
    const char *file;
    bool *mine; /* command line: marks the words fresco itself takes */
} words_ctx;

static void where_of(const words_ctx *w, size_t i, char *buf, size_t len)
{
    if (w->script) {
        snprintf(buf, len, "%s:%d", w->file, w->line);
    } else {
        snprintf(buf, len, "argument %zu", i + 1);
    }
}

static int take_words(words_ctx *w, int argc, char *const *argv, fr_error *e)
{
    char where[200];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        where_of(w, (size_t)i, where, sizeof where);
        if (strlen(a) > HPC_MAX_ARG) {
            return fr_error_set(e, FR_ETOOBIG, where, "argument longer than %d bytes", HPC_MAX_ARG);
        }
        if (strcmp(a, "-vm") == 0) {
            if (i + 1 >= argc) {
                return fr_error_set(e, FR_EINVAL, where,
                                    "-vm needs a value: -vm key=value[,key=value...]");
            }
            if (w->mine != NULL) {
                w->mine[i] = w->mine[i + 1] = true;
            }
            int rv = push_vm(w->vm, w->vm_line, w->nvm, argv[++i], w->line);
            if (rv != 0) {
                return rv;
            }
            continue;
        }
        if (strcmp(a, "-list") == 0 || strcmp(a, "-gf") == 0) {
            if (w->script) {
                return fr_error_set(e, FR_EINVAL, where, "%s belongs on the command line", a);
            }
            if (w->mine != NULL) {
                w->mine[i] = true;
            }
            if (a[1] == 'l') {
                w->q->list = true;
            } else {
                w->q->gf = true;
            }
            continue;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (w->script) {
                return fr_error_set(e, FR_EINVAL, where,
                                    "'%s' is not an option: a directive holds options only", a);
            }
            if (w->q->script != NULL) {
                return fr_error_set(e, FR_EINVAL, where,
                                    "unexpected '%s' after the job script '%s' (job script "
                                    "arguments go in -F \"...\")",
                                    a, w->q->script);
            }
            if (strcmp(a, "-") != 0 && (w->q->script = strdup(a)) == NULL) {
                return FR_ENOMEM;
            }
            continue;
        }
        int kind = hpc_qsub_optkind(a[1]);
        if (kind < 0) {
            return fr_error_set(e, FR_EINVAL, where,
                                "unknown option '%s' (Torque's qsub options: -a -A -b -c -C -d -D "
                                "-e -f -F -h -I -j -k -l -m -M -n -N -o -p -P -q -r -S -t -u -v "
                                "-V -w -W -x -X -z; fresco's: -vm -list -gf)",
                                a);
        }
        const char *value = NULL;
        if (kind == 1) {
            if (a[2] != '\0') {
                value = a + 2;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return fr_error_set(e, FR_EINVAL, where, "option -%c needs a value", a[1]);
            }
        } else if (a[2] != '\0') {
            return fr_error_set(e, FR_EINVAL, where, "option -%c takes no value, got '%s'", a[1],
                                a);
        }
        int rv = push_opt(w->opts, w->nopts, a[1], value, w->script, w->line);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int hpc_qsub_parse_args(hpc_qsub *q, int argc, char *const *argv, fr_error *e)
{
    bool *mine = calloc((size_t)argc + 1, sizeof *mine);
    q->argv = calloc((size_t)argc + 1, sizeof *q->argv);
    if (mine == NULL || q->argv == NULL) {
        free(mine);
        return FR_ENOMEM;
    }
    words_ctx w = {q, &q->opts, &q->nopts, &q->vm, &q->vm_line, &q->nvm, false, 0, NULL, mine};
    int rv = take_words(&w, argc, argv, e);
    for (int i = 0; i < argc && rv == 0; i++) {
        if (!mine[i] && (q->argv[q->argc++] = strdup(argv[i])) == NULL) {
            rv = FR_ENOMEM;
        }
    }
    free(mine);
    return rv;
}

/* Splits a directive into words: blanks separate, '...' and "..." quote,
 * a backslash escapes the next byte outside single quotes, and an unquoted
 * '#' starting a word ends the line. Words are written into buf (which
 * must be as long as the line plus one per word). */
static int split_words(const char *s, char *buf, char **words, int max, int *n, fr_error *e,
                       const char *where)
{
    *n = 0;
    char *o = buf;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\r') {
            s++;
        }
        if (*s == '\0' || *s == '#') {
            return 0;
        }
        if (*n == max) {
            return fr_error_set(e, FR_ETOOBIG, where, "more than %d words in one directive", max);
        }
        words[(*n)++] = o;
        char quote = 0;
        while (*s != '\0') {
            char c = *s;
            if (quote == 0 && (c == ' ' || c == '\t' || c == '\r')) {
                break;
            }
            s++;
            if (quote == 0 && (c == '\'' || c == '"')) {
                quote = c;
                continue;
            }
            if (quote != 0 && c == quote) {
                quote = 0;
                continue;
            }
            if (c == '\\' && quote != '\'' && *s != '\0') {
                c = *s++;
            }
            *o++ = c;
        }
        if (quote != 0) {
            return fr_error_set(e, FR_EINVAL, where, "unterminated %c quote in directive", quote);
        }
        *o++ = '\0';
    }
}

int hpc_qsub_parse_script(hpc_qsub *q, char *text, size_t len, fr_error *e)
{
    free(q->script_text);
    q->script_text = text;
    q->script_len = len;
    const char *prefix = "#PBS";
    /* -C on the command line changes the prefix (Torque: the command line's,
     * or $PBS_DPREFIX). */
    for (size_t i = 0; i < q->nopts; i++) {
        if (q->opts[i].letter == 'C' && !q->opts[i].from_script) {
            prefix = q->opts[i].value;
        }
    }
    size_t plen = strlen(prefix);
    const char *file = q->script != NULL ? q->script : "<stdin>";
    hpc_opt *sopts = NULL;
    size_t nsopts = 0;
    char **svm = NULL;
    int *svm_line = NULL;
    size_t nsvm = 0;
    int rv = 0;
    char *buf = NULL;
    words_ctx w = {q, &sopts, &nsopts, &svm, &svm_line, &nsvm, true, 0, file, NULL};
    size_t pos = 0;
    int line = 0;
    while (pos < len && rv == 0) {
        line++;
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t llen = nl != NULL ? (size_t)(nl - start) : len - pos;
        pos += llen + (nl != NULL);
        const char *p = start;
        while (p < start + llen && (*p == ' ' || *p == '\t' || *p == '\r')) {
            p++;
        }
        if (p == start + llen) {
            continue; /* blank */
        }
        if (*p != '#') {
            break; /* the first command ends the directives */
        }
        if (plen == 0 || llen < plen || strncmp(start, prefix, plen) != 0) {
            continue; /* a comment */
        }
        const char *rest = start + plen;
        size_t rlen = llen - plen;
        if (rlen > 0 && rest[0] != ' ' && rest[0] != '\t') {
            continue; /* "#PBSfoo" is a comment */
        }
        char where[200];
        snprintf(where, sizeof where, "%s:%d", file, line);
        if (memchr(rest, '\0', rlen) != NULL) {
            rv = fr_error_set(e, FR_EINVAL, where, "NUL byte in a directive");
            break;
        }
        if (rlen > HPC_MAX_ARG) {
            rv = fr_error_set(e, FR_ETOOBIG, where, "directive longer than %d bytes", HPC_MAX_ARG);
            break;
        }
        char *copy = strndup(rest, rlen);
        free(buf);
        buf = malloc(rlen * 2 + 2);
        if (copy == NULL || buf == NULL) {
            free(copy);
            rv = FR_ENOMEM;
            break;
        }
        char *words[64];
        int nw = 0;
        rv = split_words(copy, buf, words, 64, &nw, e, where);
        free(copy);
        if (rv == 0) {
            w.line = line;
            rv = take_words(&w, nw, words, e);
        }
    }
    free(buf);
    if (rv == 0) {
        /* the script's directives go first: the command line wins */
        hpc_opt *all = realloc(sopts, (nsopts + q->nopts + 1) * sizeof *all);
        char **vall = realloc(svm, (nsvm + q->nvm + 1) * sizeof *vall);
        int *lall = realloc(svm_line, (nsvm + q->nvm + 1) * sizeof *lall);
        if (all != NULL) {
            sopts = all;
        }
        if (vall != NULL) {
            svm = vall;
        }
        if (lall != NULL) {
            svm_line = lall;
        }
        if (all == NULL || vall == NULL || lall == NULL) {
            rv = FR_ENOMEM;
        } else {
            /* q->opts and q->vm are NULL when the command line has none:
             * memcpy must not see a NULL source, even for 0 bytes */
            if (q->nopts > 0) {
                memcpy(all + nsopts, q->opts, q->nopts * sizeof *all);
            }
            if (q->nvm > 0) {
                memcpy(vall + nsvm, q->vm, q->nvm * sizeof *vall);
                memcpy(lall + nsvm, q->vm_line, q->nvm * sizeof *lall);
            }
            free(q->opts);
            free(q->vm);
            free(q->vm_line);
            q->opts = all;
            q->nopts += nsopts;
            q->vm = vall;
            q->vm_line = lall;
            q->nvm += nsvm;
            return 0;
        }
    }
    for (size_t i = 0; i < nsopts; i++) {
        free(sopts[i].value);
    }
    free(sopts);
    for (size_t i = 0; i < nsvm; i++) {
        free(svm[i]);
    }
    free(svm);
    free(svm_line);
    return rv;
}

int hpc_qsub_read_script(hpc_qsub *q, fr_error *e)
{
    FILE *f = stdin;
    const char *name = "<stdin>";
    if (q->script != NULL) {
        name = q->script;
        if ((f = fopen(q->script, "rb")) == NULL) {
            return fr_error_set(e, FR_EIO, name, "cannot open the job script: %s", strerror(errno));
        }
    }
    size_t cap = 65536, len = 0;
    char *text = malloc(cap + 1);
    int rv = text != NULL ? 0 : FR_ENOMEM;
    while (rv == 0) {
        if (len == cap) {
            if (cap >= HPC_MAX_SCRIPT) {
                rv = fr_error_set(e, FR_ETOOBIG, name, "job script larger than %u bytes",
                                  HPC_MAX_SCRIPT);
                break;
            }
            char *n = realloc(text, cap * 2 + 1);
            if (n == NULL) {
                rv = FR_ENOMEM;
                break;
            }
            text = n;
            cap *= 2;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                rv = fr_error_set(e, FR_EIO, name, "read error");
            }
            break;
        }
    }
    if (f != stdin) {
        fclose(f);
    }
    if (rv != 0) {
        free(text);
        return rv;
    }
    text[len] = '\0';
    return hpc_qsub_parse_script(q, text, len, e);
}

const char *hpc_qsub_last(const hpc_qsub *q, char letter)
{
    const char *v = NULL;
    for (size_t i = 0; i < q->nopts; i++) {
        if (q->opts[i].letter == letter) {
            v = q->opts[i].value;
        }
    }
    return v;
}

bool hpc_qsub_has(const hpc_qsub *q, char letter)
{
    for (size_t i = 0; i < q->nopts; i++) {
        if (q->opts[i].letter == letter) {
            return true;
        }
    }
    return false;
}

void hpc_qsub_free(hpc_qsub *q)
{
    for (size_t i = 0; i < q->nopts; i++) {
        free(q->opts[i].value);
    }
    free(q->opts);
    for (size_t i = 0; i < q->nvm; i++) {
        free(q->vm[i]);
    }
    free(q->vm);
    free(q->vm_line);
    for (size_t i = 0; i < q->argc; i++) {
        free(q->argv[i]);
    }
    free(q->argv);
    free(q->script);
    free(q->script_text);
    memset(q, 0, sizeof *q);
}

int hpc_parse_pbs_size(const char *s, int64_t *bytes)
{
    if (s == NULL || !isdigit((unsigned char)*s)) {
        return FR_EINVAL;
    }
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno != 0) {
        return FR_EINVAL;
    }
    uint64_t mul = 1;
    char u = (char)tolower((unsigned char)*end);
    if (u != '\0') {
        switch (u) {
        case 'k':
            mul = 1ull << 10;
            break;
        case 'm':
            mul = 1ull << 20;
            break;
        case 'g':
            mul = 1ull << 30;
            break;
        case 't':
            mul = 1ull << 40;
            break;
        case 'b':
            mul = 1;
            end--;
            break;
        case 'w':
            mul = 1; /* the suffix check below makes it 8 bytes a word */
            end--;
            break;
        default:
            return FR_EINVAL;
        }
        end++;
        char b = (char)tolower((unsigned char)*end);
        if (b == 'b' || b == 'w') {
            if (b == 'w') {
                mul *= 8;
            }
            end++;
        }
        if (*end != '\0') {
            return FR_EINVAL;
        }
    }
    if (n > (uint64_t)INT64_MAX / mul) {
        return FR_EINVAL;
    }
    *bytes = (int64_t)(n * mul);
    return 0;
}

static int res_set(hpc_resources *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->name[i], name) == 0) {
            char *v = strdup(value);
            if (v == NULL) {
                return FR_ENOMEM;
            }
            free(r->value[i]);
            r->value[i] = v;
            return 0;
        }
    }
    if (r->n == HPC_MAX_RES) {
        return FR_ETOOBIG;
    }
    r->name[r->n] = strdup(name);
    r->value[r->n] = strdup(value);
    if (r->name[r->n] == NULL || r->value[r->n] == NULL) {
        free(r->name[r->n]);
        free(r->value[r->n]);
        return FR_ENOMEM;
    }
    r->n++;
    return 0;
}

static int parse_nodes(hpc_resources *r, const char *v, const char *where, fr_error *e)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!isdigit((unsigned char)*v) || errno != 0 || n < 1 || n > 100000) {
        return fr_error_set(e, FR_EINVAL, where,
                            "resource 'nodes': '%s' is not a node count (VM jobs take "
                            "nodes=<count>[:ppn=<cores>][:<property>...])",
                            v);
    }
    r->nodes = n;
    free(r->nodes_rest);
    r->nodes_rest = NULL;
    char rest[HPC_MAX_ARG + 1] = "";
    while (*end == ':') {
        const char *part = end + 1;
        const char *stop = strchr(part, ':');
        size_t plen = stop != NULL ? (size_t)(stop - part) : strlen(part);
        if (plen > 4 && strncmp(part, "ppn=", 4) == 0) {
            char num[32];
            if (plen - 4 >= sizeof num) {
                return fr_error_set(e, FR_EINVAL, where, "resource 'nodes': bad ppn in '%s'", v);
            }
            memcpy(num, part + 4, plen - 4);
            num[plen - 4] = '\0';
            char *nend;
            long long p = strtoll(num, &nend, 10);
            if (*nend != '\0' || p < 1 || p > 1 << 20) {
                return fr_error_set(e, FR_EINVAL, where,
                                    "resource 'nodes': ppn '%s' is not a core count", num);
            }
            r->ppn = p;
        } else {
            size_t rl = strlen(rest);
            if (rl + plen + 1 < sizeof rest) {
                rest[rl] = ':';
                memcpy(rest + rl + 1, part, plen);
                rest[rl + 1 + plen] = '\0';
            }
        }
        end = (char *)part + plen;
    }
    if (*end != '\0') {
        return fr_error_set(e, FR_EINVAL, where,
                            "resource 'nodes': '%s' is not <count>[:ppn=<cores>][:<property>]", v);
    }
    if (rest[0] != '\0' && (r->nodes_rest = strdup(rest)) == NULL) {
        return FR_ENOMEM;
    }
    return 0;
}

int hpc_resources_parse(const hpc_qsub *q, hpc_resources *r, fr_error *e)
{
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < q->nopts; i++) {
        if (q->opts[i].letter != 'l') {
            continue;
        }
        char where[200];
        if (q->opts[i].from_script) {
            snprintf(where, sizeof where, "%s:%d: -l", q->script ? q->script : "<stdin>",
                     q->opts[i].line);
        } else {
            snprintf(where, sizeof where, "-l");
        }
        char *copy = strdup(q->opts[i].value);
        if (copy == NULL) {
            return FR_ENOMEM;
        }
        char *save = NULL;
        int rv = 0;
        for (char *tok = strtok_r(copy, ",", &save); tok != NULL && rv == 0;
             tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            const char *val = eq != NULL ? eq + 1 : "";
            if (eq != NULL) {
                *eq = '\0';
            }
            if (strcmp(tok, "nodes") == 0) {
                rv = parse_nodes(r, val, where, e);
            } else if (strcmp(tok, "mem") == 0) {
                if (hpc_parse_pbs_size(val, &r->mem) != 0) {
                    rv = fr_error_set(e, FR_EINVAL, where,
                                      "resource 'mem': '%s' is not a size (e.g. 4096mb, 4gb)", val);
                }
            } else {
                rv = res_set(r, tok, val);
                if (rv == FR_ETOOBIG) {
                    fr_error_set(e, rv, where, "more than %d resources", HPC_MAX_RES);
                }
            }
        }
        free(copy);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

void hpc_resources_free(hpc_resources *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->name[i]);
        free(r->value[i]);
    }
    free(r->nodes_rest);
    memset(r, 0, sizeof *r);
}

char *hpc_resources_render(const hpc_resources *r)
{
    size_t cap = 128 + (r->nodes_rest ? strlen(r->nodes_rest) : 0);
    for (size_t i = 0; i < r->n; i++) {
        cap += strlen(r->name[i]) + strlen(r->value[i]) + 2;
    }
    char *s = malloc(cap);
    if (s == NULL) {
        return NULL;
    }
    size_t len = 0;
    s[0] = '\0';
    if (r->nodes > 0) {
        len += (size_t)snprintf(s + len, cap - len, "nodes=%" PRId64, r->nodes);
        if (r->ppn > 0) {
            len += (size_t)snprintf(s + len, cap - len, ":ppn=%" PRId64, r->ppn);
        }
        if (r->nodes_rest != NULL) {
            len += (size_t)snprintf(s + len, cap - len, "%s", r->nodes_rest);
        }
    }
    if (r->mem > 0) {
        len += (size_t)snprintf(s + len, cap - len, "%smem=%" PRId64 "mb", len ? "," : "",
                                r->mem / (1 << 20) + (r->mem % (1 << 20) != 0));
    }
    for (size_t i = 0; i < r->n; i++) {
        len += (size_t)snprintf(s + len, cap - len, "%s%s%s%s", len ? "," : "", r->name[i],
                                r->value[i][0] ? "=" : "", r->value[i]);
    }
    return s;
}
