/* The processor plugins built into fresco-processor (from the CMake list
 * FRESCO_PROCESSOR_PLUGINS). */
#ifndef PROCESSOR_BUILTIN_H
#define PROCESSOR_BUILTIN_H

#include <stddef.h>
#include <string.h>

#include "fresco/pipeline.h"

extern const fr_processor_plugin *const fr_builtin_processors[];
extern const size_t fr_builtin_nprocessors;

/* The built-in plugin called name, or NULL. snap's names for plugins
 * fresco names otherwise are accepted too: "anomalydetection" (anomaly),
 * "passthru" (passthrough). */
const fr_processor_plugin *fr_processor_find(const char *name);

#endif
