/* Metric namespaces and namespace queries, as snap writes them.
 *
 * A namespace is "/"-separated elements: /intel/libvirt/vm-3/cpu/cputime.
 * A catalog pattern marks each dynamic element with "*" and names it
 * separately (fr_metric_info.dyn): /intel/libvirt/ * /cpu/cputime with
 * dyn = {"domain", ...}; for display it reads /intel/libvirt/[domain]/cpu/cputime.
 *
 * A query (what a task's workflow.collect.metrics asks for) is a namespace
 * whose elements may be:
 *   name     exactly that element
 *   *        any one element; as the LAST element, any one or more elements
 *            (everything below), as snap does
 *   (a;b;c)  any of the listed names
 * Queries are compiled once into an fr_ns_query; matching does not allocate. */
#ifndef FRESCO_NS_H
#define FRESCO_NS_H

#include <stdbool.h>
#include <stddef.h>

#include "fresco/err.h"

#define FR_NS_MAX_ELEMENTS 64

typedef struct fr_ns_query fr_ns_query;

/* An empty query (matches nothing). NULL on out of memory. */
fr_ns_query *fr_ns_query_new(void);
void fr_ns_query_destroy(fr_ns_query *q);

/* Adds one query namespace. FR_EINVAL (err names the element, e.g.
 * "element 3 '(a;' has no closing parenthesis") for a malformed one: empty
 * elements, not starting with '/', unbalanced parentheses, '*' mixed with
 * other characters in one element, more than FR_NS_MAX_ELEMENTS elements. */
int fr_ns_query_add(fr_ns_query *q, const char *query, fr_error *err);

/* Number of query namespaces added, and the i-th as given. */
size_t fr_ns_query_count(const fr_ns_query *q);
const char *fr_ns_query_get(const fr_ns_query *q, size_t i);

/* True when the concrete namespace ns matches any query namespace. */
bool fr_ns_query_match(const fr_ns_query *q, const char *ns);

/* True when some namespace that starts with the elements of prefix (a
 * concrete prefix such as "/intel/libvirt/vm-3/disk") could match: lets a
 * plugin skip reading what nobody asked for. */
bool fr_ns_query_wants_prefix(const fr_ns_query *q, const char *prefix);

/* True when query namespace i could match some namespace of the catalog
 * pattern (whose dynamic elements are "*"): used to refuse, at task
 * creation, a metric that no plugin offers. */
bool fr_ns_query_covers_pattern(const fr_ns_query *q, size_t i, const char *pattern);

/* True when the single query string matches the concrete namespace
 * (compiles on the fly; for tools and tests). */
bool fr_ns_match(const char *query, const char *ns);

#endif
