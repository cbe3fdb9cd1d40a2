// SPDX-License-Identifier: GPL-2.0-only
/*
 * vperf: throughput and round-trip latency of a stream socket, AF_VSOCK
 * against TCP, for the benchmark of make bench-vsock.
 *
 *   vperf server PORT
 *       listen on vsock port PORT and on TCP port PORT (any address), and
 *       serve one connection at a time, forever
 *   vperf client CID IPV4 PORT [-s SIZES] [-r REPS] [-t MS] [-n PINGS]
 *                [-w SECONDS]
 *       measure against the server at vsock CID:PORT and TCP IPV4:PORT:
 *       for every repetition and size (SIZES: comma-separated bytes,
 *       default 64,256,1024,4096,16384,65536) both transports in turn,
 *       the one that goes first alternating; first waits up to SECONDS
 *       (default 60) for both servers to answer
 *
 * Every connection starts with a request (struct req). A stream run
 * writes size-byte write()s for MS milliseconds (default 1000), then
 * shuts its side down; the server reads with a large buffer until end of
 * file and answers with the byte count, so the time runs until the last
 * byte was delivered and read, not merely buffered. A ping-pong run
 * sends size bytes that the server sends back, 10 round trips to warm up
 * and then PINGS (default 200) timed ones, with TCP_NODELAY on both ends
 * for TCP (the throughput runs keep TCP's defaults). Results go to stdout
 * as `V4VB METRIC TRANSPORT SIZE REP VALUE` lines, the format of
 * tests/bench.py:
 *
 *   stream_Bps    delivered bytes per second
 *   stream_wps    write() calls per second
 *   rtt_p50_ns    median round trip
 *   rtt_p99_ns    99th percentile round trip (nearest rank)
 *   connect_ns    median connect() time of the repetition (SIZE 0)
 *
 * and, once a repetition, the client domain's own floor (TRANSPORT
 * local): syscall_ns, one getppid(); pipe_rtt_ns (SIZE 64), the median
 * round trip of 64 bytes to a child process through two pipes. A
 * `V4VD bench plan ...` line comes first, `V4VD progress ...` lines as it
 * goes.
 * All times are CLOCK_MONOTONIC. Any failed call: a line on stderr and
 * exit status 1.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/vm_sockets.h>

#define MAGIC 0x76706572u /* "vper" */
#define MODE_STREAM 1u
#define MODE_PING 2u
#define WARMUP 10u
#define MAX_SIZES 16
#define MAX_SIZE (1u << 20)
#define RXBUF (256u << 10)

struct req {
	uint32_t magic;
	uint32_t mode;
	uint32_t size;
	uint32_t count; /* ping-pong: round trips, warm-up included */
};

enum transport { VSOCK, TCP };
static const char *const tname[] = { "vsock", "tcp" };

static unsigned char rxbuf[RXBUF];
static unsigned char txbuf[MAX_SIZE];

static void __attribute__((noreturn)) die(const char *what)
{
	fprintf(stderr, "vperf: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void __attribute__((noreturn)) fail(const char *what)
{
	fprintf(stderr, "vperf: %s\n", what);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		die("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned long num(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (!*s || *end || errno || v > max) {
		fprintf(stderr, "vperf: bad number '%s' (at most %lu)\n", s, max);
		exit(2);
	}
	return v;
}

/* 0 at end of file before any byte, 1 when all len bytes came, -1 with
 * errno on an error or an end of file in the middle. */
static int read_all(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			if (got == 0)
				return 0;
			errno = EPIPE;
			return -1;
		}
		got += (size_t)n;
	}
	return 1;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("setsockopt TCP_NODELAY");
}

/* ---- server ---------------------------------------------------------- */

static int listener(enum transport t, unsigned int port)
{
	int fd, one = 1;

	if (t == VSOCK) {
		struct sockaddr_vm a = { .svm_family = AF_VSOCK };

		a.svm_cid = VMADDR_CID_ANY;
		a.svm_port = port;
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0)
			die("socket AF_VSOCK");
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			die("bind vsock");
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET };

		a.sin_addr.s_addr = htonl(INADDR_ANY);
		a.sin_port = htons((uint16_t)port);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			die("socket AF_INET");
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
			die("setsockopt SO_REUSEADDR");
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			die("bind tcp");
	}
	if (listen(fd, 16) < 0)
		die("listen");
	return fd;
}

