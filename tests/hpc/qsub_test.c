/* `fresco qsub`'s reading and checking, through hpc_submit with -gf (every
 * file written, nothing submitted): hostile -vm values refused before any
 * file is left behind, with the key and what is allowed named; values that
 * are allowed but dangerous (the job environment, job names, paths with
 * quotes) rendered harmless, proved by a real shell and libyaml reading
 * back exactly what went in; #PBS directives and the command line's
 * precedence; ppn and memory raised to fit the VMs; admin switches. */
#include "testsupport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yaml.h>

#include "fresco/err.h"
#include "gen.h"
#include "job.h"
#include "policy.h"
#include "qsub.h"
#include "vmspec.h"

static char *tmp;
static char pool[700], script[700], marker[700], policy_path[700];
static hpc_conf conf;
static int gf_seq;

static void write_or_fail(const char *path, const char *text)
{
    if (tst_write_file(path, text, strlen(text)) != 0) {
        fail_msg("cannot write %s", path);
    }
}

/* The policy: defaults, then the suite's file, then extra YAML lines. */
static void load_policy(const char *extra)
{
    fr_config_free(&hpc_spec, &conf);
    memset(&conf, 0, sizeof conf);
    char text[4096];
    snprintf(text, sizeof text,
             "image_pool: %s\n"
             "spool: %s/spool\n"
             "run_dir: %s/run\n"
             "host: {cores: 1, ram: 1GiB}\n"
             "max_vms_per_node: 4\n"
             "metadata:\n  whitelist: [packages, timezone]\n"
             "defaults: {img: debian-12.qcow2, ram: 256MiB}\n"
             "%s",
             pool, tmp, tmp, extra ? extra : "");
    write_or_fail(policy_path, text);
    fr_error e;
    fr_error_clear(&e);
    if (hpc_conf_load_file(&conf, policy_path, &e) != 0) {
        fail_msg("policy: %s: %s\n%s", e.where, e.message, text);
    }
}

static int setup(void **st)
{
    (void)st;
    tmp = tst_tmpdir("fresco-qsub-test");
    snprintf(pool, sizeof pool, "%s/pool", tmp);
    snprintf(script, sizeof script, "%s/job.sh", tmp);
    snprintf(marker, sizeof marker, "%s/pwned", tmp);
    snprintf(policy_path, sizeof policy_path, "%s/hpc.yaml", tmp);
    char p[800];
    mkdir(pool, 0755);
    snprintf(p, sizeof p, "%s/spool", tmp);
    mkdir(p, 01777);
    snprintf(p, sizeof p, "%s/debian-12.qcow2", pool);
    write_or_fail(p, "QFI\xfb fake image");
    snprintf(p, sizeof p, "%s/osv-hpc.img", pool);
    write_or_fail(p, "raw osv image");
    /* a file outside the pool and a symlink in the pool pointing at it */
    snprintf(p, sizeof p, "%s/outside.qcow2", tmp);
    write_or_fail(p, "secret");
    char link[800];
    snprintf(link, sizeof link, "%s/evil.qcow2", pool);
    if (symlink(p, link) != 0) {
        fail_msg("symlink: %s", strerror(errno));
    }
    write_or_fail(script, "#!/bin/sh\necho hi\n");
    memset(&conf, 0, sizeof conf);
    load_policy(NULL);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    fr_config_free(&hpc_spec, &conf);
    memset(&conf, 0, sizeof conf);
    tst_rmtree(tmp);
    free(tmp);
    return 0;
}

static const hpc_ident root_id = {0, 0, "root", "root"};
static const hpc_ident nobody_id = {65534, 65534, "nobody", "nogroup"};

