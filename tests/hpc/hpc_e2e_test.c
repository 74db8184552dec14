/* Virtualised jobs on a real single-node Slurm (slurmctld, slurmd and munge
 * from Debian, started here through scripts/slurm-test.sh) with Slurm's
 * Prolog and Epilog calling `fresco hpc prologue` / `epilogue`, fresco-hpc
 * as the node's agent (guests on libvirt's test driver, the job script run
 * on the host: booting real guests is the TCG rig's) and fresco-collector
 * for the job's telemetry task:
 *   - a plain job goes to Slurm's own qsub unchanged (PBS_JOBID set);
 *   - a VM job: events queued, running, done in order; the VMs the script
 *     sees; the collector task tagged snapTask-<user>-<id> while it runs and
 *     gone after; node metadata as a job artefact; the node's run folder
 *     removed at the end;
 *   - a failing job and a cancelled one are torn down too, with the exit
 *     code and the state in the events;
 *   - the PBS path: Slurm's qsub wrapper and qstat behind backend: pbs;
 *   - a hostile request never reaches Slurm;
 *   - a workload YAML run end to end into one result folder, and two jobs'
 *     metadata diffed.
 * Needs root (slurmd runs jobs as their users, the agent boots as root). */
#include "testsupport.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fresco/ctl.h"
#include "fresco/event.h"
#include "fresco/mpdoc.h"

static char *tmp;
static char slurm_dir[700], policy[700], fresco_bin[600], script_path[700];
static char hpc_ctl[64], hpc_ev[64];
static tst_service hpc, col;
static fr_event_sub *sub;
static bool have_slurm;
static char host[64];

/* ---- events seen, per job ---- */

#define MAX_SEEN 256
static struct {
    char job[72];
    char state[16];
    int64_t exit_code;
} seen[MAX_SEEN];
static size_t nseen;

static void drain_events(int timeout_ms)
{
    fr_event ev;
    while (fr_event_recv(sub, timeout_ms, &ev) == 0) {
        const char *job = NULL, *state = NULL;
        int64_t code = -1;
        fr_node_get_str(ev.body, "job", &job);
        fr_node_get_str(ev.body, "state", &state);
        fr_node_get_i64(ev.body, "exit_code", &code);
        if (job != NULL && state != NULL && nseen < MAX_SEEN) {
            snprintf(seen[nseen].job, sizeof seen[nseen].job, "%s", job);
            snprintf(seen[nseen].state, sizeof seen[nseen].state, "%s", state);
            seen[nseen].exit_code = code;
            nseen++;
        }
        fr_event_free(&ev);
        timeout_ms = 0;
    }
}

typedef struct want_state {
    const char *job;
    const char *state;
} want_state;

static bool state_seen(void *arg)
{
    want_state *w = arg;
    drain_events(20);
    for (size_t i = 0; i < nseen; i++) {
        if (strcmp(seen[i].job, w->job) == 0 && strcmp(seen[i].state, w->state) == 0) {
            return true;
        }
    }
    return false;
}

/* The states of job, in the order the events came, joined by spaces. */
static void states_of(const char *job, char *out, size_t len, int64_t *last_code)
{
    out[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; i < nseen; i++) {
        if (strcmp(seen[i].job, job) == 0) {
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? " " : "", seen[i].state);
            *last_code = seen[i].exit_code;
        }
    }
}

/* ---- running things ---- */

/* Runs argv (NULL-terminated) with output to a log; returns the exit
 * status and the output in *out. */
