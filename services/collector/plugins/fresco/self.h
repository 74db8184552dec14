/* The collector's own counters, offered as metrics under /fresco/collector
 * by the built-in plugin "fresco". The collector registers each counter at
 * start; the plugin reads them on every collect. */
#ifndef COLLECTOR_SELF_H
#define COLLECTOR_SELF_H

#include <stdatomic.h>
#include <stdint.h>

/* Offers *value as /fresco/collector/<name> (name must be one of the
 * catalog's; others are ignored). value must live as long as the process. */
void collector_self_register(const char *name, _Atomic uint64_t *value);

#endif