/* hpc_submit with -gf into a fresh folder; gf receives its path. */
static int gf_submit(const hpc_ident *who, char *const *args, int n, char *gf, size_t gflen,
                     hpc_submit_result *res, fr_error *e)
{
    snprintf(gf, gflen, "%s/gf-%d", tmp, ++gf_seq);
    char *argv[64] = {"-gf"};
    int k = 1;
    for (int i = 0; i < n && k < 62; i++) {
        argv[k++] = args[i];
    }
    argv[k++] = script;
    argv[k] = NULL;
    fr_error_clear(e);
    return hpc_submit(&conf, k, argv, who, gf, res, e);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

typedef struct hostile {
    const char *vm;    /* the -vm value */
    const char *where; /* e.where must contain this */
    const char *says;  /* and e.message this */
} hostile;

static void refuse_all(const hpc_ident *who, const hostile *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char gf[800];
        hpc_submit_result res;
        fr_error e;
        char *args[] = {"-vm", (char *)cases[i].vm};
        int rv = gf_submit(who, args, 2, gf, sizeof gf, &res, &e);
        if (rv == 0) {
            fail_msg("-vm '%s' was accepted (%zu files in %s)", cases[i].vm, res.files, res.dir);
        }
        /* the key is named where, or in the message ("key 'img': ...") */
        bool named =
            strstr(e.where, cases[i].where) != NULL || strstr(e.message, cases[i].where) != NULL;
        if (!named || strstr(e.message, cases[i].says) == NULL) {
            fail_msg("-vm '%s': refused as '%s: %s', wanted '%s' and '%s'", cases[i].vm, e.where,
                     e.message, cases[i].where, cases[i].says);
        }
        /* nothing generated, nothing left behind, nothing ran */
        assert_false(exists(gf));
        assert_false(exists(marker));
    }
}

static void test_hostile_vm_values_refused(void **st)
{
    (void)st;
    char big[6000];
    memset(big, 'a', sizeof big - 1);
    memcpy(big, "img=", 4);
    big[sizeof big - 1] = '\0';
    char cmd_subst[900], backticks[900], semi[900];
    snprintf(cmd_subst, sizeof cmd_subst, "img=$(touch %s)", marker);
    snprintf(backticks, sizeof backticks, "img=`touch %s`", marker);
    snprintf(semi, sizeof semi, "img=x.qcow2;touch %s", marker);
    char outside[900];
    snprintf(outside, sizeof outside, "img=%s/outside.qcow2", tmp);
    const hostile cases[] = {
        {cmd_subst, "img", "allowed"},
        {backticks, "img", "allowed"},
        {semi, "img", "allowed"},
        {"img=a'b.qcow2", "img", "allowed"},
        {"img=a\"b.qcow2", "img", "allowed"},
        {"img=a\nb.qcow2", "img", "allowed"},
        {"img=a b.qcow2", "img", "allowed"},
        {"img=../outside.qcow2", "img", ".."},
        {"img=../../../../etc/passwd", "img", ".."},
        {"img=/etc/passwd", "img", "allowed"},
        {outside, "img", "pool"},
        {"img=evil.qcow2", "img", "pool"},
        {"img=\xff\xfe.qcow2", "img", "allowed"},
        {big, "img", ""},
        {"uid=0", "uid", "cannot choose"},
        {"user=root", "user", "cannot choose"},
        {"gid=0", "gid", "cannot choose"},
        {"colour=red", "colour", "unknown"},
        {"vcpus=1;reboot", "vcpus", "1;reboot"},
        {"vcpus=0", "vcpus", "0"},
        {"vcpus=-1", "vcpus", "-1"},
        {"ram=lots", "ram", "lots"},
        {"vms_per_node=9", "vms_per_node", "4"},
        {"distro=windows", "distro", "debian"},
        {"arch=sparc", "arch", "x86_64"},
        {"hypervisor=xen", "hypervisor", "kvm"},
        {"vrdma=true", "vrdma", "disabled vRDMA"},
        {"iocm=true", "iocm", "disabled"},
        {"fs_type=tmpfs", "fs_type", "ramdisk"},
        {"vcpu_pinning=maybe", "vcpu_pinning", "maybe"},
        {"vm_prologue=$(id)", "vm_prologue", "allowed"},
        {"disk=/dev/../etc/shadow", "disk", ".."},
        {"img", "img", "="},
        {"=1", "-vm", ""},
    };
    refuse_all(&root_id, cases, sizeof cases / sizeof cases[0]);
}

/* Files a user names are read by the root agent: a user cannot point at
 * what they themselves cannot read, nor boot an image from outside the pool
 * even when user images are allowed but unreadable to them. */
