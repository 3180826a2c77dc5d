"""TLS on either side of the proxy, and the credentials of the proxy's own connections.

- `settings`: what a user asks for (files, versions, self-signed), as plain frozen values
  that `proxy.config.ProxyConfig` carries;
- `certs`: certificates made with `cryptography` (`--tls-self-signed`, and the local broker's
  SSL listeners in `proxy.real_kafka`);
- `contexts`: the `ssl.SSLContext` of the listeners and of the upstream connections, built
  once at start-up, a bad file said in one line naming it (`TlsConfigError`);
- `errors`: a failed handshake or a peer speaking the wrong protocol, turned into one of a
  closed set of reasons (the `kcp_tls_errors_total{side,reason}` label values).

Why the proxy terminates TLS on each side instead of passing it through: it must read (and
may rewrite) every frame, so it is the client's TLS server and the broker's TLS client, each
side configured on its own (plaintext to TLS and TLS to plaintext both work).
"""