static int run(char **out, char *const *argv)
{
    char log[800];
    static int n;
    snprintf(log, sizeof log, "%s/run-%d.log", tmp, ++n);
    pid_t pid = tst_spawn(argv, log);
    int status = tst_stop(pid, 0, 60000);
    *out = tst_slurp(log);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int fresco(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
                  const char *a5, const char *a6, const char *a7)
{
    char *argv[] = {fresco_bin, (char *)a1, (char *)a2, (char *)a3, (char *)a4,
                    (char *)a5, (char *)a6, (char *)a7, NULL};
    return run(out, argv);
}

static bool file_has(const char *path, const char *text)
{
    char *t = tst_slurp(path);
    bool yes = strstr(t, text) != NULL;
    free(t);
    return yes;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void write_or_fail(const char *path, const char *text, mode_t mode)
{
    if (tst_write_file(path, text, strlen(text)) != 0) {
        fail_msg("cannot write %s", path);
    }
    chmod(path, mode);
}

/* The policy and fresco-hpc with it: backend slurm or pbs, control at
 * hpc_ctl. */
static void hpc_up(const char *backend)
{
    char text[4096];
    snprintf(text, sizeof text,
             "control: %s\n"
             "events: %s\n"
             "image_pool: %s/pool\n"
             "spool: %s/spool\n"
             "run_dir: %s/run\n"
             "libvirt: {uri: \"test:///default\"}\n"
             "guest_exec: host\n"
             "fresco_bin: %s\n"
             "poll: 100ms\n"
             "backend: %s\n"
             "host: {cores: 0, ram: 0}\n"
             "defaults: {img: debian-12.qcow2, ram: 128MiB}\n"
             "monitoring:\n"
             "  enabled: true\n"
             "  collector: %s\n"
             "  metrics: [/intel/procfs/meminfo/MemAvailable]\n"
             "  interval: 1s\n"
             "shared_mounts: [\"nfs0:%s %s nfs\"]\n",
             hpc_ctl, hpc_ev, tmp, tmp, tmp, fresco_bin, backend, col.control, tmp, tmp);
    write_or_fail(policy, text, 0644);
    char a1[800];
    snprintf(a1, sizeof a1, "--config=%s", policy);
    const char *extra[] = {a1, NULL};
    tst_service_start_at(&hpc, "hpc", tmp, hpc_ctl, hpc_ev, extra);
    assert_fr_ok(fr_event_sub_open(&sub, hpc_ev, NULL));
    assert_fr_ok(fr_event_subscribe(sub, "hpc/"));
    nseen = 0;
}

static bool slurm_idle(void *arg)
{
    (void)arg;
    char *out = NULL;
    char *sq[] = {"/usr/bin/squeue", "-h", "-t", "CONFIGURING,RUNNING,COMPLETING", NULL};
    int rc = run(&out, sq);
    bool idle = rc == 0 && out[0] == '\0';
    free(out);
    return idle;
}

/* Stops fresco-hpc once Slurm's epilogues (which call it) are through. */
static void hpc_down(void)
{
    if (!tst_wait_until(slurm_idle, NULL, 30000)) {
        fprintf(stderr, "hpc_down: Slurm still has jobs running or completing\n");
    }
    fr_event_sub_close(sub);
    sub = NULL;
    tst_service_stop(&hpc, 15000);
}

static int group_setup(void **st)
{
    (void)st;
    char bin[600];
    have_slurm = getuid() == 0 && access("/usr/sbin/slurmctld", X_OK) == 0 &&
                 access("/usr/sbin/slurmd", X_OK) == 0;
    if (!have_slurm) {
        return 0;
    }
    tmp = tst_tmpdir("fresco-hpc-e2e");
    chmod(tmp, 0755);
    gethostname(host, sizeof host);
    host[strcspn(host, ".")] = '\0';
    snprintf(fresco_bin, sizeof fresco_bin, "%s",
             tst_bin(bin, sizeof bin, "services/fresco/fresco"));
    snprintf(policy, sizeof policy, "%s/hpc.yaml", tmp);
    snprintf(slurm_dir, sizeof slurm_dir, "%s/slurm", tmp);
    snprintf(hpc_ctl, sizeof hpc_ctl, "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(hpc_ev, sizeof hpc_ev, "tcp://127.0.0.1:%d", tst_free_port());
    char p[900];
    snprintf(p, sizeof p, "%s/pool", tmp);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/pool/debian-12.qcow2", tmp);
    write_or_fail(p, "qcow2 test image", 0644);
    snprintf(p, sizeof p, "%s/spool", tmp);
    mkdir(p, 01777);
    /* the batch system's hooks: as an admin would install them */
    char hook[2000];
    snprintf(p, sizeof p, "%s/prolog.sh", tmp);
    snprintf(hook, sizeof hook, "#!/bin/sh\nFRESCO_HPC_CONFIG=%s exec %s hpc prologue\n", policy,
             fresco_bin);
    write_or_fail(p, hook, 0755);
    char epi[900];
    snprintf(epi, sizeof epi, "%s/epilog.sh", tmp);
    snprintf(hook, sizeof hook, "#!/bin/sh\nFRESCO_HPC_CONFIG=%s exec %s hpc epilogue\n", policy,
             fresco_bin);
    write_or_fail(epi, hook, 0755);
    char script[900];
    char *out = NULL;
    char *argv[] = {(char *)tst_src(script, sizeof script, "scripts/slurm-test.sh"),
                    "start",
                    slurm_dir,
                    p,
                    epi,
                    NULL};
    if (run(&out, argv) != 0) {
        fail_msg("Slurm did not start:\n%s", out);
    }
    free(out);
    snprintf(p, sizeof p, "%s/slurm.conf", slurm_dir);
    setenv("SLURM_CONF", p, 1);
    setenv("FRESCO_HPC_CONFIG", policy, 1);
    /* the collector the job's telemetry task goes to */
    char sd[800];
    snprintf(sd, sizeof sd, "--state_dir=%s/collector", tmp);
    const char *ce[] = {sd, "--processors=", "--publishers=", NULL};
    tst_service_start(&col, "collector", tmp, ce);
    snprintf(script_path, sizeof script_path, "%s/job.sh", tmp);
    return 0;
}

static int group_teardown(void **st)
{
    (void)st;
    if (!have_slurm) {
        return 0;
    }
    tst_service_stop(&col, 10000);
    char script[900], *out = NULL;
    char *argv[] = {(char *)tst_src(script, sizeof script, "scripts/slurm-test.sh"), "stop",
                    slurm_dir, NULL};
    run(&out, argv);
    free(out);
    if (getenv("FRESCO_TEST_KEEP") == NULL) { /* set it to look at the logs */
        tst_rmtree(tmp);
    }
    free(tmp);
    return 0;
}

static int setup_slurm(void **st)
{
    (void)st;
    if (!have_slurm) {
        skip();
    }
    hpc_up("slurm");
    return 0;
}

static char tcp_ctl[64];

/* fresco-hpc on an ipc:// control socket, where callers are known. */
static int setup_ipc(void **st)
{
    (void)st;
    if (!have_slurm || access("/usr/sbin/runuser", X_OK) != 0) {
        skip();
    }
    snprintf(tcp_ctl, sizeof tcp_ctl, "%s", hpc_ctl);
    snprintf(hpc_ctl, sizeof hpc_ctl, "ipc://%s/hpc.sock", tmp);
    hpc_up("slurm");
    return 0;
}

static int teardown_ipc(void **st)
{
    (void)st;
    hpc_down();
    snprintf(hpc_ctl, sizeof hpc_ctl, "%s", tcp_ctl);
    return 0;
}

static int setup_pbs(void **st)
{
    (void)st;
    if (!have_slurm || access("/usr/bin/qstat", X_OK) != 0) {
        skip();
    }
    hpc_up("pbs");
    return 0;
}

static int teardown_hpc(void **st)
{
    (void)st;
    if (have_slurm) {
        hpc_down();
    }
    return 0;
}

/* The job script: prints what it sees, waits for go-<tag> when told to,
 * exits with code. */
static void job_script(const char *tag, bool wait_go, int code)
{
    char text[2000];
    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "echo \"job=$PBS_JOBID vms=$FRESCO_VMS dir=$FRESCO_JOB_DIR\"\n"
             "%s%s%s"
             "exit %d\n",
             wait_go ? "while [ ! -e " : "", wait_go ? tmp : "",
             wait_go ? "/go ]; do sleep 0.05; done\n" : "", code);
    (void)tag;
    write_or_fail(script_path, text, 0755);
    char go[800];
    snprintf(go, sizeof go, "%s/go", tmp);
    unlink(go);
}

/* Submits with fresco qsub; the batch id (first line of the output). */
/* Submits with fresco qsub (held, -h, when hold); the batch id (first line
 * of the output). */
static void submit_as(char *id, size_t len, const char *out_file, const char *vm, bool hold)
{
    char *argv[10] = {fresco_bin, "qsub"};
    int n = 2;
    if (hold) {
        argv[n++] = "-h";
    }
    argv[n++] = "-o";
    argv[n++] = (char *)out_file;
    if (vm != NULL) {
        argv[n++] = "-vm";
        argv[n++] = (char *)vm;
    }
    argv[n++] = script_path;
    argv[n] = NULL;
    char *out = NULL;
    int rc = run(&out, argv);
    if (rc != 0) {
        fail_msg("fresco qsub -> %d:\n%s", rc, out);
    }
    snprintf(id, len, "%s", out);
    id[strcspn(id, "\r\n.")] = '\0';
    free(out);
    assert_true(id[0] >= '0' && id[0] <= '9');
}

static void submit(char *id, size_t len, const char *out_file, const char *vm)
{
    submit_as(id, len, out_file, vm, false);
}

typedef struct has_text {
    const char *path, *text;
} has_text;

static bool path_has(void *arg)
{
    has_text *h = arg;
    return file_has(h->path, h->text);
}

static bool collector_has_task(void *arg)
{
    char *out = NULL;
    char addr[128];
    snprintf(addr, sizeof addr, "--collector=%s", col.control);
    fresco(&out, addr, "task", "list", NULL, NULL, NULL, NULL);
    bool yes = strstr(out, (const char *)arg) != NULL;
    free(out);
    return yes;
}

static bool collector_lacks_task(void *arg)
{
    return !collector_has_task(arg);
}

static uint64_t hpc_counter(const char *name)
{
    fr_ctl_result res;
    uint64_t v = 0;
    if (fr_ctl_call(hpc.cli, "stats", NULL, 0, 5000, &res) == 0) {
        fr_node_get_u64(fr_node_get(res.result, "counters"), name, &v);
    }
    fr_ctl_result_free(&res);
    return v;
}

/* A wait that, when it runs out, shows what Slurm and fresco-hpc saw. */
#define wait_for(cond, arg, ms) wait_or_dump(cond, arg, ms, #cond, __LINE__)
static void wait_or_dump(bool (*cond)(void *), void *arg, int ms, const char *what, int line)
{
    if (tst_wait_until(cond, arg, ms)) {
        return;
    }
    char *out = NULL, p[900];
    char *sinfo[] = {"/usr/bin/sinfo", "-R", NULL};
    run(&out, sinfo);
    fprintf(stderr, "--- sinfo -R:\n%s", out);
    free(out);
    char *squeue[] = {"/usr/bin/squeue", "-a", NULL};
    run(&out, squeue);
    fprintf(stderr, "--- squeue:\n%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/slurm/log/slurmd.log", tmp);
    out = tst_slurp(p);
    size_t n = strlen(out);
    fprintf(stderr, "--- slurmd.log (end):\n%s\n", out + (n > 3000 ? n - 3000 : 0));
    free(out);
    out = tst_slurp(hpc.log);
    n = strlen(out);
    fprintf(stderr, "--- %s (end):\n%s\n", hpc.log, out + (n > 3000 ? n - 3000 : 0));
    free(out);
    fail_msg("line %d: %s did not happen within %d ms", line, what, ms);
}

/* The job folder the script saw (FRESCO_JOB_DIR). */
static void job_dir_of(const char *out_file, char *dir, size_t len)
{
    char *text = tst_slurp(out_file);
    const char *d = strstr(text, "dir=");
    if (d == NULL) {
        fail_msg("%s: no dir= in:\n%s", out_file, text);
    }
    snprintf(dir, len, "%s", d + 4);
    dir[strcspn(dir, "\n")] = '\0';
    free(text);
}

/* ---- tests ---- */

static void test_plain_job_unchanged(void **st)
{
    (void)st;
    job_script("plain", false, 0);
    char out_file[800], id[72];
    snprintf(out_file, sizeof out_file, "%s/plain.out", tmp);
    submit(id, sizeof id, out_file, NULL);
    char want[128];
    snprintf(want, sizeof want, "job=%s", id);
    has_text h = {out_file, want};
    wait_for(path_has, &h, 60000);
    /* not a VM job: no VMs, no job folder of fresco's */
    assert_true(file_has(out_file, "vms= dir=\n"));
    char p[900];
    snprintf(p, sizeof p, "%s/run/%s", tmp, id);
    assert_false(exists(p));
}

static void test_vm_job_end_to_end(void **st)
{
    (void)st;
    job_script("vm", true, 0);
    char out_file[800], id[72];
    snprintf(out_file, sizeof out_file, "%s/vm.out", tmp);
    submit(id, sizeof id, out_file, "vms_per_node=2,vcpus=1");
    want_state running = {id, "running"};
    wait_for(state_seen, &running, 60000);
    /* while it runs: the VMs, the node's run folder, the telemetry task */
    char vms[200];
    snprintf(vms, sizeof vms, "vms=v%s-0 v%s-1 dir=", host, host);
    has_text h = {out_file, vms};
    wait_for(path_has, &h, 30000);
    char rdir[900];
    snprintf(rdir, sizeof rdir, "%s/run/%s", tmp, id);
    assert_true(exists(rdir));
    char tag[128];
    snprintf(tag, sizeof tag, "snapTask-root-%s", id);
    wait_for(collector_has_task, tag, 20000);
    /* the job ends */
    char go[800];
    snprintf(go, sizeof go, "%s/go", tmp);
    write_or_fail(go, "", 0644);
    want_state done = {id, "done"};
    wait_for(state_seen, &done, 60000);
    char states[256];
    int64_t code = -1;
    states_of(id, states, sizeof states, &code);
    assert_string_equal(states, "queued running done");
    assert_int_equal(code, 0);
    /* torn down: run folder, telemetry task */
    wait_for(collector_lacks_task, tag, 20000);
    assert_false(exists(rdir));
    assert_true(hpc_counter("hpc.jobends") >= 1);
    /* the node metadata, merged into the job's artefact */
    char jdir[800];
    job_dir_of(out_file, jdir, sizeof jdir);
    char meta[900], want[128];
    snprintf(meta, sizeof meta, "%s/metadata.json", jdir);
    snprintf(want, sizeof want, "\"%s\"", host);
    assert_true(file_has(meta, want));
    assert_true(file_has(meta, "\"processes\""));
    assert_true(file_has(meta, "\"packages\""));
    /* the node's own document, which the agent wrote */
    snprintf(meta, sizeof meta, "%s/metadata/%s.json", jdir, host);
    assert_true(file_has(meta, "\"versions\""));
}

/* The job folder is the user's: a symlink planted in it does not make the
 * root agent write elsewhere. The job is held while the trap is set. */
static void test_agent_follows_no_symlink(void **st)
{
    (void)st;
    job_script("trap", false, 0);
    char elsewhere[800];
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", tmp);
    mkdir(elsewhere, 0755);
    char *out = NULL, out_file[800];
    snprintf(out_file, sizeof out_file, "%s/trap.out", tmp);
    char id[72];
    submit_as(id, sizeof id, out_file, "vms_per_node=1", true);
    int rc;
    /* the newest job folder is this job's */
    char jdir[1600] = "", p[1000];
    snprintf(p, sizeof p, "%s/spool", tmp);
    DIR *d = opendir(p);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char f[1400];
        snprintf(f, sizeof f, "%s/%s/batch-id", p, de->d_name);
        if (de->d_name[0] != '.' && file_has(f, id)) {
            snprintf(jdir, sizeof jdir, "%s/%s", p, de->d_name);
        }
    }
    closedir(d);
    assert_true(jdir[0] != '\0');
    char link[1700];
    snprintf(link, sizeof link, "%s/metadata", jdir);
    assert_int_equal(symlink(elsewhere, link), 0);
    char *rel[] = {"/usr/bin/scontrol", "release", id, NULL};
    rc = run(&out, rel);
    if (rc != 0) {
        fail_msg("scontrol release %s: %s", id, out);
    }
    free(out);
    want_state done = {id, "done"};
    wait_for(state_seen, &done, 60000);
    snprintf(p, sizeof p, "%s/%s.json", elsewhere, host);
    assert_false(exists(p));
    /* the agent said why it wrote nothing; the job itself still ran */
    assert_true(file_has(hpc.log, "metadata/: "));
    assert_true(file_has(out_file, "vms=v"));
}

/* A job that fails is torn down, and the event says failed with its code. */
static void test_failed_job_torn_down(void **st)
{
    (void)st;
    job_script("fail", false, 3);
    char out_file[800], id[72];
    snprintf(out_file, sizeof out_file, "%s/fail.out", tmp);
    submit(id, sizeof id, out_file, "vms_per_node=1");
    want_state failed = {id, "failed"};
    wait_for(state_seen, &failed, 60000);
    char states[256];
    int64_t code = -1;
    states_of(id, states, sizeof states, &code);
    assert_string_equal(states, "queued running failed");
    assert_int_equal(code, 3);
    char rdir[900];
    snprintf(rdir, sizeof rdir, "%s/run/%s", tmp, id);
    assert_false(exists(rdir));
    char tag[128];
    snprintf(tag, sizeof tag, "snapTask-root-%s", id);
    wait_for(collector_lacks_task, tag, 20000);
}

typedef struct gone_arg {
    const char *path;
} gone_arg;

static bool path_gone(void *arg)
{
    return !exists(((gone_arg *)arg)->path);
}

static bool status_cancelled(void *arg)
{
    char *out = NULL;
    int rc = fresco(&out, "hpc", "status", (const char *)arg, NULL, NULL, NULL, NULL);
    bool yes = rc == 0 && strstr(out, "CANCELLED") != NULL && strstr(out, "failed") != NULL;
    free(out);
    return yes;
}

static bool slurm_cancelled(void *arg)
{
    char *out = NULL;
    char *sq[] = {"/usr/bin/scontrol", "show", "job", (char *)arg, NULL};
    run(&out, sq);
    bool yes = strstr(out, "JobState=CANCELLED") != NULL;
    free(out);
    return yes;
}

static bool wait_until_cancelled(const char *id)
{
    return tst_wait_until(slurm_cancelled, (void *)id, 30000);
}

/* fresco hpc cancel: Slurm kills the job, the epilogue tears down. */
static void test_cancelled_job_torn_down(void **st)
{
    (void)st;
    job_script("cancel", true, 0);
    char out_file[800], id[72];
    snprintf(out_file, sizeof out_file, "%s/cancel.out", tmp);
    submit(id, sizeof id, out_file, "vms_per_node=2");
    want_state running = {id, "running"};
    wait_for(state_seen, &running, 60000);
    char rdir[900];
    snprintf(rdir, sizeof rdir, "%s/run/%s", tmp, id);
    has_text h = {out_file, "vms=v"};
    wait_for(path_has, &h, 30000);
    assert_true(exists(rdir));
    char *out = NULL;
    int rc = fresco(&out, "hpc", "cancel", id, NULL, NULL, NULL, NULL);
    if (rc != 0) {
        fail_msg("fresco hpc cancel %s -> %d: %s", id, rc, out);
    }
    free(out);
    want_state failed = {id, "failed"};
    wait_for(state_seen, &failed, 60000);
    gone_arg g = {rdir};
    wait_for(path_gone, &g, 30000);
    char tag[128];
    snprintf(tag, sizeof tag, "snapTask-root-%s", id);
    wait_for(collector_lacks_task, tag, 20000);
    /* hpc status says what Slurm says, once Slurm is through with it */
    wait_for(status_cancelled, id, 30000);
}

/* backend: pbs: submitted through Slurm's qsub wrapper, states from its
 * qstat; the VMs come and go the same way. */
static void test_pbs_backend(void **st)
{
    (void)st;
    job_script("pbs", false, 0);
    char out_file[800], id[72];
    snprintf(out_file, sizeof out_file, "%s/pbs.out", tmp);
    submit(id, sizeof id, out_file, "vms_per_node=1");
    want_state done = {id, "done"};
    wait_for(state_seen, &done, 60000);
    char want[200];
    snprintf(want, sizeof want, "job=%s", id);
    has_text h = {out_file, want};
    wait_for(path_has, &h, 30000);
    snprintf(want, sizeof want, "vms=v%s-0 ", host);
    assert_true(file_has(out_file, want));
    char p[900];
    snprintf(p, sizeof p, "%s/%s/submit", tmp, "spool");
    char rdir[900];
    snprintf(rdir, sizeof rdir, "%s/run/%s", tmp, id);
    assert_false(exists(rdir));
}

static size_t count_of(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(text, what); p != NULL; p = strstr(p + 1, what)) {
        n++;
    }
    return n;
}

