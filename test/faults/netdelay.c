/*-------------------------------------------------------------------------
 *
 * netdelay.c
 *		Packet delay and loss for the fault suite, where the kernel has no
 *		netem qdisc: packets sent to an iptables NFQUEUE are held here for a
 *		fixed delay, or dropped with a given probability, then released.
 *
 * Usage: netdelay QUEUE DELAY_MS LOSS_PERCENT SEED
 *
 * Run inside the network namespace whose traffic it delays, after
 *
 *		iptables -A OUTPUT -o eth0 -j NFQUEUE --queue-num QUEUE --queue-bypass
 *
 * (with --queue-bypass, packets pass unharmed once this program is gone).
 * The delay is the same for every packet, so a FIFO keeps their order, as
 * a long link would.  Ends on SIGTERM or SIGINT.
 *
 * Copyright (c) 2026, pg_cluster developers
 *
 *-------------------------------------------------------------------------
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "../../bench/client_util.h"

#define MAX_HELD 65536

typedef struct HeldPacket
{
	uint32_t	id;
	double		release_at;
} HeldPacket;

static HeldPacket held[MAX_HELD];
static size_t held_head = 0;
static size_t held_count = 0;
static double delay_s;
static double loss;
static volatile sig_atomic_t stop_requested = 0;
static unsigned long passed = 0,
			dropped = 0;

static void
handle_stop(int sig)
{
	stop_requested = 1;
}

/* OnPacket queues a packet for release after the delay, or drops it. */
static int
OnPacket(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
		 void *data)
{
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	uint32_t	id;

	if (ph == NULL)
		return 0;
	id = ntohl(ph->packet_id);
	if (loss > 0 && drand48() < loss)
	{
		dropped++;
		return nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
	}
	if (held_count == MAX_HELD)
	{
		/* a full line loses packets, as a full router queue would */
		dropped++;
		return nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
	}
	held[(held_head + held_count) % MAX_HELD].id = id;
	held[(held_head + held_count) % MAX_HELD].release_at = mono_now() + delay_s;
	held_count++;
	return 0;
}

/* ReleaseDue lets through every held packet whose delay is over. */
static void
ReleaseDue(struct nfq_q_handle *qh, double now)
{
	while (held_count > 0 && held[held_head].release_at <= now)
	{
		nfq_set_verdict(qh, held[held_head].id, NF_ACCEPT, 0, NULL);
		held_head = (held_head + 1) % MAX_HELD;
		held_count--;
		passed++;
	}
}

int
main(int argc, char **argv)
{
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	int			fd;
	char		buf[65536] __attribute__((aligned));

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s QUEUE DELAY_MS LOSS_PERCENT SEED\n", argv[0]);
		return 2;
	}
	delay_s = atof(argv[2]) / 1000.0;
	loss = atof(argv[3]) / 100.0;
	srand48(atol(argv[4]));

	signal(SIGTERM, handle_stop);
	signal(SIGINT, handle_stop);

	h = nfq_open();
	if (h == NULL)
	{
		perror("nfq_open");
		return 1;
	}
	qh = nfq_create_queue(h, (uint16_t) atoi(argv[1]), &OnPacket, NULL);
	if (qh == NULL)
	{
		perror("nfq_create_queue");
		return 1;
	}
	if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0)
	{
		perror("nfq_set_mode");
		return 1;
	}
	(void) nfq_set_queue_maxlen(qh, MAX_HELD);
	fd = nfq_fd(h);

	while (!stop_requested)
	{
		struct pollfd pfd = {.fd = fd,.events = POLLIN};
		double		now = mono_now();
		int			timeout_ms = -1;

		ReleaseDue(qh, now);
		if (held_count > 0)
			timeout_ms = (int) ((held[held_head].release_at - now) * 1000) + 1;
		if (poll(&pfd, 1, timeout_ms) < 0)
		{
			if (errno == EINTR)
				continue;
			perror("poll");
			break;
		}
		if (pfd.revents & POLLIN)
		{
			ssize_t		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n > 0)
				nfq_handle_packet(h, buf, (int) n);
		}
	}

	/* let the held packets go: the link heals */
	ReleaseDue(qh, 1e300);
	nfq_destroy_queue(qh);
	nfq_close(h);
	fprintf(stderr, "netdelay: %lu packets delayed, %lu dropped\n", passed, dropped);
	return 0;
}
