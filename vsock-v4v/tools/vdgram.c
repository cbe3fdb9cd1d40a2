// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdgram: AF_VSOCK datagrams from the shell, for the tests (socat has no
 * vsock datagram address).
 *
 *   vdgram send CID PORT SRCPORT TEXT [COUNT]
 *                                       COUNT (1) datagrams from SRCPORT (0:
 *                                       any), back to back; exit 0 when
 *                                       all were sent, else errno text
 *   vdgram recv PORT COUNT SECONDS      bind PORT, print COUNT datagrams as
 *                                       "CID:PORT TEXT" lines; exit 1 if
 *                                       fewer came within SECONDS
 *   vdgram drain CID PORT               connect a stream socket and read it
 *                                       until end of file (exit 0) or an
 *                                       error (its name on stderr, exit 1)
 *   vdgram trickle CID PORT MS          connect a stream socket and write a
 *                                       byte to it every MS ms until a
 *                                       write fails (its error's name on
 *                                       stderr, exit 1)
 *   vdgram connect CID PORT             connect a stream socket and close
 *                                       it; print "connected" or the
 *                                       error's name, and how long the
 *                                       connect() call took in ms
 *   vdgram big CID PORT SIZE            one datagram of SIZE bytes; print
 *                                       "sent" or the error's name
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static unsigned long num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (!*s || *end) {
		fprintf(stderr, "vdgram: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static int sock_bound(unsigned int port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK };
	int fd = socket(AF_VSOCK, SOCK_DGRAM, 0);

	if (fd < 0) {
		fprintf(stderr, "vdgram: socket: %s\n", strerror(errno));
		exit(1);
	}
	if (port) {
		a.svm_cid = VMADDR_CID_ANY;
		a.svm_port = port;
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			fprintf(stderr, "vdgram: bind %u: %s\n", port, strerror(errno));
			exit(1);
		}
	}
	return fd;
}

/* A stream socket connected to CID:PORT; exits 1 (naming why) if not. */
static int stream_to(const char *cid, const char *port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK };
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	a.svm_cid = num(cid);
	a.svm_port = num(port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "vdgram: connect %u:%u: %s\n", a.svm_cid,
			a.svm_port, strerror(errno));
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK };
	char buf[65536];

	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "send")) {
		int fd = sock_bound(num(argv[4]));
		unsigned long i, count = argc == 7 ? num(argv[6]) : 1;

		a.svm_cid = num(argv[2]);
		a.svm_port = num(argv[3]);
		for (i = 0; i < count; i++) {
			if (sendto(fd, argv[5], strlen(argv[5]), 0,
				   (struct sockaddr *)&a, sizeof(a)) < 0) {
				fprintf(stderr, "vdgram: sendto %u:%u: %s\n",
					a.svm_cid, a.svm_port, strerror(errno));
				return 1;
			}
		}
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "recv")) {
		int fd = sock_bound(num(argv[2]));
		unsigned long want = num(argv[3]), got = 0;
		struct timeval end, now, tv;

		gettimeofday(&end, NULL);
		end.tv_sec += num(argv[4]);
		while (got < want) {
			socklen_t alen = sizeof(a);
			ssize_t n;

			gettimeofday(&now, NULL);
			if (!timercmp(&now, &end, <))
				break;
			timersub(&end, &now, &tv);
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			n = recvfrom(fd, buf, sizeof(buf) - 1, 0,
				     (struct sockaddr *)&a, &alen);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				fprintf(stderr, "vdgram: recvfrom: %s\n", strerror(errno));
				return 1;
			}
			buf[n] = 0;
			printf("%u:%u %s\n", a.svm_cid, a.svm_port, buf);
			fflush(stdout);
			got++;
		}
		return got == want ? 0 : 1;
	}
	if (argc == 4 && !strcmp(argv[1], "drain")) {
		int fd = stream_to(argv[2], argv[3]);
		unsigned long long total = 0;
		ssize_t n;

		while ((n = read(fd, buf, sizeof(buf))) > 0)
			total += n;
		if (n < 0) {
			fprintf(stderr, "vdgram: read after %llu bytes: %s\n", total,
				strerror(errno));
			return 1;
		}
		fprintf(stderr, "vdgram: end of file after %llu bytes\n", total);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "trickle")) {
		int fd = stream_to(argv[2], argv[3]);
		unsigned long ms = num(argv[4]), total = 0;
		struct timespec pause = { ms / 1000, (ms % 1000) * 1000000 };

		/* MSG_NOSIGNAL: the error itself, not a SIGPIPE, is the answer. */
		while (send(fd, "x", 1, MSG_NOSIGNAL) == 1) {
			total++;
			nanosleep(&pause, NULL);
		}
		fprintf(stderr, "vdgram: write after %lu bytes: %s\n", total,
			strerror(errno));
		return 1;
	}
	if (argc == 4 && !strcmp(argv[1], "connect")) {
		int fd = socket(AF_VSOCK, SOCK_STREAM, 0), rc, err;
		struct timespec t0, t1;

		if (fd < 0) {
			fprintf(stderr, "vdgram: socket: %s\n", strerror(errno));
			return 1;
		}
		a.svm_cid = num(argv[2]);
		a.svm_port = num(argv[3]);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
		err = errno;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("%s in %ld ms\n", rc ? strerror(err) : "connected",
		       (long)((t1.tv_sec - t0.tv_sec) * 1000 +
			      (t1.tv_nsec - t0.tv_nsec) / 1000000));
		close(fd);
		return rc ? 1 : 0;
	}
	if (argc == 5 && !strcmp(argv[1], "big")) {
		int fd = sock_bound(0);
		unsigned long size = num(argv[4]);
		char *big = calloc(1, size ? size : 1);

		if (!big) {
			fprintf(stderr, "vdgram: no memory for %lu bytes\n", size);
			return 1;
		}
		a.svm_cid = num(argv[2]);
		a.svm_port = num(argv[3]);
		if (sendto(fd, big, size, 0, (struct sockaddr *)&a, sizeof(a)) < 0) {
			printf("%s\n", strerror(errno));
			return 1;
		}
		printf("sent\n");
		return 0;
	}
	fprintf(stderr, "usage: vdgram send CID PORT SRCPORT TEXT [COUNT] | recv PORT COUNT SECONDS | drain CID PORT | connect CID PORT | big CID PORT SIZE\n");
	return 2;
}