static void test_user_files_checked_against_the_user(void **st)
{
    (void)st;
    char secret[800], vm_disk[900], vm_pro[900], vm_img[900];
    snprintf(secret, sizeof secret, "%s/secret.qcow2", tmp);
    write_or_fail(secret, "root only");
    chmod(secret, 0600);
    chmod(tmp, 0755);
    snprintf(vm_disk, sizeof vm_disk, "disk=%s", secret);
    snprintf(vm_pro, sizeof vm_pro, "vm_prologue=%s", secret);
    snprintf(vm_img, sizeof vm_img, "img=%s", secret);
    const hostile off[] = {
        {vm_disk, "disk", "read"},
        {vm_pro, "vm_prologue", "read"},
        {vm_img, "img", "pool"},
    };
    refuse_all(&nobody_id, off, sizeof off / sizeof off[0]);
    load_policy("allow_user_images: true\n");
    const hostile on[] = {{vm_img, "img", "read"}};
    refuse_all(&nobody_id, on, 1);
    /* readable to them: accepted as an image; not as a disk, which the
     * guest writes */
    chmod(secret, 0644);
    const hostile ro[] = {{vm_disk, "disk", "read and write"}};
    refuse_all(&nobody_id, ro, 1);
    char gf[800];
    hpc_submit_result res;
    fr_error e;
    char *args[] = {"-vm", vm_img};
    if (gf_submit(&nobody_id, args, 2, gf, sizeof gf, &res, &e) != 0) {
        fail_msg("%s: %s", e.where, e.message);
    }
    assert_int_equal(res.kind, HPC_SUBMIT_GENERATED);
    assert_string_equal(res.spec.img, secret);
}

/* A metadata file's keys go through the admin's whitelist; keys that would
 * run commands in the guest are refused however they are spelled. */
static void test_metadata_whitelist(void **st)
{
    (void)st;
    char md[800], vm[900];
    snprintf(md, sizeof md, "%s/md.yaml", tmp);
    snprintf(vm, sizeof vm, "metadata=%s", md);
    write_or_fail(md, "runcmd: [[\"sh\", \"-c\", \"id\"]]\n");
    hostile c1[] = {{vm, "", "runcmd"}};
    refuse_all(&root_id, c1, 1);
    write_or_fail(md, "packages: [htop]\nbootcmd: [reboot]\n");
    hostile c2[] = {{vm, "", "bootcmd"}};
    refuse_all(&root_id, c2, 1);
    write_or_fail(md, "packages: *x\n");
    hostile c3[] = {{vm, "", "metadata"}};
    refuse_all(&root_id, c3, 1);
    write_or_fail(md, "packages: [htop, \"$(id)\"]\ntimezone: \"Europe/Ljubljana\"\n");
    char gf[800];
    hpc_submit_result res;
    fr_error e;
    char *args[] = {"-vm", vm};
    if (gf_submit(&root_id, args, 2, gf, sizeof gf, &res, &e) != 0) {
        fail_msg("%s: %s", e.where, e.message);
    }
    char ud[900];
    snprintf(ud, sizeof ud, "%s/gen/node0/vnode0-0.user-data", gf);
    char *t = tst_slurp(ud);
    assert_non_null(strstr(t, "packages:"));
    assert_non_null(strstr(t, "\"$(id)\""));
    assert_non_null(strstr(t, "Europe/Ljubljana"));
    free(t);
}

/* ---- values that are allowed, rendered harmless ---- */

/* The scalar under key at the top of a YAML mapping node, or under
 * write_files[0].content when key is NULL. */
