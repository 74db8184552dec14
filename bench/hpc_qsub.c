/* hpc_qsub: what `fresco qsub` adds to a submission, against the same real
 * Slurm in the same run.
 *
 * Starts a throwaway Slurm (scripts/slurm-test.sh) and writes a policy
 * (FRESCO_HPC_CONFIG: an image pool with a fake debian-12.qcow2, a spool,
 * host.cores 0, host.ram 0, defaults.ram 128MiB). Then, N rounds (--count,
 * default 50, after one round not counted), each submitting once in every
 * mode, in this order:
 *
 *   qsub        the real qsub: Slurm's Torque wrapper (/usr/bin/qsub) when
 *               installed, else sbatch                     (baseline, plain)
 *   fresco      `fresco qsub job.sh`: reads the script, finds no -vm and
 *               execs the same real qsub (policy key real_qsub)
 *   sbatch      `sbatch --parsable job.sh`                 (baseline, VM)
 *   fresco -vm  `fresco qsub -h -vm vms_per_node=4 job.sh`: checks the
 *               request, writes the job folder with every file of the four
 *               guests (domain XML, cloud-init user-data and meta-data,
 *               NoCloud seed images) and submits the wrapper with sbatch
 *
 * Each figure is the wall time of one command, from spawning it until it
 * has exited, its output read. job.sh holds "#SBATCH --hold" (and fresco's
 * VM jobs get -h), so no job runs while others are timed; each round's
 * jobs are cancelled (scancel, not timed) before the next, so the queue
 * stays as short. Held VM jobs would fail anyway: no fresco-hpc agent runs.
 * Printed: median and p90 per mode, what fresco adds to its baseline, and
 * whether the VM job stays under the goal of 20 ms added.
 *
 *   hpc_qsub [--count N] [--fresco PATH]
 *
 * Needs root and Slurm (slurmctld, slurmd, sbatch, scancel, munged); without
 * them it prints "skipped: ..." and exits 0. Figures are printed, never
 * asserted. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define GOAL_MS 20.0
#define MAX_IDS 8

enum { MODE_QSUB, MODE_FRESCO, MODE_SBATCH, MODE_FRESCO_VM, MODES };

static const char *const mode_names[MODES] = {"qsub", "fresco qsub", "sbatch", "fresco qsub -vm"};

static char dir[256];    /* everything of this run */
static char slurm[320];  /* the Slurm's folder */
static char script[512]; /* scripts/slurm-test.sh */
static bool slurm_up;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The first executable name on PATH (or under the sbin folders, where
 * slurmctld and munged live), into out. */
static bool find_program(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s:/usr/sbin:/sbin:/usr/local/sbin", path != NULL ? path : "");
    char *save = NULL;
    for (char *d = strtok_r(buf, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, len, "%s/%s", d, name);
        if (access(out, X_OK) == 0) {
            return true;
        }
    }
    return false;
}

/* Runs argv; its stdout into out (NUL-terminated, cut at len), stderr into
 * err_path. Returns the exit status (128+signal), -1 when it cannot run;
 * *ms gets the wall time from spawn to exit. */
