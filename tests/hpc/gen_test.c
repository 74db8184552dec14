/* What a VM job's nodes get: every domain XML fresco generates, for each
 * kind of request (pinning, vRDMA, IOcm on sKVM, a user disk, ramdisk
 * images, OSv), is defined by libvirt's own parser on its test driver and
 * read back; every user-data is cloud-config that libyaml loads, with the
 * hostname v<node>-<n>, the job's real uid/gid and the shared mounts; every
 * meta-data has its instance id; Linux guests get an ISO seed, OSv guests
 * the raw one. */
#include "testsupport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <yaml.h>

#include "fresco/err.h"
#include "gen.h"
#include "job.h"
#include "policy.h"

static char *tmp;
static char pool[700], script[700];
static hpc_conf conf;
static virConnectPtr conn;
static int seq;

static void quiet(void *ud, virErrorPtr err)
{
    (void)ud;
    (void)err;
}

static void write_or_fail(const char *path, const char *text)
{
    if (tst_write_file(path, text, strlen(text)) != 0) {
        fail_msg("cannot write %s", path);
    }
}

static int setup(void **st)
{
    (void)st;
    tmp = tst_tmpdir("fresco-gen-test");
    snprintf(pool, sizeof pool, "%s/pool", tmp);
    snprintf(script, sizeof script, "%s/job.sh", tmp);
    mkdir(pool, 0755);
    chmod(tmp, 0755); /* files the job's user names must be readable to them */
    char p[800], text[2048];
    snprintf(p, sizeof p, "%s/debian-12.qcow2", pool);
    write_or_fail(p, "qcow2");
    snprintf(p, sizeof p, "%s/osv-hpc.img", pool);
    write_or_fail(p, "osv");
    snprintf(p, sizeof p, "%s/scratch.qcow2", tmp);
    write_or_fail(p, "disk");
    chmod(p, 0666); /* the guest writes its user disk: the user must be able to */
    write_or_fail(script, "#!/bin/sh\necho hi\n");
    snprintf(p, sizeof p, "%s/hpc.yaml", tmp);
    snprintf(text, sizeof text,
             "image_pool: %s\n"
             "spool: %s\n"
             "run_dir: %s/run\n"
             "host: {cores: 1, ram: 512MiB}\n"
             "vrdma: {enabled: true}\n"
             "iocm: {enabled: true, min_cores: 1, max_cores: 3}\n"
             "shared_mounts: [\"nfs.example:/home /home nfs\", \"fs0:/scratch /scratch nfs\"]\n"
             "defaults: {img: debian-12.qcow2, ram: 256MiB}\n",
             pool, tmp, tmp);
    write_or_fail(p, text);
    memset(&conf, 0, sizeof conf);
    fr_error e;
    fr_error_clear(&e);
    if (hpc_conf_load_file(&conf, p, &e) != 0) {
        fail_msg("%s: %s", e.where, e.message);
    }
    virSetErrorFunc(NULL, quiet);
    conn = virConnectOpen("test:///default");
    assert_non_null(conn);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    virConnectClose(conn);
    fr_config_free(&hpc_spec, &conf);
    tst_rmtree(tmp);
    free(tmp);
    return 0;
}

/* libvirt's parser takes the XML; what it reads back has what was asked. */
static void define_and_check(const char *path, const char *want_name, int vcpus, long ram_mib,
                             const char *must_have)
{
    char *xml = tst_slurp(path);
    virDomainPtr d = virDomainDefineXML(conn, xml);
    if (d == NULL) {
        virErrorPtr err = virGetLastError();
        fail_msg("libvirt refused %s: %s\n%s", path, err ? err->message : "?", xml);
    }
    assert_string_equal(virDomainGetName(d), want_name);
    virDomainInfo info;
    assert_int_equal(virDomainGetInfo(d, &info), 0);
    assert_int_equal(info.nrVirtCpu, vcpus);
    assert_int_equal(info.maxMem, (unsigned long)ram_mib * 1024);
    char *back = virDomainGetXMLDesc(d, 0);
    assert_non_null(back);
    if (must_have != NULL && strstr(back, must_have) == NULL) {
        fail_msg("%s: libvirt's reading lacks %s:\n%s", path, must_have, back);
    }
    free(back);
    assert_int_equal(virDomainUndefine(d), 0);
    virDomainFree(d);
    free(xml);
}

