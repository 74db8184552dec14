/* What data_replica writes for each batch it acknowledges. */
#ifndef FRESCO_TEST_REPLICA_RECORD_H
#define FRESCO_TEST_REPLICA_RECORD_H

#include <stdint.h>

typedef struct replica_record {
    char source[56]; /* NUL-terminated, truncated */
    uint64_t seq;
} replica_record;

_Static_assert(sizeof(replica_record) == 64, "records are fixed-size on disk");

#endif
