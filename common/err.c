/* fresco error codes: sentences, wire codes, nng mapping. */
#include "fresco/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>

static const struct {
    int code;
    const char *wire;
    const char *text;
} err_table[] = {
    {FR_OK, "ok", "success"},
    {FR_ENOMEM, "no_memory", "out of memory"},
    {FR_EINVAL, "invalid", "invalid argument or value"},
    {FR_ETRUNC, "truncated", "input ends before the value does"},
    {FR_ETYPE, "wrong_type", "a value has the wrong type"},
    {FR_ETOOBIG, "too_big", "a value is over its size limit"},
    {FR_EDEPTH, "too_deep", "nesting deeper than allowed"},
    {FR_ETRAILING, "trailing_bytes", "bytes left over after a complete value"},
    {FR_EMISSING, "missing", "a required field is absent"},
    {FR_EUNKNOWN, "unknown", "an unknown key or field"},
    {FR_EDUP, "duplicate", "a key given twice"},
    {FR_ETIMEDOUT, "timeout", "no answer before the deadline"},
    {FR_ECLOSED, "closed", "closed"},
    {FR_EIO, "io", "input/output error"},
    {FR_ENOTFOUND, "not_found", "no such object"},
    {FR_EPROTO, "protocol", "the peer broke the protocol"},
    {FR_ECONFIG, "bad_config", "bad configuration"},
    {FR_ETLS, "tls", "TLS setup or handshake failed"},
    {FR_EBUSY, "busy", "busy, try again later"},
    {FR_ENNG, "transport", "transport error"},
    {FR_EREMOTE, "remote", "the peer answered with an error"},
    {FR_EADDR, "bad_address", "bad or unusable address"},
    {FR_EUNSUPPORTED, "unsupported", "not supported"},
    {FR_EEXIST, "exists", "the object exists already"},
};

static int err_index(int err)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
        if (err_table[i].code == err) {
            return (int)i;
        }
    }
    return -1;
}

const char *fr_strerror(int err)
{
    int i = err_index(err);
    return i < 0 ? "unknown error" : err_table[i].text;
}

const char *fr_errcode(int err)
{
    int i = err_index(err);
    return i < 0 ? "internal" : err_table[i].wire;
}

int fr_from_nng(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case NNG_ETIMEDOUT:
        return FR_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return FR_ECLOSED;
    case NNG_ENOMEM:
        return FR_ENOMEM;
    case NNG_EINVAL:
        return FR_EINVAL;
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
    case NNG_EADDRINUSE:
        return FR_EADDR;
    case NNG_ECRYPTO:
    case NNG_EPEERAUTH:
        return FR_ETLS;
    case NNG_EAGAIN:
    case NNG_EBUSY:
        return FR_EBUSY;
    case NNG_EPROTO:
        return FR_EPROTO;
    default:
        return FR_ENNG;
    }
}

void fr_error_clear(fr_error *e)
{
    if (e != NULL) {
        e->code = 0;
        e->where[0] = '\0';
        e->message[0] = '\0';
    }
}

int fr_error_set(fr_error *e, int code, const char *where, const char *fmt, ...)
{
    if (e == NULL) {
        return code;
    }
    e->code = code;
    snprintf(e->where, sizeof(e->where), "%s", where != NULL ? where : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return code;
}