static char *yaml_find_content(const char *path, const char *want_path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    yaml_parser_t p;
    yaml_document_t d;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &d)) {
        fail_msg("%s: libyaml: %s at line %zu", path, p.problem, p.problem_mark.line + 1);
    }
    char *out = NULL;
    yaml_node_t *root = yaml_document_get_root_node(&d);
    assert_non_null(root);
    assert_int_equal(root->type, YAML_MAPPING_NODE);
    for (yaml_node_pair_t *kv = root->data.mapping.pairs.start; kv < root->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *k = yaml_document_get_node(&d, kv->key);
        yaml_node_t *v = yaml_document_get_node(&d, kv->value);
        if (strcmp((char *)k->data.scalar.value, "write_files") != 0) {
            continue;
        }
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *wf = yaml_document_get_node(&d, *it);
            const char *pth = NULL, *content = NULL;
            for (yaml_node_pair_t *q = wf->data.mapping.pairs.start; q < wf->data.mapping.pairs.top;
                 q++) {
                yaml_node_t *qk = yaml_document_get_node(&d, q->key);
                yaml_node_t *qv = yaml_document_get_node(&d, q->value);
                if (strcmp((char *)qk->data.scalar.value, "path") == 0) {
                    pth = (char *)qv->data.scalar.value;
                } else if (strcmp((char *)qk->data.scalar.value, "content") == 0) {
                    content = (char *)qv->data.scalar.value;
                }
            }
            if (pth != NULL && content != NULL && strcmp(pth, want_path) == 0) {
                out = strdup(content);
            }
        }
    }
    yaml_document_delete(&d);
    yaml_parser_delete(&p);
    fclose(f);
    return out;
}