static size_t spool_entries(void)
{
    char p[900];
    snprintf(p, sizeof p, "%s/spool", tmp);
    size_t n = 0;
    DIR *d = opendir(p);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        n += de->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* A hostile request is refused by fresco qsub: exit 1, the key named,
 * nothing in the spool, nothing new in Slurm, nothing run. */
static void test_hostile_request_never_submitted(void **st)
{
    (void)st;
    job_script("hostile", false, 0);
    size_t before = spool_entries();
    char *out = NULL;
    /* every job Slurm knows, ended ones too (MinJobAge keeps them) */
    char *argv[] = {"/usr/bin/scontrol", "-o", "show", "jobs", NULL};
    run(&out, argv);
    size_t jobs_before = count_of(out, "JobId=");
    free(out);
    char marker[800], vm[900];
    snprintf(marker, sizeof marker, "%s/pwned", tmp);
    snprintf(vm, sizeof vm, "img=$(touch %s)", marker);
    int rc = fresco(&out, "qsub", "-vm", vm, script_path, NULL, NULL, NULL);
    assert_int_equal(rc, 1);
    if (strstr(out, "key 'img'") == NULL || strstr(out, "nothing was submitted") == NULL) {
        fail_msg("fresco qsub said:\n%s", out);
    }
    free(out);
    rc = fresco(&out, "qsub", "-vm", "vcpus=2,uid=0", script_path, NULL, NULL, NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "uid"));
    free(out);
    assert_int_equal(spool_entries(), before);
    assert_false(exists(marker));
    /* the ops read their arguments strictly */
    fr_buf a = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &a, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "1", 1);
    msgpack_pack_str_with_body(&pk, "exit_cod", 8);
    msgpack_pack_int(&pk, 0);
    fr_ctl_result res;
    assert_int_equal(fr_ctl_call(hpc.cli, "hpc.jobend", a.data, a.len, 10000, &res), FR_EREMOTE);
    assert_non_null(strstr(res.error_message, "exit_cod"));
    fr_ctl_result_free(&res);
    fr_buf_reset(&a);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "../../etc", 9);
    assert_int_equal(fr_ctl_call(hpc.cli, "hpc.jobend", a.data, a.len, 10000, &res), FR_EREMOTE);
    assert_string_equal(res.error_where, "id");
    fr_ctl_result_free(&res);
    fr_buf_free(&a);
    run(&out, argv);
    assert_int_equal(count_of(out, "JobId="), jobs_before);
    free(out);
}

