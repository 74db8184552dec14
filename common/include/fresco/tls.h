/* TLS for any bus address. A "tls+tcp://" address needs a TLS config; other
 * schemes ignore it. Built on nng's TLS (mbedTLS).
 *
 * The paths are borrowed: fr_tls_conf holds pointers the caller owns (usually
 * into a loaded config struct) and reads them only inside the calls below. */
#ifndef FRESCO_TLS_H
#define FRESCO_TLS_H

#include <stdbool.h>

#include <nng/nng.h>

typedef struct fr_tls_conf {
    const char *cert_file;    /* PEM: our certificate (server: required; client:
                                 optional, for client-certificate auth) */
    const char *key_file;     /* PEM: its private key; may be the cert file */
    const char *ca_file;      /* PEM: CAs we trust for the peer; NULL or "" =
                                 no verification (client) / no client certs (server) */
    const char *server_name;  /* client: expected name in the server cert;
                                 NULL = the host part of the address */
    bool require_client_cert; /* server: refuse clients without a cert
                                 signed by ca_file */
} fr_tls_conf;

/* True when the URL's scheme is tls+tcp (or tls+tcp4/tls+tcp6). */
bool fr_url_is_tls(const char *url);

/* Applies conf to a listener/dialer that is created but not started.
 * No-op returning 0 when the URL is not TLS. FR_ETLS with a log line
 * naming the file when a certificate, key or CA cannot be loaded;
 * FR_ECONFIG when a TLS URL has no conf (server without cert). */
int fr_tls_apply_listener(nng_listener l, const char *url, const fr_tls_conf *conf);
int fr_tls_apply_dialer(nng_dialer d, const char *url, const fr_tls_conf *conf);

/* Listen / dial helpers used by every bus part: create, apply TLS, start.
 * Dialing is non-blocking (NNG_FLAG_NONBLOCK): the peer may come later and
 * nng reconnects by itself. Returns 0 or a negative code, logging why. */
int fr_listen(nng_socket s, const char *url, const fr_tls_conf *conf, nng_listener *out);
int fr_dial(nng_socket s, const char *url, const fr_tls_conf *conf, nng_dialer *out);

#endif
