/*
 * The ipsec(4P) manual page's example (per-socket policy with ipsec_req_t: ESP required)
 * inside a small client, for the end-to-end tests of libipsec_sock.so. The lines between
 * "manual page" markers are the example's; its include of <net/pfkeyv2.h> (for the
 * SADB_*ALG_* numbers) is replaced by <ipsec_sock.h>.
 *
 * usage: solaris_example udp|tcp|tcp-server ADDR PORT esp|never|unique|selfencap|none COUNT [LPORT]
 *   esp: the manual's request; never: bypass; unique: ESP with a unique SA; selfencap: ESP
 *   with self-encapsulation; none: no option. Sends COUNT messages to ADDR:PORT and
 *   waits for each echo (unique, selfencap: sends one every 100 ms without waiting). Prints
 *   "setsockopt RC ERRNO", "getsockopt ESP_REQ ESP_ALG ESP_AUTH_ALG" and "echoed N".
 *   tcp-server: sets the option, binds ADDR:PORT, listens (then tries the option again:
 *   "relisten RC ERRNO"), accepts one connection, prints the accepted socket's
 *   "getsockopt ..." and echoes COUNT messages ("served N").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/time.h>

/* manual page */
#include <sys/socket.h>
#include <netinet/in.h>
#include <ipsec_sock.h> /* For SADB_*ALG_* */
/* manual page end */