/* One connection; a failure ends it (the client reports), not the server. */
static void serve(int fd, enum transport t)
{
	struct req r;
	int rc = read_all(fd, &r, sizeof(r));

	if (rc <= 0) {
		if (rc < 0)
			fprintf(stderr, "vperf: %s: reading the request: %s\n",
				tname[t], strerror(errno));
		return;
	}
	if (r.magic != MAGIC || r.size == 0 || r.size > MAX_SIZE) {
		fprintf(stderr, "vperf: %s: bad request\n", tname[t]);
		return;
	}
	if (r.mode == MODE_STREAM) {
		uint64_t total = 0;
		ssize_t n;

		while ((n = read(fd, rxbuf, sizeof(rxbuf))) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "vperf: %s: stream read after %llu bytes: %s\n",
					tname[t], (unsigned long long)total, strerror(errno));
				return;
			}
			total += (uint64_t)n;
		}
		if (write_all(fd, &total, sizeof(total)) < 0)
			fprintf(stderr, "vperf: %s: writing the count: %s\n", tname[t],
				strerror(errno));
	} else if (r.mode == MODE_PING) {
		uint32_t i;

		if (t == TCP)
			nodelay(fd);
		for (i = 0; i < r.count; i++) {
			rc = read_all(fd, rxbuf, r.size);
			if (rc <= 0) {
				fprintf(stderr, "vperf: %s: ping %u of %u: %s\n", tname[t], i,
					r.count, rc ? strerror(errno) : "end of file");
				return;
			}
			if (write_all(fd, rxbuf, r.size) < 0) {
				fprintf(stderr, "vperf: %s: pong %u of %u: %s\n", tname[t], i,
					r.count, strerror(errno));
				return;
			}
		}
	} else {
		fprintf(stderr, "vperf: %s: unknown mode %u\n", tname[t], r.mode);
	}
}

static void __attribute__((noreturn)) server(unsigned int port)
{
	struct pollfd p[2];
	int i;

	p[0].fd = listener(VSOCK, port);
	p[1].fd = listener(TCP, port);
	p[0].events = p[1].events = POLLIN;
	printf("vperf: serving vsock port %u and tcp port %u\n", port, port);
	fflush(stdout);
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (i = 0; i < 2; i++) {
			int fd;

			if (!(p[i].revents & POLLIN))
				continue;
			fd = accept(p[i].fd, NULL, NULL);
			if (fd < 0) {
				if (errno == EINTR || errno == ECONNABORTED)
					continue;
				die("accept");
			}
			serve(fd, (enum transport)i);
			if (close(fd) < 0)
				die("close");
		}
	}
}

/* ---- client ---------------------------------------------------------- */

static struct sockaddr_vm vaddr = { .svm_family = AF_VSOCK };
static struct sockaddr_in iaddr = { .sin_family = AF_INET };
/* connect() times of the current repetition, per transport. */
static uint64_t connect_ns[2][64];
static unsigned int nconnect[2];

