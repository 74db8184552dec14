/* Table and index names. PostgreSQL cuts identifiers beyond 63 bytes
 * silently, so names are made to fit here, with a hash of what was cut so
 * two long names stay apart. Names are unquoted: they are always sent
 * through PQescapeIdentifier. */
#ifndef PUBLISHER_SINK_PG_NAMES_H
#define PUBLISHER_SINK_PG_NAMES_H

#include <stddef.h>

#define PGNAME_MAX 63 /* bytes in an identifier (NAMEDATALEN - 1) */
/* The longest `table` with table_per_task: room for "_" and a hash. */
#define PGNAME_BASE_MAX (PGNAME_MAX - 10)

/* base + "_" + task_name made an identifier: ASCII letters lower-cased,
 * digits and '_' kept, every other run of bytes one '_'. Over 63 bytes (or
 * nothing left of the task name), the task part is cut and "_" plus 8 hex
 * digits of a hash of the whole task name appended. base must be at most
 * PGNAME_BASE_MAX bytes. */
void pgname_task_table(char out[PGNAME_MAX + 1], const char *base, const char *task_name);

/* table + suffix ("_ns_time_idx"); over 63 bytes, the table part is cut
 * (at a UTF-8 character boundary) and a hash of the whole table name put
 * before the suffix. */
void pgname_index(char out[PGNAME_MAX + 1], const char *table, const char *suffix);

#endif