int
main(int argc, char **argv)
{
	ipsec_req_t ipsec_req;
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct timeval tv = { 1, 0 };
	int s, rc, tcp, count, i, echoed = 0, v6;
	socklen_t sslen;
	const char *mode;

	if (argc < 6) {
		fprintf(stderr, "usage: %s udp|tcp ADDR PORT esp|never|unique|selfencap|none "
		    "COUNT [LPORT]\n",
		    argv[0]);
		return 2;
	}
	tcp = strncmp(argv[1], "tcp", 3) == 0;
	mode = argv[4];
	count = atoi(argv[5]);
	v6 = strchr(argv[2], ':') != NULL;
	sslen = v6 ? sizeof (*sin6) : sizeof (*sin);
	s = socket(v6 ? AF_INET6 : AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (s < 0) {
		perror("socket");
		return 1;
	}
	if (argc > 6) {
		memset(&ss, 0, sizeof (ss));
		ss.ss_family = v6 ? AF_INET6 : AF_INET;
		if (v6)
			sin6->sin6_port = htons(atoi(argv[6]));
		else
			sin->sin_port = htons(atoi(argv[6]));
		if (bind(s, (struct sockaddr *)&ss, sslen) != 0) {
			perror("bind");
			return 1;
		}
	}
	memset(&ipsec_req, 0, sizeof (ipsec_req));
	if (strcmp(mode, "esp") == 0) {
		ipsec_req.ipsr_esp_req = IPSEC_PREF_REQUIRED;
		ipsec_req.ipsr_esp_alg = SADB_EALG_AES;
		ipsec_req.ipsr_esp_auth_alg = SADB_AALG_SHA256HMAC;
	} else if (strcmp(mode, "never") == 0) {
		ipsec_req.ipsr_ah_req = IPSEC_PREF_NEVER;
		ipsec_req.ipsr_esp_req = IPSEC_PREF_NEVER;
	} else if (strcmp(mode, "unique") == 0) {
		ipsec_req.ipsr_esp_req = IPSEC_PREF_REQUIRED | IPSEC_PREF_UNIQUE;
	} else if (strcmp(mode, "selfencap") == 0) {
		ipsec_req.ipsr_esp_req = IPSEC_PREF_REQUIRED;
		ipsec_req.ipsr_self_encap_req = IPSEC_PREF_REQUIRED;
	}
	if (strcmp(mode, "none") != 0 && v6) {
		rc = setsockopt(s, IPPROTO_IPV6, IPV6_SEC_OPT,
		    (const char *)&ipsec_req, sizeof (ipsec_req_t));
		printf("setsockopt %d %d\n", rc, rc == 0 ? 0 : errno);
		fflush(stdout);
	} else if (strcmp(mode, "none") != 0) {
		/* manual page */
		rc = setsockopt(s, IPPROTO_IP, IP_SEC_OPT,
		    (const char *)&ipsec_req, sizeof (ipsec_req_t));
		/* manual page end */
		printf("setsockopt %d %d\n", rc, rc == 0 ? 0 : errno);
		fflush(stdout);
	}
	memset(&ss, 0, sizeof (ss));
	ss.ss_family = v6 ? AF_INET6 : AF_INET;
	if (v6) {
		sin6->sin6_port = htons(atoi(argv[3]));
		rc = inet_pton(AF_INET6, argv[2], &sin6->sin6_addr);
	} else {
		sin->sin_port = htons(atoi(argv[3]));
		rc = inet_pton(AF_INET, argv[2], &sin->sin_addr);
	}
	if (rc != 1) {
		fprintf(stderr, "bad address %s\n", argv[2]);
		return 2;
	}
	if (strcmp(argv[1], "tcp-server") == 0) {
		ipsec_req_t got;
		socklen_t len = sizeof (got);
		char in[64];
		ssize_t n;
		int c, one = 1, served = 0;

		(void) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
		if (bind(s, (struct sockaddr *)&ss, sslen) != 0 || listen(s, 4) != 0) {
			perror("bind/listen");
			return 1;
		}
		rc = setsockopt(s, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_SEC_OPT : IP_SEC_OPT,
		    (const char *)&ipsec_req, sizeof (ipsec_req_t));
		printf("relisten %d %d\nlistening\n", rc, rc == 0 ? 0 : errno);
		fflush(stdout);
		c = accept(s, NULL, NULL);
		if (c < 0) {
			perror("accept");
			return 1;
		}
		memset(&got, 0, sizeof (got));
		(void) getsockopt(c, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_SEC_OPT : IP_SEC_OPT,
		    &got, &len);
		printf("getsockopt %u %u %u\n", got.ipsr_esp_req, got.ipsr_esp_alg,
		    got.ipsr_esp_auth_alg);
		(void) setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
		while (served < count && (n = recv(c, in, sizeof (in), 0)) > 0) {
			if (send(c, in, n, 0) == n)
				served++;
		}
		printf("served %d\n", served);
		close(c);
		close(s);
		return 0;
	}
	(void) setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
	if (connect(s, (struct sockaddr *)&ss, sslen) != 0) {
		perror("connect");
		printf("echoed 0\n");
		return 1;
	}
	{
		ipsec_req_t got;
		socklen_t len = sizeof (got);
		memset(&got, 0, sizeof (got));
		rc = v6 ? getsockopt(s, IPPROTO_IPV6, IPV6_SEC_OPT, &got, &len) :
		    getsockopt(s, IPPROTO_IP, IP_SEC_OPT, &got, &len);
		printf("getsockopt %u %u %u\n", got.ipsr_esp_req, got.ipsr_esp_alg,
		    got.ipsr_esp_auth_alg);
	}
	for (i = 0; i < count; i++) {
		char out[64], in[64];
		ssize_t n;
		int len = snprintf(out, sizeof (out), "ironswan persock %d", i);

		if (send(s, out, len, 0) != len) {
			perror("send");
			continue;
		}
		if (strcmp(mode, "unique") == 0 || strcmp(mode, "selfencap") == 0) {
			usleep(100000);
			continue;
		}
		/* Skip a late echo of an earlier message (its wait timed out). */
		while ((n = recv(s, in, sizeof (in), 0)) > 0) {
			if (n == len && memcmp(in, out, len) == 0) {
				echoed++;
				break;
			}
		}
	}
	printf("echoed %d\n", echoed);
	close(s);
	return 0;
}
