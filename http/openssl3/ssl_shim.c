/* SPDX-License-Identifier: MIT */
/* ssl_shim.c: built as the shared library "libssl.so" next to the tessera executable, so that
 * CivetWeb's TLS works with OpenSSL 3.
 *
 * Debian 12's CivetWeb 1.15 loads OpenSSL at run time by the name "libssl.so" and looks up the
 * OpenSSL 1.1 function SSL_get_peer_certificate, which OpenSSL 3 no longer exports (it is a
 * macro for SSL_get1_peer_certificate): HTTPS then fails to start with "load_tls_dll:
 * libssl.so: cannot find SSL_get_peer_certificate" (civetweb issue #1334). tessera links this
 * library, whose soname is "libssl.so"; CivetWeb's dlopen("libssl.so") returns it, and lookups
 * through it find this one function here and every other one in its dependency, OpenSSL 3's
 * real libssl.so.3. Nothing else is defined here. */
typedef struct ssl_st SSL;
typedef struct x509_st X509;

X509 *SSL_get1_peer_certificate(const SSL *s);
X509 *SSL_get_peer_certificate(const SSL *s);
int tsr_ssl_shim_loaded(void);

X509 *
SSL_get_peer_certificate(const SSL *s)
{
    return SSL_get1_peer_certificate(s);
}

/* Referenced by the HTTP layer, so that the linker keeps this library a dependency. */
int
tsr_ssl_shim_loaded(void)
{
    return 1;
}