/* A workload YAML end to end; then two jobs' metadata diffed. */
static void test_workload_and_metadata_diff(void **st)
{
    (void)st;
    job_script("workload", false, 0);
    char wl[800], text[2000], result[800];
    snprintf(wl, sizeof wl, "%s/workload.yaml", tmp);
    snprintf(result, sizeof result, "%s/result", tmp);
    snprintf(text, sizeof text,
             "workload:\n"
             "  name: e2e-experiment\n"
             "  params:\n"
             "    job_script_name: job.sh\n"
             "    experiment_dir: %s\n"
             "    qsub_number_of_nodes: 1\n"
             "    qsub_number_of_processes_per_node: 1\n"
             "  vTorque:\n"
             "    IMG: debian-12.qcow2\n"
             "    VCPUS: 1\n"
             "    VMS_PER_NODE: 1\n",
             tmp);
    write_or_fail(wl, text, 0644);
    char *out = NULL;
    int rc = fresco(&out, "hpc", "workload", "run", "-o", result, wl, NULL);
    if (rc != 0) {
        fail_msg("workload run -> %d:\n%s", rc, out);
    }
    free(out);
    char p[900];
    snprintf(p, sizeof p, "%s/job", result);
    assert_true(file_has(p, "state: done"));
    assert_true(file_has(p, "telemetry_tag: snapTask-root-"));
    snprintf(p, sizeof p, "%s/job.out", result);
    assert_true(file_has(p, "vms=v"));
    char meta_a[900];
    snprintf(meta_a, sizeof meta_a, "%s/metadata.json", result);
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", host);
    assert_true(file_has(meta_a, want));
    snprintf(p, sizeof p, "%s/request", result);
    assert_true(file_has(p, "img="));
    /* a second job on the same node: its metadata differs from the first
     * at least in the job's environment */
    char out_file[800], id[72];
    snprintf(out_file, sizeof out_file, "%s/second.out", tmp);
    submit(id, sizeof id, out_file, "vms_per_node=1");
    want_state done = {id, "done"};
    wait_for(state_seen, &done, 60000);
    char jdir[800], meta_b[900];
    job_dir_of(out_file, jdir, sizeof jdir);
    snprintf(meta_b, sizeof meta_b, "%s/metadata.json", jdir);
    rc = fresco(&out, "hpc", "metadata", "diff", meta_a, meta_b, NULL, NULL);
    assert_int_equal(rc, 1);
    if (strstr(out, "env: changed SLURM_JOB_ID") == NULL || strstr(out, "difference") == NULL) {
        fail_msg("diff:\n%s", out);
    }
    free(out);
    rc = fresco(&out, "hpc", "metadata", "diff", meta_a, meta_a, NULL, NULL);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "0 differences"));
    free(out);
}

