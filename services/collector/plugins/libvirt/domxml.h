/* What the libvirt plugin needs from a domain's XML description: the target
 * names of its disks and network interfaces, and OpenStack Nova's metadata.
 *
 * A small scanner, not a DOM: the input is libvirt's own serialisation of a
 * domain (virDomainGetXMLDesc), a few kilobytes read only when a domain
 * appears, restarts or its cached description grows old, and the plugin
 * wants a handful of attributes from it. Scanning needs no allocation per
 * element and no link dependency beyond libvirt. It still handles what
 * well-formed XML may contain there (comments, CDATA, processing
 * instructions, either quote style, character and predefined entities) and
 * never reads outside [xml, xml + len). */
#ifndef COLLECTOR_LIBVIRT_DOMXML_H
#define COLLECTOR_LIBVIRT_DOMXML_H

#include <stdbool.h>
#include <stddef.h>

/* The namespace Nova writes its <instance> metadata in. */
#define DOMXML_NOVA_NS "http://openstack.org/xmlns/libvirt/nova/1.0"

/* A tag as key and value, both owned by the domxml that holds them. */
typedef struct domxml_tag {
    char *key;
    char *value;
} domxml_tag;

/* Owns every string reachable from it; free with domxml_free. */
typedef struct domxml {
    char **disks; /* <devices><disk><target dev=...>, cdroms and floppies left out */
    size_t ndisks;
    char **ifaces; /* <devices><interface><target dev=...> */
    size_t nifaces;
    domxml_tag *nova; /* nova_uuid, nova_name, nova_flavor, ... when asked for */
    size_t nnova;
} domxml;

/* Scans len bytes of a domain description into *out (which must start
 * zeroed). Nova tags are collected only when want_nova is true and the
 * domain has a <metadata> element in DOMXML_NOVA_NS.
 * Returns 0, FR_ENOMEM, or FR_EINVAL for input that is not a well-formed
 * <domain> document (*out is then emptied). */
int domxml_parse(const char *xml, size_t len, bool want_nova, domxml *out);

/* Frees what domxml_parse stored and zeroes *d. Safe on a zeroed or
 * partly filled one. */
void domxml_free(domxml *d);

#endif
