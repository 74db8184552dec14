/* NoCloud seed images for the virtual machines the HPC service starts: the
 * files cloud-init reads at boot (user-data, meta-data, network-config,
 * vendor-data), written either as an ISO9660 image for Linux guests or as a
 * raw data disk for OSv, which has no ISO9660 driver.
 *
 * File names and limits (both formats): at most HPC_SEED_MAX_FILES files,
 * each name 1..HPC_SEED_NAME_MAX bytes of [a-z0-9._-] (not "." or "..", no
 * name twice), each file at most HPC_SEED_FILE_MAX bytes (0 is allowed).
 * Anything else is FR_EINVAL, with e->where naming the field
 * ("files[2].name") and e->message the file and what is allowed.
 *
 * Writing: both writers build the image in <path>.tmp (mode 0600: user-data
 * may hold secrets), fsync it, rename it onto path and fsync the directory.
 * On any error <path>.tmp is removed and no new file is at path: a file
 * that was at path before the call is left as it was, except when only the
 * final directory fsync fails, where path is removed so that a failure
 * never leaves an image the caller was told was not written. Two writers
 * must not write the same path at once.
 *
 * Ownership: the writers only read `files` and the bytes they point to,
 * during the call; the caller keeps them. `e` is caller-owned and may be
 * NULL.
 *
 * ISO9660 image (hpc_seed_write_iso), in 2048-byte blocks:
 *   0..15   system area, zeros
 *   16      Primary Volume Descriptor (volume id = label)
 *   17      Joliet Supplementary Volume Descriptor (escape "%/E", UCS-2BE)
 *   18      Volume Descriptor Set Terminator
 *   19, 20  L and M path tables of the primary tree (one entry: the root)
 *   21, 22  L and M path tables of the Joliet tree
 *   23..    primary root directory: '.', '..', then the files sorted by
 *           their ISO9660 identifier; Rock Ridge (RRIP 1.10: "SP" and a
 *           "CE" pointing at the continuation area in '.', "PX" in every
 *           record, "NM" with the exact name in each file's record)
 *   then    Joliet root directory: '.', '..', files sorted by name, the
 *           exact names in UCS-2BE (no ";1")
 *   then    one block: the Rock Ridge continuation area with the "ER" entry
 *   then    the file contents, in name order, each from a block boundary
 * The ISO9660 primary names are level-2 d-character names made from the
 * real ones: upper case, every character outside [A-Z0-9] becomes '_'
 * except the last '.', extension cut to 8 and name plus extension to 30,
 * then ";1" ("user-data" -> "USER_DATA.;1"); names that would clash get a
 * "_NN" suffix. Linux (isofs), blkid and cloud-init see the exact names
 * through Rock Ridge, and Joliet readers through Joliet.
 * All dates are 1970-01-01 00:00:00 UTC, so the same input always gives the
 * same bytes. The label is written as given (cloud-init looks for "cidata"
 * or "CIDATA") in both descriptors; it is 1..HPC_SEED_LABEL_MAX bytes of
 * [A-Za-z0-9._-], the length the Joliet descriptor can hold. Files are
 * mode 0444, the root directory 0555, owned by uid and gid 0.
 *
 * Raw seed disk (hpc_seed_write_raw, hpc_seed_read_raw), for OSv:
 *   offset 0  the header: the ASCII text
 *               "FRSEED1\n"
 *               "<name> <offset> <length>\n"   one line per file
 *             then NUL bytes up to the next 512-byte boundary (at least one
 *             NUL). <offset> and <length> are decimal byte counts without
 *             sign or leading zeros. The header is sector 0 alone for the
 *             usual NoCloud files; it takes up to HPC_SEED_RAW_HEADER_MAX
 *             bytes (3 sectors) when 16 files have long names.
 *   then      the file contents in header order (sorted by name), each at
 *             its <offset>, a multiple of 512, zero padded to the next
 *             512-byte boundary; an empty file has the offset where the
 *             next one starts.
 * The image size is a multiple of 512. The disk may be larger than the seed
 * (bytes after the last file are ignored by the reader). */
#ifndef HPC_SEED_H
#define HPC_SEED_H

#include <stddef.h>

#include "fresco/err.h"

#define HPC_SEED_MAX_FILES      16
#define HPC_SEED_NAME_MAX       64
#define HPC_SEED_FILE_MAX       (16u * 1024u * 1024u)
#define HPC_SEED_LABEL_MAX      16
#define HPC_SEED_RAW_SECTOR     512
#define HPC_SEED_RAW_MAGIC      "FRSEED1\n"
#define HPC_SEED_RAW_HEADER_MAX (3 * HPC_SEED_RAW_SECTOR)

/* One file of a seed. `name` is NUL-terminated; `data` may be NULL when
 * len is 0. */
typedef struct hpc_seed_file {
    const char *name;
    const void *data;
    size_t len;
} hpc_seed_file;

/* Writes an ISO9660 image (layout above) at path with volume identifier
 * `label` holding files[0..n) in its root directory. files may be NULL when
 * n is 0. Returns 0, FR_EINVAL (bad path, label or file; nothing written),
 * FR_ENOMEM, or FR_EIO (e->where is the path, e->message the failing step
 * and the system's reason). */
int hpc_seed_write_iso(const char *path, const char *label, const hpc_seed_file *files, size_t n,
                       fr_error *e);

/* Writes a raw seed disk (layout above) at path holding files[0..n).
 * Same atomic write, limits and return codes as hpc_seed_write_iso. */
int hpc_seed_write_raw(const char *path, const hpc_seed_file *files, size_t n, fr_error *e);

/* Parses a raw seed from buf[0..len) and calls cb(ctx, name, data, n) for
 * each file in header order. The whole header is checked before the first
 * call: a bad magic, a header without its NUL padding, a line that is not
 * "<name> <offset> <length>\n", a bad or repeated name, more than
 * HPC_SEED_MAX_FILES files, a file over HPC_SEED_FILE_MAX, an offset that is
 * not a multiple of 512, inside the header or past len, or two files that
 * overlap give FR_EPROTO with e->where naming the header line and
 * e->message what is wrong. cb may be NULL to only check the seed.
 * `name` is NUL-terminated and `data` points into buf; both are valid only
 * during the call. A non-zero return from cb stops the walk and is
 * returned as is. */
int hpc_seed_read_raw(const void *buf, size_t len,
                      int (*cb)(void *ctx, const char *name, const void *data, size_t n), void *ctx,
                      fr_error *e);

#endif