/* A connection, or -1 with errno; its connect() time is kept. */
static int try_connect(enum transport t)
{
	uint64_t t0 = now_ns();
	int fd, saved;

	fd = socket(t == VSOCK ? AF_VSOCK : AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if ((t == VSOCK ? connect(fd, (struct sockaddr *)&vaddr, sizeof(vaddr))
			: connect(fd, (struct sockaddr *)&iaddr, sizeof(iaddr))) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (nconnect[t] < sizeof(connect_ns[t]) / sizeof(connect_ns[t][0]))
		connect_ns[t][nconnect[t]++] = now_ns() - t0;
	return fd;
}

static int open_run(enum transport t, uint32_t mode, uint32_t size, uint32_t count)
{
	struct req r = { MAGIC, mode, size, count };
	char what[64];
	int fd = try_connect(t);

	snprintf(what, sizeof(what), "connect %s", tname[t]);
	if (fd < 0)
		die(what);
	if (mode == MODE_PING && t == TCP)
		nodelay(fd);
	if (write_all(fd, &r, sizeof(r)) < 0)
		die("writing the request");
	return fd;
}

static void done(int fd)
{
	if (close(fd) < 0)
		die("close");
}

/* Bytes per second delivered, and write() calls per second. */
static void stream(enum transport t, uint32_t size, unsigned int ms, uint64_t *bps,
		   uint64_t *wps)
{
	int fd = open_run(t, MODE_STREAM, size, 0);
	/* Look at the clock about every 16 KiB (a clock read may be a
	 * system call in a PV guest). */
	uint64_t every = size >= 16384 ? 1 : 16384 / size;
	uint64_t writes = 0, sent = 0, got, t0, t1, end;

	t0 = now_ns();
	end = t0 + (uint64_t)ms * 1000000u;
	for (;;) {
		ssize_t n = write(fd, txbuf, size);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("stream write");
		}
		writes++;
		sent += (uint64_t)n;
		if ((size_t)n < size) {
			/* A short write: the rest, so that every write stays
			 * size bytes from the stream's point of view. */
			if (write_all(fd, txbuf + n, size - (size_t)n) < 0)
				die("stream write");
			sent += size - (size_t)n;
		}
		if (writes % every == 0 && now_ns() >= end)
			break;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown");
	switch (read_all(fd, &got, sizeof(got))) {
	case 1:
		break;
	case 0:
		fail("stream: the server closed without a byte count");
		break;
	default:
		die("reading the byte count");
	}
	t1 = now_ns();
	done(fd);
	if (got != sent) {
		fprintf(stderr, "vperf: %s %u B: sent %llu bytes, server read %llu\n", tname[t],
			size, (unsigned long long)sent, (unsigned long long)got);
		exit(1);
	}
	*bps = got * 1000000000u / (t1 - t0);
	*wps = writes * 1000000000u / (t1 - t0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void ping(enum transport t, uint32_t size, unsigned int pings, uint64_t *rtt,
		 uint64_t *p50, uint64_t *p99)
{
	int fd = open_run(t, MODE_PING, size, WARMUP + pings);
	unsigned int i;

	for (i = 0; i < WARMUP + pings; i++) {
		uint64_t t0 = now_ns();
		int rc;

		if (write_all(fd, txbuf, size) < 0)
			die("ping write");
		rc = read_all(fd, rxbuf, size);
		if (rc <= 0) {
			if (rc == 0)
				fail("ping: the server closed");
			die("ping read");
		}
		if (i >= WARMUP)
			rtt[i - WARMUP] = now_ns() - t0;
	}
	done(fd);
	*p50 = median(rtt, pings);
	/* Nearest rank: the smallest value with 99% at or below it. */
	*p99 = rtt[(pings * 99 + 99) / 100 - 1];
}

/* The client domain's own floor, no transport involved: one system call
 * (getppid), and a round trip of 64 bytes through two pipes to a child
 * process and back (two context switches, four calls). */
static uint64_t null_syscall_ns(void)
{
	const unsigned int calls = 2000;
	uint64_t t0 = now_ns();
	unsigned int i;

	for (i = 0; i < calls; i++)
		if (getppid() < 0)
			die("getppid");
	return (now_ns() - t0) / calls;
}

static uint64_t pipe_rtt_ns(unsigned int pings, uint64_t *rtt)
{
	int there[2], back[2], status;
	unsigned int i;
	pid_t pid;

	if (pipe(there) < 0 || pipe(back) < 0)
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int rc;

		close(there[1]);
		close(back[0]);
		while ((rc = read_all(there[0], rxbuf, 64)) == 1)
			if (write_all(back[1], rxbuf, 64) < 0)
				_exit(1);
		_exit(rc == 0 ? 0 : 1);
	}
	if (close(there[0]) < 0 || close(back[1]) < 0)
		die("close");
	for (i = 0; i < WARMUP + pings; i++) {
		uint64_t t0 = now_ns();

		if (write_all(there[1], txbuf, 64) < 0)
			die("pipe write");
		if (read_all(back[0], rxbuf, 64) != 1)
			die("pipe read");
		if (i >= WARMUP)
			rtt[i - WARMUP] = now_ns() - t0;
	}
	if (close(there[1]) < 0 || close(back[0]) < 0)
		die("close");
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail("the pipe echo child failed");
	return median(rtt, pings);
}

static void wait_servers(unsigned int seconds)
{
	uint64_t end = now_ns() + (uint64_t)seconds * 1000000000u;
	enum transport t;

	for (t = VSOCK; t <= TCP; t++) {
		int fd;

		while ((fd = try_connect(t)) < 0) {
			if (now_ns() >= end) {
				fprintf(stderr, "vperf: no %s server after %u s: %s\n", tname[t],
					seconds, strerror(errno));
				exit(1);
			}
			usleep(200000);
		}
		done(fd);
	}
}

static int client(int argc, char **argv)
{
	uint32_t sizes[MAX_SIZES] = { 64, 256, 1024, 4096, 16384, 65536 };
	unsigned int nsizes = 6, reps = 3, ms = 1000, pings = 200, wait = 60;
	unsigned int rep, s, k, port;
	uint64_t *rtt;
	int i;

	vaddr.svm_cid = num(argv[2], UINT32_MAX);
	if (inet_pton(AF_INET, argv[3], &iaddr.sin_addr) != 1) {
		fprintf(stderr, "vperf: bad IPv4 address '%s'\n", argv[3]);
		return 2;
	}
	port = num(argv[4], 65535);
	vaddr.svm_port = port;
	iaddr.sin_port = htons((uint16_t)port);
	for (i = 5; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-s")) {
			char *list = argv[i + 1], *tok;

			nsizes = 0;
			while ((tok = strsep(&list, ",")) != NULL) {
				if (nsizes == MAX_SIZES)
					fail("too many sizes");
				sizes[nsizes] = num(tok, MAX_SIZE);
				if (!sizes[nsizes])
					fail("a size of 0");
				nsizes++;
			}
		} else if (!strcmp(argv[i], "-r")) {
			reps = num(argv[i + 1], 1000);
		} else if (!strcmp(argv[i], "-t")) {
			ms = num(argv[i + 1], 3600000);
		} else if (!strcmp(argv[i], "-n")) {
			pings = num(argv[i + 1], 10000000);
		} else if (!strcmp(argv[i], "-w")) {
			wait = num(argv[i + 1], 86400);
		} else {
			break;
		}
	}
	if (i != argc || !reps || !ms || !pings) {
		fprintf(stderr, "vperf: client: bad options\n");
		return 2;
	}
	rtt = calloc(pings, sizeof(*rtt));
	if (!rtt)
		die("calloc");
	for (k = 0; k < sizeof(txbuf); k++)
		txbuf[k] = (unsigned char)(k * 7 + 1);

	wait_servers(wait);
	printf("V4VD bench plan reps=%u ms=%u pings=%u sizes=", reps, ms, pings);
	for (s = 0; s < nsizes; s++)
		printf("%s%u", s ? "," : "", sizes[s]);
	printf(" vsock=%u:%u tcp=%s:%u\n", vaddr.svm_cid, port, argv[3], port);
	fflush(stdout);
	for (rep = 0; rep < reps; rep++) {
		nconnect[VSOCK] = nconnect[TCP] = 0;
		for (s = 0; s < nsizes; s++) {
			printf("V4VD progress rep %u/%u size %u\n", rep + 1, reps, sizes[s]);
			fflush(stdout);
			/* Who goes first flips every size and repetition. */
			for (k = 0; k < 2; k++) {
				enum transport t = (enum transport)((k + s + rep) % 2);
				uint64_t bps, wps, p50, p99;

				stream(t, sizes[s], ms, &bps, &wps);
				ping(t, sizes[s], pings, rtt, &p50, &p99);
				printf("V4VB stream_Bps %s %u %u %llu\n", tname[t], sizes[s], rep,
				       (unsigned long long)bps);
				printf("V4VB stream_wps %s %u %u %llu\n", tname[t], sizes[s], rep,
				       (unsigned long long)wps);
				printf("V4VB rtt_p50_ns %s %u %u %llu\n", tname[t], sizes[s], rep,
				       (unsigned long long)p50);
				printf("V4VB rtt_p99_ns %s %u %u %llu\n", tname[t], sizes[s], rep,
				       (unsigned long long)p99);
				fflush(stdout);
			}
		}
		printf("V4VB syscall_ns local 0 %u %llu\n", rep,
		       (unsigned long long)null_syscall_ns());
		printf("V4VB pipe_rtt_ns local 64 %u %llu\n", rep,
		       (unsigned long long)pipe_rtt_ns(pings, rtt));
		for (k = 0; k < 2; k++)
			if (nconnect[k])
				printf("V4VB connect_ns %s 0 %u %llu\n", tname[k], rep,
				       (unsigned long long)median(connect_ns[k], nconnect[k]));
		fflush(stdout);
	}
	free(rtt);
	return 0;
}

int main(int argc, char **argv)
{
	/* A peer that went away is a write error, not a silent death. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die("signal");
	if (argc == 3 && !strcmp(argv[1], "server"))
		server(num(argv[2], 65535));
	if (argc >= 5 && !strcmp(argv[1], "client"))
		return client(argc, argv);
	fprintf(stderr, "usage: vperf server PORT | client CID IPV4 PORT [-s SIZES] [-r REPS] "
			"[-t MS] [-n PINGS] [-w SECONDS]\n");
	return 2;
}