/* The top-level scalar key of a cloud-config, and whether the document
 * loads at all. */
static char *ud_scalar(const char *path, const char *key, char **mounts_joined)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char first[32] = "";
    assert_non_null(fgets(first, sizeof first, f));
    assert_string_equal(first, "#cloud-config\n");
    rewind(f);
    yaml_parser_t p;
    yaml_document_t d;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &d)) {
        fail_msg("%s: libyaml: %s at line %zu", path, p.problem, p.problem_mark.line + 1);
    }
    yaml_node_t *root = yaml_document_get_root_node(&d);
    assert_non_null(root);
    assert_int_equal(root->type, YAML_MAPPING_NODE);
    char *out = NULL;
    fr_buf m = FR_BUF_INIT;
    for (yaml_node_pair_t *kv = root->data.mapping.pairs.start; kv < root->data.mapping.pairs.top;
         kv++) {
        yaml_node_t *k = yaml_document_get_node(&d, kv->key);
        yaml_node_t *v = yaml_document_get_node(&d, kv->value);
        const char *name = (const char *)k->data.scalar.value;
        if (strcmp(name, key) == 0 && v->type == YAML_SCALAR_NODE) {
            out = strdup((const char *)v->data.scalar.value);
        }
        if (strcmp(name, "mounts") == 0 && v->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                yaml_node_t *row = yaml_document_get_node(&d, *it);
                yaml_node_t *c0 = yaml_document_get_node(&d, row->data.sequence.items.start[0]);
                yaml_node_t *c1 = yaml_document_get_node(&d, row->data.sequence.items.start[1]);
                fr_buf_puts(&m, (const char *)c0->data.scalar.value);
                fr_buf_puts(&m, " ");
                fr_buf_puts(&m, (const char *)c1->data.scalar.value);
                fr_buf_puts(&m, ";");
            }
        }
    }
    fr_buf_append(&m, "", 1);
    *mounts_joined = (char *)m.data;
    yaml_document_delete(&d);
    yaml_parser_delete(&p);
    fclose(f);
    return out;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

typedef struct request {
    const char *vm;    /* -vm value */
    const char *nodes; /* -l value */
    int nnodes, vms, vcpus;
    long ram;
    const char *must_have; /* in libvirt's reading of each domain */
    bool osv;
} request;