static int run(char *const argv[], char *out, size_t len, const char *err_path, double *ms)
{
    int p[2];
    if (pipe(p) != 0) {
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    double t0 = now_ms();
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return -1;
    }
    size_t n = 0;
    for (;;) {
        char chunk[4096];
        ssize_t got = read(p[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        size_t take = (size_t)got < len - 1 - n ? (size_t)got : len - 1 - n;
        memcpy(out + n, chunk, take);
        n += take;
    }
    close(p[0]);
    out[n] = '\0';
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (ms != NULL) {
        *ms = now_ms() - t0;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        fprintf(stderr, "  %s", line);
    }
    fclose(f);
}

/* The job id a submission printed: the last run of digits ("Submitted
 * batch job 12", "12", "12;cluster" all give 12). */
static bool job_id(const char *out, char *id, size_t len)
{
    const char *best = NULL;
    size_t best_n = 0;
    for (const char *p = out; *p != '\0';) {
        size_t n = strspn(p, "0123456789");
        if (n > 0) {
            best = p;
            best_n = n;
            p += n;
        } else {
            p++;
        }
        if (n > 0 && *p == ';') {
            break; /* "12;cluster": the cluster name may hold digits */
        }
    }
    if (best == NULL || best_n >= len) {
        return false;
    }
    memcpy(id, best, best_n);
    id[best_n] = '\0';
    return true;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void slurm_stop(void)
{
    if (slurm_up) {
        slurm_up = false;
        char out[256], err[400];
        snprintf(err, sizeof err, "%s/slurm-stop.log", dir);
        char *argv[] = {"bash", script, "stop", slurm, NULL};
        run(argv, out, sizeof out, err, NULL);
    }
    if (dir[0] != '\0') {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
    }
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, mode) != 0) {
        fprintf(stderr, "hpc_qsub: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void make_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) != 0 || chmod(path, mode) != 0) {
        fprintf(stderr, "hpc_qsub: mkdir %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of n sorted values, by the nearest rank. */
static double quantile(const double *v, int n, double q)
{
    int k = (int)(q * n + 0.999999);
    k = k < 1 ? 1 : k > n ? n : k;
    return v[k - 1];
}

/* Regular files under the spool, counted by nftw. */
static size_t counted;
static int count_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)st;
    (void)ftw;
    counted += flag == FTW_F;
    return 0;
}

int main(int argc, char **argv)
{
    int count = 50;
    char fresco[1024];
    snprintf(fresco, sizeof fresco, "%s/services/fresco/fresco", FRESCO_BINARY_DIR);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            count = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--fresco") == 0 && i + 1 < argc) {
            snprintf(fresco, sizeof fresco, "%s", argv[++i]);
        } else {
            fprintf(stderr, "usage: hpc_qsub [--count N] [--fresco PATH]\n");
            return 2;
        }
    }
    if (count < 1) {
        fprintf(stderr, "hpc_qsub: --count must be at least 1\n");
        return 2;
    }
    if (geteuid() != 0) {
        printf("hpc_qsub: skipped: needs root (scripts/slurm-test.sh starts slurmd)\n");
        return 0;
    }
    char sbatch[1024], scancel[1024], qsub[1024], prog[1024];
    static const char *const needed[] = {"slurmctld", "slurmd", "munged", "sinfo"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
        if (!find_program(needed[i], prog, sizeof prog)) {
            printf("hpc_qsub: skipped: Slurm is not installed (no %s)\n", needed[i]);
            return 0;
        }
    }
    if (!find_program("sbatch", sbatch, sizeof sbatch) ||
        !find_program("scancel", scancel, sizeof scancel)) {
        printf("hpc_qsub: skipped: Slurm is not installed (no sbatch or scancel)\n");
        return 0;
    }
    bool have_qsub = access("/usr/bin/qsub", X_OK) == 0;
    snprintf(qsub, sizeof qsub, "%s", have_qsub ? "/usr/bin/qsub" : sbatch);
    if (access(fresco, X_OK) != 0) {
        fprintf(stderr, "hpc_qsub: no fresco command at %s (--fresco PATH)\n", fresco);
        return 1;
    }

    snprintf(dir, sizeof dir, "/tmp/fresco-qsub-bench.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("hpc_qsub: mkdtemp");
        return 1;
    }
    atexit(slurm_stop);
    char path[600], pool[400], spool[400], run_dir[400], job[400], err[400], yaml[8192];
    snprintf(pool, sizeof pool, "%s/images", dir);
    snprintf(spool, sizeof spool, "%s/hpc-spool", dir);
    snprintf(run_dir, sizeof run_dir, "%s/hpc-run", dir);
    snprintf(job, sizeof job, "%s/job.sh", dir);
    snprintf(err, sizeof err, "%s/stderr.log", dir);
    snprintf(slurm, sizeof slurm, "%s/slurm", dir);
    make_dir(pool, 0755);
    make_dir(spool, 01777);
    make_dir(run_dir, 0755);
    snprintf(path, sizeof path, "%s/debian-12.qcow2", pool);
    write_text(path, "not a real image: only submission is measured\n", 0644);
    snprintf(path, sizeof path, "%s/debian-12.qcow2.info", pool);
    write_text(path, "distro: debian\ndescription: test\n", 0644);
    snprintf(yaml, sizeof yaml,
             "image_pool: %s\n"
             "spool: %s\n"
             "run_dir: %s\n"
             "host.cores: 0\n"
             "host.ram: 0\n"
             "defaults.img: debian-12.qcow2\n"
             "defaults.ram: 128MiB\n"
             "backend: slurm\n"
             "real_qsub: %s\n"
             "slurm.sbatch: %s\n"
             "slurm.scancel: %s\n",
             pool, spool, run_dir, qsub, sbatch, scancel);
    snprintf(path, sizeof path, "%s/hpc.yaml", dir);
    write_text(path, yaml, 0644);
    setenv("FRESCO_HPC_CONFIG", path, 1);
    write_text(job,
               "#!/bin/sh\n"
               "#SBATCH --hold\n"
               "#PBS -N fresco-bench\n"
               "#PBS -l walltime=00:05:00\n"
               "hostname\n",
               0755);

    snprintf(script, sizeof script, "%s/scripts/slurm-test.sh", FRESCO_SOURCE_DIR);
    char out[8192];
    char *start[] = {"bash", script, "start", slurm, NULL};
    slurm_up = true; /* stop what a failed start left */
    if (run(start, out, sizeof out, err, NULL) != 0) {
        fprintf(stderr, "hpc_qsub: Slurm did not start:\n%s", out);
        print_file(err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/slurm.conf", slurm);
    setenv("SLURM_CONF", path, 1);

    char *cmds[MODES][8] = {
        {qsub, job, NULL},
        {fresco, "qsub", job, NULL},
        {sbatch, "--parsable", job, NULL},
        {fresco, "qsub", "-h", "-vm", "vms_per_node=4", job, NULL},
    };
    double *ms[MODES];
    for (int m = 0; m < MODES; m++) {
        ms[m] = calloc((size_t)count, sizeof *ms[m]);
        if (ms[m] == NULL) {
            return 1;
        }
    }
    size_t jobs = 0;
    for (int round = -1; round < count; round++) { /* round -1 warms up */
        char ids[MODES][32];
        for (int m = 0; m < MODES; m++) {
            double t;
            int rc = run(cmds[m], out, sizeof out, err, &t);
            if (rc != 0 || !job_id(out, ids[m], sizeof ids[m])) {
                fprintf(stderr, "hpc_qsub: %s failed (exit %d): %s\n", mode_names[m], rc, out);
                print_file(err);
                return 1;
            }
            if (round >= 0) {
                ms[m][round] = t;
            }
            jobs++;
        }
        char *cancel[MODES + 2] = {scancel};
        for (int m = 0; m < MODES; m++) {
            cancel[m + 1] = ids[m];
        }
        cancel[MODES + 1] = NULL;
        if (run(cancel, out, sizeof out, err, NULL) != 0) {
            fprintf(stderr, "hpc_qsub: scancel failed:\n");
            print_file(err);
            return 1;
        }
    }
    /* what one VM job wrote: its job folder in the spool */
    counted = 0;
    nftw(spool, count_file, 16, FTW_PHYS);
    size_t vm_jobs = (size_t)count + 1;

    double med[MODES], p90[MODES];
    for (int m = 0; m < MODES; m++) {
        qsort(ms[m], (size_t)count, sizeof *ms[m], cmp_double);
        med[m] = quantile(ms[m], count, 0.5);
        p90[m] = quantile(ms[m], count, 0.9);
    }
    printf("hpc_qsub: %d submissions per mode (after 1 not counted) to a single-node Slurm, "
           "held and cancelled; wall ms per command; real qsub: %s\n",
           count, qsub);
    printf("  %-34s %9s %9s %12s %12s\n", "", "median", "p90", "added med", "added p90");
    static const char *const labels[MODES] = {
        "qsub (baseline, plain)",
        "fresco qsub, plain (execs qsub)",
        "sbatch (baseline, VM)",
        "fresco qsub -vm vms_per_node=4",
    };
    for (int m = 0; m < MODES; m++) {
        if (m == MODE_FRESCO || m == MODE_FRESCO_VM) {
            printf("  %-34s %9.2f %9.2f %+12.2f %+12.2f\n", labels[m], med[m], p90[m],
                   med[m] - med[m - 1], p90[m] - p90[m - 1]);
        } else {
            printf("  %-34s %9.2f %9.2f\n", labels[m], med[m], p90[m]);
        }
    }
    double added = med[MODE_FRESCO_VM] - med[MODE_SBATCH];
    printf("  VM job: %.1f files per job folder (4 guests: domain XML, user-data, meta-data, "
           "seed image each, plus request, script, job.sh, submit, batch-id)\n",
           (double)counted / (double)vm_jobs);
    printf("  goal: < %.0f ms added for the VM job: %s (%.2f ms added at the median)\n", GOAL_MS,
           added < GOAL_MS ? "met" : "NOT met", added);
    printf("  %zu jobs submitted and cancelled\n", jobs);
    for (int m = 0; m < MODES; m++) {
        free(ms[m]);
    }
    slurm_stop();
    return 0;
}
