/* `fresco qsub`'s command line and job script, read the way Torque's qsub
 * reads them.
 *
 *   fresco qsub [-list] [-gf] [-vm k=v[,k=v]...]... <qsub options> [script]
 *
 * The Torque options (with an argument: -a -A -b -c -C -d -D -e -F -j -k
 * -l -m -M -N -o -p -P -q -r -S -t -u -v -W -w; without: -f -h -I -n -V -x
 * -X -z) are kept in order, as given. The script's directives ("#PBS"
 * lines, or the prefix -C names, up to the first line that is neither blank
 * nor a comment) are read too, including "#PBS -vm ..." lines. The command
 * line wins over the script: -vm keys given on the command line replace the
 * script's, and the script's options are passed before the command line's,
 * so the batch system's last-one-wins rule agrees. */
#ifndef HPC_QSUB_H
#define HPC_QSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/err.h"

#define HPC_MAX_ARG    4096        /* bytes in one argument or directive value */
#define HPC_MAX_SCRIPT (16u << 20) /* bytes of job script read */

typedef struct hpc_opt {
    char letter; /* 'l', 'N', ... */
    char *value; /* NULL for the options without an argument */
    bool from_script;
    int line; /* script line of a directive, 0 on the command line */
} hpc_opt;

typedef struct hpc_qsub {
    bool list, gf;
    hpc_opt *opts; /* script directives first, then the command line */
    size_t nopts;
    char **vm;    /* -vm values: the script's first, then the command line's */
    int *vm_line; /* script line, or 0 */
    size_t nvm;
    char *script;      /* path as given; NULL: read from stdin (Torque's default) */
    char *script_text; /* the script's bytes (NUL-terminated), once read */
    size_t script_len;
    char **argv; /* the arguments as given, without -list/-gf/-vm */
    size_t argc;
} hpc_qsub;

/* Reads the command line (argv[0] is the first argument, not the program).
 * Does not read the script. Errors (FR_EINVAL) name the argument: "-vm needs
 * a value", "unknown option -Q". Free with hpc_qsub_free, also on error. */
int hpc_qsub_parse_args(hpc_qsub *q, int argc, char *const *argv, fr_error *e);

/* Takes the script's text (ownership passes to q; it is NUL-terminated by
 * the caller at text[len]) and reads its directives. e->where is
 * "<script>:<line>". Refuses NUL bytes in directive lines and directives
 * over HPC_MAX_ARG. */
int hpc_qsub_parse_script(hpc_qsub *q, char *text, size_t len, fr_error *e);

/* Reads q->script (or stdin) with the limit, then hpc_qsub_parse_script. */
int hpc_qsub_read_script(hpc_qsub *q, fr_error *e);

/* The last value of option letter (script, then command line), or NULL. */
const char *hpc_qsub_last(const hpc_qsub *q, char letter);

/* Whether letter was given at all. */
bool hpc_qsub_has(const hpc_qsub *q, char letter);

void hpc_qsub_free(hpc_qsub *q);

/* Whether the option takes an argument (1), takes none (0), or is not one
 * of Torque's (-1). */
int hpc_qsub_optkind(char letter);

/* The resources of all -l options, merged (later ones win per name):
 * nodes=N[:ppn=P][:<property>...] or a host list, walltime, mem, and any
 * others kept as they are. */
#define HPC_MAX_RES 32
typedef struct hpc_resources {
    int64_t nodes;    /* 0: not given */
    int64_t ppn;      /* 0: not given */
    char *nodes_rest; /* ":feature" parts after ppn, NULL when none */
    int64_t mem;      /* bytes, 0: not given */
    size_t n;
    char *name[HPC_MAX_RES];
    char *value[HPC_MAX_RES]; /* the others, walltime included, in order */
} hpc_resources;

int hpc_resources_parse(const hpc_qsub *q, hpc_resources *r, fr_error *e);
void hpc_resources_free(hpc_resources *r);
/* Renders r as one -l value ("nodes=2:ppn=4,mem=4096mb,walltime=1:00:00"),
 * malloc'd, or NULL on no memory. */
char *hpc_resources_render(const hpc_resources *r);

/* Torque's memory sizes: "512", "512b", "4kb", "4mb", "2gb", "1tb" (also
 * "w" words of 8 bytes), any case. 0 or FR_EINVAL. */
int hpc_parse_pbs_size(const char *s, int64_t *bytes);

#endif
