/*
 * setsockopt(SO_RCVBUF) N times on one UDP socket; prints the elapsed nanoseconds. Run with
 * and without LD_PRELOAD=libipsec_sock.so by scripts/bench-sockopt.sh: the library must not
 * slow down options it does not serve.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/socket.h>

int
main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000, i;
	int s = socket(AF_INET, SOCK_DGRAM, 0), v = 65536;
	struct timespec a, b;

	if (s < 0) {
		perror("socket");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) {
		if (setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof (v)) != 0) {
			perror("setsockopt");
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	return 0;
}
