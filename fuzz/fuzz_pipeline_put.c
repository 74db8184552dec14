/* pipeline.put's args from anything, as a processor takes them off its
 * control socket: the bytes as a msgpack document, unpacked into a task
 * and its manifest, whose process nodes are then built with the processor
 * plugins built in (every node's config parsed and its plugin started) and
 * run over a small batch. An input that starts with 0x01 is instead task
 * manifest text, packed into put args first, so the fuzzer also reaches
 * deep trees through YAML. Nothing may crash, leak or hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/manifest.h"
#include "fresco/metric.h"
#include "fresco/mpdoc.h"
#include "fresco/pipectl.h"
#include "ptask.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void build_and_run(const fr_manifest *m, const char *task, const char *name)
{
    ptask *t = NULL;
    fr_error err;
    if (ptask_build(m, task, name, &t, &err) != 0) {
        return;
    }
    fr_batch *b = fr_batch_new(task, "node-1", 1);
    if (b != NULL) {
        fr_metric *x = fr_batch_add(b, "/a/b", 1000, fr_val_f64(1.5), "B");
        if (x != NULL) {
            fr_batch_metric_tag(b, x, "host", "h");
        }
        fr_batch_add(b, "/a/c", 2000, fr_val_u64(7), "");
        fr_batch_add(b, "/a/d", 3000, fr_val_str("up"), "");
        ptask_outputs outs = {0};
        ptask_run(t, b, &outs, &err);
        ptask_outputs_free(&outs);
        fr_batch_destroy(b);
    }
    ptask_unref(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fr_error err;
    fr_buf args = FR_BUF_INIT;
    if (size > 0 && data[0] == 0x01) {
        fr_manifest *m = NULL;
        if (fr_manifest_parse(data + 1, size - 1, "fuzz.yaml", &m, &err) != 0) {
            return 0;
        }
        if (fr_pipeline_put_pack("fuzz-task", "fuzz", m, &args) != 0) {
            abort();
        }
        fr_manifest_free(m);
        data = args.data;
        size = args.len;
    }
    fr_doc doc;
    if (fr_doc_decode(data, size, &doc, &err) == 0) {
        const char *task = NULL, *name = NULL;
        fr_manifest *m = NULL;
        if (fr_pipeline_put_unpack(doc.root, &task, &name, &m, &err) == 0) {
            build_and_run(m, task, name);
            fr_manifest_free(m);
        }
        fr_doc_free(&doc);
    }
    fr_buf_free(&args);
    return 0;
}
