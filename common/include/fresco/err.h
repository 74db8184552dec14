/* fresco error codes.
 *
 * Every libfresco function that can fail returns 0 on success or one of the
 * negative FR_E* codes below. fr_strerror() gives a sentence for a log line;
 * fr_errcode() gives the short snake_case code used on the wire in
 * {"ok": false, "error": {"code": ...}}.
 *
 * Functions that can say *where* something failed (decoders, config and
 * manifest loaders) also fill a caller-owned fr_error. */
#ifndef FRESCO_ERR_H
#define FRESCO_ERR_H

#include <stddef.h>

enum fr_err {
    FR_OK = 0,
    FR_ENOMEM = -1,     /* out of memory */
    FR_EINVAL = -2,     /* invalid argument or value */
    FR_ETRUNC = -3,     /* input ends before the value does */
    FR_ETYPE = -4,      /* a value has the wrong type */
    FR_ETOOBIG = -5,    /* a string, array, map or message is over its limit */
    FR_EDEPTH = -6,     /* nesting deeper than allowed */
    FR_ETRAILING = -7,  /* bytes left over after a complete value */
    FR_EMISSING = -8,   /* a required field is absent */
    FR_EUNKNOWN = -9,   /* an unknown key or field */
    FR_EDUP = -10,      /* a key given twice */
    FR_ETIMEDOUT = -11, /* no answer before the deadline */
    FR_ECLOSED = -12,   /* the object or socket is closed */
    FR_EIO = -13,       /* an operating-system I/O error */
    FR_ENOTFOUND = -14, /* no such object */
    FR_EPROTO = -15,    /* the peer broke the protocol */
    FR_ECONFIG = -16,   /* bad configuration */
    FR_ETLS = -17,      /* TLS setup or handshake failed */
    FR_EBUSY = -18,     /* resource busy or queue full: try again later */
    FR_ENNG = -19,      /* an nng call failed; the log line has nng's reason */
    FR_EREMOTE = -20,   /* the peer answered with an error reply */
    FR_EADDR = -21,     /* a bad or unusable address */
    FR_EUNSUPPORTED = -22,
    FR_EEXIST = -23, /* the object exists already */
    FR_ERR_MIN = -23
};

/* A sentence describing err, e.g. "input ends before the value does".
 * Static storage; never NULL (unknown codes give "unknown error"). */
const char *fr_strerror(int err);

/* The wire code for err, e.g. "truncated", "timeout", "not_found".
 * Static storage; never NULL. */
const char *fr_errcode(int err);

/* Maps an nng error number to an fr_err code (NNG_ETIMEDOUT -> FR_ETIMEDOUT,
 * NNG_ECLOSED -> FR_ECLOSED, NNG_ENOMEM -> FR_ENOMEM, crypto/peer auth errors
 * -> FR_ETLS, NNG_EADDRINVAL/NNG_ENOTSUP on a scheme -> FR_EADDR, others
 * -> FR_ENNG). 0 maps to 0. */
int fr_from_nng(int nng_rv);

/* Where and why something failed, filled by decoders and loaders.
 * Caller-owned, fixed size: no allocation. */
typedef struct fr_error {
    int code;          /* an FR_E* code, 0 when nothing failed */
    char where[160];   /* path of the failing element: "metrics[3].tags.host",
                          or for files "collector.yaml:12:3" */
    char message[256]; /* a sentence naming the field and what is wrong */
} fr_error;

/* Clears e (code 0, empty strings). Safe on NULL. */
void fr_error_clear(fr_error *e);

/* Sets e->code, e->where (may be NULL for empty) and a printf-formatted
 * message. Returns code, so callers can `return fr_error_set(...)`.
 * Safe on e == NULL (then only returns code). */
int fr_error_set(fr_error *e, int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
