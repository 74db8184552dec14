/* TLS for bus addresses, and the listen/dial helpers every bus part uses. */
#include "fresco/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/supplemental/tls/tls.h>

#include "fresco/err.h"
#include "fresco/log.h"

bool fr_url_is_tls(const char *url)
{
    return url != NULL && strncmp(url, "tls+tcp", 7) == 0;
}

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Reads a whole PEM file into a NUL-terminated string. The caller frees. */
static int pem_read(const char *path, const char *what, char **out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fr_error("tls", "cannot open %s file %s: %s", what, path, strerror(errno));
        return FR_ETLS;
    }
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            if (cap > 16u * 1024 * 1024) {
                fr_error("tls", "%s file %s is too large", what, path);
                free(data);
                fclose(f);
                return FR_ETLS;
            }
            char *p = realloc(data, cap);
            if (p == NULL) {
                free(data);
                fclose(f);
                return FR_ENOMEM;
            }
            data = p;
        }
        size_t n = fread(data + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        fr_error("tls", "cannot read %s file %s", what, path);
        free(data);
        return FR_ETLS;
    }
    data[len] = '\0';
    *out = data;
    return 0;
}

static int tls_config_build(nng_tls_mode mode, const char *url, const fr_tls_conf *conf,
                            nng_tls_config **out)
{
    bool server = mode == NNG_TLS_MODE_SERVER;
    if (conf == NULL || (server && !is_set(conf->cert_file))) {
        fr_error("tls", "%s is a TLS address but no %s is configured (tls.cert)", url,
                 server ? "server certificate" : "TLS setting");
        return FR_ECONFIG;
    }
    nng_tls_config *cfg = NULL;
    int rv = nng_tls_config_alloc(&cfg, mode);
    if (rv != 0) {
        fr_error("tls", "%s: cannot set up TLS: %s", url, nng_strerror(rv));
        return fr_from_nng(rv);
    }
    char *cert = NULL, *key = NULL, *ca = NULL;
    if (is_set(conf->cert_file)) {
        const char *key_file = is_set(conf->key_file) ? conf->key_file : conf->cert_file;
        if ((rv = pem_read(conf->cert_file, "certificate", &cert)) != 0 ||
            (rv = pem_read(key_file, "key", &key)) != 0) {
            goto fail;
        }
        int nrv = nng_tls_config_own_cert(cfg, cert, key, NULL);
        if (nrv != 0) {
            fr_error("tls", "certificate %s with key %s not usable: %s", conf->cert_file, key_file,
                     nng_strerror(nrv));
            rv = FR_ETLS;
            goto fail;
        }
    }
    if (is_set(conf->ca_file)) {
        if ((rv = pem_read(conf->ca_file, "CA", &ca)) != 0) {
            goto fail;
        }
        int nrv = nng_tls_config_ca_chain(cfg, ca, NULL);
        if (nrv != 0) {
            fr_error("tls", "CA file %s not usable: %s", conf->ca_file, nng_strerror(nrv));
            rv = FR_ETLS;
            goto fail;
        }
        nng_tls_auth_mode am = NNG_TLS_AUTH_MODE_REQUIRED;
        if (server && !conf->require_client_cert) {
            am = NNG_TLS_AUTH_MODE_OPTIONAL;
        }
        nng_tls_config_auth_mode(cfg, am);
    } else if (server && conf->require_client_cert) {
        fr_error("tls", "%s: tls.require_client_cert needs tls.ca to verify clients", url);
        rv = FR_ECONFIG;
        goto fail;
    } else {
        if (!server) {
            fr_warn("tls", "%s: no tls.ca configured: the server is not verified", url);
        }
        nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
    }
    if (!server && is_set(conf->server_name)) {
        nng_tls_config_server_name(cfg, conf->server_name);
    }
    free(cert);
    free(key);
    free(ca);
    *out = cfg;
    return 0;
fail:
    free(cert);
    free(key);
    free(ca);
    nng_tls_config_free(cfg);
    return rv;
}

int fr_tls_apply_listener(nng_listener l, const char *url, const fr_tls_conf *conf)
{
    if (!fr_url_is_tls(url)) {
        return 0;
    }
    nng_tls_config *cfg = NULL;
    int rv = tls_config_build(NNG_TLS_MODE_SERVER, url, conf, &cfg);
    if (rv != 0) {
        return rv;
    }
    rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
    nng_tls_config_free(cfg); /* the listener holds its own reference */
    return rv == 0 ? 0 : fr_from_nng(rv);
}

int fr_tls_apply_dialer(nng_dialer d, const char *url, const fr_tls_conf *conf)
{
    if (!fr_url_is_tls(url)) {
        return 0;
    }
    nng_tls_config *cfg = NULL;
    int rv = tls_config_build(NNG_TLS_MODE_CLIENT, url, conf, &cfg);
    if (rv != 0) {
        return rv;
    }
    rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
    nng_tls_config_free(cfg);
    return rv == 0 ? 0 : fr_from_nng(rv);
}

int fr_listen(nng_socket s, const char *url, const fr_tls_conf *conf, nng_listener *out)
{
    nng_listener l;
    int rv = nng_listener_create(&l, s, url);
    if (rv != 0) {
        fr_error("bus", "cannot listen on %s: %s", url, nng_strerror(rv));
        return rv == NNG_ENOMEM ? FR_ENOMEM : FR_EADDR;
    }
    if ((rv = fr_tls_apply_listener(l, url, conf)) != 0) {
        nng_listener_close(l);
        return rv;
    }
    if (strncmp(url, "ipc://", 6) == 0) {
        /* As reachable as a loopback port, and unlike one the handlers learn
         * who called (fr_ctl_reply_peer_uid) and check it. */
        nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0666);
    }
    if ((rv = nng_listener_start(l, 0)) != 0) {
        fr_error("bus", "cannot listen on %s: %s", url, nng_strerror(rv));
        nng_listener_close(l);
        return fr_from_nng(rv) == FR_ENNG ? FR_EADDR : fr_from_nng(rv);
    }
    if (out != NULL) {
        *out = l;
    }
    return 0;
}

int fr_dial(nng_socket s, const char *url, const fr_tls_conf *conf, nng_dialer *out)
{
    nng_dialer d;
    int rv = nng_dialer_create(&d, s, url);
    if (rv != 0) {
        fr_error("bus", "cannot dial %s: %s", url, nng_strerror(rv));
        return rv == NNG_ENOMEM ? FR_ENOMEM : FR_EADDR;
    }
    if ((rv = fr_tls_apply_dialer(d, url, conf)) != 0) {
        nng_dialer_close(d);
        return rv;
    }
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 50);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 1000);
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        fr_error("bus", "cannot dial %s: %s", url, nng_strerror(rv));
        nng_dialer_close(d);
        return fr_from_nng(rv);
    }
    if (out != NULL) {
        *out = d;
    }
    return 0;
}
