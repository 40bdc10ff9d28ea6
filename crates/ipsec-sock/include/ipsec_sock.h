/*
 * ipsec_sock.h - Solaris per-socket IPsec policy (ipsec(4P)) for Linux, with Ironswan.
 *
 * setsockopt(s, IPPROTO_IP, IP_SEC_OPT, &req, sizeof (ipsec_req_t)) and
 * setsockopt(s, IPPROTO_IPV6, IPV6_SEC_OPT, ...) are served by libipsec_sock.so (load it
 * with LD_PRELOAD) and ipsecd. Values are Solaris': the option number 0x22 is shared on
 * Linux with IP_MULTICAST_LOOP / IPV6_IPSEC_POLICY, so only an option of exactly
 * sizeof (ipsec_req_t) bytes is taken as the IPsec request.
 *
 * Errors: EPERM (bypass, or an algorithm system policy does not use, without root or
 * CAP_NET_ADMIN), EINVAL (bad request, listening TCP socket, connected socket: the policy
 * latched), EPROTONOSUPPORT (ipsecd not running).
 */
#ifndef IPSEC_SOCK_H
#define IPSEC_SOCK_H

#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IP_SEC_OPT   0x22 /* level IPPROTO_IP */
#define IPV6_SEC_OPT 0x22 /* level IPPROTO_IPV6 */

typedef struct ipsec_req {
	unsigned int ipsr_ah_req;         /* AH request */
	unsigned int ipsr_esp_req;        /* ESP request */
	unsigned int ipsr_self_encap_req; /* Self-Encap request */
	uint8_t ipsr_auth_alg;            /* Auth algs for AH */
	uint8_t ipsr_esp_alg;             /* Encr algs for ESP */
	uint8_t ipsr_esp_auth_alg;        /* Auth algs for ESP */
} ipsec_req_t;

/* Request values (each field; NEVER in both AH and ESP is a bypass). */
#define IPSEC_PREF_NEVER    0x01
#define IPSEC_PREF_REQUIRED 0x02
#define IPSEC_PREF_UNIQUE   0x04

/* Authentication algorithms (PF_KEY numbers, Solaris <net/pfkeyv2.h>). */
#define SADB_AALG_NONE       0
#define SADB_AALG_MD5HMAC    2
#define SADB_AALG_SHA1HMAC   3
#define SADB_AALG_SHA256HMAC 5
#define SADB_AALG_SHA384HMAC 6
#define SADB_AALG_SHA512HMAC 7
#define SADB_AALG_MAX        7
#define SADB_AALG_ANY        255 /* authentication with any algorithm */

/* Encryption algorithms. */
#define SADB_EALG_NONE       0
#define SADB_EALG_DESCBC     2
#define SADB_EALG_3DESCBC    3
#define SADB_EALG_BLOWFISH   7
#define SADB_EALG_NULL       11
#define SADB_EALG_AES        12
#define SADB_EALG_AES_CCM_8  14
#define SADB_EALG_AES_CCM_12 15
#define SADB_EALG_AES_CCM_16 16
#define SADB_EALG_AES_GCM_8  18
#define SADB_EALG_AES_GCM_12 19
#define SADB_EALG_AES_GCM_16 20
#define SADB_EALG_MAX        20

#ifdef __cplusplus
}
#endif

#endif /* IPSEC_SOCK_H */