/* Over ipc:// the agent knows who calls: another user cannot cancel,
 * start or end a job that is not theirs, nor name a folder outside
 * run_dir with an id like "../victim"; root can. */
static void test_ipc_callers_checked(void **st)
{
    (void)st;
    job_script("ipc", false, 0);
    char *out = NULL, out_file[800];
    snprintf(out_file, sizeof out_file, "%s/ipc.out", tmp);
    char id[72];
    submit_as(id, sizeof id, out_file, "vms_per_node=1", true);
    int rc;
    /* a copy of fresco that nobody can run, wherever the build is */
    char copy[800];
    snprintf(copy, sizeof copy, "%s/fresco-copy", tmp);
    char *cp[] = {"/bin/cp", fresco_bin, copy, NULL};
    assert_int_equal(run(&out, cp), 0);
    free(out);
    chmod(copy, 0755);
    char victim[800], keep[900];
    snprintf(victim, sizeof victim, "%s/victim", tmp);
    mkdir(victim, 0755);
    snprintf(keep, sizeof keep, "%s/keep", victim);
    write_or_fail(keep, "mine", 0644);
    char addr[128];
    snprintf(addr, sizeof addr, "--hpc=%s", hpc_ctl);
    const char *as_nobody[][3] = {
        {"cancel", id, "another user's"},
        {"epilogue", id, "may not act on job"},
        {"prologue", id, "may not act on job"},
        {"epilogue", "../victim", "not a job id"},
    };
    for (size_t i = 0; i < sizeof as_nobody / sizeof as_nobody[0]; i++) {
        char *argv[] = {"/usr/sbin/runuser",
                        "-u",
                        "nobody",
                        "--",
                        copy,
                        addr,
                        "hpc",
                        (char *)as_nobody[i][0],
                        (char *)as_nobody[i][1],
                        NULL};
        run(&out, argv);
        if (strstr(out, as_nobody[i][2]) == NULL) {
            fail_msg("nobody: fresco hpc %s %s said:\n%s", as_nobody[i][0], as_nobody[i][1], out);
        }
        free(out);
    }
    assert_true(file_has(keep, "mine"));
    char *sq[] = {"/usr/bin/squeue", "-h", "-j", id, "-o", "%T", NULL};
    run(&out, sq);
    assert_non_null(strstr(out, "PENDING"));
    free(out);
    /* root may */
    rc = fresco(&out, addr, "hpc", "cancel", id, NULL, NULL, NULL);
    if (rc != 0) {
        fail_msg("root: fresco hpc cancel %s -> %d: %s", id, rc, out);
    }
    free(out);
    assert_true(wait_until_cancelled(id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_job_unchanged, setup_slurm, teardown_hpc),
        cmocka_unit_test_setup_teardown(test_vm_job_end_to_end, setup_slurm, teardown_hpc),
        cmocka_unit_test_setup_teardown(test_agent_follows_no_symlink, setup_slurm, teardown_hpc),
        cmocka_unit_test_setup_teardown(test_failed_job_torn_down, setup_slurm, teardown_hpc),
        cmocka_unit_test_setup_teardown(test_cancelled_job_torn_down, setup_slurm, teardown_hpc),
        cmocka_unit_test_setup_teardown(test_pbs_backend, setup_pbs, teardown_hpc),
        cmocka_unit_test_setup_teardown(test_ipc_callers_checked, setup_ipc, teardown_ipc),
        cmocka_unit_test_setup_teardown(test_hostile_request_never_submitted, setup_slurm,
                                        teardown_hpc),
        cmocka_unit_test_setup_teardown(test_workload_and_metadata_diff, setup_slurm, teardown_hpc),
    };
    return cmocka_run_group_tests_name("hpc_e2e", tests, group_setup, group_teardown);
}