static void generate_and_check(const request *rq, const hpc_ident *who)
{
    char gf[800];
    snprintf(gf, sizeof gf, "%s/gf-%d", tmp, ++seq);
    char *argv[] = {"-gf", "-l", (char *)rq->nodes, "-vm", (char *)rq->vm, script, NULL};
    hpc_submit_result res;
    fr_error e;
    fr_error_clear(&e);
    if (hpc_submit(&conf, 6, argv, who, gf, &res, &e) != 0) {
        fail_msg("-vm %s: %s: %s", rq->vm, e.where, e.message);
    }
    assert_int_equal(res.kind, HPC_SUBMIT_GENERATED);
    size_t domains = 0;
    for (int n = 0; n < rq->nnodes; n++) {
        for (int k = 0; k < rq->vms; k++) {
            char base[900], p[1000], name[128], host[64];
            snprintf(host, sizeof host, "vnode%d-%d", n, k);
            snprintf(base, sizeof base, "%s/gen/node%d/%s", gf, n, host);
            snprintf(p, sizeof p, "%s.xml", base);
            snprintf(name, sizeof name, "fresco-pending-%s", host);
            define_and_check(p, name, rq->vcpus, rq->ram, rq->must_have);
            domains++;
            snprintf(p, sizeof p, "%s.user-data", base);
            char *mounts = NULL;
            char *hn = ud_scalar(p, "hostname", &mounts);
            assert_non_null(hn);
            assert_string_equal(hn, host);
            free(hn);
            assert_string_equal(mounts, "nfs.example:/home /home;fs0:/scratch /scratch;");
            free(mounts);
            /* the job's own uid and gid, from who the submitter is */
            char *ud = tst_slurp(p);
            char uid[64];
            if (rq->osv) {
                snprintf(uid, sizeof uid, "\"uid=%u,gid=%u\"", (unsigned)who->uid,
                         (unsigned)who->gid);
            } else {
                snprintf(uid, sizeof uid, "\"-u\", \"%u\", \"-g\", \"%u\"", (unsigned)who->uid,
                         (unsigned)who->gid);
            }
            if (strstr(ud, uid) == NULL) {
                fail_msg("%s: no %s:\n%s", p, uid, ud);
            }
            free(ud);
            snprintf(p, sizeof p, "%s.meta-data", base);
            char *md = tst_slurp(p);
            assert_non_null(strstr(md, "instance-id:"));
            assert_non_null(strstr(md, host));
            free(md);
            snprintf(p, sizeof p, "%s.seed.iso", base);
            assert_true(exists(p) == !rq->osv);
            snprintf(p, sizeof p, "%s.seed.raw", base);
            assert_true(exists(p) == rq->osv);
        }
    }
    char extra[1000];
    snprintf(extra, sizeof extra, "%s/gen/node%d", gf, rq->nnodes);
    assert_false(exists(extra));
    assert_int_equal(domains, (size_t)(rq->nnodes * rq->vms));
}

static void test_every_domain_defines(void **st)
{
    (void)st;
    char disk[800];
    snprintf(disk, sizeof disk, "vcpus=2,disk=%s/scratch.qcow2", tmp);
    const request rqs[] = {
        {"vcpus=1", "nodes=1", 1, 1, 1, 256, "<source network='default'/>", false},
        {"vcpus=2,vms_per_node=4,ram=512", "nodes=2", 2, 4, 2, 512, "virtio", false},
        {"vcpus=2,vcpu_pinning=true", "nodes=1:ppn=4", 1, 1, 2, 256, "cputune", false},
        {"vrdma=true,vms_per_node=2", "nodes=1", 1, 2, 1, 256, "shmem", false},
        {"iocm=true,hypervisor=skvm,iocm_min_cores=1,iocm_max_cores=2,vms_per_node=2", "nodes=1", 1,
         2, 1, 256, "iothreads", false},
        {disk, "nodes=1", 1, 1, 2, 256, "scratch.qcow2", false},
        {"fs_type=ramdisk", "nodes=1", 1, 1, 1, 256, "/dev/shm/", false},
        {"img=osv-hpc.img,distro=osv", "nodes=1", 1, 1, 1, 256, "seed.raw", true},
    };
    const hpc_ident alice = {1000, 1000, "alice", "users"};
    for (size_t i = 0; i < sizeof rqs / sizeof rqs[0]; i++) {
        generate_and_check(&rqs[i], &alice);
    }
}

/* hpc_vm_hostname and the domain name keep to the characters libvirt and
 * DNS take; node names that are not refused. */
static void test_names(void **st)
{
    (void)st;
    char b[128];
    assert_int_equal(hpc_vm_hostname("n01", 3, b, sizeof b), 0);
    assert_string_equal(b, "vn01-3");
    assert_int_equal(hpc_vm_domain_name("12.server", "n01", 0, b, sizeof b), 0);
    assert_string_equal(b, "fresco-12.server-vn01-0");
    assert_int_not_equal(hpc_vm_hostname("n01;rm", 0, b, sizeof b), 0);
    assert_int_not_equal(hpc_vm_hostname("n'01", 0, b, sizeof b), 0);
    assert_int_not_equal(hpc_vm_domain_name("1</name>", "n01", 0, b, sizeof b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_domain_defines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
    };
    return cmocka_run_group_tests_name("gen", tests, NULL, NULL);
}