/* What /bin/sh prints for "$name" after sourcing file. */
static char *shell_value(const char *file, const char *name)
{
    char out[800], cmd[2400];
    snprintf(out, sizeof out, "%s/shell.out", tmp);
    snprintf(cmd, sizeof cmd, ". '%s' && printf '%%s' \"$%s\" > '%s'", file, name, out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return tst_slurp(out);
}

static void test_environment_rendered_harmless(void **st)
{
    (void)st;
    char evil[2400];
    snprintf(evil, sizeof evil, "$(touch %s) `touch %s`; touch %s ' \" \\ \n<x>&amp; %%s \xc5\xa1",
             marker, marker, marker);
    char e1[2600], e2[] = "FRESCO_JOB_BAD\xff=x", e3[] = "PBS_O_BAD=\xff\xfe",
                   e4[] = "LD_PRELOAD=/tmp/x.so", e5[] = "PBS_JOBNAME=ok";
    snprintf(e1, sizeof e1, "FRESCO_JOB_EVIL=%s", evil);
    char *env[] = {e1, e2, e3, e4, e5, NULL};
    hpc_vmspec s = {0};
    fr_error e;
    fr_error_clear(&e);
    assert_fr_ok(hpc_vmspec_resolve(&s, &conf, 0, 0, &e));
    char dir[800];
    snprintf(dir, sizeof dir, "%s/node", tmp);
    mkdir(dir, 0755);
    hpc_job j = {.id = "77",
                 .user = "alice",
                 .uid = 1000,
                 .gid = 1000,
                 .group = "alice",
                 .node = "n1",
                 .img_dir = dir,
                 .env = env,
                 .domain_type = "kvm"};
    hpc_gen_stats gs = {0};
    if (hpc_gen_node(&conf, &s, &j, dir, &gs, &e) != 0) {
        fail_msg("%s: %s", e.where, e.message);
    }
    /* the bad name and the value that is not UTF-8 were left out */
    assert_int_equal(gs.env_skipped, 2);
    char ud[900];
    snprintf(ud, sizeof ud, "%s/vn1-0.user-data", dir);
    char *profile = yaml_find_content(ud, "/etc/profile.d/fresco-job.sh");
    assert_non_null(profile);
    /* LD_PRELOAD is not in env_allow */
    assert_null(strstr(profile, "LD_PRELOAD"));
    char pf[800];
    snprintf(pf, sizeof pf, "%s/profile.sh", tmp);
    write_or_fail(pf, profile);
    free(profile);
    char *got = shell_value(pf, "FRESCO_JOB_EVIL");
    assert_string_equal(got, evil);
    free(got);
    got = shell_value(pf, "PBS_JOBNAME");
    assert_string_equal(got, "ok");
    free(got);
    assert_false(exists(marker));
}

static void test_escapers(void **st)
{
    (void)st;
    fr_buf b = FR_BUF_INIT;
    assert_fr_ok(hpc_xml_escape(&b, "<a href='x'>&\"</a>"));
    fr_buf_append(&b, "", 1);
    assert_string_equal((char *)b.data, "&lt;a href=&apos;x&apos;&gt;&amp;&quot;&lt;/a&gt;");
    fr_buf_reset(&b);
    assert_int_not_equal(hpc_xml_escape(&b, "bell\x07"), 0);
    assert_int_not_equal(hpc_xml_escape(&b, "bad \xc3\x28"), 0);
    assert_int_not_equal(hpc_xml_escape(&b, "overlong \xc0\xaf"), 0);
    fr_buf_reset(&b);
    /* a shell word that round-trips through sh exactly */
    char word[900];
    snprintf(word, sizeof word, "it's $(touch %s) `x` \"q\" \\ ;|&", marker);
    fr_buf_puts(&b, "V=");
    assert_fr_ok(hpc_shell_quote(&b, word));
    fr_buf_puts(&b, "\n");
    char pf[800];
    snprintf(pf, sizeof pf, "%s/q.sh", tmp);
    assert_int_equal(tst_write_file(pf, (char *)b.data, b.len), 0);
    char *got = shell_value(pf, "V");
    assert_string_equal(got, word);
    free(got);
    assert_false(exists(marker));
    fr_buf_free(&b);
    assert_true(hpc_utf8_valid("\xc5\xa1", 2));
    assert_false(hpc_utf8_valid("\xed\xa0\x80", 3)); /* a surrogate */
    assert_false(hpc_utf8_valid("a\0b", 3));
}

/* What ssh hands the guest's shell: run here by sh -c, as the remote shell
 * would, with the script on stdin. Hostile arguments and values arrive as
 * they are; the script's #! line is honoured. */
static char *run_guest_line(const char *line, const char *script_text)
{
    char in[800], out[800];
    snprintf(in, sizeof in, "%s/guest-in.sh", tmp);
    snprintf(out, sizeof out, "%s/guest-out", tmp);
    write_or_fail(in, script_text);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen(in, "r", stdin);
        freopen(out, "w", stdout);
        execl("/bin/sh", "sh", "-c", line, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    return tst_slurp(out);
}

static void test_guest_command(void **st)
{
    (void)st;
    char a1[900], v1[900];
    snprintf(a1, sizeof a1, "$(touch %s)", marker);
    snprintf(v1, sizeof v1, "FRESCO_VMS=vn0-0 vn0-1 `touch %s` '\"", marker);
    const char *env[] = {v1, "FRESCO_JOB_DIR=/x/y", NULL};
    char *args[] = {a1, "two words", "it's", "", ";rm -rf /"};
    fr_buf b = FR_BUF_INIT;
    assert_fr_ok(hpc_guest_command(&b, env, args, 5));
    fr_buf_append(&b, "", 1);
    char *got = run_guest_line((char *)b.data, "#!/bin/sh\nprintf '%s|' \"$FRESCO_VMS\" "
                                               "\"$FRESCO_JOB_DIR\" \"$#\" \"$@\"\n");
    char want[3000];
    snprintf(want, sizeof want, "%s|/x/y|5|%s|two words|it's||;rm -rf /|", v1 + 11, a1);
    assert_string_equal(got, want);
    free(got);
    assert_false(exists(marker));
    /* a script for another interpreter runs in it */
    got = run_guest_line((char *)b.data, "#!/bin/bash\nprintf '%s' \"${BASH_VERSION:+bash}\"\n");
    assert_string_equal(got, "bash");
    free(got);
    fr_buf_free(&b);
    /* a variable name that is not one is refused */
    const char *bad[] = {"A;B=1", NULL};
    fr_buf c = FR_BUF_INIT;
    assert_int_equal(hpc_guest_command(&c, bad, NULL, 0), FR_EINVAL);
    fr_buf_free(&c);
}

/* Job names and other qsub options are arguments, never shell text: they
 * reach sbatch as one argument each, as given. */
static void test_options_stay_arguments(void **st)
{
    (void)st;
    char gf[800];
    hpc_submit_result res;
    fr_error e;
    char name[] = "x$(id);`id`'\"<>";
    char *args[] = {"-N", name, "-vm", "vcpus=1"};
    if (gf_submit(&root_id, args, 4, gf, sizeof gf, &res, &e) != 0) {
        fail_msg("%s: %s", e.where, e.message);
    }
    char p[900];
    snprintf(p, sizeof p, "%s/submit", gf);
    char *sub = tst_slurp(p);
    char want[200];
    snprintf(want, sizeof want, "\n--job-name=%s\n", name);
    if (strstr(sub, want) == NULL) {
        fail_msg("submit file:\n%s", sub);
    }
    free(sub);
    /* a newline inside an argument cannot split it */
    char nl[] = "two\nlines";
    char *args2[] = {"-N", nl, "-vm", "vcpus=1"};
    int rv = gf_submit(&root_id, args2, 4, gf, sizeof gf, &res, &e);
    if (rv == 0) {
        snprintf(p, sizeof p, "%s/submit", gf);
        sub = tst_slurp(p);
        fail_msg("a job name with a newline was accepted:\n%s", sub);
    }
    assert_string_equal(e.where, "-N");
    assert_false(exists(gf));
}

/* ---- reading and raising ---- */

static void test_directives_and_precedence(void **st)
{
    (void)st;
    write_or_fail(script, "#!/bin/sh\n"
                          "#PBS -N from-script\n"
                          "\n"
                          "#PBS -vm vcpus=2,vms_per_node=2\n"
                          "#PBS -l nodes=2\n"
                          "echo hi\n"
                          "#PBS -vm vcpus=4\n");
    char gf[800];
    hpc_submit_result res;
    fr_error e;
    char *args[] = {"-vm", "vcpus=3", "-N", "cli"};
    if (gf_submit(&root_id, args, 4, gf, sizeof gf, &res, &e) != 0) {
        fail_msg("%s: %s", e.where, e.message);
    }
    /* the command line's vcpus, the script's vms_per_node; the line after
     * the first command is not a directive */
    assert_int_equal(res.spec.vcpus, 3);
    assert_int_equal(res.spec.vms_per_node, 2);
    char p[900];
    for (int node = 0; node < 2; node++) {
        for (int vm = 0; vm < 2; vm++) {
            snprintf(p, sizeof p, "%s/gen/node%d/vnode%d-%d.xml", gf, node, node, vm);
            assert_true(exists(p));
        }
    }
    snprintf(p, sizeof p, "%s/gen/node2", gf);
    assert_false(exists(p));
    snprintf(p, sizeof p, "%s/submit", gf);
    char *sub = tst_slurp(p);
    /* the script's name first, the command line's after: the last wins */
    char *a = strstr(sub, "--job-name=from-script"), *b = strstr(sub, "--job-name=cli");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    free(sub);
    /* an error in a directive names the script's line */
    write_or_fail(script, "#!/bin/sh\n#PBS -N x\n#PBS -vm colour=red\necho\n");
    char *none[] = {NULL};
    assert_int_not_equal(gf_submit(&root_id, none, 0, gf, sizeof gf, &res, &e), 0);
    char want[800];
    snprintf(want, sizeof want, "%s:3", script);
    if (strstr(e.where, want) == NULL) {
        fail_msg("where '%s', wanted '%s'", e.where, want);
    }
    assert_non_null(strstr(e.message, "colour"));
    write_or_fail(script, "#!/bin/sh\necho hi\n");
}

static char *submit_of(char *const *args, int n)
{
    char gf[800];
    hpc_submit_result res;
    fr_error e;
    if (gf_submit(&root_id, args, n, gf, sizeof gf, &res, &e) != 0) {
        fail_msg("%s: %s", e.where, e.message);
    }
    char p[900];
    snprintf(p, sizeof p, "%s/submit", gf);
    return tst_slurp(p);
}

static void test_resources_raised(void **st)
{
    (void)st;
    /* 2 VMs x 2 vCPUs + 1 host core = 5; 2 x 512 MiB + 1 GiB = 2048 MiB */
    char *a1[] = {"-l", "nodes=1:ppn=1,mem=100mb,walltime=1:00:00", "-vm",
                  "vcpus=2,vms_per_node=2,ram=512"};
    char *sub = submit_of(a1, 4);
    if (strstr(sub, "--ntasks-per-node=5\n") == NULL || strstr(sub, "--mem=2048M\n") == NULL ||
        strstr(sub, "--time=1:00:00\n") == NULL) {
        fail_msg("submit file:\n%s", sub);
    }
    free(sub);
    /* asking for more than the VMs need keeps the request */
    char *a2[] = {"-l", "nodes=1:ppn=8,mem=8gb", "-vm", "vcpus=1"};
    sub = submit_of(a2, 4);
    if (strstr(sub, "--ntasks-per-node=8\n") == NULL || strstr(sub, "--mem=8192M\n") == NULL) {
        fail_msg("submit file:\n%s", sub);
    }
    free(sub);
}

static void test_plain_and_switches(void **st)
{
    (void)st;
    /* no -vm anywhere: a plain job, handed on unchanged */
    hpc_submit_result res;
    fr_error e;
    fr_error_clear(&e);
    char *plain[] = {"-N", "p", script, NULL};
    assert_fr_ok(hpc_submit(&conf, 3, plain, &root_id, NULL, &res, &e));
    assert_int_equal(res.kind, HPC_SUBMIT_PLAIN);
    /* the admin's switches */
    load_policy("allow_generate_files: false\n");
    char gf[800];
    char *args[] = {"-vm", "vcpus=1"};
    assert_int_not_equal(gf_submit(&root_id, args, 2, gf, sizeof gf, &res, &e), 0);
    assert_string_equal(e.where, "-gf");
    assert_false(exists(gf));
    load_policy("disabled: true\n");
    assert_int_not_equal(gf_submit(&root_id, args, 2, gf, sizeof gf, &res, &e), 0);
    assert_non_null(strstr(e.message, "disabled"));
    /* interactive and X11 jobs cannot run in VMs */
    load_policy(NULL);
    char *inter[] = {"-I", "-vm", "vcpus=1"};
    assert_int_not_equal(gf_submit(&root_id, inter, 3, gf, sizeof gf, &res, &e), 0);
    assert_non_null(strstr(e.where, "-I"));
    /* vRDMA and IOcm are refused when off, accepted when the admin allows */
    load_policy("vrdma: {enabled: true}\niocm: {enabled: true, min_cores: 1, max_cores: 2}\n");
    char *ok[] = {"-vm", "vrdma=true,iocm=true,hypervisor=skvm,iocm_max_cores=2"};
    if (gf_submit(&root_id, ok, 2, gf, sizeof gf, &res, &e) != 0) {
        fail_msg("%s: %s", e.where, e.message);
    }
    assert_true(res.spec.vrdma);
    assert_true(res.spec.iocm);
    char *toomany[] = {"-vm", "iocm=true,hypervisor=skvm,iocm_max_cores=3"};
    assert_int_not_equal(gf_submit(&root_id, toomany, 2, gf, sizeof gf, &res, &e), 0);
    assert_non_null(strstr(e.where, "iocm_max_cores"));
}

static void test_policy_errors_name_the_key(void **st)
{
    (void)st;
    const struct {
        const char *yaml, *where;
    } bad[] = {
        {"backend: lsf\n", "backend"},
        {"disabled_hosts: \"([\"\n", "disabled_hosts"},
        {"spool: relative/dir\n", "spool"},
        {"iocm: {min_cores: 4, max_cores: 2}\n", "iocm"},
        {"shared_mounts: [\"/only-one-word\"]\n", "shared_mounts"},
        {"node: {cores: 4}\n", "node"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[4096];
        snprintf(text, sizeof text, "image_pool: %s\n%s", pool, bad[i].yaml);
        write_or_fail(policy_path, text);
        hpc_conf c;
        memset(&c, 0, sizeof c);
        fr_error e;
        fr_error_clear(&e);
        int rv = hpc_conf_load_file(&c, policy_path, &e);
        fr_config_free(&hpc_spec, &c);
        if (rv == 0) {
            fail_msg("accepted: %s", bad[i].yaml);
        }
        if (strstr(e.where, bad[i].where) == NULL && strstr(e.message, bad[i].where) == NULL) {
            fail_msg("%s -> %s: %s", bad[i].yaml, e.where, e.message);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_vm_values_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_files_checked_against_the_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_whitelist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_rendered_harmless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escapers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options_stay_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directives_and_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resources_raised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_and_switches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_errors_name_the_key, setup, teardown),
    };
    return cmocka_run_group_tests_name("qsub", tests, NULL, NULL);
}
