/* The publisher's on-disk spool: every batch the publisher acknowledges is
 * in it first, and stays until every sink that wants it has confirmed it.
 *
 * Layout under dir:
 *   seg-<16 hex digits>.fsp   append-only segments; the digits are the
 *                             position (byte offset in the spool's whole
 *                             history) of the segment's first record
 *   cursors/<name>            one per reader: the position it confirmed
 *   rejected/                 batches no sink could ever take (the engine
 *                             writes them; the spool only makes the folder)
 * The record format (header with magic, lengths and CRC-32C checksums) is in
 * docs/spool.md.
 *
 * Positions: a position is a byte offset into the spool's history; it only
 * grows. A record ends at the position `end` that spool_read gives: a
 * reader that confirms `end` never sees that record again.
 *
 * Durability: spool_append returns once the record is written with one
 * write(2): it survives the publisher being killed (SIGKILL), since the
 * kernel has it; with fsync set it is also on the disk (power loss).
 * Cursors are written atomically (temporary file + rename) at most every
 * cursor_interval_ms and on close: after a crash a reader starts again
 * from its last written cursor and sees a few records again (sinks drop
 * what they already stored).
 *
 * Damage: at open, a torn record at the end of the last segment (a crash in
 * the middle of a write) is cut off. A record whose header or checksum is
 * wrong anywhere else is reported (log line naming the segment file and
 * offset, counted in corrupt_records and corrupt_bytes) and skipped: the
 * reader finds the next good record by its magic and header checksum and
 * goes on, so the rest is not lost.
 *
 * Thread safety: appends may come from several threads at once; each
 * reader is used by one thread at a time; everything else is safe from any
 * thread. */
#ifndef PUBLISHER_SPOOL_H
#define PUBLISHER_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/err.h"

typedef struct spool spool;

typedef struct spool_conf {
    const char *dir;            /* created when missing (with its parents) */
    int64_t max_bytes;          /* spool_append answers FR_EBUSY over this */
    int64_t segment_bytes;      /* a segment is closed and a new one begun past this */
    bool fsync;                 /* fdatasync after each append */
    int64_t cursor_interval_ms; /* how often confirmed cursors are written (0: 200) */
} spool_conf;

typedef struct spool_stats {
    uint64_t bytes;    /* in segments on disk */
    uint64_t segments; /* files */
    uint64_t records;  /* appended since open */
    uint64_t appended_bytes;
    uint64_t full; /* appends refused because the spool was full */
    uint64_t corrupt_records;
    uint64_t corrupt_bytes;
    uint64_t torn_bytes; /* cut off the end at open */
    uint64_t head;       /* position after the last record */
    uint64_t tail;       /* position of the oldest record still kept */
} spool_stats;

/* Opens the spool in conf->dir, creating it or finding its segments and
 * cursors again. Fails (err naming the file) when dir cannot be used. */
int spool_open(spool **out, const spool_conf *conf, fr_error *err);

/* Writes cursors and closes. Open readers must be closed first. Safe on NULL. */
void spool_close(spool *s);

/* Appends one record: key (a short string, at most 1024 bytes: the engine
 * puts the batch's task and route there so readers can skip records that
 * are not theirs without decoding them) and data. Returns 0 (the record is
 * written), FR_EBUSY when the spool holds max_bytes or more (nothing
 * written; counted in full), FR_ETOOBIG for a record over 1 GiB, FR_EIO
 * (logged with the reason). Thread-safe; records from concurrent appends
 * never interleave. */
int spool_append(spool *s, const char *key, const void *data, size_t len);

/* True when an append of len bytes would be taken now. */
bool spool_has_room(spool *s, size_t len);

void spool_stats_get(spool *s, spool_stats *st);

/* Calls fn for every good record from the oldest kept to the head (at
 * open, to find again which batches are held). fn returning non-zero stops
 * the walk with that value. key and data are valid during the call only. */
int spool_scan(spool *s, int (*fn)(void *arg, const char *key, const void *data, size_t len),
               void *arg);

/* ---- readers ---- */

typedef struct spool_reader spool_reader;

/* Opens the reader called name ([A-Za-z0-9._-], at most 200 bytes),
 * picking up its cursor when it has one; a new reader starts at the head
 * (it sees only records appended from now on). Each name is open at most
 * once at a time (FR_EEXIST). */
int spool_reader_open(spool *s, const char *name, spool_reader **out, fr_error *err);

typedef struct spool_record {
    const char *key;  /* NUL-terminated */
    const void *data; /* valid until the next spool_read or rewind on this reader */
    size_t len;
    uint64_t pos; /* where the record starts */
    uint64_t end; /* where it ends: confirm this to be done with it */
} spool_record;

/* The next record after the read position, waiting up to timeout_ms (-1:
 * forever, 0: not at all) for one to be appended. 0 (rec filled),
 * FR_ETIMEDOUT, FR_ECLOSED (spool_reader_wake or close), FR_EIO. */
int spool_read(spool_reader *r, spool_record *rec, int timeout_ms);

/* Done with every record that ends at or before pos. Segments that every
 * reader (open or not, so long as its cursor exists) is done with are
 * deleted. */
void spool_confirm(spool_reader *r, uint64_t pos);

/* The reader's read position: where its next spool_read starts (after a
 * rewind or at open: its confirmed position). */
uint64_t spool_reader_position(const spool_reader *r);

/* Moves the read position back to the last confirmed position, to read the
 * same records again (after a sink failed to take them). */
void spool_reader_rewind(spool_reader *r);

/* Makes a spool_read waiting in another thread return FR_ECLOSED; when
 * no read is waiting, the next spool_read returns FR_ECLOSED (once). */
void spool_reader_wake(spool_reader *r);

/* Writes the reader's cursor and closes it; the cursor stays. Safe on NULL. */
void spool_reader_close(spool_reader *r);

/* Forgets the reader called name for good (its sink is gone): deletes the
 * cursor, so it no longer holds segments. It must not be open. 0,
 * FR_ENOTFOUND, FR_EBUSY (it is open) or FR_EIO. */
int spool_reader_remove(spool *s, const char *name);

/* CRC-32C (Castagnoli, as iSCSI and ext4), the spool's checksum:
 * spool_crc32c(0, "123456789", 9) == 0xe3069283; crc of a then b is
 * spool_crc32c(spool_crc32c(0, a, na), b, nb). Uses the CPU's crc32
 * instruction where there is one. spool_crc32c_sw is the table-driven
 * version alone (for tests). */
uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n);
uint32_t spool_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
