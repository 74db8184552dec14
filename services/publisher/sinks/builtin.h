/* The sinks built into fresco-publisher (from the CMake list
 * FRESCO_SINKS). */
#ifndef PUBLISHER_SINKS_BUILTIN_H
#define PUBLISHER_SINKS_BUILTIN_H

#include <stddef.h>
#include <string.h>

#include "fresco/pipeline.h"

extern const fr_sink_plugin *const fr_builtin_sinks[];
extern const size_t fr_builtin_nsinks;

/* The built-in plugin called name, or NULL. */
const fr_sink_plugin *fr_sink_find(const char *name);

#endif
