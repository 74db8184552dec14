/* Test hooks of the libvirt collector plugin (fr_collector_libvirt).
 *
 * Production code has no use for these: the collector drives the plugin
 * only through its fr_collector_plugin table. Tests need them because the
 * libvirt test driver keeps its domains per connection, so a domain a test
 * defines must be defined on the plugin's own connection, and because the
 * test driver answers virConnectGetAllDomainStats with state.* only, so the
 * bulk path is exercised with records shaped like QEMU's. */
#ifndef COLLECTOR_LIBVIRT_PLUGIN_H
#define COLLECTOR_LIBVIRT_PLUGIN_H

#include <libvirt/libvirt.h>

/* The instance's open connection (borrowed: do not close it), or NULL
 * while it is not connected. Open it read-write (config readonly: false)
 * to define domains through it. */
virConnectPtr libvirt_plugin_connection(void *state);

/* Replaces virConnectGetAllDomainStats for this instance (NULL restores
 * it). The function must behave like it: records the caller frees with
 * virDomainStatsRecordListFree, or -1 with a libvirt error set. Resets
 * what the instance learnt about which stats groups the driver answers. */
typedef int (*libvirt_plugin_stats_fn)(virConnectPtr conn, unsigned int stats,
                                       virDomainStatsRecordPtr **records, unsigned int flags);
void libvirt_plugin_set_stats_fn(void *state, libvirt_plugin_stats_fn fn);

/* Counters for tests and the benchmark: libvirt calls made, domain
 * descriptions (XML) read, and whether the bulk call serves any group. */
typedef struct libvirt_plugin_counters {
    unsigned long long calls;
    unsigned long long xml_reads;
    unsigned long long reconnects;
    int bulk_groups; /* how many of cpu, vcpu, balloon, block, net come in bulk */
} libvirt_plugin_counters;
void libvirt_plugin_get_counters(void *state, libvirt_plugin_counters *out);

#endif
